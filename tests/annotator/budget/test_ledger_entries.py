"""Staff entries (invoices, fees, credits) and reversals: append-only, audited, reversed at most once."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from annotator.models import LedgerCategory, LedgerEntry, Round
from annotator.selectors.budget import labeler_earnings
from annotator.services.assignments import assignment_claim
from annotator.services.budget import ledger_entry_record, ledger_entry_reverse
from annotator.core.errors import AccessDenied, InvalidInput, NotFound
from annotator.services.judgements import judgement_submit
from annotator.selectors.money import campaign_money
from tests.factories import CampaignFactory, StaffFactory

pytestmark = pytest.mark.django_db


def spent(campaign) -> Decimal:
    return campaign_money(campaign_id=campaign.pk, now=timezone.now()).spent


def test_staff_records_an_invoice_with_who_and_why(staff, campaign, labeler):
    round_ = Round.objects.create(campaign=campaign, number=1)
    entry = ledger_entry_record(
        campaign=campaign, category=LedgerCategory.CONTRACTOR, amount="120.50", quantity=Decimal("3"), unit=" invoice ",
        labeler=labeler, round=round_, reason="  Invoice 2026-114 from Acme Labeling  ", recorded_by=staff,
    )
    entry.refresh_from_db()
    assert (entry.amount, entry.quantity, entry.unit, entry.reason) == (
        Decimal("120.5000"), Decimal("3.0000"), "invoice", "Invoice 2026-114 from Acme Labeling",
    )
    assert (entry.recorded_by, entry.labeler, entry.round, entry.created_at is not None) == (staff, labeler, round_, True)
    credit = ledger_entry_record(
        campaign=campaign, category=LedgerCategory.OTHER, amount=Decimal("-20.5"), reason="Credit note 7", recorded_by=staff
    )
    assert credit.amount == Decimal("-20.5")
    assert spent(campaign) == Decimal("100.0000")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reason": "  "}, "reason is required"),
        ({"amount": "0"}, "must not be zero"),
        ({"amount": "0.00001"}, "at most 4 decimal places"),
        ({"amount": "1e11"}, "at most 4 decimal places"),
        ({"amount": "ten"}, "amount must be a number"),
        ({"amount": float("nan")}, "finite number"),
        ({"amount": True}, "amount must be a number"),
        ({"category": "bribes"}, "category must be one of"),
        ({"quantity": "x"}, "quantity must be a number"),
    ],
)
def test_bad_entries_are_refused_with_a_clear_message(staff, campaign, fields, message):
    arguments = {"category": "contractor", "amount": "10", "reason": "invoice 1"} | fields
    with pytest.raises(InvalidInput, match=message):
        ledger_entry_record(campaign=campaign, recorded_by=staff, **arguments)
    assert not LedgerEntry.objects.exists()


def test_round_of_another_campaign_is_refused(staff, campaign):
    elsewhere = Round.objects.create(campaign=CampaignFactory(), number=1)
    with pytest.raises(InvalidInput, match="belongs to another campaign"):
        ledger_entry_record(
            campaign=campaign, category="other", amount="1", reason="r", recorded_by=staff, round=elsewhere
        )


def test_only_staff_may_record_or_reverse(labeler, staff, campaign):
    with pytest.raises(AccessDenied):
        ledger_entry_record(campaign=campaign, category="other", amount="1", reason="r", recorded_by=labeler)
    entry = ledger_entry_record(campaign=campaign, category="other", amount="1", reason="r", recorded_by=staff)
    with pytest.raises(AccessDenied):
        ledger_entry_reverse(entry_id=entry.pk, recorded_by=labeler, reason="mine now")
    assert LedgerEntry.objects.count() == 1


def test_reversal_cancels_an_entry_once_and_keeps_both(staff, campaign):
    entry = ledger_entry_record(
        campaign=campaign, category="contractor", amount="42.1234", quantity="2", unit="invoice",
        reason="Invoice 9", recorded_by=staff,
    )
    auditor = StaffFactory()
    reversal = ledger_entry_reverse(entry_id=entry.pk, recorded_by=auditor, reason="Invoice 9 was sent twice")
    assert (reversal.amount, reversal.quantity, reversal.reverses, reversal.recorded_by, reversal.reason) == (
        Decimal("-42.1234"), Decimal("-2.0000"), entry, auditor, "Invoice 9 was sent twice",
    )
    assert spent(campaign) == 0 and LedgerEntry.objects.count() == 2
    with pytest.raises(InvalidInput, match=f"already reversed by entry {reversal.pk}"):
        ledger_entry_reverse(entry_id=entry.pk, recorded_by=staff, reason="again")
    with pytest.raises(InvalidInput, match="itself the reversal"):
        ledger_entry_reverse(entry_id=reversal.pk, recorded_by=staff, reason="undo the undo")
    with pytest.raises(NotFound):
        ledger_entry_reverse(entry_id=999_999, recorded_by=staff, reason="?")
    with pytest.raises(InvalidInput, match="reason is required"):
        ledger_entry_reverse(entry_id=entry.pk, recorded_by=staff, reason="")
    assert LedgerEntry.objects.count() == 2


def test_reversing_a_labeling_charge_nets_the_labelers_earnings(labeler, staff, campaign):
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=30_000)
    charge = LedgerEntry.objects.get(assignment=lease, category="labeling")
    ledger_entry_reverse(entry_id=charge.pk, recorded_by=staff, reason="Spam answers: refunded by the vendor")
    [row] = labeler_earnings(campaign=campaign)
    assert (row.items, row.earned) == (1, Decimal("0"))
    assert spent(campaign) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_reversals_of_one_entry_make_exactly_one():
    staff = StaffFactory()
    campaign = CampaignFactory()
    entry = ledger_entry_record(campaign=campaign, category="other", amount="5", reason="fee", recorded_by=staff)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def reverse():
        try:
            barrier.wait()
            ledger_entry_reverse(entry_id=entry.pk, recorded_by=staff, reason="duplicate")
            outcomes.append("reversed")
        except InvalidInput as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=reverse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes)[-1] == "reversed" and outcomes.count("reversed") == 1
    assert all("already reversed" in o for o in outcomes if o != "reversed")
    assert spent(campaign) == 0
