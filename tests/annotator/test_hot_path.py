"""The labeling hot path (next item -> submit): few statements, no lazy loads, and filled items close."""

import tempfile
import threading
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import DataError, close_old_connections, connection
from psycopg.pq import TransactionStatus
from rest_framework.authtoken.models import Token

from annotator.models import AssignmentStatus, Comparison, Judgement, LedgerCategory, LedgerEntry
from annotator.services.access import ApiToken, User, assignment_get_for_labeler
from annotator.services.assignments import assignment_claim, assignment_next, campaign_and_live_leases
from annotator.core.errors import AlreadySubmitted, InvalidInput
from annotator.services.judgements import judgement_submit
from tests.annotator.api.conftest import client_with_token
from tests.factories import CampaignFactory, ComparisonFactory, LabelerFactory

# Statements per call on a budgeted campaign, over token auth. Next item: the token, the user and their profile,
# the campaign and the labeler's live leases in one statement; then a claim: one call of `annotator_claim` (the
# campaign lock, the money check and the lease write returning the item's texts). Submit: the token, the user,
# the profile and the assignment in one statement, then one call of `annotator_answer` (lock, checks, the
# judgement, the assignment, the ledger and the comparison's count).
NEXT_ITEM_REUSING_LEASE_QUERIES = 1
NEXT_ITEM_QUERIES = NEXT_ITEM_REUSING_LEASE_QUERIES + 1
SUBMIT_QUERIES = 2
# Round trips to PostgreSQL per call, as the server runs them: one per statement, none for BEGIN or COMMIT.
NEXT_ITEM_REUSING_LEASE_ROUND_TRIPS = NEXT_ITEM_REUSING_LEASE_QUERIES
NEXT_ITEM_ROUND_TRIPS = NEXT_ITEM_QUERIES
SUBMIT_ROUND_TRIPS = SUBMIT_QUERIES


