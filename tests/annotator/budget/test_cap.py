"""Reservation and the hard cap: claims reserve the item's price under the campaign lock, submits turn the
reservation into a charge, lease expiry gives the reservation back, and nothing accepted goes unpaid."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from annotator.api.errors import exception_handler
from annotator.models import Assignment, LedgerCategory, LedgerEntry, PayModel
from annotator.services.assignments import assignment_claim, assignment_next
from annotator.core.errors import BudgetExhausted, LeaseExpired
from annotator.services.judgements import judgement_submit
from annotator.selectors.money import campaign_money
from tests.factories import CampaignFactory, ComparisonFactory

pytestmark = pytest.mark.django_db


def spent_and_reserved(campaign, *, now) -> tuple[Decimal, Decimal]:
    funds = campaign_money(campaign_id=campaign.pk, now=now)
    return funds.spent, funds.reserved


def ledger_total(campaign) -> Decimal:
    return sum((e.amount for e in LedgerEntry.objects.filter(campaign=campaign)), Decimal("0"))


def test_claim_is_refused_when_one_more_item_would_pass_the_budget(labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.25"), labelers=[labeler])
    ComparisonFactory.create_batch(3, campaign=campaign)
    assignment_claim(labeler=labeler, campaign=campaign)
    assignment_claim(labeler=labeler, campaign=campaign)
    with pytest.raises(BudgetExhausted) as refused:
        assignment_claim(labeler=labeler, campaign=campaign)
    assert refused.value.status == 402
    assert "paused for budget: 0.2000 of 0.2500 USD is spent or reserved" in refused.value.message
    assert "one more item costs up to 0.1000" in refused.value.message
    assert Assignment.objects.count() == 2
    response = exception_handler(refused.value, {})  # what the REST API answers
    assert response.status_code == 402 and response.data["code"] == "budget_exhausted"


def test_a_budget_of_exactly_n_items_allows_exactly_n(labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.30"), labelers=[labeler])
    ComparisonFactory.create_batch(4, campaign=campaign)
    leases = assignment_next(labeler=labeler, campaign=campaign, prefetch=5)
    assert len(leases) == 3  # prefetching stops at the cap instead of failing


def test_judgements_on_live_leases_are_accepted_and_paid_after_the_cap_is_reached(labeler, other_labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.20"), labelers=[labeler, other_labeler])
    ComparisonFactory.create_batch(4, campaign=campaign)
    first = assignment_claim(labeler=labeler, campaign=campaign)
    second = assignment_claim(labeler=other_labeler, campaign=campaign)
    with pytest.raises(BudgetExhausted):
        assignment_claim(labeler=other_labeler, campaign=campaign)
    judgement_submit(labeler=labeler, assignment_id=first.pk, choice="a", milliseconds=4000)
    judgement_submit(labeler=other_labeler, assignment_id=second.pk, choice="b", milliseconds=4000)
    charged = LedgerEntry.objects.filter(category=LedgerCategory.LABELING)
    assert sorted(charged.values_list("assignment_id", "amount")) == [
        (first.pk, Decimal("0.1000")), (second.pk, Decimal("0.1000")),
    ]
    assert ledger_total(campaign) == campaign.money_budget
    with pytest.raises(BudgetExhausted):
        assignment_claim(labeler=labeler, campaign=campaign)


def test_lease_expiry_releases_the_reservation(labeler, other_labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.10"), lease_seconds=60, labelers=[labeler, other_labeler])
    ComparisonFactory.create_batch(2, campaign=campaign)
    start = timezone.now()
    lease = assignment_claim(labeler=labeler, campaign=campaign, now=start)
    assert spent_and_reserved(campaign, now=start) == (Decimal("0"), Decimal("0.1000"))
    with pytest.raises(BudgetExhausted):
        assignment_claim(labeler=other_labeler, campaign=campaign, now=start + timedelta(seconds=59))

    after_expiry = start + timedelta(seconds=60)
    assert spent_and_reserved(campaign, now=after_expiry) == (Decimal("0"), Decimal("0"))
    taken = assignment_claim(labeler=other_labeler, campaign=campaign, now=after_expiry)
    assert taken is not None and taken.reserved_amount == Decimal("0.1000")
    with pytest.raises(LeaseExpired):
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=1000, now=after_expiry)
    judgement_submit(labeler=other_labeler, assignment_id=taken.pk, choice="b", milliseconds=1000, now=after_expiry)
    assert list(LedgerEntry.objects.values_list("assignment_id", "amount")) == [(taken.pk, Decimal("0.1000"))]


def test_hourly_pay_charges_recorded_time_capped_per_item_plus_fee(labeler):
    campaign = CampaignFactory(
        pay_model=PayModel.HOURLY, hourly_rate=Decimal("18.00"), max_paid_seconds_per_item=120,
        platform_fee_percent=Decimal("10"), money_budget=Decimal("5.00"),
        labelers=[labeler],
    )
    ComparisonFactory.create_batch(2, campaign=campaign)
    quick, idle = assignment_next(labeler=labeler, campaign=campaign, prefetch=1)
    assert quick.reserved_amount == idle.reserved_amount == Decimal("0.6600")  # the cap's pay plus fee

    judgement_submit(labeler=labeler, assignment_id=quick.pk, choice="a", milliseconds=40_000)
    judgement_submit(labeler=labeler, assignment_id=idle.pk, choice="b", milliseconds=15 * 60_000)
    rows = LedgerEntry.objects.order_by("assignment_id", "category").values_list(
        "assignment_id", "category", "amount", "seconds_on_page"
    )
    assert list(rows) == [
        (quick.pk, "labeling", Decimal("0.2000"), Decimal("40.000")),
        (quick.pk, "platform_fee", Decimal("0.0200"), None),
        (idle.pk, "labeling", Decimal("0.6000"), Decimal("120.000")),  # 15 idle minutes paid as 2
        (idle.pk, "platform_fee", Decimal("0.0600"), None),
    ]
    assert spent_and_reserved(campaign, now=timezone.now()) == (Decimal("0.8800"), Decimal("0"))


def test_rates_raised_mid_lease_never_charge_more_than_was_reserved(labeler):
    campaign = CampaignFactory(money_budget=Decimal("0.10"), platform_fee_percent=Decimal("0"), labelers=[labeler])
    ComparisonFactory(campaign=campaign)
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    campaign.pay_per_judgement = Decimal("0.50")
    campaign.save(update_fields=["pay_per_judgement"])
    judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=100)
    assert ledger_total(campaign) == Decimal("0.1000")


def test_ledger_entries_cannot_be_rewritten_in_the_database(labeler, campaign):
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=5)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.update(amount=Decimal("0"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.all().delete()
    assert ledger_total(campaign) == Decimal("0.1000")


def test_unbudgeted_campaign_charges_every_item(labeler):
    campaign = CampaignFactory(money_budget=None, pay_per_judgement=Decimal("0.07"), labelers=[labeler])
    ComparisonFactory.create_batch(3, campaign=campaign)
    for lease in assignment_next(labeler=labeler, campaign=campaign, prefetch=2):
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="tie", milliseconds=10)
    assert ledger_total(campaign) == Decimal("0.2100")
