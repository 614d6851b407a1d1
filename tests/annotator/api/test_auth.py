"""Who may call what: token and session authentication, CSRF on session writes, labelers kept apart."""

import pytest
from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from annotator.models import Judgement
from tests.annotator.api.conftest import client_with_token
from tests.factories import PASSWORD, AssignmentFactory, UserFactory


@pytest.fixture
def lease(labeler, campaign):
    return AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler, swapped=False)


ANSWER = {"choice": "second", "milliseconds": 800}


def test_token_is_issued_for_username_and_password(labeler, lease):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": labeler.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.post(f"/api/assignments/{lease.pk}/judgement/", ANSWER, format="json").status_code == 201

    wrong = APIClient().post("/api/auth/token/", {"username": labeler.username, "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "Unable to log in" in wrong.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [({}, "username"), ({"username": "", "password": ""}, "username"), ({"username": "someone"}, "password")],
)
def test_token_request_with_a_field_missing_or_blank_is_400(db, body, field):
    response = APIClient().post("/api/auth/token/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"] and response.json()["code"] == "invalid"


@pytest.mark.parametrize(
    "forged_key",
    [
        "0123456789abcdef",
        "0123456789abcdef\x000123",  # PostgreSQL refuses NUL in text: asking it with one would be a 500
        "f" * 41,  # longer than any key
    ],
)
def test_bad_token_and_no_credentials_are_401(campaign, lease, forged_key):
    anonymous = APIClient()
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Token {forged_key}")
    for client in [anonymous, forged]:
        for method, url in [
            ("get", "/api/campaigns/"),
            ("get", f"/api/campaigns/{campaign.name}/next/"),
            ("get", f"/api/campaigns/{campaign.name}/stats/"),
            ("get", f"/api/campaigns/{campaign.name}/export.jsonl"),
            ("get", "/api/me/history/"),
            ("post", f"/api/assignments/{lease.pk}/judgement/"),
            ("post", f"/api/assignments/{lease.pk}/rating/"),
        ]:
            response = getattr(client, method)(url, ANSWER, format="json") if method == "post" else client.get(url)
            assert response.status_code == 401, url
            assert response.json()["code"] in ("not_authenticated", "authentication_failed")
    assert not Judgement.objects.exists()


def test_a_session_cookie_no_session_can_have_counts_as_none(client, campaign):
    # PostgreSQL refuses NUL in text: looking such a key up would be a 500.
    client.cookies[settings.SESSION_COOKIE_NAME] = "abcdefghij\x00klmnopqrstuvwxyz0123"
    assert client.get("/api/me/history/").status_code == 401
    assert client.get("/").status_code == 302  # to the login page, as for anyone not logged in


def test_session_write_needs_csrf_token(labeler, lease):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username=labeler.username, password=PASSWORD)
    url = f"/api/assignments/{lease.pk}/judgement/"

    refused = client.post(url, ANSWER, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Judgement.objects.exists()

    csrf = _get_new_csrf_string()
    client.cookies["csrftoken"] = csrf
    accepted = client.post(url, ANSWER, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 201
    assert Judgement.objects.get().choice == "b"
    # Reads need no CSRF token.
    assert client.get("/api/me/history/").status_code == 200


def test_user_without_labeler_profile_is_403(campaign, lease):
    by_session = APIClient()
    by_session.force_login(UserFactory())
    for client in [by_session, client_with_token(UserFactory())]:
        for url in ["/api/campaigns/", f"/api/campaigns/{campaign.name}/next/", "/api/me/history/",
                    f"/api/campaigns/{campaign.name}/stats/"]:
            response = client.get(url)
            assert response.status_code == 403, url
            assert "not a labeler" in response.json()["detail"]
    response = client_with_token(UserFactory()).post(f"/api/assignments/{lease.pk}/judgement/", ANSWER, format="json")
    assert response.status_code == 403 and "not a labeler" in response.json()["detail"]
    assert not Judgement.objects.exists()


def test_another_labelers_items_and_history_are_invisible(api, other_api, lease):
    assert api.post(f"/api/assignments/{lease.pk}/judgement/", ANSWER, format="json").status_code == 201
    assert other_api.get("/api/me/history/").json()["count"] == 0
    assert api.get("/api/me/history/").json()["count"] == 1
    # The other labeler is never handed the first one's lease, and cannot answer it.
    other_item = other_api.get(f"/api/campaigns/{lease.comparison.campaign.name}/next/").json()
    assert other_item["assignment_id"] != lease.pk
    response = other_api.post(f"/api/assignments/{lease.pk}/judgement/", ANSWER, format="json")
    assert response.status_code == 404
    assert Judgement.objects.count() == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Token", "No credentials provided"),
        ("Token a b", "should not contain spaces"),
        ("Token nope", "Invalid token"),
        ("Token no\x00pe", "Invalid token"),
    ],
)
def test_malformed_or_unknown_tokens_are_401_on_the_hot_path(campaign, lease, header, message):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    for response in (
        client.get(f"/api/campaigns/{campaign.name}/next/"),
        client.post(f"/api/assignments/{lease.pk}/judgement/", ANSWER, format="json"),
        client.post(f"/api/assignments/{lease.pk}/judgement/", {"choice": "left"}, format="json"),  # bad input too
    ):
        assert response.status_code == 401 and message in response.json()["detail"]
        assert response["WWW-Authenticate"] == "Token"
    assert not Judgement.objects.exists()
