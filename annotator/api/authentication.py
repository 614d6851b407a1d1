"""API token authentication for every DRF endpoint (the project default, config.settings).

Its own module, without views: DRF imports the default authentication classes while it defines APIView.
The labeling hot path checks tokens its own way (annotator.api.hot) with the same rules (annotator.services.access).
"""

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from annotator.services.access import user_for_api_token


class LabelerTokenAuthentication(TokenAuthentication):
    """Token authentication that loads the user's labeler profile in the same query, since every labeler
    endpoint needs it (`labeler_profile_get` then reads it from the user object). A key no token can have
    (a NUL character, too long) is refused without a query."""

    def authenticate_credentials(self, key):
        user, token = user_for_api_token(key=key)
        if user is None:
            raise AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user, token
