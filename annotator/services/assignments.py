"""Handing items to labelers: claim the next one, keep a prefetched one ready, let stale leases lapse.

A lease is live while LEASED and before `leased_until`. An item never has more live or submitted
assignments than it wants judgements, and a labeler never gets the same item twice (also a unique
constraint).

Claims in a campaign are serial: each holds the campaign row lock (`FOR UPDATE`) for its whole transaction,
and every submit holds it shared (see annotator.services.ledger). So the one statement that picks the
candidate and writes the lease starts after every earlier claim and submit of the campaign has committed,
and its count of free slots is exact. The candidate row is also taken `FOR UPDATE SKIP LOCKED`, so a
comparison that someone else holds (a round being closed by staff) is passed over rather than waited for.
The lock is held for 2 to 5 ms a claim on a 2-core machine (docs/benchmarks.md), which caps one campaign at
a few hundred claims a second; campaigns do not wait for each other.

This is the labeling hot path (every next-item call runs it), so its statements are written in SQL (see
annotator.services.rows): a claim is the campaign lock, the money check (budgeted campaigns), and the lease
write, which on PostgreSQL also returns the item's texts. The rows come back as ordinary model instances, a
lease with its comparison, prompt, completions and campaign loaded.
"""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotator.models import Assignment, AssignmentStatus, Campaign, Comparison, Completion, Prompt
from annotator.services.access import campaign_lookup, labeler_profile_get
from annotator.services.errors import BudgetExhausted, CampaignClosed, NotFound
from annotator.services.ledger import campaign_lock, ledger_prefix_advance_and_read
from annotator.services.pricing import item_price
from annotator.services.rows import LEASED, SUBMITTED, attnames, columns, instance_from_row, row_lock

_ASSIGNMENT = Assignment._meta.db_table
_COMPARISON = Comparison._meta.db_table
_CAMPAIGN = Campaign._meta.db_table
_ASSIGNMENT_FIELDS = attnames(Assignment)
_COMPARISON_FIELDS = attnames(Comparison)
_CAMPAIGN_FIELDS = attnames(Campaign)
# A comparison as a labeler gets it: all its columns, then the texts of its prompt and completions.
_ITEM_COLUMNS = f"{columns(Comparison, 'c')}, p.text, ca.text, cb.text"
_ITEM_JOINS = f"""
    JOIN {Prompt._meta.db_table} p ON p.id = c.prompt_id
    JOIN {Completion._meta.db_table} ca ON ca.id = c.completion_a_id
    LEFT JOIN {Completion._meta.db_table} cb ON cb.id = c.completion_b_id"""
# Slots held on comparison c: submitted, or leased and not yet expired (the SQL twin of `live_q`).
_LIVE_COUNT = f"""(
    SELECT COUNT(*) FROM {_ASSIGNMENT} live
     WHERE live.comparison_id = c.id
       AND (live.status = {SUBMITTED} OR (live.status = {LEASED} AND live.leased_until > %(now)s)))"""
_NOT_SEEN = f"""NOT EXISTS (
    SELECT 1 FROM {_ASSIGNMENT} seen WHERE seen.comparison_id = c.id AND seen.labeler_id = %(labeler)s)"""


def live_q(now: datetime, prefix: str = "") -> Q:
    """Assignments that hold a slot: submitted, or leased and not yet expired."""
    return Q(**{f"{prefix}status": AssignmentStatus.SUBMITTED}) | Q(
        **{f"{prefix}status": AssignmentStatus.LEASED, f"{prefix}leased_until__gt": now}
    )


def claim_sql_params(*, now: datetime | None = None, **params) -> dict:
    """Query parameters, with `now` adapted for the database (SQLite keeps text)."""
    if now is not None:
        params["now"] = connection.ops.adapt_datetimefield_value(now)
    return params


def _comparison_from_row(row) -> Comparison:
    """A Comparison with its prompt and completions (only their texts loaded) from `_ITEM_COLUMNS`."""
    count = len(_COMPARISON_FIELDS)
    comparison = instance_from_row(Comparison, row)
    prompt_text, text_a, text_b = row[count : count + 3]
    comparison.prompt = Prompt.from_db(connection.alias, ["id", "text"], [comparison.prompt_id, prompt_text])
    comparison.completion_a = Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_a_id, text_a])
    comparison.completion_b = (
        Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_b_id, text_b])
        if comparison.completion_b_id is not None else None
    )
    return comparison


