"""The OpenAPI schema and the docs page rendered from it."""

from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

ENDPOINTS = {
    "/api/auth/token/": {"post"},
    "/api/campaigns/": {"get"},
    "/api/campaigns/{campaign}/next/": {"get"},
    "/api/campaigns/{campaign}/stats/": {"get"},
    "/api/campaigns/{campaign}/export.jsonl": {"get"},
    "/api/assignments/{assignment_id}/judgement/": {"post"},
    "/api/assignments/{assignment_id}/rating/": {"post"},
    "/api/me/history/": {"get"},
}


def test_schema_is_valid_openapi_and_lists_every_endpoint(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert {path: set(item) for path, item in schema["paths"].items()} == ENDPOINTS
    judgement = schema["paths"]["/api/assignments/{assignment_id}/judgement/"]["post"]
    assert {"201", "400", "404", "409"} <= set(judgement["responses"])
    (choice,) = schema["components"]["schemas"]["JudgementInput"]["properties"]["choice"]["allOf"]
    assert schema["components"]["schemas"][choice["$ref"].rsplit("/", 1)[-1]]["enum"] == [
        "first", "second", "tie", "both_bad"
    ]
    assert "204" in schema["paths"]["/api/campaigns/{campaign}/next/"]["get"]["responses"]


def test_docs_page_renders_the_schema_without_outside_scripts(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    for path in ENDPOINTS:
        assert path in html
    assert "both_bad" in html and "paused for budget" in html
    assert "<script" not in html and "https://" not in html
