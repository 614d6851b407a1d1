"""The OpenAPI schema and the docs page rendered from it."""

from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

ENDPOINTS = {
    "/api/auth/token/": {"post"},
    "/api/campaigns/": {"get"},
    "/api/campaigns/setup/": {"post"},
    "/api/campaigns/setup/preview/": {"post"},
    "/api/campaigns/{campaign}/setup/": {"get", "patch"},
    "/api/campaigns/{campaign}/setup/estimate/": {"get", "post"},
    "/api/campaigns/{campaign}/prompts/": {"get", "post"},
    "/api/campaigns/{campaign}/next/": {"get"},
    "/api/campaigns/{campaign}/stats/": {"get"},
    "/api/campaigns/{campaign}/export.jsonl": {"get"},
    "/api/campaigns/{campaign}/evaluations/": {"get", "post"},
    "/api/campaigns/{campaign}/evaluations/{number}/close/": {"post"},
    "/api/campaigns/{campaign}/leaderboard/": {"get"},
    "/api/campaigns/{campaign}/leaderboard/refresh/": {"post"},
    "/api/campaigns/{campaign}/leaderboard.csv": {"get"},
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


def test_schema_states_the_rules_the_server_checks(db):
    """What the server refuses with 400 is out of the schema's range too, so a client generated from it agrees."""
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    token = schema["paths"]["/api/auth/token/"]["post"]
    assert {"200", "400", "429"} <= set(token["responses"])
    assert "security" not in token and "security" not in schema  # no credentials needed
    (request,) = {content["schema"]["$ref"] for content in token["requestBody"]["content"].values()}
    fields = schema["components"]["schemas"][request.rsplit("/", 1)[-1]]["properties"]
    assert fields["username"]["minLength"] == fields["password"]["minLength"] == 1
    history = {p["name"]: p["schema"] for p in schema["paths"]["/api/me/history/"]["get"]["parameters"]}
    assert (history["page_size"]["minimum"], history["page_size"]["maximum"]) == (1, 500)
    assert history["campaign"]["pattern"] == "^[-a-zA-Z0-9_]*$"
    judgement = schema["paths"]["/api/assignments/{assignment_id}/judgement/"]["post"]
    assert judgement["parameters"][0]["schema"] == {"type": "integer", "minimum": 0}


def test_docs_page_renders_the_schema_without_outside_scripts(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    for path in ENDPOINTS:
        assert path in html
    assert "both_bad" in html and "paused for budget" in html
    assert "<script" not in html and "https://" not in html
