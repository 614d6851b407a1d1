import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def client_with_token(user) -> APIClient:
    """An API client that authenticates the way simulated labelers do: a token header, no session."""
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(labeler):
    return client_with_token(labeler)


@pytest.fixture
def other_api(other_labeler):
    return client_with_token(other_labeler)


@pytest.fixture
def staff_api(staff):
    return client_with_token(staff)