@contextmanager
def round_trips_counted():
    """Counts the times the client sent something after hearing back from the server, from libpq's protocol
    trace: each is one wait on the network, however many statements went together."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    counted = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        try:
            yield counted
        finally:
            pgconn.untrace()
        trace.seek(0)
        senders = [line.split("\t")[1] for line in trace.read().splitlines() if "\t" in line]  # F: client, B: server
    counted.append(sum(1 for before, now in zip(["B"] + senders, senders) if (before, now) == ("B", "F")))


@pytest.fixture
def budgeted_campaign(db, labeler, other_labeler):
    campaign = CampaignFactory(money_budget=Decimal("100.00"), overlap=2, labelers=[labeler, other_labeler])
    ComparisonFactory.create_batch(3, campaign=campaign, judgements_wanted=2)
    return campaign


def test_next_item_and_submit_stay_within_their_statements(budgeted_campaign, labeler, django_assert_num_queries):
    api = client_with_token(labeler)
    with django_assert_num_queries(NEXT_ITEM_QUERIES):
        item = api.get(f"/api/campaigns/{budgeted_campaign.name}/next/")
    assert item.status_code == 200, item.content
    with django_assert_num_queries(NEXT_ITEM_REUSING_LEASE_QUERIES):  # asked again: nothing claimed
        again = api.get(f"/api/campaigns/{budgeted_campaign.name}/next/")
    assert again.json()["assignment_id"] == item.json()["assignment_id"]
    with django_assert_num_queries(SUBMIT_QUERIES):
        answer = api.post(
            f"/api/assignments/{item.json()['assignment_id']}/judgement/",
            {"choice": "second", "milliseconds": 900}, format="json",
        )
    assert answer.status_code == 201, answer.content


@pytest.mark.django_db(transaction=True)
def test_next_item_and_submit_wait_on_the_database_as_few_times_as_they_can():
    campaign = CampaignFactory(money_budget=Decimal("100.00"), overlap=2)
    ComparisonFactory.create_batch(3, campaign=campaign, judgements_wanted=2)
    labeler = LabelerFactory(campaigns=[campaign])
    api = client_with_token(labeler)
    with round_trips_counted() as next_item:
        item = api.get(f"/api/campaigns/{campaign.name}/next/")
    with round_trips_counted() as again:
        api.get(f"/api/campaigns/{campaign.name}/next/")
    with round_trips_counted() as submit:
        answer = api.post(
            f"/api/assignments/{item.json()['assignment_id']}/judgement/",
            {"choice": "second", "milliseconds": 900}, format="json",
        )
    assert (item.status_code, answer.status_code) == (200, 201), (item.content, answer.content)
    assert (next_item, again, submit) == (
        [NEXT_ITEM_ROUND_TRIPS], [NEXT_ITEM_REUSING_LEASE_ROUND_TRIPS], [SUBMIT_ROUND_TRIPS]
    )
    # What went in the pipelines was committed: the lease, the judgement and its charge are there.
    assert Judgement.objects.filter(assignment_id=item.json()["assignment_id"], choice__in=("a", "b")).count() == 1
    assert LedgerEntry.objects.filter(assignment_id=item.json()["assignment_id"]).exists()


@pytest.mark.django_db(transaction=True)
def test_an_answer_that_is_refused_or_fails_in_the_server_function_leaves_nothing_behind():
    campaign = CampaignFactory(money_budget=Decimal("100.00"), overlap=2)
    ComparisonFactory.create_batch(2, campaign=campaign, judgements_wanted=2)
    labeler = LabelerFactory(campaigns=[campaign])
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=500)
    with pytest.raises(AlreadySubmitted):
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="b", milliseconds=500)
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE

    second = assignment_claim(labeler=labeler, campaign=campaign)
    # Refused by the server half-way: the judgement is inserted and the assignment marked submitted, then the
    # ledger entry's unit is too long for its column.
    with pytest.raises(DataError), connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM annotator_answer(%s, %s, 'pairwise', NULL, 'a', 2, NULL, '', 500, 0.1, 0, NULL, %s)",
            [second.pk, labeler.pk, "x" * 40],
        )
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    second.refresh_from_db()
    assert second.status == AssignmentStatus.LEASED
    assert not Judgement.objects.filter(assignment=second).exists()
    assert not LedgerEntry.objects.filter(assignment=second).exists()
    assert Comparison.objects.get(pk=second.comparison_id).judgements_received == 0
    assert [j.choice for j in Judgement.objects.filter(assignment_id=lease.pk)] == ["a"]
    assert LedgerEntry.objects.filter(assignment_id=lease.pk, category=LedgerCategory.LABELING).count() == 1
    judgement_submit(labeler=labeler, assignment_id=second.pk, choice="b", milliseconds=500)  # the connection works


def test_claimed_and_reused_leases_come_with_everything_the_answer_shows(
    budgeted_campaign, labeler, django_assert_num_queries
):
    claimed = assignment_claim(labeler=labeler, campaign=budgeted_campaign)
    (reused,) = assignment_next(labeler=labeler, campaign=budgeted_campaign)
    assert reused.pk == claimed.pk and reused.swapped == claimed.swapped
    for lease in (claimed, reused):
        with django_assert_num_queries(0):
            comparison = lease.comparison
            shown = (comparison.prompt.text, comparison.completion_a.text, comparison.completion_b.text)
            assert comparison.campaign.name == budgeted_campaign.name and lease.labeler == labeler
        stored = Comparison.objects.select_related("prompt", "completion_a", "completion_b").get(pk=comparison.pk)
        assert shown == (stored.prompt.text, stored.completion_a.text, stored.completion_b.text)
        assert (lease.status, lease.reserved_amount) == (AssignmentStatus.LEASED, Decimal("0.1000"))


def test_submit_takes_exactly_one_of_choice_and_screen_choice(budgeted_campaign, labeler):
    lease = assignment_claim(labeler=labeler, campaign=budgeted_campaign)
    for wrong in ({}, {"choice": "a", "screen_choice": "first"}, {"screen_choice": "left"}):
        with pytest.raises(InvalidInput):
            judgement_submit(labeler=labeler, assignment_id=lease.pk, milliseconds=500, **wrong)
    judgement = judgement_submit(labeler=labeler, assignment_id=lease.pk, screen_choice="first", milliseconds=500)
    assert judgement.choice == ("b" if lease.swapped else "a")


def test_the_last_wanted_judgement_closes_the_comparison(budgeted_campaign, labeler, other_labeler):
    first = assignment_claim(labeler=labeler, campaign=budgeted_campaign)
    second = assignment_claim(labeler=other_labeler, campaign=budgeted_campaign)
    assert first.comparison_id == second.comparison_id
    judgement_submit(labeler=labeler, assignment_id=first.pk, choice="a", milliseconds=500)
    assert Comparison.objects.get(pk=first.comparison_id).is_open
    judgement_submit(labeler=other_labeler, assignment_id=second.pk, choice="b", milliseconds=500)
    assert not Comparison.objects.get(pk=first.comparison_id).is_open
    # A closed comparison is never handed out again, even to a labeler who never had it.
    newcomer = LabelerFactory(campaigns=[budgeted_campaign])
    assert assignment_claim(labeler=newcomer, campaign=budgeted_campaign).comparison_id != first.comparison_id


@pytest.mark.django_db(transaction=True)
def test_two_last_answers_landing_together_close_the_comparison():
    assert connection.vendor == "postgresql"
    campaign = CampaignFactory(money_budget=Decimal("10.00"), overlap=2)
    comparison = ComparisonFactory(campaign=campaign, judgements_wanted=2)
    labelers = LabelerFactory.create_batch(2, campaigns=[campaign])
    leases = [assignment_claim(labeler=user, campaign=campaign) for user in labelers]
    barrier = threading.Barrier(2)
    errors = []

    def answer(user, lease):
        try:
            barrier.wait()
            judgement_submit(labeler=user, assignment_id=lease.pk, choice="tie", milliseconds=500)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=answer, args=pair) for pair in zip(labelers, leases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Judgement.objects.filter(assignment__comparison=comparison).count() == 2
    assert not Comparison.objects.get(pk=comparison.pk).is_open


def test_rows_read_without_the_orm_come_back_as_the_orm_reads_them(labeler):
    """JSON as objects, money as Decimal, times aware: the hot path's SQL reads convert values like the ORM."""
    campaign = CampaignFactory(money_budget=Decimal("5.00"), settings={"sampling": {"max_new_tokens": 8}},
                               labelers=[labeler])
    ComparisonFactory(campaign=campaign)
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    answered = assignment_get_for_labeler(labeler=labeler, assignment_id=lease.pk)
    token = ApiToken(Token.objects.create(user=labeler).key)
    user, looked_up, _ = campaign_and_live_leases(labeler=token, campaign=campaign.name, now=lease.leased_at, limit=1)
    stored = User.objects.select_related("labeler").get(pk=labeler.pk)
    assert (user.pk, user.username, user.is_active, user.date_joined) == (
        stored.pk, stored.username, stored.is_active, stored.date_joined)
    assert user.labeler.pay_per_judgement == stored.labeler.pay_per_judgement and user.labeler.kind == stored.labeler.kind
    for read in (lease.comparison.campaign, answered.comparison.campaign, looked_up):
        assert read.settings == {"sampling": {"max_new_tokens": 8}}
        assert read.money_budget == Decimal("5.0000") and isinstance(read.money_budget, Decimal)
        assert read.created_at.tzinfo is not None and read.is_active is True
    assert answered.reserved_amount == Decimal("0.1000") and answered.leased_until == lease.leased_until
