"""The base of the labeling API's two hot endpoints (next item, answer) without DRF's request cycle.

A labeler calls each once per judgement, so what they cost sets how many judgements a server answers per
second. DRF's cycle (a Request wrapper, content negotiation, authentication and permission classes, a serializer
instance per body with copies of its fields, a rendered Response) cost more than the work: measured in-process,
an empty DRF view takes 1.7 times a plain Django one. `HotPathView` keeps from DRF what serves here: the
schema (subclasses are APIViews documented with `extend_schema`, so /api/schema/ and /api/docs/ show them) and
the error answers (annotator.api.errors). It answers requests itself:
- who asks: `Authorization: Token <key>` becomes an unchecked `ApiToken`, which the service's first statement
  checks (annotator.services.access; a key no token can have is refused at once); otherwise the session's user,
  with Django's CSRF check on writes, as DRF's SessionAuthentication does; neither: 401. Handlers get the
  labeler as their second argument.
- the body: JSON or a form, checked by the endpoint's input serializer's own rules (`validated`).
"""

from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS
from rest_framework.serializers import Serializer
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotator.api.authentication import LabelerTokenAuthentication
from annotator.api.errors import exception_handler
from annotator.api.parsers import FORM_TYPES, TOO_DEEP, form_fields, form_readable, json_body
from annotator.services.access import ApiToken, api_token_key_possible, user_for_api_token
from annotator.core.errors import ServiceError

_JSON = {"ensure_ascii": False, "separators": (",", ":")}  # as DRF's JSONRenderer writes it


def answer(data: dict | None, *, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params=_JSON)


def validated(rules: Serializer, data) -> dict:
    """`data` checked and converted by a serializer's fields, defaults filled in (ValidationError otherwise).
    `rules` is one instance per endpoint, shared by its requests: `run_validation` keeps no state on it."""
    if data is None:  # a JSON null: refused in the words and shape of DRF's `Serializer.errors`
        no_data = exceptions.ErrorDetail("No data provided", code="null")
        raise exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [no_data]})
    try:
        return rules.run_validation(data)
    except RecursionError:  # a value nested just shallowly enough to parse, then echoed in a message (choice)
        raise exceptions.ParseError(TOO_DEEP) from None


def request_data(request: HttpRequest):
    """The request's body: parsed JSON (empty: {}), or a form's fields (annotator.api.parsers reads both)."""
    if request.content_type in FORM_TYPES:
        return form_fields(request).dict()
    if not request.body:
        return {}
    if request.content_type != "application/json":
        raise exceptions.UnsupportedMediaType(request.content_type)
    return json_body(request.body)


def _token_is_good(token: ApiToken) -> bool:
    user, _ = user_for_api_token(key=token.key)
    return user is not None and user.is_active


def _labeler(request: HttpRequest):
    """An unchecked API token, or the session's user (CSRF checked on writes)."""
    kind, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if kind.lower() == "token":
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("Invalid token header. No credentials provided.")
        if " " in key:
            raise exceptions.AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
        if not api_token_key_possible(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return ApiToken(key)
    if not request.user.is_authenticated:
        raise exceptions.NotAuthenticated()
    if request.method not in SAFE_METHODS:
        with form_readable():  # the CSRF check reads a form body for its csrfmiddlewaretoken field
            SessionAuthentication().enforce_csrf(request)
    return request.user


class HotPathView(APIView):
    """Handlers: `get` / `post` (self, request, labeler, **url arguments), returning a Django response."""

    # For the schema only (its security schemes): `dispatch` accepts the same two credentials itself.
    authentication_classes = [LabelerTokenAuthentication, SessionAuthentication]

    def dispatch(self, request: HttpRequest, *args, **kwargs):
        handler = getattr(self, request.method.lower(), None) if request.method in ("GET", "POST") else None
        labeler = None
        try:
            if handler is None:
                raise exceptions.MethodNotAllowed(request.method)
            labeler = _labeler(request)
            return handler(request, labeler, *args, **kwargs)
        except (ServiceError, exceptions.APIException) as error:
            if isinstance(labeler, ApiToken) and not _token_is_good(labeler):
                # Refused before the service checked the token (bad input): a bad token still hears 401 first.
                return self._error(request, exceptions.AuthenticationFailed("Invalid token."))
            return self._error(request, error)

    def _error(self, request: HttpRequest, error: Exception) -> JsonResponse:
        refused = exception_handler(error, {"view": self, "request": request})
        response = answer(refused.data, status=refused.status_code)
        if refused.status_code == 401:
            response["WWW-Authenticate"] = "Token"
        elif refused.status_code == 405:
            response["Allow"] = ", ".join(method for method in ("GET", "POST") if hasattr(self, method.lower()))
        return response
