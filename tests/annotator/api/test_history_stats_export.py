"""My history, campaign statistics and the JSONL export."""

import json
from decimal import Decimal

from annotator.models import ComparisonPurpose, PolicyCheckpoint, Round, TaskKind
from annotator.services.judgements import judgement_submit, rating_submit
from tests.factories import (
    AssignmentFactory,
    CampaignFactory,
    ComparisonFactory,
    CompletionFactory,
    LabelerFactory,
    PromptFactory,
    RatingItemFactory,
)


def answer(labeler, comparison, choice="a", swapped=False, **fields):
    # Reserved as a claim would have, so the answer is paid the campaign's $0.10.
    lease = AssignmentFactory(comparison=comparison, labeler=labeler, swapped=swapped, reserved_amount=Decimal("0.10"))
    return judgement_submit(labeler=labeler, assignment_id=lease.pk, choice=choice, milliseconds=1000, **fields)


def export(client, campaign):
    response = client.get(f"/api/campaigns/{campaign.name}/export.jsonl", HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/jsonl"
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_history_lists_own_answers_in_screen_order_newest_first_paginated(api, labeler, other_labeler, campaign):
    first, second, third = campaign.comparisons.all()[:3]
    answer(labeler, first, choice="a", swapped=True, strength=1, rationale="warmer")
    answer(labeler, second, choice="tie")
    answer(other_labeler, third, choice="b")
    rating_campaign = CampaignFactory(task_kind=TaskKind.RATING, labelers=[labeler])
    rated = AssignmentFactory(comparison=RatingItemFactory(campaign=rating_campaign), labeler=labeler)
    rating_submit(labeler=labeler, assignment_id=rated.pk, value="negative", milliseconds=40)

    page = api.get("/api/me/history/", {"page_size": 2}).json()
    assert page["count"] == 3 and page["next"]
    rating, tie = page["results"]
    assert (rating["task_kind"], rating["value"], rating["choice"], rating["second"]) == ("rating", "negative", None, None)
    assert (tie["choice"], tie["strength"], tie["value"]) == ("tie", 2, None)
    (swapped,) = api.get(page["next"]).json()["results"]
    # Completion A was shown second, so the answer "a" reads back as "second".
    assert (swapped["choice"], swapped["first"], swapped["rationale"]) == ("second", first.completion_b.text, "warmer")

    only_pairwise = api.get("/api/me/history/", {"campaign": campaign.name}).json()
    assert only_pairwise["count"] == 2
    assert api.get("/api/me/history/", {"page": 99}).status_code == 404


def test_history_of_a_name_no_campaign_can_have_is_400(api, labeler, campaign):
    answer(labeler, campaign.comparisons.first())
    assert api.get("/api/me/history/", {"campaign": "no-such-campaign"}).json()["count"] == 0
    assert api.get("/api/me/history/", {"campaign": ""}).json()["count"] == 1  # empty: no filter
    for name in ("two words", "nul\x00"):  # PostgreSQL refuses NUL in text: querying it would be a 500
        response = api.get("/api/me/history/", {"campaign": name})
        assert response.status_code == 400
        assert "campaign must be a campaign's name" in response.json()["detail"]


def test_history_page_size_out_of_range_or_not_a_number_is_400(api, labeler, campaign):
    answer(labeler, campaign.comparisons.first())
    for size in ("0", "501", "-1", "two", "null", "2.5"):
        response = api.get("/api/me/history/", {"page_size": size})
        assert response.status_code == 400, size
        assert "page_size must be" in response.json()["detail"]
    assert api.get("/api/me/history/", {"page_size": "500"}).json()["count"] == 1
    assert api.get("/api/me/history/", {"page_size": ""}).json()["count"] == 1  # empty: the default


def test_stats_for_labelers_are_aggregate_and_include_own_progress(api, labeler, other_labeler, staff_api):
    campaign = CampaignFactory(overlap=2, money_budget=Decimal("10"), labelers=[labeler, other_labeler])
    comparisons = ComparisonFactory.create_batch(3, campaign=campaign)
    gold = ComparisonFactory(campaign=campaign, purpose=ComparisonPurpose.GOLD, gold_choice="a")
    answer(labeler, comparisons[0], choice="a")
    answer(labeler, gold, choice="b")
    answer(other_labeler, gold, choice="a")
    answer(other_labeler, comparisons[0], choice="both_bad")

    stats = api.get(f"/api/campaigns/{campaign.name}/stats/").json()
    assert stats["items"] == 4 and stats["answers"] == 4 and stats["labelers"] == 2
    assert stats["choices"] == {"a": 2, "b": 1, "tie": 0, "both_bad": 1}
    assert stats["remaining_slots"] == 4
    assert (stats["gold_answered"], stats["gold_agreement"]) == (2, 0.5)
    assert stats["money"] is None
    assert stats["me"] == {"done_today": 2, "done_total": 2, "remaining": 4, "available_to_me": 4}

    staff_stats = staff_api.get(f"/api/campaigns/{campaign.name}/stats/").json()
    assert staff_stats["me"] is None
    assert staff_stats["money"] == {"currency": "USD", "budget": "10.0000", "spent": "0.4000", "reserved": "0.0000"}


def test_stats_of_closed_campaign_staff_only(api, staff_api):
    closed = CampaignFactory(is_active=False)
    assert api.get(f"/api/campaigns/{closed.name}/stats/").status_code == 404
    assert staff_api.get(f"/api/campaigns/{closed.name}/stats/").status_code == 200
    assert staff_api.get("/api/campaigns/nothing-here/stats/").status_code == 404
    # An id no BIGINT holds names nothing: 404 for staff and labelers alike, never a database error.
    for client in (api, staff_api):
        assert client.get("/api/campaigns/99999999999999999999999/stats/").status_code == 404


def test_export_is_staff_only(api, campaign):
    response = api.get(f"/api/campaigns/{campaign.name}/export.jsonl")
    assert response.status_code == 403
    response = api.get(f"/api/campaigns/{campaign.name}/export.jsonl", HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 403 and "only staff and its managers" in json.loads(response.content)["detail"]


def test_export_lines_keep_ties_and_both_bad_as_flags(staff_api, labeler, other_labeler):
    campaign = CampaignFactory(overlap=3, labelers=[labeler, other_labeler])
    round_one = Round.objects.create(campaign=campaign, number=1)
    base = PolicyCheckpoint.objects.create(campaign=campaign, label="base", path="/ckpt/base")
    tuned = PolicyCheckpoint.objects.create(campaign=campaign, label="kl-1", path="/ckpt/kl1")
    prompt = PromptFactory(campaign=campaign, text="Shall I")
    comparison = ComparisonFactory(
        campaign=campaign, round=round_one, prompt=prompt,
        completion_a=CompletionFactory(prompt=prompt, text=" weep", checkpoint=base),
        completion_b=CompletionFactory(prompt=prompt, text=" sing", checkpoint=tuned),
    )
    third = LabelerFactory(campaigns=[campaign])
    prefers_b = answer(labeler, comparison, choice="b", strength=3)
    answer(other_labeler, comparison, choice="tie")
    answer(third, comparison, choice="both_bad")
    ComparisonFactory(campaign=CampaignFactory())  # another campaign's item stays out

    lines = export(staff_api, campaign)
    assert [(line["chosen"], line["rejected"], line["tie"], line["both_bad"]) for line in lines] == [
        (" sing", " weep", False, False),
        (" weep", " sing", True, False),
        (" weep", " sing", False, True),
    ]
    first = lines[0]
    assert first["prompt"] == "Shall I" and first["strength"] == 3 and first["choice"] == "b"
    assert (first["judgement_id"], first["comparison_id"], first["labeler"]) == (
        prefers_b.pk, comparison.pk, labeler.username
    )
    assert (first["round"], first["checkpoint_a"], first["checkpoint_b"]) == (1, "base", "kl-1")
    assert first["labeler_kind"] == "human"


def test_export_of_rating_campaign_gives_one_line_per_rating(staff_api, labeler):
    campaign = CampaignFactory(task_kind=TaskKind.RATING, labelers=[labeler])
    lease = AssignmentFactory(comparison=RatingItemFactory(campaign=campaign), labeler=labeler)
    rating_submit(labeler=labeler, assignment_id=lease.pk, value="neutral", milliseconds=10)
    (line,) = export(staff_api, campaign)
    assert line["rating"] == "neutral" and line["completion"] == lease.comparison.completion_a.text
