"""DRF exception handler: every error answer is {"detail": <one clear sentence>, "code": <stable name>, ...}.

Service errors carry their own status, message and details. DRF's validation errors keep their per-field
messages under "fields", and also get a one-line "detail" so every client can print the same key.
"""

from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotator.services.errors import ServiceError


def _flatten(errors, prefix: str = "") -> list[str]:
    """["choice: \"c\" is not a valid choice.", ...] from DRF's nested error dict/list."""
    if isinstance(errors, dict):
        lines = []
        for field, value in errors.items():
            name = "" if field == "non_field_errors" else f"{prefix}{field}"
            lines += _flatten(value, f"{name}." if name else "")
        return lines
    if isinstance(errors, list):
        return [line for value in errors for line in _flatten(value, prefix)]
    field = prefix.rstrip(".")
    return [f"{field}: {errors}" if field else str(errors)]


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code, **exc.details}, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        response.data = {"detail": " ".join(_flatten(exc.detail)), "code": "invalid", "fields": exc.detail}
    elif isinstance(response.data, dict) and "detail" in response.data:
        # Django's Http404 and PermissionDenied arrive here too; they carry no DRF error code.
        code = getattr(exc.detail, "code", None) if isinstance(exc, APIException) else None
        response.data["code"] = code or ("not_found" if response.status_code == 404 else "permission_denied")
    return response
