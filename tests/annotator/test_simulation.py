"""Simulated labelers over real HTTP: pytest-django's live server, the real PostgreSQL, the real VADER gold."""

import threading
from decimal import Decimal

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count

from annotator.models import (
    Assignment,
    CampaignMembership,
    CampaignRole,
    Choice,
    Judgement,
    LabelerKind,
    LabelerProfile,
    LedgerCategory,
    LedgerEntry,
    Rating,
    TaskKind,
)
from annotator.core.errors import InvalidInput
from annotator.services.simulated_labelers import simulated_labelers_ensure
from annotator.simulation.run import simulate_labelers_run
from tests.factories import (
    CampaignFactory,
    ComparisonFactory,
    CompletionFactory,
    LabelerFactory,
    MembershipFactory,
    PromptFactory,
    RatingItemFactory,
)

POSITIVE = " and all was wonderful, joyful and full of love; what a happy, beautiful, glorious day"
NEGATIVE = " and all was terrible, hateful and full of grief; what a miserable, ugly, horrible day"
live = pytest.mark.django_db(transaction=True)


def sentiment_campaign(*, items: int, overlap: int, **campaign_fields):
    """A pairwise campaign whose every item has one clearly positive side, on A for even items and B for odd.
    Returns the campaign and {comparison id: the positive side}."""
    campaign = CampaignFactory(overlap=overlap, **campaign_fields)
    positive_side = {}
    for number in range(items):
        prompt = PromptFactory(campaign=campaign, text=f"The morning of day {number} came")
        good = CompletionFactory(prompt=prompt, text=f"{POSITIVE} {number}")
        bad = CompletionFactory(prompt=prompt, text=f"{NEGATIVE} {number}")
        a, b = (good, bad) if number % 2 == 0 else (bad, good)
        comparison = ComparisonFactory(campaign=campaign, prompt=prompt, completion_a=a, completion_b=b)
        positive_side[comparison.pk] = Choice.A if number % 2 == 0 else Choice.B
    return campaign, positive_side


@live
def test_three_vader_labelers_answer_every_item_over_http(live_server):
    campaign, positive_side = sentiment_campaign(items=8, overlap=2)
    report = simulate_labelers_run(
        base_url=live_server.url, campaign=campaign.name, labelers=3, noise={"temperature": 0.3}, seed=1
    )

    assert report.submitted == 16 and report.errors == 0 and report.refused_by_budget == 0
    assert set(report.stop_reasons.values()) == {"done"}
    assert sum(report.per_labeler.values()) == 16
    per_item = dict(
        Judgement.objects.values_list("assignment__comparison").annotate(n=Count("pk")).values_list(
            "assignment__comparison", "n"
        )
    )
    assert per_item == {comparison_id: 2 for comparison_id in positive_side}
    judges = set(Judgement.objects.values_list("assignment__labeler__labeler__kind", "assignment__labeler__username"))
    assert {kind for kind, _ in judges} == {LabelerKind.SIMULATED}
    assert {username for _, username in judges} <= set(report.per_labeler)
    # No labeler judged an item twice, and the screen sides were mapped back to completions A and B.
    assert Assignment.objects.values("comparison", "labeler").distinct().count() == 16
    agreeing = sum(
        choice == positive_side[comparison_id]
        for comparison_id, choice in Judgement.objects.values_list("assignment__comparison", "choice")
    )
    assert agreeing >= 14
    assert Judgement.objects.filter(milliseconds__gt=1000).count() == 16
    # Simulated labelers cost nothing by default, but every judgement is still on the ledger once.
    charges = LedgerEntry.objects.filter(category=LedgerCategory.LABELING)
    assert charges.count() == 16 and {amount for (amount,) in charges.values_list("amount")} == {Decimal("0")}


@live
def test_budget_cap_stops_simulated_labelers_and_every_judgement_is_paid(live_server):
    campaign, _ = sentiment_campaign(items=10, overlap=2, money_budget=Decimal("0.50"))
    report = simulate_labelers_run(
        base_url=live_server.url, campaign=campaign.name, labelers=3, pay_per_judgement=None, seed=2
    )

    # $0.10 an item, $0.50 in all: five judgements, then 402 for everyone.
    assert report.submitted == 5 == Judgement.objects.count()
    assert report.refused_by_budget == 3 and set(report.stop_reasons.values()) == {"budget"}
    charges = LedgerEntry.objects.filter(category=LedgerCategory.LABELING)
    assert charges.count() == Judgement.objects.count()
    assert set(charges.values_list("assignment", flat=True)) == set(
        Judgement.objects.values_list("assignment", flat=True)
    )
    assert sum(charges.values_list("amount", flat=True)) == Decimal("0.50")


@live
def test_a_lost_answer_is_retried_without_a_second_judgement(live_server, monkeypatch):
    """The connection drops after the server has stored a judgement: the retry gets 409 and counts it done."""
    campaign, _ = sentiment_campaign(items=2, overlap=1)
    real_send = requests.adapters.HTTPAdapter.send
    dropped = []

    def send_then_drop_first_answer(adapter, request, **kwargs):
        response = real_send(adapter, request, **kwargs)
        if request.method == "POST" and not dropped:
            dropped.append(request.url)
            raise requests.ConnectionError("connection reset after the request was sent")
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send_then_drop_first_answer)
    report = simulate_labelers_run(base_url=live_server.url, campaign=campaign.name, labelers=1)

    assert len(dropped) == 1
    assert report.submitted == 2 == Judgement.objects.count() and report.errors == 0
    assert LedgerEntry.objects.filter(category=LedgerCategory.LABELING).count() == 2


