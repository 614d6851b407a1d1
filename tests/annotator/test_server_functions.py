"""The labeling transactions PostgreSQL runs as functions: installed by migrate, and checking under their locks."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.utils import timezone

from annotator.models import AssignmentStatus, Comparison, Judgement, LedgerEntry, TaskKind
from annotator.services.assignments import assignment_claim
from annotator.core.errors import AlreadySubmitted
from annotator.services.judgements import judgement_submit
from tests.factories import AssignmentFactory, CampaignFactory, ComparisonFactory, LabelerFactory

FUNCTIONS = {"annotator_claim", "annotator_answer"}


def installed() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname FROM pg_proc WHERE proname = ANY(%s)", [list(FUNCTIONS)])
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_migrate_installs_the_functions_again():
    assert installed() == FUNCTIONS
    with connection.cursor() as cursor:
        cursor.execute("DROP FUNCTION annotator_claim")
        cursor.execute("DROP FUNCTION annotator_answer")
    assert installed() == set()
    call_command("migrate", verbosity=0)  # nothing to migrate: the functions come back all the same
    assert installed() == FUNCTIONS


def answer_directly(assignment, *, labeler_id=None, task_kind=TaskKind.PAIRWISE, now=None):
    """Call `annotator_answer` as the service does, bypassing the service's own checks."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refused FROM annotator_answer(%s, %s, %s, %s, 'a', 2, NULL, '', 500, 0.1, 0, NULL, 'judgements')",
            [assignment.pk, labeler_id or assignment.labeler_id, task_kind, now],
        )
        return cursor.fetchone()[0]


def test_the_answer_function_refuses_what_it_may_not_store(labeler, other_labeler):
    campaign = CampaignFactory()
    comparisons = ComparisonFactory.create_batch(4, campaign=campaign, judgements_wanted=2)
    lease = AssignmentFactory(comparison=comparisons[0], labeler=labeler)
    assert answer_directly(lease, labeler_id=other_labeler.pk) == "not_found"
    assert answer_directly(lease, task_kind=TaskKind.RATING) == "wrong_kind"
    assert answer_directly(lease, now=lease.leased_until) == "lease_expired"
    closed = AssignmentFactory(comparison=comparisons[1], labeler=labeler, status=AssignmentStatus.EXPIRED)
    assert answer_directly(closed) == "lease_expired"
    assert not Judgement.objects.exists() and not LedgerEntry.objects.exists()
    assert answer_directly(lease) is None
    assert answer_directly(lease) == "already_submitted"
    assert Judgement.objects.filter(assignment=lease).count() == 1
    assert LedgerEntry.objects.filter(assignment=lease).count() == 1
    assert Comparison.objects.get(pk=lease.comparison_id).judgements_received == 1


def test_an_answer_stored_at_a_given_time_is_submitted_then_and_created_now(labeler, campaign):
    lease = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=labeler)
    answered = lease.leased_at + timedelta(seconds=30)
    before = timezone.now()
    judgement = judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=500, now=answered)
    lease.refresh_from_db()
    assert (lease.status, lease.submitted_at) == (AssignmentStatus.SUBMITTED, answered)
    stored = Judgement.objects.get(pk=judgement.pk)
    assert stored.created_at == judgement.created_at and stored.created_at >= before


@pytest.mark.django_db(transaction=True)
def test_two_submits_of_one_assignment_at_once_store_one_answer():
    campaign = CampaignFactory()
    ComparisonFactory.create_batch(2, campaign=campaign)
    labeler = LabelerFactory(campaigns=[campaign])
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    barrier = threading.Barrier(2)
    outcomes = []

    def submit(choice):
        try:
            barrier.wait()
            judgement_submit(labeler=labeler, assignment_id=lease.pk, choice=choice, milliseconds=500)
            outcomes.append("stored")
        except AlreadySubmitted:
            outcomes.append("refused")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=submit, args=(choice,)) for choice in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "stored"]
    assert Judgement.objects.filter(assignment=lease).count() == 1
    assert LedgerEntry.objects.filter(assignment=lease).count() == 1
    assert Comparison.objects.get(pk=lease.comparison_id).judgements_received == 1
