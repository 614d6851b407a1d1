"""Requests no view answers (no such address, an unreadable body) and server errors: JSON under /api/, since
clients parse one shape; Django's pages elsewhere."""

import json

from django.test import RequestFactory
from rest_framework.test import APIClient

from annotator.api.errors import server_error
from annotator.models import Judgement
from tests.factories import AssignmentFactory


def test_an_api_address_that_matches_no_endpoint_is_a_json_404(api):
    for path in ("/api/nothing-here/", "/api/campaigns/v%C3%B9/next/", "/api/campaigns/a%20b/stats/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found" and "nothing answers at" in response.json()["detail"]


def test_a_page_that_does_not_exist_is_still_an_html_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_server_error_under_api_is_json_and_says_a_retry_is_safe():
    response = server_error(RequestFactory().get("/api/campaigns/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["code"] == "server_error" and "retrying is safe" in body["detail"]
    page = server_error(RequestFactory().get("/campaigns/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_a_body_django_refuses_before_the_view_is_a_json_400(db):
    fields = "&".join(f"f{n}=1" for n in range(1001))  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    response = APIClient().post("/api/auth/token/", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "bad_request"


def test_a_multipart_answer_without_a_boundary_is_a_json_400(api, labeler, campaign):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)
    response = api.post(f"/api/assignments/{lease.pk}/judgement/", "choice=tie", content_type="multipart/form-data")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    assert "Form body could not be read" in response.json()["detail"]
    assert not Judgement.objects.exists()