@live
def test_labelers_that_do_not_stop_when_done_wait_for_new_items(live_server):
    campaign, _ = sentiment_campaign(items=1, overlap=1)

    def publish_one_more():
        ComparisonFactory(campaign=campaign)
        connection.close()  # this thread's own connection

    publish_later = threading.Timer(0.5, publish_one_more)
    publish_later.start()
    report = simulate_labelers_run(base_url=live_server.url, campaign=campaign.name, labelers=2, max_items=2,
                                   stop_when_done=False, poll_seconds=0.1)
    publish_later.join()

    assert report.submitted == 2 == Judgement.objects.count()
    assert set(report.stop_reasons.values()) == {"max_items"}


@live
def test_rating_campaign_and_max_items(live_server):
    campaign = CampaignFactory(task_kind=TaskKind.RATING)
    for number in range(4):
        prompt = PromptFactory(campaign=campaign)
        RatingItemFactory(campaign=campaign, prompt=prompt,
                          completion_a=CompletionFactory(prompt=prompt, text=f"{POSITIVE} {number}"))
    report = simulate_labelers_run(
        base_url=live_server.url, campaign=campaign.name, labelers=2, max_items=3, noise={"temperature": 0}
    )

    assert report.submitted == 3 == Rating.objects.count()
    assert set(Rating.objects.values_list("value", flat=True)) == {"positive"}
    assert set(report.stop_reasons.values()) == {"max_items"}


@live
def test_command_prints_a_summary(live_server, capsys):
    campaign, _ = sentiment_campaign(items=2, overlap=1)
    call_command("simulate_labelers", "--campaign", campaign.name, "--labelers", "2", "--base-url", live_server.url,
                 "--pay-per-judgement", "campaign")

    out = capsys.readouterr().out
    assert "Submitted 2 judgements" in out and "sim-001" in out and "sim-002" in out
    assert Judgement.objects.count() == 2
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == Decimal("0.20")  # the campaign's $0.10


def test_unknown_campaign_is_refused_before_any_account_is_made(db):
    with pytest.raises(InvalidInput, match="No campaign 'no-such-campaign'"):
        simulate_labelers_run(base_url="http://127.0.0.1:9", campaign="no-such-campaign", labelers=1)
    assert not LabelerProfile.objects.exists()


@live
def test_a_closed_campaign_stops_labelers_with_errors(live_server):
    campaign, _ = sentiment_campaign(items=1, overlap=1, is_active=False)
    report = simulate_labelers_run(base_url=live_server.url, campaign=campaign.name, labelers=1)
    assert report.submitted == 0 and report.errors >= 1
    assert report.stop_reasons == {"sim-001": "errors"}


def test_ensure_makes_the_accounts_labelers_of_the_campaign(db):
    campaign, other = CampaignFactory(), CampaignFactory()
    accounts = simulated_labelers_ensure(count=2, campaign=campaign)
    simulated_labelers_ensure(count=2, campaign=campaign)  # again: nothing doubles
    assert set(CampaignMembership.objects.values_list("campaign", "user", "role")) == {
        (campaign.pk, user.pk, CampaignRole.LABELER) for user, _ in accounts
    }
    MembershipFactory(campaign=other, user=accounts[0][0], role=CampaignRole.MANAGER)
    with pytest.raises(InvalidInput, match="manages campaign"):
        simulated_labelers_ensure(count=1, campaign=other)


def test_ensure_reuses_accounts_and_tokens(db):
    first = simulated_labelers_ensure(count=2)
    again = simulated_labelers_ensure(count=3, pay_per_judgement=Decimal("0.05"))

    assert [token for _, token in again[:2]] == [token for _, token in first]
    assert [user.username for user, _ in again] == ["sim-001", "sim-002", "sim-003"]
    profiles = LabelerProfile.objects.filter(user__username__startswith="sim-")
    assert {(p.kind, p.pay_per_judgement) for p in profiles} == {(LabelerKind.SIMULATED, Decimal("0.05"))}
    assert not again[0][0].has_usable_password()


def test_ensure_never_takes_over_a_persons_account(db):
    LabelerFactory(username="alice-001")
    with pytest.raises(InvalidInput, match="human"):
        simulated_labelers_ensure(count=1, prefix="alice")
    assert LabelerProfile.objects.get(user__username="alice-001").kind == LabelerKind.HUMAN
    with pytest.raises(InvalidInput):
        simulated_labelers_ensure(count=0)
    with pytest.raises(InvalidInput):
        simulated_labelers_ensure(count=1, prefix="no spaces")


@pytest.mark.parametrize(
    "arguments",
    [{"gold": "no-such-gold"}, {"noise": {"temprature": 0.1}}, {"labelers": 0}, {"base_url": "127.0.0.1:8000"}],
)
def test_bad_settings_are_refused_before_any_account_is_made(db, arguments):
    with pytest.raises(InvalidInput):
        simulate_labelers_run(**({"base_url": "http://127.0.0.1:9", "campaign": "c", "labelers": 1} | arguments))
    assert not LabelerProfile.objects.exists()


def test_command_refuses_bad_settings_with_a_message(db):
    with pytest.raises(CommandError, match="unknown gold labeler"):
        call_command("simulate_labelers", "--campaign", "c", "--gold", "no-such-gold")
