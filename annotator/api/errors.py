"""DRF exception handler: service errors become 4xx answers with a clear message and a stable code."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotator.services.errors import ServiceError


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code, **exc.details}, status=exc.status)
    return drf_exception_handler(exc, context)
