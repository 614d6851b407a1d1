"""The money core: what a campaign has spent and holds in reservations, and charging a finished item.

Spent is the sum of the ledger; reserved is the sum over live leases. Both come from ONE statement so that
a judgement turning its reservation into a charge concurrently is seen entirely or not at all. Both stay sums
(no stored running total that could drift); indexes keep them cheap: `ledger_campaign_amount` lets the spent
half read only one campaign's amounts, and the partial `assignment_leased` holds only unsubmitted leases.
Locking protocol (only for campaigns with a money budget):
- claiming an item takes `FOR UPDATE` on the campaign row, so claims in a campaign are serial;
- submitting takes `FOR SHARE` on it: submits run side by side, but never interleave with a claim's
  check-then-reserve, so the lease-expiry instant is seen the same way by both.
"""

from datetime import datetime
from decimal import Decimal

from django.db import connection

from annotator.models import Assignment, AssignmentStatus, Campaign, Comparison, LedgerCategory, LedgerEntry
from annotator.services.pricing import ItemPrice


def campaign_lock(*, campaign_id: int) -> Campaign:
    """Lock the campaign row (`FOR UPDATE`) for the current transaction and return it, read under the lock."""
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def campaign_lock_if_budgeted(*, campaign_id: int) -> Campaign | None:
    """Lock the campaign row (`FOR UPDATE`) and return it, read under the lock, when it has a money budget.

    None, and no lock taken, when it has none: claims in an uncapped campaign need not be serial. One
    statement either way; a budget set concurrently is seen, since the lock waits for that writer.
    """
    return Campaign.objects.select_for_update().filter(pk=campaign_id, money_budget__isnull=False).first()


def campaign_lock_shared(*, campaign_id: int) -> None:
    """Lock the campaign row `FOR SHARE` for the current transaction (submits: see the protocol above)."""
    if connection.vendor != "postgresql":
        return  # SQLite (first runs only) serialises every writing transaction anyway
    # Django has no FOR SHARE; this raw lock is the one place that needs it. Nothing is read: callers have the row.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {Campaign._meta.db_table} WHERE id = %s FOR SHARE", [campaign_id])


# Spent and reserved of campaign %(campaign)s at %(now)s, in one statement (one snapshot).
MONEY_SPENT_AND_RESERVED_SQL = f"""
    SELECT
      (SELECT COALESCE(SUM(amount), 0) FROM {LedgerEntry._meta.db_table} WHERE campaign_id = %(campaign)s),
      (SELECT COALESCE(SUM(a.reserved_amount), 0)
         FROM {Assignment._meta.db_table} a JOIN {Comparison._meta.db_table} c ON c.id = a.comparison_id
        WHERE a.status = %(leased)s AND a.leased_until > %(now)s AND c.campaign_id = %(campaign)s)
"""


def money_spent_and_reserved_params(*, campaign_id: int, now: datetime) -> dict:
    return {
        "campaign": campaign_id,
        "leased": AssignmentStatus.LEASED.value,
        "now": connection.ops.adapt_datetimefield_value(now),
    }


def money_spent_and_reserved(*, campaign_id: int, now: datetime) -> tuple[Decimal, Decimal]:
    """(spent, reserved) for a campaign, read in a single statement (one snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute(MONEY_SPENT_AND_RESERVED_SQL, money_spent_and_reserved_params(campaign_id=campaign_id, now=now))
        spent, reserved = cursor.fetchone()
    return Decimal(str(spent)), Decimal(str(reserved))  # str: SQLite (first runs only) sums to a float


def ledger_charge_item(*, assignment: Assignment, price: ItemPrice, unit: str) -> list[LedgerEntry]:
    """Charge a finished item: the labeler's pay and, when there is one, the platform fee.

    Called inside the submit transaction; the unique constraint on (assignment, labeling) makes a second
    charge for the same assignment impossible.
    """
    campaign_id = assignment.comparison.campaign_id
    entries = [
        LedgerEntry(
            campaign_id=campaign_id,
            category=LedgerCategory.LABELING,
            amount=price.pay,
            quantity=Decimal(1),
            unit=unit,
            labeler_id=assignment.labeler_id,
            assignment=assignment,
            round_id=assignment.comparison.round_id,
            seconds_on_page=price.paid_seconds,
            reason="judgement accepted",
        )
    ]
    if price.fee:
        entries.append(
            LedgerEntry(
                campaign_id=campaign_id,
                category=LedgerCategory.PLATFORM_FEE,
                amount=price.fee,
                quantity=Decimal(1),
                unit=unit,
                labeler_id=assignment.labeler_id,
                assignment=assignment,
                round_id=assignment.comparison.round_id,
                reason="platform fee on judgement",
            )
        )
    return LedgerEntry.objects.bulk_create(entries)
