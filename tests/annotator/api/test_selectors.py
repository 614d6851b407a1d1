from datetime import timedelta

from django.utils import timezone

from annotator.models import AssignmentStatus
from annotator.selectors.campaigns import campaign_progress_for_labeler
from annotator.services.assignments import assignment_claim
from annotator.services.judgements import judgement_submit
from tests.factories import AssignmentFactory, CampaignFactory, ComparisonFactory


def test_progress_counts_done_remaining_and_available(labeler, other_labeler):
    campaign = CampaignFactory(overlap=2, labelers=[labeler, other_labeler])
    first, second, closed = ComparisonFactory.create_batch(3, campaign=campaign)
    closed.is_open = False
    closed.save()
    now = timezone.now()
    yesterday = now - timedelta(days=1, hours=1)
    # An old submitted item, one submitted today, and someone else's live lease.
    AssignmentFactory(comparison=first, labeler=labeler, status=AssignmentStatus.SUBMITTED, submitted_at=yesterday,
                      leased_at=yesterday)
    today = assignment_claim(labeler=labeler, campaign=campaign, now=now)
    judgement_submit(labeler=labeler, assignment_id=today.pk, choice="a", milliseconds=100, now=now)
    AssignmentFactory(comparison=second, labeler=other_labeler, leased_at=now)
    # An expired lease holds no slot.
    AssignmentFactory(comparison=first, labeler=other_labeler, leased_at=now - timedelta(hours=1),
                      leased_until=now - timedelta(minutes=1))

    progress = campaign_progress_for_labeler(labeler=labeler, campaign=campaign, now=now)

    assert today.comparison_id == second.pk
    # first: 2 wanted, 1 submitted -> 1 free; second: 2 wanted, 1 submitted + 1 live -> 0 free; closed: not counted.
    assert progress == {"done_today": 1, "done_total": 2, "remaining": 1, "available_to_me": 0}
    assert campaign_progress_for_labeler(labeler=other_labeler, campaign=campaign, now=now)["available_to_me"] == 0


def test_progress_of_a_new_labeler(labeler):
    campaign = CampaignFactory(overlap=3)
    ComparisonFactory.create_batch(2, campaign=campaign)
    progress = campaign_progress_for_labeler(labeler=labeler, campaign=campaign)
    assert progress == {"done_today": 0, "done_total": 0, "remaining": 6, "available_to_me": 6}
