"""Failed sign-ins are limited per username, on every door that checks a password."""

from rest_framework.test import APIClient

from annotator.services.sign_in import FAILURES_ALLOWED, LOCKED_MESSAGE
from tests.factories import PASSWORD, LabelerFactory

TOKEN_URL = "/api/auth/token/"
LOGIN_URL = "/accounts/login/"


def ask_token(username: str, password: str):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


def test_after_too_many_failures_even_the_right_password_is_refused_on_both_doors(db, client):
    labeler, bystander = LabelerFactory(), LabelerFactory()
    for _ in range(FAILURES_ALLOWED):
        assert ask_token(labeler.username, "guess").status_code == 400
    locked = ask_token(labeler.username, PASSWORD)
    assert locked.status_code == 429
    assert locked.json() == {"detail": LOCKED_MESSAGE, "code": "throttled"}

    page = client.post(LOGIN_URL, {"username": labeler.username, "password": PASSWORD})
    assert page.status_code == 200 and "Too many failed sign-ins" in page.content.decode()
    assert "_auth_user_id" not in client.session
    assert not client.login(username=labeler.username, password=PASSWORD)  # authenticate() itself refuses

    # Another username is not affected.
    assert ask_token(bystander.username, PASSWORD).status_code == 200
    assert client.post(LOGIN_URL, {"username": bystander.username, "password": PASSWORD}).status_code == 302


def test_failures_on_the_login_page_count_too_and_a_success_starts_the_count_again(db, client):
    labeler = LabelerFactory()
    for _ in range(FAILURES_ALLOWED - 1):
        assert client.post(LOGIN_URL, {"username": labeler.username, "password": "guess"}).status_code == 200
    assert ask_token(labeler.username, PASSWORD).status_code == 200  # a success clears the count
    for _ in range(FAILURES_ALLOWED - 1):
        assert ask_token(labeler.username, "guess").status_code == 400
    assert client.post(LOGIN_URL, {"username": labeler.username, "password": PASSWORD}).status_code == 302
