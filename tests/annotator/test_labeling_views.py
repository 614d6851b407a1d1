from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from annotator.models import Assignment, AssignmentStatus, Judgement, Rating, TaskKind
from tests.factories import AssignmentFactory, CampaignFactory, ComparisonFactory, RatingItemFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def labeler_client(client, labeler):
    client.force_login(labeler)
    return client


def label_url(campaign):
    return reverse("labeling:label", args=[campaign.name])


def answer_url(campaign, assignment_id):
    return reverse("labeling:item_answer", args=[campaign.name, assignment_id])


def lease(labeler, comparison, **fields):
    """A live lease held by `labeler` (the views reuse live leases before claiming anything new)."""
    return AssignmentFactory(comparison=comparison, labeler=labeler, reserved_amount=Decimal("0.10"), **fields)


@pytest.mark.parametrize("name, args", [("campaign_list", []), ("instructions", ["x"]), ("label", ["x"])])
def test_pages_require_login(client, db, name, args):
    url = reverse(f"labeling:{name}", args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_answer_requires_login(client, db):
    response = client.post(reverse("labeling:item_answer", args=["x", 1]), {"answer": "left"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_and_redirect_to_campaigns(client, labeler):
    assert b'name="password"' in client.get(reverse("login")).content
    response = client.post(reverse("login"), {"username": labeler.username, "password": "labeler-pass-123"})
    assert response.status_code == 302
    assert response["Location"] == reverse("labeling:campaign_list")


def test_campaign_list_shows_active_campaigns_with_progress(labeler_client, labeler, campaign):
    CampaignFactory(title="Closed one", is_active=False, labelers=[labeler])
    response = labeler_client.get(reverse("labeling:campaign_list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert campaign.title in html
    assert reverse("labeling:instructions", args=[campaign.name]) in html
    assert "Closed one" not in html
    assert "Left in campaign <strong>5</strong>" in html


def test_campaign_list_tells_a_non_labeler(client, staff):
    client.force_login(staff)
    response = client.get(reverse("labeling:campaign_list"))
    assert response.status_code == 200
    assert "not a labeler" in response.content.decode()


def test_instructions_page_keeps_simple_html_and_markdown_and_drops_scripts(labeler_client, labeler):
    campaign = CampaignFactory(instructions="<p><strong>Be kind.</strong></p><script>alert(1)</script>\n\n*Gently.*",
                               labelers=[labeler])
    for page in ("labeling:instructions", "labeling:label"):
        html = labeler_client.get(reverse(page, args=[campaign.name])).content.decode()
        assert "<p><strong>Be kind.</strong></p>" in html and "<em>Gently.</em>" in html, page
        assert "alert(1)" not in html, page
    instructions = labeler_client.get(reverse("labeling:instructions", args=[campaign.name])).content.decode()
    assert label_url(campaign) in instructions


def test_unknown_campaign_is_404(labeler_client):
    assert labeler_client.get(label_url(CampaignFactory.build(name="nope"))).status_code == 404


@pytest.mark.parametrize("swapped", [False, True])
def test_label_page_shows_prompt_and_sides_by_swapped(labeler_client, labeler, swapped):
    campaign = CampaignFactory(labelers=[labeler])
    comparison = ComparisonFactory(campaign=campaign)
    held = lease(labeler, comparison, swapped=swapped)
    response = labeler_client.get(label_url(campaign))
    assert response.status_code == 200
    html = response.content.decode()
    left, right = html.index('id="side-left"'), html.index('id="side-right"')
    a_text, b_text = html.index(escape(comparison.completion_a.text)), html.index(escape(comparison.completion_b.text))
    assert html.index(escape(comparison.prompt.text)) < left
    assert (left < b_text < right < a_text) if swapped else (left < a_text < right < b_text)
    assert answer_url(campaign, held.pk) in html
    assert campaign.instructions in html  # still reachable in the collapsible panel


def test_label_page_claims_current_and_next(labeler_client, labeler, campaign):
    labeler_client.get(label_url(campaign))
    assert Assignment.objects.filter(labeler=labeler, status=AssignmentStatus.LEASED).count() == 2


@pytest.mark.parametrize(
    "side, swapped, choice", [("left", False, "a"), ("left", True, "b"), ("right", True, "a"), ("tie", True, "tie")]
)
def test_htmx_answer_records_choice_for_side_and_returns_next_item(labeler_client, labeler, side, swapped, choice):
    campaign = CampaignFactory(labelers=[labeler])
    current = lease(labeler, ComparisonFactory(campaign=campaign), swapped=swapped)
    upcoming = lease(labeler, ComparisonFactory(campaign=campaign), leased_at=current.leased_at + timedelta(seconds=1))
    ComparisonFactory(campaign=campaign)
    response = labeler_client.post(
        answer_url(campaign, current.pk),
        {"answer": side, "strength": "3", "rationale": " clearer ", "milliseconds": "2345"},
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the work area only
    assert answer_url(campaign, upcoming.pk) in html
    assert "Done today <strong>1</strong>" in html
    judgement = Judgement.objects.get(assignment=current)
    stored = (judgement.choice, judgement.strength, judgement.rationale, judgement.milliseconds)
    assert stored == (choice, 3, "clearer", 2345)
    # The next-but-one item is claimed already, so the following swap is instant too.
    assert Assignment.objects.filter(labeler=labeler, status=AssignmentStatus.LEASED).count() == 2


def test_answer_without_htmx_redirects_to_the_label_page(labeler_client, labeler, campaign):
    held = lease(labeler, campaign.comparisons.first())
    response = labeler_client.post(answer_url(campaign, held.pk), {"answer": "both_bad", "milliseconds": "900"})
    assert response.status_code == 302
    assert response["Location"] == label_url(campaign)
    assert Judgement.objects.get(assignment=held).choice == "both_bad"


@pytest.mark.parametrize(
    "form, message",
    [
        ({"answer": "middle", "milliseconds": "10"}, "answer must be one of left, right, tie, both_bad"),
        ({"answer": "left", "strength": "9", "milliseconds": "10"}, "strength must be 1, 2 or 3"),
        ({"answer": "left", "strength": "much", "milliseconds": "10"}, "strength must be 1, 2 or 3"),
        ({"answer": "left", "milliseconds": "soon"}, "milliseconds must be a whole number"),
        ({"milliseconds": "10"}, "answer must be one of"),
        # PostgreSQL refuses NUL in text: storing it would be a 500.
        ({"answer": "left", "rationale": "fine\x00", "milliseconds": "10"}, "rationale must not contain NUL"),
    ],
)
def test_bad_answer_is_400_with_message_in_the_message_area(labeler_client, labeler, campaign, form, message):
    held = lease(labeler, campaign.comparisons.first())
    response = labeler_client.post(answer_url(campaign, held.pk), form, **HTMX)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response["HX-Retarget"] == "#labeling-message"
    assert not Judgement.objects.exists()


def test_someone_elses_assignment_is_404(labeler_client, other_labeler, campaign):
    theirs = lease(other_labeler, campaign.comparisons.first())
    response = labeler_client.post(answer_url(campaign, theirs.pk), {"answer": "left", "milliseconds": "10"}, **HTMX)
    assert response.status_code == 404
    assert not Judgement.objects.exists()


def test_get_on_answer_is_not_allowed(labeler_client, labeler, campaign):
    held = lease(labeler, campaign.comparisons.first())
    assert labeler_client.get(answer_url(campaign, held.pk)).status_code == 405


def test_answer_needs_csrf_token(labeler, campaign):
    client = Client(enforce_csrf_checks=True)
    client.force_login(labeler)
    held = lease(labeler, campaign.comparisons.first())
    response = client.post(answer_url(campaign, held.pk), {"answer": "left", "milliseconds": "10"}, **HTMX)
    assert response.status_code == 403


def test_expired_lease_shows_message_and_next_item(labeler_client, labeler, campaign):
    long_ago = timezone.now() - timedelta(minutes=30)
    stale = lease(
        labeler, campaign.comparisons.first(), leased_at=long_ago, leased_until=long_ago + timedelta(minutes=5)
    )
    response = labeler_client.post(answer_url(campaign, stale.pk), {"answer": "left", "milliseconds": "10"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "expired" in html and "Nothing was recorded" in html
    fresh = Assignment.objects.filter(labeler=labeler, status=AssignmentStatus.LEASED).exclude(pk=stale.pk).first()
    assert answer_url(campaign, fresh.pk) in html
    assert not Judgement.objects.exists()


def test_all_done_state(labeler_client, labeler):
    campaign = CampaignFactory(labelers=[labeler])
    comparison = ComparisonFactory(campaign=campaign)
    held = lease(labeler, comparison)
    assert "All done" in labeler_client.get(label_url(CampaignFactory(labelers=[labeler]))).content.decode()
    response = labeler_client.post(answer_url(campaign, held.pk), {"answer": "tie", "milliseconds": "10"}, **HTMX)
    assert "All done" in response.content.decode()


def test_paused_for_budget_state_still_accepts_a_live_lease(labeler_client, labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.10"), pay_per_judgement=Decimal("0.10"), labelers=[labeler])
    first, _ = ComparisonFactory.create_batch(2, campaign=campaign)
    held = lease(labeler, first)  # its $0.10 is reserved: the budget cannot cover another item
    response = labeler_client.post(answer_url(campaign, held.pk), {"answer": "right", "milliseconds": "10"}, **HTMX)
    assert response.status_code == 200
    assert "This campaign is paused for budget" in response.content.decode()
    assert Judgement.objects.get(assignment=held).choice in ("a", "b")
    assert "This campaign is paused for budget" in labeler_client.get(label_url(campaign)).content.decode()


def test_rating_mode(labeler_client, labeler):
    campaign = CampaignFactory(task_kind=TaskKind.RATING, labelers=[labeler])
    item = RatingItemFactory(campaign=campaign)
    held = lease(labeler, item)
    html = labeler_client.get(label_url(campaign)).content.decode()
    assert escape(item.completion_a.text) in html
    assert 'value="positive"' in html and 'value="negative"' in html and 'id="side-right"' not in html
    bad = labeler_client.post(answer_url(campaign, held.pk), {"answer": "left", "milliseconds": "10"}, **HTMX)
    assert bad.status_code == 400 and "wants a rating" in bad.content.decode()
    ok = labeler_client.post(answer_url(campaign, held.pk), {"answer": "neutral", "milliseconds": "1200"}, **HTMX)
    assert ok.status_code == 200
    rating = Rating.objects.get(assignment=held)
    assert (rating.value, rating.milliseconds) == ("neutral", 1200)


def test_label_page_refuses_a_non_labeler(client, staff, campaign):
    client.force_login(staff)
    response = client.get(label_url(campaign))
    assert response.status_code == 403
    assert "not a labeler" in response.content.decode()


def test_out_of_range_ids_are_404_not_500(labeler_client, campaign):
    huge = "9" * 30
    assert labeler_client.get(f"/campaigns/{huge}/label/").status_code == 404
    response = labeler_client.post(f"/campaigns/{campaign.name}/items/{huge}/answer/", {"answer": "left", "milliseconds": "10"}, **HTMX)
    assert response.status_code == 404
