"""The money core: what a campaign has spent and holds in reservations, and charging a finished item.

Spent is the sum of the ledger; reserved is the sum over live leases. Both come from ONE statement so that
a judgement turning its reservation into a charge concurrently is seen entirely or not at all. Neither is a
counter bumped by each write, which could drift. Spent is read as the campaign's memo of an immutable prefix
of its ledger (`Campaign.ledger_prefix_sum`, the sum of its entries up to `ledger_prefix_end_id`) plus the
few entries after it, so a claim's money check costs the same at 40 entries or 4 million.
Locking protocol:
- every ledger insert holds the campaign row lock, shared (submits, reversals) or exclusive (claims, GPU
  charges, staff entries), from before the insert until it commits;
- so under the exclusive lock no insert is in flight: every entry a later statement sees is committed and
  every entry written later gets a higher id. That is when `ledger_prefix_advance_and_read` moves the memo
  forward;
- every claim takes the lock exclusively, so claims are serial, and submits take it shared: they run side
  by side, but never interleave with a claim's check-then-reserve, so the lease-expiry instant is seen the
  same way by both.
"""

from datetime import datetime
from decimal import Decimal

from django.db import connection

from annotator.models import Assignment, Campaign, Comparison, LedgerCategory, LedgerEntry
from annotator.core.pricing import ItemPrice, money
from annotator.services.rows import LEASED, columns, insert_statement, instance_from_row, row_lock


_CAMPAIGN_ROW = f"SELECT {columns(Campaign, 'k')} FROM {Campaign._meta.db_table} k WHERE k.id = %s"


def _campaign_row(sql: str, campaign_id: int) -> Campaign:
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id])
        row = cursor.fetchone()
    if row is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}.")
    return instance_from_row(Campaign, row)


def campaign_lock(*, campaign_id: int) -> Campaign:
    """Lock the campaign row (`FOR UPDATE`) for the current transaction and return it, read under the lock."""
    return _campaign_row(_CAMPAIGN_ROW + row_lock("FOR UPDATE"), campaign_id)


def campaign_lock_shared(*, campaign_id: int) -> None:
    """Lock the campaign row `FOR SHARE` for the current transaction (reversals: see the protocol above)."""
    if connection.vendor != "postgresql":
        return  # SQLite (first runs only) serialises every writing transaction anyway
    # Django has no FOR SHARE (submits take it in their assignment read). Nothing is read: callers have the row.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {Campaign._meta.db_table} WHERE id = %s FOR SHARE", [campaign_id])


_LEDGER = LedgerEntry._meta.db_table
# The entries of campaign row k after its memoised prefix.
_LEDGER_TAIL = f"FROM {_LEDGER} e WHERE e.campaign_id = k.id AND e.id > k.ledger_prefix_end_id"
_RESERVED = f"""(SELECT COALESCE(SUM(a.reserved_amount), 0)
         FROM {Assignment._meta.db_table} a JOIN {Comparison._meta.db_table} c ON c.id = a.comparison_id
        WHERE a.status = {LEASED} AND a.leased_until > %(now)s AND c.campaign_id = %(campaign)s)"""

# Spent and reserved of campaign %(campaign)s at %(now)s, in one statement (one snapshot).
MONEY_SPENT_AND_RESERVED_SQL = f"""
    SELECT k.ledger_prefix_sum + (SELECT COALESCE(SUM(e.amount), 0) {_LEDGER_TAIL}), {_RESERVED}
      FROM {Campaign._meta.db_table} k WHERE k.id = %(campaign)s
"""

# Both SET expressions read the row as it was, so the sum and the new end cover the same entries; RETURNING
# reads the row as updated, whose memo is then all that was spent. (SQLite's RETURNING cannot name the alias.)
_LEDGER_PREFIX_ADVANCE = f"""
    UPDATE {Campaign._meta.db_table} AS k SET
      ledger_prefix_sum = k.ledger_prefix_sum + (SELECT COALESCE(SUM(e.amount), 0) {_LEDGER_TAIL}),
      ledger_prefix_end_id = COALESCE((SELECT MAX(e.id) {_LEDGER_TAIL}), k.ledger_prefix_end_id)
     WHERE k.id = %(campaign)s{{only_budgeted}}
    RETURNING ledger_prefix_sum, {_RESERVED}
"""
_LEDGER_PREFIX_ADVANCE_SQL = _LEDGER_PREFIX_ADVANCE.format(only_budgeted="")
# The same, returning no row for a campaign without a money budget: the claim statement on PostgreSQL runs it as
# a CTE (annotator.services.assignments), under the lock, with the same parameters.
LEDGER_PREFIX_ADVANCE_IF_BUDGETED_SQL = _LEDGER_PREFIX_ADVANCE.format(only_budgeted=" AND k.money_budget IS NOT NULL")


