"""The money core's lock protocol, and the campaign locks that keep it.

Spent is the sum of the ledger; reserved is the sum over live leases (both defined in annotator/sql/rules.sql, read
by annotator.selectors.money). Both come from ONE statement so that a judgement turning its reservation into a
charge concurrently is seen entirely or not at all. The charge of an answer is in annotator/sql/answer.sql. Neither is a
counter bumped by each write, which could drift. Spent is read as the campaign's memo of an immutable prefix
of its ledger (`Campaign.ledger_prefix_sum`, the sum of its entries up to `ledger_prefix_end_id`) plus the
few entries after it, so a claim's money check costs the same at 40 entries or 4 million.
Locking protocol:
- every ledger insert holds the campaign row lock, shared (submits, reversals) or exclusive (claims, GPU
  charges, staff entries), from before the insert until it commits;
- so under the exclusive lock no insert is in flight: every entry a later statement sees is committed and
  every entry written later gets a higher id. That is when the claim (annotator/sql/claim.sql) moves the memo
  forward;
- every claim takes the lock exclusively, so claims are serial, and submits take it shared: they run side
  by side, but never interleave with a claim's check-then-reserve, so the lease-expiry instant is seen the
  same way by both.
"""

from django.db import connection

from annotator.models import Campaign
from annotator.sql.rows import RowPart, split_row

_CAMPAIGN = RowPart(Campaign)
_CAMPAIGN_LOCKED = f"SELECT {_CAMPAIGN.columns('k')} FROM annotator_campaign k WHERE k.id = %s FOR UPDATE"


def campaign_lock(*, campaign_id: int) -> Campaign:
    """Lock the campaign row (`FOR UPDATE`) for the current transaction and return it, read under the lock."""
    with connection.cursor() as cursor:
        cursor.execute(_CAMPAIGN_LOCKED, [campaign_id])
        row = cursor.fetchone()
    if row is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}.")
    [campaign] = split_row(row, _CAMPAIGN)
    return campaign


def campaign_lock_shared(*, campaign_id: int) -> None:
    """Lock the campaign row `FOR SHARE` for the current transaction (reversals: see the protocol above)."""
    # Django has no FOR SHARE (submits take it in their assignment read). Nothing is read: callers have the row.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM annotator_campaign WHERE id = %s FOR SHARE", [campaign_id])
