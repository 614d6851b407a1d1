"""A form body that cannot be decoded is the client's error (400) on every page, not a 500."""

from django.core.exceptions import BadRequest
from django.http import HttpRequest

from annotator.api.parsers import FORM_TYPES


class UnreadableFormMiddleware:
    """Reads a form POST's fields before Django's CSRF check does, so that a `charset=` naming a codec that decodes
    no text (zlib_codec, idna, undefined, ...) answers 400 through Django's bad-request handler instead of failing
    inside the check. The fields are read once either way: Django keeps them on the request. Views exempt from the
    check (the API's) read and refuse their bodies themselves (annotator.api.parsers)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method != "POST" or request.content_type not in FORM_TYPES or getattr(view_func, "csrf_exempt", False):
            return None
        try:
            request.POST  # noqa: B018  (read for its errors)
        except (UnicodeError, LookupError) as error:
            raise BadRequest(f"The form body could not be decoded: {error}") from None
        return None
