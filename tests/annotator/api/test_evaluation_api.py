"""The evaluation API on PostgreSQL with a real tiny policy: staff only; a dry run and every refusal write nothing; a
start samples in-process and reaches labeling; closing; the leaderboard before and after answers, stale when
answers come in since, and its CSV (the staff page's, byte for byte)."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotator.core.sides import FIRST, SECOND
from annotator.models import Comparison, EvaluationRun, EvaluationState, LeaderboardSnapshot, PolicyCheckpoint
from annotator.services.assignments import assignment_next
from annotator.services.judgements import judgement_submit, rating_submit
from tests.annotator.evaluation.conftest import eval_campaign  # noqa: F401
from tests.factories import CampaignFactory, LabelerFactory

pytestmark = pytest.mark.django_db


def _ids(campaign) -> dict[str, int]:
    return dict(PolicyCheckpoint.objects.filter(campaign=campaign).values_list("label", "pk"))


def _urls(name: str) -> dict[str, str]:
    return {
        "runs": f"/api/campaigns/{name}/evaluations/",
        "close": f"/api/campaigns/{name}/evaluations/1/close/",
        "leaderboard": f"/api/campaigns/{name}/leaderboard/",
        "refresh": f"/api/campaigns/{name}/leaderboard/refresh/",
        "csv": f"/api/campaigns/{name}/leaderboard.csv",
    }


def _every_request(name: str) -> list[tuple[str, str]]:
    urls = _urls(name)
    return [("get", urls["runs"]), ("post", urls["runs"]), ("post", urls["close"]), ("get", urls["leaderboard"]),
            ("post", urls["refresh"]), ("get", urls["csv"])]


def _start(client, campaign, capture, **body) -> dict:
    """POST a start with both checkpoints (201), then answer the run as the runs list shows it. With no broker the
    sampling task runs on commit; under the test's transaction that is when `capture` ends, after the answer."""
    url = _urls(campaign.name)["runs"]
    with capture(execute=True):
        response = client.post(url, {"checkpoints": list(_ids(campaign).values()), **body}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "sampling"
    return next(run for run in client.get(url).json() if run["number"] == response.json()["number"])


def _answer(campaign, *, limit: int | None = None) -> int:
    """One labeler answers the open items (up to `limit`): the final policy wins its battles and is rated positive,
    the base negative. Returns the number of answers."""
    labeler, answers = LabelerFactory(campaigns=[campaign]), 0
    while (limit is None or answers < limit) and (leases := assignment_next(labeler=labeler, campaign=campaign)):
        lease = leases[0]
        comparison = lease.comparison
        a_wins = comparison.completion_a.checkpoint.label == "final"
        if comparison.completion_b_id is None:
            rating_submit(labeler=labeler, assignment_id=lease.pk, value="positive" if a_wins else "negative",
                          milliseconds=700)
        else:
            judgement_submit(labeler=labeler, assignment_id=lease.pk,
                             screen_choice=FIRST if a_wins != lease.swapped else SECOND, milliseconds=700)
        answers += 1
    return answers


def _nothing_written():
    assert not EvaluationRun.objects.exists()
    assert not Comparison.objects.filter(purpose="evaluation").exists()
    assert not LeaderboardSnapshot.objects.exists()


def test_anonymous_is_401_and_a_labeler_403_everywhere(api, eval_campaign, django_capture_on_commit_callbacks):
    body = {"checkpoints": list(_ids(eval_campaign).values()), "prompts": 1}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for method, url in _every_request(eval_campaign.name):
            response = getattr(APIClient(), method)(url, body, format="json")
            assert response.status_code == 401, url
            assert response.json()["code"] == "not_authenticated"
            response = getattr(api, method)(url, body, format="json")
            assert response.status_code == 403, url
            assert response.json() == {
                "detail": "You do not manage campaign 'eval-camp': only staff and its managers may do this.",
                "code": "forbidden",
            }
        # A labeler hears 403 for a campaign that does not exist too: nothing leaks.
        assert api.get(_urls("nope")["leaderboard"]).status_code == 403
    assert callbacks == []
    _nothing_written()


def test_an_unknown_campaign_is_404(staff_api):
    for method, url in _every_request("nope"):
        response = getattr(staff_api, method)(url, {}, format="json")
        assert response.status_code == 404, url
        assert response.json() == {"detail": "No campaign 'nope'.", "code": "not_found"}


def test_a_dry_run_answers_the_plan_and_writes_nothing(staff_api, eval_campaign, django_capture_on_commit_callbacks):
    ids = _ids(eval_campaign)
    body = {"checkpoints": [ids["base"], ids["final"]], "prompts": 3, "ratings_per_checkpoint": 2, "dry_run": True}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff_api.post(_urls(eval_campaign.name)["runs"], body, format="json")
    assert response.status_code == 200, response.content
    plan = response.json()
    assert plan["dry_run"] is True
    assert plan["checkpoints"] == [{"id": ids["base"], "name": "base", "kl": 0.0},
                                   {"id": ids["final"], "name": "round 1", "kl": 1.5}]
    assert [c["name"] for c in plan["rated"]] == ["base", "round 1"]
    assert (plan["prompts"], plan["pairs"], plan["battles"], plan["ratings"], plan["answers"]) == (3, 1, 3, 4, 7)
    assert plan["labeling_cost"] == "0.7000" and plan["currency"] == "USD" and plan["device_type"] == "cpu"
    assert isinstance(plan["total_cost"], str) and Decimal(plan["total_cost"]) >= Decimal("0.7000")
    assert "Answers wanted: 7 (1 per item)" in plan["description"]
    assert callbacks == []
    _nothing_written()


def test_a_start_samples_and_reaches_labeling(staff_api, staff, eval_campaign, django_capture_on_commit_callbacks):
    ids = _ids(eval_campaign)
    run = _start(staff_api, eval_campaign, django_capture_on_commit_callbacks, prompts=3, ratings_per_checkpoint=2)
    assert run["state"] == "labeling", run["error"]
    assert run["number"] == 1 and run["error"] is None and run["progress"] is None
    assert run["checkpoints"] == [{"id": ids["base"], "name": "base", "kl": 0.0},
                                  {"id": ids["final"], "name": "round 1", "kl": 1.5}]
    assert [c["name"] for c in run["rated"]] == ["base", "round 1"]
    assert (run["prompts"], run["battles"], run["ratings"], run["items"], run["open_items"]) == (3, 3, 4, 7, 7)
    assert (run["answers_wanted"], run["answers_in"], run["judgements_wanted"]) == (7, 0, 1)
    assert run["labeling_cost"] == "0.7000" and isinstance(run["gpu_cost_estimate"], str)
    stored = EvaluationRun.objects.get(campaign=eval_campaign)
    assert stored.created_by == staff and stored.items.filter(is_open=True).count() == 7



def test_a_failed_run_is_listed_with_its_error(staff_api, eval_campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the sampling task is never sent
        response = staff_api.post(_urls(eval_campaign.name)["runs"], {"prompts": 1}, format="json")
    assert response.status_code == 201 and response.json()["state"] == "sampling"
    assert response.json()["battles"] == 1 and response.json()["items"] == 0  # the plan's figures until published
    EvaluationRun.objects.update(state=EvaluationState.FAILED, error="RuntimeError: out of memory")
    (run,) = staff_api.get(_urls(eval_campaign.name)["runs"]).json()
    assert run["state"] == "failed" and run["error"] == "RuntimeError: out of memory"


BAD_BODIES = [
    ({"prompts": "three"}, "prompts: A valid integer is required."),
    ({"prompts": 2.5}, "prompts: A valid integer is required."),
    ({"prompts": None}, "prompts: This field may not be null."),
    ({"checkpoints": "1,2"}, 'checkpoints: Expected a list of items but got type "str".'),
    ({"checkpoints": [True, False]}, "checkpoints.0: A valid integer is required."),
    ({"checkpoints": [1, 2**70]}, "checkpoints.1: Ensure this value is less than or equal to"),
    ({"checkpoints": list(range(1, 30))}, "checkpoints: Ensure this field has no more than 20 elements."),
    ({"ratings_per_checkpoint": -1}, "ratings_per_checkpoint: Ensure this value is greater than or equal to 0."),
    ({"judgements_wanted": 0}, "judgements_wanted: Ensure this value is greater than or equal to 1."),
    ({"dry_run": "maybe"}, "dry_run: Must be a valid boolean."),
    ({"dryrun": True}, "Unknown field 'dryrun'; the fields are checkpoints, prompts,"),
    ([1, 2], "Invalid data. Expected a dictionary, but got list."),
]


@pytest.mark.parametrize("body, message", BAD_BODIES)
def test_a_body_of_the_wrong_shape_is_400_and_writes_nothing(staff_api, eval_campaign, body, message,
                                                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(_urls(eval_campaign.name)["runs"], body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid" and message in response.json()["detail"]
    _nothing_written()


def test_an_unreadable_body_is_400(staff_api, eval_campaign):
    response = staff_api.post(_urls(eval_campaign.name)["runs"], b'{"prompts": 1', content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    deep = b'{"checkpoints":' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = staff_api.post(_urls(eval_campaign.name)["runs"], deep, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    response = staff_api.post(_urls(eval_campaign.name)["runs"], b"null", content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"] == "No data provided"
    _nothing_written()


@pytest.mark.parametrize("case, status, message", [
    ("foreign", 400, "checkpoints: checkpoint {foreign} belongs to another campaign than 'eval-camp'."),
    ("foreign rated", 400, "rated_checkpoints: checkpoint {foreign} belongs to another campaign"),
    ("unknown", 400, "checkpoints: no checkpoint 999999."),
    ("one", 400, "An evaluation compares at least two checkpoints; 'eval-camp' was given 1."),
    ("too many prompts", 400, "prompts: 7 asked, but 'eval-camp' has 6 held-out prompts."),
    ("budget", 402, "This evaluation costs 1.4000 USD (14 answers"),
])
def test_a_refused_plan_answers_the_service_status_and_writes_nothing(staff_api, eval_campaign, case, status, message,
                                                                      django_capture_on_commit_callbacks):
    ids = _ids(eval_campaign)
    foreign = PolicyCheckpoint.objects.create(campaign=CampaignFactory(), label="base", path="/m", kl_from_base=0.0)
    both = [ids["base"], ids["final"]]
    body = {
        "foreign": {"checkpoints": [ids["base"], foreign.pk]},
        "foreign rated": {"checkpoints": both, "rated_checkpoints": [foreign.pk]},
        "unknown": {"checkpoints": [ids["base"], 999999]},
        "one": {"checkpoints": [ids["base"]]},
        "too many prompts": {"checkpoints": both, "prompts": 7},
        "budget": {"checkpoints": both, "prompts": 4, "ratings_per_checkpoint": 5},
    }[case]
    if case == "budget":
        eval_campaign.money_budget = Decimal("0.50")
        eval_campaign.save()
    for dry_run in (False, True):  # a dry run is refused alike
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_api.post(_urls(eval_campaign.name)["runs"], {**body, "dry_run": dry_run}, format="json")
        assert response.status_code == status, response.content
        assert message.format(foreign=foreign.pk) in response.json()["detail"]
    if status == 402:
        assert response.json()["code"] == "budget_exhausted"
        assert response.json()["cost"] == "1.4000" and response.json()["left"] == "0.5000"
    _nothing_written()


def test_close_a_run(staff_api, eval_campaign, django_capture_on_commit_callbacks):
    urls = _urls(eval_campaign.name)
    with django_capture_on_commit_callbacks(execute=False):  # never sampled: nothing to close yet
        assert staff_api.post(urls["runs"], {"prompts": 1}, format="json").status_code == 201
    response = staff_api.post(urls["close"])
    assert response.status_code == 400
    assert response.json()["detail"] == "Evaluation 1 is sampling the checkpoints: it has nothing to close yet."
    for number in ("9", "9" * 30):
        response = staff_api.post(f"/api/campaigns/{eval_campaign.name}/evaluations/{number}/close/")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert staff_api.post(f"/api/campaigns/{eval_campaign.name}/evaluations/-1/close/").status_code == 404
    assert staff_api.get(urls["close"]).status_code == 405

    EvaluationRun.objects.all().delete()
    run = _start(staff_api, eval_campaign, django_capture_on_commit_callbacks, prompts=2, ratings_per_checkpoint=0,
                 judgements_wanted=2)
    assert run["state"] == "labeling" and run["open_items"] == 2
    assert _answer(eval_campaign, limit=1) == 1
    response = staff_api.post(urls["close"])
    assert response.status_code == 200, response.content
    run = response.json()
    assert run["state"] == "done" and run["open_items"] == 0 and run["answers_in"] == 1
    run_row = EvaluationRun.objects.get()
    assert run_row.metrics["closed_with_answers_missing"] == 3
    again = staff_api.post(urls["close"])
    assert again.status_code == 200 and again.json()["state"] == "done"


def _schema_fields(schema: dict, name: str) -> set[str]:
    return set(schema["components"]["schemas"][name]["properties"])


def test_the_leaderboard_before_and_after_answers(client, staff, staff_api, eval_campaign,
                                                  django_capture_on_commit_callbacks):
    urls, ids = _urls(eval_campaign.name), _ids(eval_campaign)
    for method, url in [("get", urls["leaderboard"]), ("get", urls["csv"]), ("post", urls["refresh"])]:
        response = getattr(staff_api, method)(url)
        assert response.status_code == 404, url
        assert response.json()["detail"].startswith("No leaderboard yet: campaign 'eval-camp' has no evaluation")
    csv_error = staff_api.get(urls["csv"], HTTP_ACCEPT="text/csv")
    assert csv_error.status_code == 404 and csv_error["Content-Type"].startswith("text/csv")
    assert list(csv.DictReader(io.StringIO(csv_error.content.decode())))[0]["code"] == "not_found"
    assert not LeaderboardSnapshot.objects.exists()

    assert _start(staff_api, eval_campaign, django_capture_on_commit_callbacks, prompts=3,
                  ratings_per_checkpoint=2)["state"] == "labeling"
    assert _answer(eval_campaign) == 7
    response = staff_api.post(urls["refresh"])
    assert response.status_code == 200, response.content
    board = response.json()
    snapshot = LeaderboardSnapshot.objects.get(campaign=eval_campaign)
    assert board["snapshot_id"] == snapshot.pk and board["answers"] == 7
    assert board["stale"] is False and board["answers_since"] == 0 and board["campaign"] == "eval-camp"
    assert [row["name"] for row in board["standings"]] == ["round 1", "base"]
    assert board["standings"] == snapshot.data["standings"]
    recommended = board["recommended"]
    assert recommended["checkpoint_id"] == ids["final"] and recommended["name"] == "round 1"
    assert recommended["path"] == PolicyCheckpoint.objects.get(pk=ids["final"]).path and recommended["reason"]
    assert recommended["rating_low"] <= recommended["rating"] <= recommended["rating_high"]
    assert EvaluationRun.objects.get().state == EvaluationState.DONE  # all answered: the refresh closed it

    # The schema documents exactly the keys the answer has.
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    assert set(board) == _schema_fields(schema, "Leaderboard")
    assert set(board["standings"][0]) == _schema_fields(schema, "Standing")
    assert set(board["ratings"][0]) == _schema_fields(schema, "BlindRating")
    assert set(board["rating_comparisons"][0]) == _schema_fields(schema, "RatingComparison")
    assert set(recommended) == _schema_fields(schema, "Recommended")
    (run,) = staff_api.get(urls["runs"]).json()
    assert set(run) == _schema_fields(schema, "EvaluationRun")

    assert staff_api.get(urls["leaderboard"]).json() == board
    assert staff_api.post(urls["refresh"]).json() == board  # no answers since: the same snapshot
    assert LeaderboardSnapshot.objects.count() == 1

    # A second run, one answer: the snapshot is stale until refreshed.
    assert _start(staff_api, eval_campaign, django_capture_on_commit_callbacks, prompts=1,
                  ratings_per_checkpoint=0)["number"] == 2
    assert _answer(eval_campaign, limit=1) == 1
    stale = staff_api.get(urls["leaderboard"]).json()
    assert stale["stale"] is True and stale["answers_since"] == 1 and stale["snapshot_id"] == snapshot.pk
    fresh = staff_api.post(urls["refresh"]).json()
    assert fresh["stale"] is False and fresh["answers"] == 8 and fresh["snapshot_id"] != snapshot.pk

    download = staff_api.get(urls["csv"])
    assert download.status_code == 200 and download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == 'attachment; filename="eval-camp-leaderboard.csv"'
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    ranked = [(r["rank"], r["checkpoint"], r["recommended"]) for r in rows]
    assert ranked == [("1", "round 1", "yes"), ("2", "base", "")]
    assert float(rows[0]["rating_low"]) <= float(rows[0]["rating"]) <= float(rows[0]["rating_high"])
    assert rows[0]["positive"] == "2" and rows[1]["negative"] == "2" and rows[1]["win_rate_vs_base"] == ""
    client.force_login(staff)
    page_csv = client.get(reverse("rounds:evaluation_leaderboard_csv", args=[eval_campaign.name]))
    assert page_csv.content == download.content  # the staff page's download, from the same function
