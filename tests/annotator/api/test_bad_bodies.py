"""Bodies no endpoint can read (nested a thousand deep, odd encodings and charsets, huge numbers, NaN, too long)
answer a JSON 400 with a message, never a 500; the hot path (annotator.api.hot) and DRF's views read them alike."""

import codecs
import json

import pytest
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from annotator.models import Judgement, Rating, TaskKind
from tests.factories import PASSWORD, AssignmentFactory, CampaignFactory, RatingItemFactory

DEEP_BODIES = [b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000]

# Bodies that are not a JSON document this API can read: (body, content type, what the detail says).
UNREADABLE_JSON = {
    "invalid UTF-8": (b'{"choice":"\xff"}', "application/json", "utf-8"),
    "a 5000-digit integer": (b'{"milliseconds":' + b"9" * 5000 + b"}", "application/json", "4300 digits"),
    "NaN": (b'{"milliseconds":NaN}', "application/json", "NaN"),
    "Infinity": (b'{"milliseconds":-Infinity}', "application/json", "Infinity"),
    "not JSON": (b"{choice: first}", "application/json", "JSON parse error"),
}
# Form bodies in a charset Django accepts (codecs.lookup finds it) but that decodes no text.
MULTIPART = b'--X\r\nContent-Disposition: form-data; name="choice"\r\n\r\nfirst\r\n--X--\r\n'
ODD_FORMS = [
    (MULTIPART, f"multipart/form-data; boundary=X; charset={charset}") for charset in ("zlib_codec", "rot13", "idna")
] + [(b"username=a&password=b&choice=first", "application/x-www-form-urlencoded; charset=punycode")]


@pytest.fixture
def rating_lease(labeler):
    campaign = CampaignFactory(task_kind=TaskKind.RATING)
    return AssignmentFactory(comparison=RatingItemFactory(campaign=campaign), labeler=labeler)


@pytest.fixture
def lease(labeler, campaign):
    return AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)


@pytest.fixture
def body_endpoints(api, lease, rating_lease):
    """(client, url) of every endpoint that reads a body: the token without credentials (DRF) and the two
    answers (the hot path)."""
    return [
        (APIClient(), "/api/auth/token/"),
        (api, f"/api/assignments/{lease.pk}/judgement/"),
        (api, f"/api/assignments/{rating_lease.pk}/rating/"),
    ]


def refused(response, code: str) -> str:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str), body
    return body["detail"]


@pytest.mark.parametrize("body", DEEP_BODIES, ids=["list", "object"])
def test_json_nested_a_thousand_deep_is_a_400_parse_error(body_endpoints, body):
    for client, url in body_endpoints:
        response = client.post(url, body, content_type="application/json")
        assert refused(response, "parse_error") == "JSON parse error - nested too deeply.", url
    assert not Judgement.objects.exists() and not Rating.objects.exists()


def test_a_value_nested_just_shallow_enough_to_parse_is_never_a_500(api, lease, rating_lease):
    # Near the limit the parser may succeed and a choice field's message (which quotes the value) then recurse.
    for depth in range(850, 1000):
        for field, url in [("choice", f"/api/assignments/{lease.pk}/judgement/"),
                           ("value", f"/api/assignments/{rating_lease.pk}/rating/")]:
            body = b'{"%s":%s%s}' % (field.encode(), b"[" * depth, b"]" * depth)
            response = api.post(url, body, content_type="application/json")
            assert response.status_code == 400 and response.json()["code"] in ("parse_error", "invalid"), depth


def test_endpoints_that_read_no_body_ignore_a_deep_one(api, campaign):
    for url in ["/api/campaigns/", f"/api/campaigns/{campaign.name}/next/", f"/api/campaigns/{campaign.name}/stats/",
                "/api/me/history/"]:
        response = api.generic("GET", url, DEEP_BODIES[0], content_type="application/json")
        assert response.status_code == 200, url
        assert api.generic("POST", url, DEEP_BODIES[0], content_type="application/json").status_code == 405, url


@pytest.mark.parametrize("name", list(UNREADABLE_JSON))
def test_unreadable_json_is_the_same_400_parse_error_on_drf_and_the_hot_path(body_endpoints, name):
    body, content_type, said = UNREADABLE_JSON[name]
    details = {refused(client.post(url, body, content_type=content_type), "parse_error")
               for client, url in body_endpoints}
    assert len(details) == 1 and said in details.pop()
    assert not Judgement.objects.exists()


@pytest.mark.parametrize("body", [b"[1, 2]", b'"first"', b"7", b"null"])
def test_json_that_is_not_an_object_is_a_400_naming_no_field(body_endpoints, body):
    answers = [refused(client.post(url, body, content_type="application/json"), "invalid")
               for client, url in body_endpoints]
    assert len(set(answers)) == 1  # DRF's words, on both paths
    client, url = body_endpoints[1]
    assert set(client.post(url, body, content_type="application/json").json()["fields"]) == {"non_field_errors"}