# The active campaign, and the labeler's unexpired unsubmitted leases in it, oldest first (none: one row
# with NULLs after the campaign's columns).
_CAMPAIGN_AND_LIVE_LEASES = f"""
    SELECT {columns(Campaign, "k")}, {columns(Assignment, "a")}, {_ITEM_COLUMNS}
      FROM {_CAMPAIGN} k
      LEFT JOIN ({_ASSIGNMENT} a JOIN {_COMPARISON} c ON c.id = a.comparison_id {_ITEM_JOINS})
        ON c.campaign_id = k.id AND a.labeler_id = %(labeler)s AND a.status = {LEASED} AND a.leased_until > %(now)s
     WHERE k.is_active AND k.{{column}} = %(campaign)s
     ORDER BY a.leased_at, a.id
     LIMIT %(limit)s
"""
_CAMPAIGN_AND_LIVE_LEASES_BY = {
    key: _CAMPAIGN_AND_LIVE_LEASES.format(column=column) for key, column in (("pk", "id"), ("name", "name"))
}


def campaign_and_live_leases(
    *, labeler: AbstractBaseUser, campaign: str | int, now: datetime, limit: int
) -> tuple[Campaign, list[Assignment]]:
    """An active campaign by name or id, and the labeler's live leases in it (at most `limit`, oldest first,
    each with its comparison, prompt, completions and campaign loaded), in one statement. NotFound when no
    such campaign is active."""
    [(key, value)] = campaign_lookup(campaign).items()
    with connection.cursor() as cursor:
        cursor.execute(
            _CAMPAIGN_AND_LIVE_LEASES_BY[key],
            claim_sql_params(labeler=labeler.pk, campaign=value, now=now, limit=limit),
        )
        rows = cursor.fetchall()
    if not rows:
        raise NotFound(f"No active campaign {campaign!r}.")
    found = instance_from_row(Campaign, rows[0])
    leases = []
    for row in rows:
        row = row[len(_CAMPAIGN_FIELDS):]
        if row[0] is None:  # the LEFT JOIN found no lease
            break
        lease = instance_from_row(Assignment, row)
        lease.comparison = _comparison_from_row(row[len(_ASSIGNMENT_FIELDS):])
        lease.comparison.campaign, lease.labeler = found, labeler
        leases.append(lease)
    return found, leases


# The candidate (the first open comparison by priority that the labeler has not had and that has a free
# slot) and its lease, in one statement: see the module docstring for why its count is exact.
_LEASE_INSERT = f"""
    INSERT INTO {_ASSIGNMENT}
        (comparison_id, labeler_id, status, swapped, leased_at, leased_until, submitted_at, reserved_amount)
    SELECT c.id, %(labeler)s, %(status)s, %(swapped)s, %(now)s, %(until)s, NULL, %(reserved)s
      FROM {_COMPARISON} c
     WHERE c.campaign_id = %(campaign)s AND c.is_open
       AND {_NOT_SEEN}
       AND c.judgements_wanted > {_LIVE_COUNT}
     ORDER BY c.priority DESC, c.id
     LIMIT 1{{lock}}
    RETURNING id, comparison_id
"""



def lease_insert_sql() -> str:
    """The claim's lease write (parameters: campaign, labeler, status, swapped, now, until, reserved)."""
    return _LEASE_INSERT.format(lock=row_lock("FOR UPDATE OF c SKIP LOCKED"))


def _lease_insert_with_item_sql() -> str:
    """The lease write that also returns the item's texts (PostgreSQL: SQLite has no INSERT inside WITH). The
    texts never change, so reading them under the campaign lock costs the lock a join, not a round trip."""
    return (f"WITH lease AS ({lease_insert_sql()}) SELECT lease.id, {_ITEM_COLUMNS} "
            f"FROM lease JOIN {_COMPARISON} c ON c.id = lease.comparison_id {_ITEM_JOINS}")


_ITEM_BY_ID = f"SELECT {_ITEM_COLUMNS} FROM {_COMPARISON} c {_ITEM_JOINS} WHERE c.id = %s"


