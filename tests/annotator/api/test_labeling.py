"""Next item, judgements and ratings over the API, as a labeler (or a simulated one) uses them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotator.models import Assignment, AssignmentStatus, Judgement, LedgerEntry, Rating, TaskKind
from tests.factories import AssignmentFactory, CampaignFactory, ComparisonFactory, RatingItemFactory


def next_item(api, campaign):
    response = api.get(f"/api/campaigns/{campaign.name}/next/")
    assert response.status_code == 200, response.content
    return response.json()


def judge(api, assignment_id, **fields):
    return api.post(
        f"/api/assignments/{assignment_id}/judgement/", {"choice": "first", "milliseconds": 1200} | fields, format="json"
    )


def test_campaign_list_shows_active_campaigns(api, labeler, campaign):
    CampaignFactory(is_active=False, labelers=[labeler])
    response = api.get("/api/campaigns/")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()] == [campaign.name]
    assert response.json()[0]["task_kind"] == "pairwise"


@pytest.mark.parametrize("swapped", [False, True])
def test_next_item_in_screen_order_and_submit_maps_sides(api, labeler, swapped):
    campaign = CampaignFactory(labelers=[labeler])
    comparison = ComparisonFactory(campaign=campaign)
    # The lease is made here so the test, not chance, decides the sides.
    lease = AssignmentFactory(comparison=comparison, labeler=labeler, swapped=swapped)
    item = next_item(api, campaign)
    a, b = comparison.completion_a.text, comparison.completion_b.text
    assert item["assignment_id"] == lease.pk
    assert item["prompt"] == comparison.prompt.text
    assert (item["first"], item["second"]) == ((b, a) if swapped else (a, b))
    assert item["task_kind"] == "pairwise" and item["leased_until"]

    response = judge(api, lease.pk, choice="first", strength=3, rationale=" cheerful ")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["choice"], body["completion_choice"]) == ("first", "b" if swapped else "a")
    judgement = Judgement.objects.get()
    assert (judgement.choice, judgement.strength, judgement.rationale) == ("b" if swapped else "a", 3, "cheerful")


def test_next_item_is_stable_until_answered_then_204_when_nothing_left(api, labeler):
    campaign = CampaignFactory(labelers=[labeler])
    ComparisonFactory.create_batch(2, campaign=campaign)
    first = next_item(api, campaign)
    assert next_item(api, campaign)["assignment_id"] == first["assignment_id"]
    assert judge(api, first["assignment_id"]).status_code == 201
    second = next_item(api, campaign)
    assert second["assignment_id"] != first["assignment_id"]
    assert judge(api, second["assignment_id"], choice="tie").status_code == 201
    response = api.get(f"/api/campaigns/{campaign.name}/next/")
    assert response.status_code == 204 and response.content == b""
    assert Assignment.objects.count() == 2


def test_next_item_when_paused_for_budget_is_402(api, labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.05"), labelers=[labeler])
    ComparisonFactory(campaign=campaign)
    response = api.get(f"/api/campaigns/{campaign.name}/next/")
    assert response.status_code == 402
    assert response.json()["code"] == "budget_exhausted"
    assert "paused for budget" in response.json()["detail"]
    assert not Assignment.objects.exists()


def test_next_item_of_unknown_or_closed_campaign_is_404(api, labeler):
    closed = CampaignFactory(is_active=False, labelers=[labeler])
    ComparisonFactory(campaign=closed)
    for name in ["no-such-campaign", closed.name]:
        response = api.get(f"/api/campaigns/{name}/next/")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"choice": "a"}, "choice"),
        ({"choice": "left"}, "choice"),
        ({"strength": 0}, "strength"),
        ({"strength": 4}, "strength"),
        ({"strength": "strong"}, "strength"),
        ({"milliseconds": -5}, "milliseconds"),
        ({"milliseconds": None}, "milliseconds"),
        ({"rationale": "x" * 5001}, "rationale"),
    ],
)
def test_bad_judgement_input_is_400_and_changes_nothing(api, labeler, campaign, fields, field):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)
    response = judge(api, lease.pk, **fields)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"] and body["detail"].startswith(field)
    assert not Judgement.objects.exists() and not LedgerEntry.objects.exists()
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.LEASED


def test_missing_fields_are_named(api, labeler, campaign):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)
    response = api.post(f"/api/assignments/{lease.pk}/judgement/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"choice", "milliseconds"}
    response = api.post(f"/api/assignments/{lease.pk}/judgement/", "not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    assert not Judgement.objects.exists()


@pytest.mark.parametrize(
    ("assignment_id", "status"), [("abc", 400), ("1.5", 400), ("-1", 400), ("²", 400), ("99999999999999999999999", 404)]
)
def test_non_numeric_or_absurd_assignment_ids_are_refused(api, assignment_id, status):
    response = judge(api, assignment_id)
    assert response.status_code == status
    assert assignment_id in response.json()["detail"]


def test_someone_elses_assignment_is_404_and_untouched(api, other_labeler, campaign):
    theirs = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=other_labeler)
    response = judge(api, theirs.pk)
    assert response.status_code == 404
    assert not Judgement.objects.exists()
    theirs.refresh_from_db()
    assert theirs.status == AssignmentStatus.LEASED


def test_expired_lease_is_409_with_message(api, labeler, campaign):
    long_ago = timezone.now() - timedelta(hours=1)
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler, leased_at=long_ago)
    response = judge(api, lease.pk)
    assert response.status_code == 409
    assert response.json()["code"] == "lease_expired"
    assert "expired" in response.json()["detail"] and "next item" in response.json()["detail"]
    assert not Judgement.objects.exists() and not LedgerEntry.objects.exists()


def test_second_submit_is_409_and_first_answer_stands(api, labeler, campaign):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler, swapped=False)
    assert judge(api, lease.pk, choice="both_bad").status_code == 201
    again = judge(api, lease.pk, choice="first")
    assert again.status_code == 409
    assert again.json()["code"] == "already_submitted" and again.json()["assignment_id"] == lease.pk
    assert list(Judgement.objects.values_list("choice", flat=True)) == ["both_bad"]
    assert LedgerEntry.objects.filter(assignment=lease).count() == 1


def test_rating_campaign_next_and_rate(api, labeler):
    campaign = CampaignFactory(task_kind=TaskKind.RATING, labelers=[labeler])
    item_row = RatingItemFactory(campaign=campaign)
    item = next_item(api, campaign)
    assert (item["task_kind"], item["first"], item["second"]) == ("rating", item_row.completion_a.text, None)
    url = f"/api/assignments/{item['assignment_id']}/rating/"

    assert api.post(url, {"value": "great", "milliseconds": 10}, format="json").status_code == 400
    response = api.post(url, {"value": "positive", "milliseconds": 900}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["value"] == "positive"
    assert api.post(url, {"value": "negative", "milliseconds": 900}, format="json").status_code == 409
    assert list(Rating.objects.values_list("value", flat=True)) == ["positive"]
    # A judgement is the wrong kind of answer for a rating item.
    response = judge(api, item["assignment_id"])
    assert response.status_code == 400 and "rating" in response.json()["detail"]


def test_rating_for_pairwise_item_is_400(api, labeler, campaign):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)
    response = api.post(f"/api/assignments/{lease.pk}/rating/", {"value": "positive", "milliseconds": 5}, format="json")
    assert response.status_code == 400
    assert "pairwise" in response.json()["detail"]
    assert not Rating.objects.exists()
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.LEASED


@pytest.mark.parametrize("swapped", [False, True])
def test_hot_path_answers_match_their_documented_serializers(api, labeler, campaign, swapped):
    """next item and submit build their JSON directly; the serializers document it for the schema."""
    from annotator.api.serializers import (
        JudgementOutputSerializer,
        NextItemSerializer,
        RatingOutputSerializer,
        judgement_output_data,
        next_item_data,
        rating_output_data,
    )

    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler, swapped=swapped)
    assert next_item(api, campaign) == dict(NextItemSerializer(lease).data) == next_item_data(lease)
    response = judge(api, lease.pk, choice="second", strength=3)
    judgement = Judgement.objects.get(assignment=lease)
    assert response.json() == dict(JudgementOutputSerializer(judgement).data) == judgement_output_data(judgement)
    rating_campaign = CampaignFactory(task_kind=TaskKind.RATING, labelers=[labeler])
    rating_lease = AssignmentFactory(comparison=RatingItemFactory(campaign=rating_campaign), labeler=labeler)
    response = api.post(f"/api/assignments/{rating_lease.pk}/rating/", {"value": "neutral", "milliseconds": 5},
                        format="json")
    rating = Rating.objects.get(assignment=rating_lease)
    assert response.json() == dict(RatingOutputSerializer(rating).data) == rating_output_data(rating)


def test_hot_endpoints_refuse_other_methods_and_bodies_they_cannot_read(api, labeler, campaign):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)
    url = f"/api/assignments/{lease.pk}/judgement/"
    refused = api.put(url, {"choice": "first", "milliseconds": 5}, format="json")
    assert refused.status_code == 405 and refused["Allow"] == "POST"  # RFC 9110: a 405 names what is allowed
    assert api.get(url).status_code == 405
    refused = api.post(f"/api/campaigns/{campaign.name}/next/")
    assert refused.status_code == 405 and refused["Allow"] == "GET"
    response = api.post(url, "choice=first", content_type="text/plain")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert not Judgement.objects.exists()
    # A form body is read as well as JSON.
    response = api.post(url, {"choice": "second", "milliseconds": "700"})
    assert response.status_code == 201, response.content
    assert Judgement.objects.get().milliseconds == 700