ENCODINGS = {
    "utf-16": (lambda text: text.encode("utf-16"), "application/json"),
    "utf-32": (lambda text: text.encode("utf-32-le"), "application/json"),
    "bom": (lambda text: codecs.BOM_UTF8 + text.encode(), "application/json"),
    "unknown-charset": (str.encode, "application/json; charset=nope"),
    "non-text-charset": (str.encode, "application/json; charset=zlib_codec"),
}


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_json_encoding_comes_from_the_bytes_not_the_charset(api, lease, labeler, name):
    # RFC 8259 defines no charset for application/json; both paths read the bytes as the json module does.
    encode, content_type = ENCODINGS[name]
    answer = encode(json.dumps({"choice": "first", "milliseconds": 5}))
    response = api.post(f"/api/assignments/{lease.pk}/judgement/", answer, content_type=content_type)
    assert response.status_code == 201, response.content
    credentials = encode(json.dumps({"username": labeler.username, "password": PASSWORD}))
    token = APIClient().post("/api/auth/token/", credentials, content_type=content_type)
    assert token.status_code == 200 and token.json()["token"], token.content


@pytest.mark.parametrize("body, content_type", ODD_FORMS, ids=["zlib_codec", "rot13", "idna", "punycode"])
def test_a_form_in_a_charset_that_decodes_no_text_is_a_400_parse_error(body_endpoints, body, content_type):
    for client, url in body_endpoints:
        response = client.post(url, body, content_type=content_type)
        # Django itself refuses a url-encoded form in any charset but UTF-8 when the hot path reads it.
        assert response.status_code == 400, (url, response.content)
        assert response.json()["code"] in ("parse_error", "bad_request"), (url, response.content)
    assert not Judgement.objects.exists()


def test_a_session_write_whose_form_the_csrf_check_cannot_read_is_a_400(labeler, lease):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username=labeler.username, password=PASSWORD)
    client.cookies["csrftoken"] = _get_new_csrf_string()  # with a cookie and no header, the check reads the form
    body, content_type = ODD_FORMS[0]
    response = client.post(f"/api/assignments/{lease.pk}/judgement/", body, content_type=content_type)
    assert refused(response, "parse_error").startswith("Form body could not be read")


def test_a_body_over_the_size_limit_is_a_json_400_saying_so(body_endpoints, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    for client, url in body_endpoints:
        for body, content_type in [(b'{"rationale":"' + b"a" * 1000 + b'"}', "application/json"),
                                   (b"rationale=" + b"a" * 1000, "application/x-www-form-urlencoded")]:
            response = client.post(url, body, content_type=content_type)
            assert refused(response, "bad_request") == "Bad request: the body is over 1000 bytes.", url


def test_a_lone_surrogate_echoed_in_a_message_is_written_as_an_escape(api, rating_lease):
    # "\ud800" is valid JSON syntax but no character; the choice field quotes what it refuses.
    url = f"/api/assignments/{rating_lease.pk}/rating/"
    response = api.post(url, b'{"value":"\\ud800","milliseconds":5}', content_type="application/json")
    assert refused(response, "invalid") == 'value: "\\ud800" is not a valid choice.'
    assert response.json()["fields"] == {"value": ['"\\ud800" is not a valid choice.']}
    assert not Rating.objects.exists()


def test_a_number_too_long_for_int_in_a_url_or_query_is_refused_as_too_large(api, lease):
    digits = "9" * 5000  # over Python's 4300-digit limit for int()
    for url in [f"/api/assignments/{digits}/judgement/", f"/api/assignments/{digits}/rating/"]:
        response = api.post(url, {"choice": "first", "value": "neutral", "milliseconds": 5}, format="json")
        assert response.status_code == 404 and response.json()["code"] == "not_found", url  # as for 23 digits
    response = api.get("/api/me/history/", {"page_size": digits})
    assert response.status_code == 400 and response.json()["detail"].startswith("page_size must be from 1 to 500")


def test_a_campaign_number_too_long_for_int_is_not_found(api, client, labeler):
    digits = "9" * 5000
    assert api.get(f"/api/campaigns/{digits}/stats/").status_code == 404
    assert api.get(f"/api/campaigns/{digits}/next/").status_code == 404
    assert api.get("/api/campaigns/²/stats/").status_code == 404  # a digit to str.isdigit, not to int()
    client.force_login(labeler)
    assert client.get(f"/campaigns/{digits}/").status_code == 404


@pytest.mark.parametrize("charset", ["zlib_codec", "idna", "undefined"])
def test_a_page_form_in_a_charset_that_decodes_no_text_is_a_400(client, charset):
    body = b"--X\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nsomeone\r\n--X--\r\n"
    response = client.generic("POST", "/accounts/login/", body, content_type=f"multipart/form-data; boundary=X; charset={charset}")
    assert response.status_code == 400
