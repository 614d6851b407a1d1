"""The authentication backend: Django's own (users and passwords in the database) with failed sign-ins limited
per username (annotator.services.sign_in)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from annotator.services.sign_in import sign_in_failed, sign_in_locked, sign_in_succeeded


class SignInLimitedBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        if sign_in_locked(username=username):
            raise PermissionDenied  # `authenticate()` stops at once and reports a failed sign-in
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            sign_in_failed(username=username)
        else:
            sign_in_succeeded(username=username)
        return user