def ledger_prefix_advance_and_read(*, campaign_id: int, now: datetime) -> tuple[Decimal, Decimal]:
    """Fold the entries written since the campaign's memoised prefix into it, and return (spent, reserved) at
    `now`, in one statement. The caller must hold the campaign row lock exclusively (`campaign_lock`): see
    the protocol above."""
    return _spent_and_reserved(_LEDGER_PREFIX_ADVANCE_SQL, campaign_id=campaign_id, now=now)


def money_spent_and_reserved_params(*, campaign_id: int, now: datetime) -> dict:
    return {
        "campaign": campaign_id,
        "now": connection.ops.adapt_datetimefield_value(now),
    }


def money_spent_and_reserved(*, campaign_id: int, now: datetime) -> tuple[Decimal, Decimal]:
    """(spent, reserved) for a campaign, read in a single statement (one snapshot)."""
    return _spent_and_reserved(MONEY_SPENT_AND_RESERVED_SQL, campaign_id=campaign_id, now=now)


def _spent_and_reserved(sql: str, *, campaign_id: int, now: datetime) -> tuple[Decimal, Decimal]:
    """Run a statement whose one row is (spent, reserved) of the campaign at `now`, as exact amounts."""
    with connection.cursor() as cursor:
        cursor.execute(sql, money_spent_and_reserved_params(campaign_id=campaign_id, now=now))
        row = cursor.fetchone()
    if row is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}.")
    spent, reserved = row
    # SQLite (first runs only) sums decimals as floats: back to exact amounts, to the ledger's precision.
    return money(Decimal(str(spent))), money(Decimal(str(reserved)))


CHARGE_REASONS = {LedgerCategory.LABELING: "judgement accepted", LedgerCategory.PLATFORM_FEE: "platform fee on judgement"}


def ledger_charge_item_statement(*, assignment: Assignment, price: ItemPrice, unit: str) -> tuple[str, list]:
    """(sql, params) of the INSERT that charges a finished item: the labeler's pay and, when there is one, the
    platform fee. The submit runs it in its transaction, holding the campaign row lock shared (see above);
    the unique constraint on (assignment, labeling) makes a second charge for the same assignment impossible.
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
            reason=CHARGE_REASONS[LedgerCategory.LABELING],
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
                reason=CHARGE_REASONS[LedgerCategory.PLATFORM_FEE],
            )
        )
    return insert_statement(entries)


def ledger_charge_item_sql(*, item: str, pay: str, fee: str, paid_seconds: str, unit: str, at: str) -> str:
    """The same charge as `ledger_charge_item_statement`, as SQL for the server function that stores an answer
    (annotator.services.judgements): its values are the function's expressions, `item` a record with the
    assignment's id, labeler_id, campaign_id and round_id. The pay entry first, then a non-zero fee."""
    labeling, fee_category = LedgerCategory.LABELING.value, LedgerCategory.PLATFORM_FEE.value
    return f"""
    INSERT INTO {_LEDGER} (campaign_id, category, amount, quantity, unit, labeler_id, assignment_id, round_id,
                           task_ref, device_type, seconds_on_page, reverses_id, recorded_by_id, reason, created_at)
    SELECT {item}.campaign_id, e.category, e.amount, 1, {unit}, {item}.labeler_id, {item}.id, {item}.round_id,
           '', '', e.seconds, NULL, NULL, e.reason, {at}
      FROM (VALUES (1, '{labeling}', {pay}, {paid_seconds}, '{CHARGE_REASONS[labeling]}'),
                   (2, '{fee_category}', {fee}, NULL, '{CHARGE_REASONS[fee_category]}'))
           AS e (position, category, amount, seconds, reason)
     WHERE e.category = '{labeling}' OR e.amount <> 0
     ORDER BY e.position"""
