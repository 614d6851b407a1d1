import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from annotator.models import Assignment, AssignmentStatus, Judgement
from annotator.services.assignments import assignment_claim, assignment_next
from annotator.core.errors import AlreadySubmitted, InvalidInput, LeaseExpired, NotFound
from annotator.services.judgements import judgement_submit
from tests.factories import CampaignFactory, ComparisonFactory, LabelerFactory


def test_claim_takes_highest_priority_first(labeler):
    campaign = CampaignFactory(labelers=[labeler])
    low = ComparisonFactory(campaign=campaign, priority=0)
    high = ComparisonFactory(campaign=campaign, priority=5)
    first = assignment_claim(labeler=labeler, campaign=campaign)
    second = assignment_claim(labeler=labeler, campaign=campaign)
    assert [first.comparison_id, second.comparison_id] == [high.pk, low.pk]
    assert assignment_claim(labeler=labeler, campaign=campaign) is None


def test_next_reuses_live_lease_and_prefetches(labeler, campaign):
    current, upcoming = assignment_next(labeler=labeler, campaign=campaign, prefetch=1)
    again = assignment_next(labeler=labeler, campaign=campaign, prefetch=1)
    assert [a.pk for a in again] == [current.pk, upcoming.pk]
    assert Assignment.objects.filter(labeler=labeler).count() == 2


def test_expired_lease_returns_item_to_pool_but_not_to_same_labeler(labeler, other_labeler):
    campaign = CampaignFactory(lease_seconds=60, labelers=[labeler, other_labeler])
    comparison = ComparisonFactory(campaign=campaign)
    now = timezone.now()
    lease = assignment_claim(labeler=labeler, campaign=campaign, now=now)
    assert assignment_claim(labeler=other_labeler, campaign=campaign, now=now) is None
    later = now + timedelta(seconds=61)
    taken = assignment_claim(labeler=other_labeler, campaign=campaign, now=later)
    assert taken.comparison_id == comparison.pk
    assert assignment_claim(labeler=labeler, campaign=campaign, now=later) is None
    with pytest.raises(LeaseExpired):
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=1000, now=later)
    assert not Judgement.objects.exists()


def test_submit_records_once_and_refuses_second(labeler):
    campaign = CampaignFactory(labelers=[labeler])
    ComparisonFactory(campaign=campaign)
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    judgement = judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="tie", strength=3, milliseconds=1500)
    with pytest.raises(AlreadySubmitted):
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=10)
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SUBMITTED
    assert list(Judgement.objects.values_list("pk", "choice")) == [(judgement.pk, "tie")]


def test_someone_elses_assignment_is_not_found(labeler, other_labeler, campaign):
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    with pytest.raises(NotFound):
        judgement_submit(labeler=other_labeler, assignment_id=lease.pk, choice="a", milliseconds=10)


@pytest.mark.parametrize(
    "fields",
    [{"choice": "c"}, {"strength": 4}, {"strength": "2"}, {"milliseconds": -1}, {"milliseconds": "x"}, {"rationale": 3}],
)
def test_bad_input_is_refused_and_changes_nothing(labeler, campaign, fields):
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    with pytest.raises(InvalidInput):
        judgement_submit(labeler=labeler, assignment_id=lease.pk, **({"choice": "a", "milliseconds": 5} | fields))
    assert not Judgement.objects.exists()


def test_judgements_cannot_be_rewritten_in_the_database(labeler, campaign):
    from django.db import DatabaseError, transaction

    lease = assignment_claim(labeler=labeler, campaign=campaign)
    judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=5)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Judgement.objects.update(choice="b")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Judgement.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_twenty_labelers_racing_fill_every_slot_exactly_once():
    """20 threads, overlap 2, 7 comparisons = 14 slots, each thread claims up to 3 (60 attempts)."""
    assert connection.vendor == "postgresql"
    campaign = CampaignFactory(overlap=2)
    comparisons = ComparisonFactory.create_batch(7, campaign=campaign)
    labelers = LabelerFactory.create_batch(20, campaigns=[campaign])
    barrier = threading.Barrier(len(labelers))
    errors = []

    def work(user):
        try:
            barrier.wait()
            for _ in range(3):
                assignment_claim(labeler=user, campaign=campaign)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in labelers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    rows = list(Assignment.objects.values_list("comparison_id", "labeler_id"))
    per_comparison = Counter(c for c, _ in rows)
    assert per_comparison == {c.pk: 2 for c in comparisons}  # every slot filled once, never a third
    assert len(set(rows)) == len(rows)  # no labeler got a pair twice
