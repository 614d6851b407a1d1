"""The staff evaluation page with the Django test client on PostgreSQL and a real tiny policy: who may use it, the
form and its refusals, a run started from the form, the leaderboard after answers, the downloads."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.db.models import F
from django.urls import reverse

from annotator.core.sides import FIRST, SECOND
from annotator.models import EvaluationRun, EvaluationState, LeaderboardSnapshot, PolicyCheckpoint
from annotator.services.assignments import assignment_next
from annotator.services.judgements import judgement_submit, rating_submit
from annotator.views.evaluation import overoptimization_plot
from tests.factories import CampaignFactory, LabelerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _ids(campaign) -> dict[str, int]:
    return dict(PolicyCheckpoint.objects.filter(campaign=campaign).values_list("label", "pk"))


def _urls(campaign) -> dict[str, str]:
    name = campaign.name
    return {
        "page": reverse("rounds:evaluation", args=[name]),
        "start": reverse("rounds:evaluation_start", args=[name]),
        "refresh": reverse("rounds:evaluation_refresh", args=[name]),
        "close": reverse("rounds:evaluation_close", args=[name, 1]),
        "resume": reverse("rounds:evaluation_resume", args=[name, 1]),
        "csv": reverse("rounds:evaluation_leaderboard_csv", args=[name]),
        "json": reverse("rounds:evaluation_leaderboard_json", args=[name]),
    }


def _start(client, campaign, capture, **fields):
    """POST the start form (both checkpoints, start pressed); the sampling task runs on commit, as with no broker."""
    data = {"checkpoints": list(_ids(campaign).values()), "action": "start", **fields}
    with capture(execute=True):
        response = client.post(reverse("rounds:evaluation_start", args=[campaign.name]), data)
    return response


def _answer_all(campaign, *, preferred: str = "final") -> int:
    """One labeler answers every item: the `preferred` checkpoint wins its battles and is rated positive, the
    other negative. Returns the number of answers."""
    labeler, answers = LabelerFactory(campaigns=[campaign]), 0
    while leases := assignment_next(labeler=labeler, campaign=campaign):
        lease = leases[0]
        comparison = lease.comparison
        a_wins = comparison.completion_a.checkpoint.label == preferred
        if comparison.completion_b_id is None:
            rating_submit(labeler=labeler, assignment_id=lease.pk, value="positive" if a_wins else "negative",
                          milliseconds=700)
        else:
            first_is_a = not lease.swapped
            judgement_submit(labeler=labeler, assignment_id=lease.pk,
                             screen_choice=FIRST if a_wins == first_is_a else SECOND, milliseconds=700)
        answers += 1
    return answers


def test_every_evaluation_url_is_for_staff_only(client, labeler, eval_campaign):
    urls = _urls(eval_campaign)
    gets = [urls["page"], urls["csv"], urls["json"]]
    posts = [urls["start"], urls["refresh"], urls["close"], urls["resume"]]
    data = {"checkpoints": list(_ids(eval_campaign).values()), "action": "start"}
    for url in gets:
        assert client.get(url).status_code == 302, url  # to the login page
    for url in posts:
        assert client.post(url, data).status_code == 302, url
    client.force_login(labeler)
    for url in gets:
        assert client.get(url).status_code == 403, url
    for url in posts:
        assert client.post(url, data).status_code == 403, url
    assert not EvaluationRun.objects.exists() and not LeaderboardSnapshot.objects.exists()


def test_staff_see_the_form_with_the_defaults_and_links_from_the_round_pages(staff_client, eval_campaign):
    ids = _ids(eval_campaign)
    response = staff_client.get(reverse("rounds:evaluation", args=[eval_campaign.name]))
    assert response.status_code == 200
    html = response.content.decode()
    for pk in ids.values():  # the service's defaults: the base and the round's final, both checked
        assert f'name="checkpoints" value="{pk}" id="checkpoint-{pk}" checked' in html
        assert f'name="rated_checkpoints" value="{pk}" id="rated-{pk}" aria-label' in html
        assert f'id="rated-{pk}" aria-label="Rate {"base" if pk == ids["base"] else "round 1"} blindly">' in html
    assert 'name="ratings_per_checkpoint" id="id_ratings_per_checkpoint" min="0" value="20"' in html
    assert 'name="judgements_wanted" id="id_judgements_wanted" min="1" value="1"' in html
    assert "Check cost" in html and "Start evaluation" in html
    assert "No evaluation yet." in html and "No leaderboard yet" in html
    assert "every 2s" not in html  # nothing runs: the runs table does not poll
    for url in (reverse("rounds:campaign", args=[eval_campaign.name]),
                reverse("rounds:round", args=[eval_campaign.name, 1])):
        page = staff_client.get(url).content.decode()
        assert f'href="{reverse("rounds:evaluation", args=[eval_campaign.name])}"' in page


def test_check_cost_shows_the_plan_and_starts_nothing(staff_client, eval_campaign):
    response = staff_client.post(reverse("rounds:evaluation_start", args=[eval_campaign.name]), {
        "checkpoints": list(_ids(eval_campaign).values()), "prompts": "3", "ratings_per_checkpoint": "2",
        "judgements_wanted": "1", "action": "check",
    })
    html = response.content.decode()
    assert response.status_code == 200
    assert "Battles: 1 pair x 3 prompts = 3" in html and "Blind ratings: 2 each of base and round 1" in html
    assert "Answers wanted: 7 (1 per item)" in html and "would cost 0.7000 USD" in html
    assert 'value="3" placeholder' in html  # the form keeps what was asked
    assert not EvaluationRun.objects.exists()


@pytest.mark.parametrize("fields, status, message", [
    ({"prompts": "0"}, 400, "prompts must be a whole number from 1 to 1000; got 0."),
    ({"prompts": "many"}, 400, "Held-out prompts must be a whole number; got &#x27;many&#x27;."),
    ({"prompts": "7"}, 400, "prompts: 7 asked, but &#x27;eval-camp&#x27; has 6 held-out prompts."),
    ({"judgements_wanted": "0"}, 400, "judgements_wanted must be a whole number from 1 to 20"),
    ({"checkpoints": "only-base"}, 400, "An evaluation compares at least two checkpoints"),
    ({"checkpoints": "foreign"}, 400, "belongs to another campaign than &#x27;eval-camp&#x27;"),
    ({"checkpoints": "nonsense"}, 400, "Checkpoints: &#x27;x1&#x27; is not a checkpoint id."),
    ({"rated_checkpoints": "foreign"}, 400, "rated_checkpoints: checkpoint"),
    ({"budget": "0.50", "prompts": "4", "ratings_per_checkpoint": "5"}, 402,
     "This evaluation costs 1.4000 USD (14 answers"),
])
def test_a_refused_request_shows_the_reason_and_creates_nothing(staff_client, eval_campaign, fields, status, message):
    ids = _ids(eval_campaign)
    foreign = PolicyCheckpoint.objects.create(campaign=CampaignFactory(), label="base", path="/m", kl_from_base=0.0)
    choices = {"only-base": [ids["base"]], "foreign": [ids["base"], foreign.pk], "nonsense": [ids["base"], "x1"]}
    data = {"checkpoints": list(ids.values()), "ratings_per_checkpoint": "20", "judgements_wanted": "1",
            "action": "start"}
    if "budget" in fields:
        eval_campaign.money_budget = Decimal(fields.pop("budget"))
        eval_campaign.save()
    if "checkpoints" in fields:
        data["checkpoints"] = choices[fields.pop("checkpoints")]
    if "rated_checkpoints" in fields:
        data["rated_checkpoints"] = choices[fields.pop("rated_checkpoints")]
    data.update(fields)
    response = staff_client.post(reverse("rounds:evaluation_start", args=[eval_campaign.name]), data)
    html = response.content.decode()
    assert response.status_code == status
    assert 'role="alert"' in html and message in html
    assert 'id="evaluation-form"' in html  # the form again, to correct
    assert not EvaluationRun.objects.exists()


def test_start_refresh_and_the_leaderboard_with_its_downloads(staff_client, eval_campaign,
                                                              django_capture_on_commit_callbacks):
    urls = _urls(eval_campaign)
    assert staff_client.get(urls["csv"]).status_code == 404  # no snapshot yet
    assert staff_client.get(urls["json"]).status_code == 404
    response = _start(staff_client, eval_campaign, django_capture_on_commit_callbacks, prompts="3",
                      ratings_per_checkpoint="2", judgements_wanted="1")
    assert response.status_code == 302 and response["Location"] == urls["page"]
    run = EvaluationRun.objects.get(campaign=eval_campaign)
    assert run.state == EvaluationState.LABELING, run.error
    assert run.created_by.is_staff

    html = staff_client.get(urls["page"]).content.decode()
    assert 'id="run-1" data-state="labeling"' in html and "base, round 1" in html
    assert "3 / 4" in html  # battles / ratings
    assert "0 / 7" in html  # answers in / wanted
    assert 'id="close-run-1"' in html
    assert "every 2s" in html  # a labeling run: the table polls
    partial = staff_client.get(urls["page"], HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="runs-table"') and "<html" not in partial and "every 2s" in partial

    assert _answer_all(eval_campaign) == 7
    assert "7 / 7" in staff_client.get(urls["page"]).content.decode()
    response = staff_client.post(urls["refresh"], follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    run.refresh_from_db()
    assert run.state == EvaluationState.DONE  # all answers in: the refresh closed it
    assert "Leaderboard from 7 answers (3 battles)." in html
    assert 'id="run-1" data-state="done"' in html and "every 2s" not in html and 'id="close-run-1"' not in html

    snapshot = LeaderboardSnapshot.objects.get(campaign=eval_campaign)
    data, ids = snapshot.data, _ids(eval_campaign)
    assert [row["name"] for row in data["standings"]] == ["round 1", "base"]
    assert data["recommended"]["checkpoint_id"] == ids["final"]
    standings = html.split('id="standings"')[1].split("</table>")[0]
    final_row = standings.split(f'id="standing-{ids["final"]}"')[1].split("</tr>")[0]
    assert '<span class="badge">recommended</span>' in final_row
    top = data["standings"][0]
    assert f'<span class="interval">[{top["rating_low"]:.0f}, {top["rating_high"]:.0f}]</span>' in final_row
    assert "100 %" in final_row  # won every battle against the base, with a Wilson interval below 100
    assert "recommended" not in standings.split(f'id="standing-{ids["base"]}"')[1]
    assert 'id="recommended"' in html and data["recommended"]["reason"] in html.replace("&#x27;", "'")
    assert "Ties and both-bad count as half a win" in html and 'id="length-coefficient"' in html
    blind = html.split('id="blind-ratings"')[1].split("</table>")[0]
    assert "<td>round 1</td><td>2</td><td>2</td><td>0</td><td>0</td>" in blind
    assert "<td>base</td><td>2</td><td>0</td><td>0</td><td>2</td>" in blind
    assert '1.00 <span class="interval">[' in blind and '-1.00 <span class="interval">[' in blind
    assert "round 1 against base</td><td>2.00 <span" in html
    assert data["overoptimization"]["sentence"] in html
    assert '<svg id="plot-win"' in html and 'class="error-bar"' in html and '<svg id="plot-gold"' in html
    assert "stale-note" not in html

    for url in (reverse("rounds:campaign", args=[eval_campaign.name]),
                reverse("rounds:round", args=[eval_campaign.name, 1])):
        page = staff_client.get(url).content.decode()
        assert data["overoptimization"]["sentence"] in page
        assert '<span class="badge">recommended</span> <strong>round 1</strong>' in page

    # The page says when answers came in after the snapshot.
    LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(answers=F("answers") - 2)
    assert "2 answers came in since this leaderboard was computed" in staff_client.get(urls["page"]).content.decode()

    rows = list(csv.DictReader(io.StringIO(staff_client.get(urls["csv"]).content.decode())))
    ranked = [(r["rank"], r["checkpoint"], r["recommended"]) for r in rows]
    assert ranked == [("1", "round 1", "yes"), ("2", "base", "")]
    assert float(rows[0]["rating_low"]) <= float(rows[0]["rating"]) <= float(rows[0]["rating_high"])
    assert rows[0]["blind_ratings"] == "2" and rows[0]["positive"] == "2" and rows[1]["negative"] == "2"
    assert rows[1]["win_rate_vs_base"] == ""  # the base against itself
    download = staff_client.get(urls["json"])
    assert download["Content-Disposition"] == 'attachment; filename="eval-camp-leaderboard.json"'
    body = json.loads(download.content)
    assert body["campaign"] == "eval-camp" and body["snapshot"] == snapshot.pk
    assert body["standings"] == data["standings"] and body["recommended"]["name"] == "round 1"


def test_close_a_labeling_run_and_refusals(staff_client, eval_campaign, django_capture_on_commit_callbacks):
    data = {"checkpoints": list(_ids(eval_campaign).values()), "prompts": "1", "action": "start"}
    with django_capture_on_commit_callbacks(execute=False):  # the sampling task is never sent: still sampling
        assert staff_client.post(reverse("rounds:evaluation_start", args=[eval_campaign.name]), data).status_code == 302
    run = EvaluationRun.objects.get(campaign=eval_campaign)
    assert run.state == EvaluationState.SAMPLING
    close = reverse("rounds:evaluation_close", args=[eval_campaign.name, 1])
    response = staff_client.post(close)
    assert response.status_code == 400 and "it has nothing to close yet" in response.content.decode()
    assert staff_client.post(reverse("rounds:evaluation_close", args=[eval_campaign.name, 9])).status_code == 404
    assert staff_client.get(close).status_code == 405

    EvaluationRun.objects.filter(pk=run.pk).delete()
    _start(staff_client, eval_campaign, django_capture_on_commit_callbacks, prompts="2", ratings_per_checkpoint="0",
           judgements_wanted="2")
    run = EvaluationRun.objects.get(campaign=eval_campaign)
    assert run.state == EvaluationState.LABELING and run.items.filter(is_open=True).count() == 2
    labeler = LabelerFactory(campaigns=[eval_campaign])
    lease = assignment_next(labeler=labeler, campaign=eval_campaign)[0]
    judgement_submit(labeler=labeler, assignment_id=lease.pk, screen_choice=FIRST, milliseconds=700)
    other = LabelerFactory(campaigns=[eval_campaign])
    lease = assignment_next(labeler=other, campaign=eval_campaign)[0]
    judgement_submit(labeler=other, assignment_id=lease.pk, screen_choice=SECOND, milliseconds=700)
    row = staff_client.get(reverse("rounds:evaluation", args=[eval_campaign.name])).content.decode()
    assert "<td>2 / 4</td>" in row.split('id="run-1"')[1].split("</tr>")[0]  # two items wanting two answers each
    response = staff_client.post(reverse("rounds:evaluation_close", args=[eval_campaign.name, run.number]), follow=True)
    assert response.status_code == 200 and f"Evaluation {run.number} is closed" in response.content.decode()
    run.refresh_from_db()
    assert run.state == EvaluationState.DONE and not run.items.filter(is_open=True).exists()
    assert run.metrics["closed_with_answers_missing"] == 2


def test_a_failed_run_shows_its_error_and_resumes(staff_client, eval_campaign, django_capture_on_commit_callbacks):
    data = {"checkpoints": list(_ids(eval_campaign).values()), "prompts": "1", "ratings_per_checkpoint": "0",
            "action": "start"}
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(reverse("rounds:evaluation_start", args=[eval_campaign.name]), data)
    EvaluationRun.objects.update(state=EvaluationState.FAILED, error="RuntimeError: out of memory")
    html = staff_client.get(reverse("rounds:evaluation", args=[eval_campaign.name])).content.decode()
    assert "RuntimeError: out of memory" in html and 'id="resume-run-1"' in html and "every 2s" not in html
    resume = reverse("rounds:evaluation_resume", args=[eval_campaign.name, 1])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(resume, follow=True)
    assert response.status_code == 200
    run = EvaluationRun.objects.get()
    assert run.state == EvaluationState.LABELING and run.error == ""
    refused = staff_client.post(resume)
    assert refused.status_code == 400 and "Evaluation 1 is labeling: nothing to resume." in refused.content.decode()


def test_refresh_with_no_answers_says_so(staff_client, eval_campaign):
    response = staff_client.post(reverse("rounds:evaluation_refresh", args=[eval_campaign.name]), follow=True)
    assert response.status_code == 200 and "No evaluation answers yet" in response.content.decode()
    assert not LeaderboardSnapshot.objects.exists()


def test_unknown_campaign_is_404(staff_client):
    assert staff_client.get(reverse("rounds:evaluation", args=["nope"])).status_code == 404
    assert staff_client.post(reverse("rounds:evaluation_start", args=["nope"])).status_code == 404


def test_the_plot_draws_error_bars_and_the_fits_on_a_shared_axis():
    def point(key, kl, proxy, gold, win):
        return {"key": key, "label": f"c{key}", "kl": kl, "sqrt_kl": kl ** 0.5, "proxy": proxy, "proxy_spread": 0.1,
                "gold": gold, "rating": None, "rating_low": None, "rating_high": None,
                "win_rate": win, "win_low": None if win is None else win - 0.1,
                "win_high": None if win is None else win + 0.1}

    view = {"points": [point("1", 0.0, 0.0, 0.1, None), point("2", 1.0, 0.5, 0.3, 0.6),
                       point("3", 4.0, 0.9, 0.35, 0.7), point("4", 9.0, 1.3, 0.2, 0.55)],
            "gold_fit": {"alpha": 0.3, "beta": 0.2, "points": 3, "peak_sqrt_kl": 1.2, "peak_kl": 1.44},
            "evaluation_fit": {"alpha": 0.5, "beta": 0.3, "points": 3, "peak_sqrt_kl": 1.0, "peak_kl": 1.0}}
    plot = overoptimization_plot(view)
    proxy, gold, win = plot["panels"]
    assert [p["x"] for p in proxy["points"]] == [p["x"] for p in gold["points"]]  # one x axis
    assert proxy["points"][0]["x"] == plot["x0"] and proxy["points"][-1]["x"] < plot["x1"]
    assert all(p["y_low"] > p["y"] > p["y_high"] for p in proxy["points"])  # spread as error bars (y grows down)
    assert len(win["points"]) == 3 and all(p["y_low"] > p["y"] > p["y_high"] for p in win["points"])
    assert win["reference_y"] == round((win["y0"] + win["y1"]) / 2, 1)  # 0.5 on a 0..1 scale
    assert gold["curve"] and win["curve"] and not proxy["curve"]
    assert overoptimization_plot({"points": [], "gold_fit": None, "evaluation_fit": None}) is None