def _lease_insert(*, campaign: Campaign, labeler: AbstractBaseUser, now: datetime, reserved: Decimal) -> Assignment | None:
    """Write a lease on the claim's candidate, its comparison loaded where the database returned the texts in
    the same statement; None when the campaign has nothing left for the labeler."""
    swapped = random.random() < 0.5
    until = now + timedelta(seconds=campaign.lease_seconds)
    with_item = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            _lease_insert_with_item_sql() if with_item else lease_insert_sql(),
            claim_sql_params(
                campaign=campaign.pk, labeler=labeler.pk, status=AssignmentStatus.LEASED.value, swapped=swapped, now=now,
                until=connection.ops.adapt_datetimefield_value(until),
                reserved=connection.ops.adapt_decimalfield_value(reserved),
            ),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    stored = {  # both statements return the lease's id, then its comparison's
        "id": row[0], "comparison_id": row[1], "labeler_id": labeler.pk, "status": AssignmentStatus.LEASED.value,
        "swapped": swapped, "leased_at": now, "leased_until": until, "submitted_at": None, "reserved_amount": reserved,
    }
    lease = Assignment.from_db(connection.alias, _ASSIGNMENT_FIELDS, [stored[name] for name in _ASSIGNMENT_FIELDS])
    lease.labeler = labeler
    if with_item:
        lease.comparison = _comparison_from_row(row[1:])
    return lease


def assignment_claim(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime | None = None) -> Assignment | None:
    """Claim one new item for the labeler, reserving its price. None when nothing is left for them.

    Raises BudgetExhausted when the campaign's money cap cannot cover one more item (spent + reserved +
    price > budget), checked under the campaign row lock, which every claim of the campaign takes (see the
    module docstring), so no two claims can both pass it. The lease comes back with its comparison, prompt,
    completions and campaign loaded.
    """
    profile = labeler_profile_get(user=labeler)
    with transaction.atomic():
        # Read under the lock: the caller's object may predate a cap set since.
        campaign = campaign_lock(campaign_id=campaign.pk)
        now = now or timezone.now()  # taken after the lock: see annotator.services.ledger
        if not campaign.is_active:
            raise CampaignClosed(f"Campaign {campaign.name!r} is closed.")
        price = item_price(campaign=campaign, profile=profile)
        if campaign.money_budget is not None:
            spent, reserved = ledger_prefix_advance_and_read(campaign_id=campaign.pk, now=now)
            if spent + reserved + price.total > campaign.money_budget:
                raise BudgetExhausted(
                    f"Campaign {campaign.name!r} is paused for budget: {spent + reserved} of "
                    f"{campaign.money_budget} {campaign.currency} is spent or reserved, and one more item costs "
                    f"up to {price.total}.",
                    spent=str(spent), reserved=str(reserved), budget=str(campaign.money_budget),
                )
        lease = _lease_insert(campaign=campaign, labeler=labeler, now=now, reserved=price.total)
    if lease is None:
        return None
    if not Assignment.comparison.is_cached(lease):  # SQLite: the texts are read after the lock is released
        with connection.cursor() as cursor:
            cursor.execute(_ITEM_BY_ID, [lease.comparison_id])
            lease.comparison = _comparison_from_row(cursor.fetchone())
    lease.comparison.campaign = campaign
    return lease


def assignment_next(
    *, labeler: AbstractBaseUser, campaign: Campaign | str | int, prefetch: int = 0, now: datetime | None = None
) -> list[Assignment]:
    """The labeler's current item and up to `prefetch` more, already claimed, oldest first, in an active
    campaign (given as a Campaign, or by name or id: NotFound when none such is active).

    Live leases are reused, so asking again (a reload, a retry) never claims a second copy of work. An
    empty list means the campaign has nothing left for this labeler. BudgetExhausted propagates only
    when the labeler holds no lease at all (otherwise they still have paid work in hand). Each lease comes
    with its comparison, prompt, completions and campaign loaded.
    """
    labeler_profile_get(user=labeler)
    claim_now = now  # None: each claim reads the clock after taking its lock
    now = now or timezone.now()
    found, leases = campaign_and_live_leases(
        labeler=labeler, campaign=campaign.pk if isinstance(campaign, Campaign) else campaign, now=now,
        limit=prefetch + 1,
    )
    while len(leases) < prefetch + 1:
        try:
            claimed = assignment_claim(labeler=labeler, campaign=found, now=claim_now)
        except BudgetExhausted:
            if leases:
                break
            raise
        if claimed is None:
            break
        leases.append(claimed)
    return leases


def comparison_answer_counted_statement(*, comparison_id: int) -> tuple[str, list]:
    """(sql, params) that counts one more answer on a comparison and closes it when that was the last one
    wanted, so claims no longer scan past it. Run in the submit transaction: the row update waits for any
    other answer to the same comparison and then reads its count, so two last answers never both miss
    closing it. Lock order everywhere: campaign, then comparison."""
    return (
        f"""UPDATE {_COMPARISON} SET judgements_received = judgements_received + 1,
                   is_open = is_open AND judgements_received + 1 < judgements_wanted
             WHERE id = %s""",
        [comparison_id],
    )
