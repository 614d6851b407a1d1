"""DRF exception handler: every error answer is {"detail": <one clear sentence>, "code": <stable name>, ...}.

Service errors carry their own status, message and details. DRF's validation errors keep their per-field
messages under "fields", and also get a one-line "detail" so every client can print the same key.
`bad_request`, `not_found` and `server_error` are the site's 400, 404 and 500 handlers: the same JSON shape
under /api/ (an API client should never have to parse an HTML page), Django's pages elsewhere.
"""

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.exceptions import APIException, ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotator.core.errors import ServiceError


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


def _encodable(errors):
    """DRF's error tree with lone surrogates written as escapes: a message that echoes the input (a ChoiceField's)
    may hold one from a JSON "\\ud800", and no UTF-8 answer can carry it."""
    if isinstance(errors, dict):
        return {field: _encodable(value) for field, value in errors.items()}
    if isinstance(errors, list):
        return [_encodable(value) for value in errors]
    text = errors.encode("utf-8", "backslashreplace").decode()
    return errors if text == errors else ErrorDetail(text, code=getattr(errors, "code", None))


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code, **exc.details}, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        fields = _encodable(exc.detail)
        response.data = {"detail": " ".join(_flatten(fields)), "code": "invalid", "fields": fields}
    elif isinstance(response.data, dict) and "detail" in response.data:
        # Django's Http404 and PermissionDenied arrive here too; they carry no DRF error code.
        code = getattr(exc.detail, "code", None) if isinstance(exc, APIException) else None
        response.data["code"] = code or ("not_found" if response.status_code == 404 else "permission_denied")
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _refusal(exception: Exception) -> str:
    if isinstance(exception, RequestDataTooBig):
        return f"Bad request: the body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    if isinstance(exception, TooManyFieldsSent):
        return f"Bad request: more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."
    if type(exception) is BadRequest:  # Django's own sentence, e.g. a form body in a charset other than UTF-8
        return f"Bad request: {exception}"
    return "Bad request: it could not be read."


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Requests Django refuses when the view reads them or before it runs (a body over the size limit, too many
    fields, a form not in UTF-8, a bad Host)."""
    if _is_api(request):
        return JsonResponse({"detail": _refusal(exception), "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        detail = f"Not found: nothing answers at {request.path}."
        return JsonResponse({"detail": detail, "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        detail = "Server error; retrying is safe: an answer that was stored is refused as already_submitted."
        return JsonResponse({"detail": detail, "code": "server_error"}, status=500)
    return defaults.server_error(request)
