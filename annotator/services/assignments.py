"""Handing items to labelers: claim the next one, keep a prefetched one ready, let stale leases lapse.

A lease is live while LEASED and before `leased_until`. An item never has more live or submitted
assignments than it wants judgements, and a labeler never gets the same item twice (also a unique
constraint). On PostgreSQL candidate rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, and the
count is taken again under the row lock, in a fresh statement, before the assignment is written.

This is the labeling hot path (every next-item call runs it), so its statements are written in SQL (see
annotator.services.rows): a claim is five statements (campaign lock, ledger memo, money check, candidate,
lease write). The rows come back as ordinary model instances, a lease with its comparison, prompt and
completions loaded.
"""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotator.models import Assignment, AssignmentStatus, Campaign, Comparison, Completion, Prompt
from annotator.services.access import labeler_profile_get
from annotator.services.errors import BudgetExhausted, CampaignClosed
from annotator.services.ledger import (
    campaign_lock_if_budgeted,
    campaign_read,
    ledger_prefix_advance,
    money_spent_and_reserved,
)
from annotator.services.pricing import item_price
from annotator.services.rows import attnames, columns, instance_from_row, row_lock

MAX_CLAIM_ATTEMPTS = 50

_ASSIGNMENT = Assignment._meta.db_table
_COMPARISON = Comparison._meta.db_table
_ASSIGNMENT_FIELDS = attnames(Assignment)
_COMPARISON_FIELDS = attnames(Comparison)
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
       AND (live.status = %(submitted)s OR (live.status = %(leased)s AND live.leased_until > %(now)s)))"""
_NOT_SEEN = f"""NOT EXISTS (
    SELECT 1 FROM {_ASSIGNMENT} seen WHERE seen.comparison_id = c.id AND seen.labeler_id = %(labeler)s)"""


def live_q(now: datetime, prefix: str = "") -> Q:
    """Assignments that hold a slot: submitted, or leased and not yet expired."""
    return Q(**{f"{prefix}status": AssignmentStatus.SUBMITTED}) | Q(
        **{f"{prefix}status": AssignmentStatus.LEASED, f"{prefix}leased_until__gt": now}
    )


def claim_sql_params(*, now: datetime | None = None, **params) -> dict:
    """Query parameters, with the status names and `now` adapted for the database (SQLite keeps text)."""
    if now is not None:
        params["now"] = connection.ops.adapt_datetimefield_value(now)
    return params | {"leased": AssignmentStatus.LEASED.value, "submitted": AssignmentStatus.SUBMITTED.value}


def _comparison_from_row(row) -> Comparison:
    """A Comparison with its prompt and completions (only their texts loaded) from `_ITEM_COLUMNS`."""
    count = len(_COMPARISON_FIELDS)
    comparison = instance_from_row(Comparison, row)
    prompt_text, text_a, text_b = row[count:]
    comparison.prompt = Prompt.from_db(connection.alias, ["id", "text"], [comparison.prompt_id, prompt_text])
    comparison.completion_a = Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_a_id, text_a])
    comparison.completion_b = (
        Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_b_id, text_b])
        if comparison.completion_b_id is not None else None
    )
    return comparison


def live_leases_for_labeler(
    *, labeler: AbstractBaseUser, campaign: Campaign, now: datetime, limit: int
) -> list[Assignment]:
    """The labeler's unexpired, unsubmitted leases in a campaign, oldest first, at most `limit`, each with its
    comparison, prompt, completions and campaign loaded."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {columns(Assignment, "a")}, {_ITEM_COLUMNS}
              FROM {_ASSIGNMENT} a JOIN {_COMPARISON} c ON c.id = a.comparison_id {_ITEM_JOINS}
             WHERE a.labeler_id = %(labeler)s AND a.status = %(leased)s AND a.leased_until > %(now)s
               AND c.campaign_id = %(campaign)s
             ORDER BY a.leased_at, a.id
             LIMIT %(limit)s
            """,
            claim_sql_params(labeler=labeler.pk, campaign=campaign.pk, now=now, limit=limit),
        )
        rows = cursor.fetchall()
    leases = []
    for row in rows:
        lease = instance_from_row(Assignment, row)
        lease.comparison = _comparison_from_row(row[len(_ASSIGNMENT_FIELDS):])
        lease.comparison.campaign, lease.labeler = campaign, labeler
        leases.append(lease)
    return leases


def open_candidate_sql(*, tried: set[int], wait: bool) -> str:
    """The claim's candidate: the first open comparison, by priority, that the labeler has not had, that has a
    free slot and is not in `tried`, locked FOR UPDATE (skipping rows other claimers hold, unless `wait`).
    Parameters: campaign, labeler, now (see `claim_sql_params`)."""
    passed_over = f"AND c.id NOT IN ({', '.join(str(int(pk)) for pk in sorted(tried))})" if tried else ""
    return f"""
        SELECT {_ITEM_COLUMNS}
          FROM {_COMPARISON} c {_ITEM_JOINS}
         WHERE c.campaign_id = %(campaign)s AND c.is_open {passed_over}
           AND {_NOT_SEEN}
           AND c.judgements_wanted > {_LIVE_COUNT}
         ORDER BY c.priority DESC, c.id
         LIMIT 1{row_lock("FOR UPDATE OF c", "" if wait else "SKIP LOCKED")}
    """


def _open_candidate(
    *, campaign: Campaign, labeler: AbstractBaseUser, now: datetime, tried: set[int]
) -> Comparison | None:
    """Lock and return the claim's candidate (see `open_candidate_sql`), with its texts; None when none is left."""
    params = claim_sql_params(campaign=campaign.pk, labeler=labeler.pk, now=now)
    with connection.cursor() as cursor:
        # Usually an unlocked row is free: take it without waiting. When every open row is momentarily held
        # by other claimers, wait for the first one rather than wrongly answering "nothing left".
        cursor.execute(open_candidate_sql(tried=tried, wait=False), params)
        row = cursor.fetchone()
        if row is None and connection.features.has_select_for_update_skip_locked:
            cursor.execute(open_candidate_sql(tried=tried, wait=True), params)
            row = cursor.fetchone()
    return None if row is None else _comparison_from_row(row)


# Counts the comparison's slots again, and checks the labeler has not had it, in a snapshot taken after the
# comparison row lock (so a claim that committed meanwhile is seen), then writes the lease.
_INSERT_LEASE_IF_FREE = f"""
    INSERT INTO {_ASSIGNMENT}
        (comparison_id, labeler_id, status, swapped, leased_at, leased_until, submitted_at, reserved_amount)
    SELECT c.id, %(labeler)s, %(status)s, %(swapped)s, %(now)s, %(until)s, NULL, %(reserved)s
      FROM {_COMPARISON} c
     WHERE c.id = %(comparison)s AND c.judgements_wanted > {_LIVE_COUNT} AND {_NOT_SEEN}
    RETURNING id
"""


def _lease_insert_if_free(
    *, comparison: Comparison, labeler: AbstractBaseUser, now: datetime, until: datetime, reserved: Decimal
) -> Assignment | None:
    """Write a lease on the (locked) comparison when it still has a free slot and the labeler never had it."""
    swapped = random.random() < 0.5
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_LEASE_IF_FREE,
            claim_sql_params(
                comparison=comparison.pk, labeler=labeler.pk, status=AssignmentStatus.LEASED.value, swapped=swapped,
                now=now,
                until=connection.ops.adapt_datetimefield_value(until),
                reserved=connection.ops.adapt_decimalfield_value(reserved),
            ),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    stored = {
        "id": row[0], "comparison_id": comparison.pk, "labeler_id": labeler.pk, "status": AssignmentStatus.LEASED.value,
        "swapped": swapped, "leased_at": now, "leased_until": until, "submitted_at": None, "reserved_amount": reserved,
    }
    lease = Assignment.from_db(connection.alias, _ASSIGNMENT_FIELDS, [stored[name] for name in _ASSIGNMENT_FIELDS])
    lease.comparison, lease.labeler = comparison, labeler
    return lease


@transaction.atomic
def assignment_claim(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime | None = None) -> Assignment | None:
    """Claim one new item for the labeler, reserving its price. None when nothing is left for them.

    Raises BudgetExhausted when the campaign's money cap cannot cover one more item (spent + reserved +
    price > budget), checked while holding the campaign row lock (`FOR UPDATE`, budgeted campaigns only) so
    no two claims can both pass it. The chosen comparison row is locked too (`FOR UPDATE`, skipping rows that
    others hold). The lease comes back with its comparison, prompt, completions and campaign loaded.
    """
    profile = labeler_profile_get(user=labeler)
    # The campaign is read fresh (the caller's object may predate a cap set since), under the lock if capped.
    campaign = campaign_lock_if_budgeted(campaign_id=campaign.pk) or campaign_read(campaign_id=campaign.pk)
    now = now or timezone.now()  # taken after the lock: see annotator.services.ledger
    if not campaign.is_active:
        raise CampaignClosed(f"Campaign {campaign.name!r} is closed.")
    price = item_price(campaign=campaign, profile=profile)
    if campaign.money_budget is not None:
        ledger_prefix_advance(campaign_id=campaign.pk)  # under the exclusive lock, as it must be
        spent, reserved = money_spent_and_reserved(campaign_id=campaign.pk, now=now)
        if spent + reserved + price.total > campaign.money_budget:
            raise BudgetExhausted(
                f"Campaign {campaign.name!r} is paused for budget: {spent + reserved} of "
                f"{campaign.money_budget} {campaign.currency} is spent or reserved, and one more item costs up to "
                f"{price.total}.",
                spent=str(spent), reserved=str(reserved), budget=str(campaign.money_budget),
            )

    until = now + timedelta(seconds=campaign.lease_seconds)
    tried: set[int] = set()
    for _ in range(MAX_CLAIM_ATTEMPTS):
        comparison = _open_candidate(campaign=campaign, labeler=labeler, now=now, tried=tried)
        if comparison is None:
            return None
        tried.add(comparison.pk)
        lease = _lease_insert_if_free(
            comparison=comparison, labeler=labeler, now=now, until=until, reserved=price.total
        )
        if lease is not None:
            comparison.campaign = campaign
            return lease
    return None


def assignment_next(
    *, labeler: AbstractBaseUser, campaign: Campaign, prefetch: int = 0, now: datetime | None = None
) -> list[Assignment]:
    """The labeler's current item and up to `prefetch` more, already claimed, oldest first.

    Live leases are reused, so asking again (a reload, a retry) never claims a second copy of work. An
    empty list means the campaign has nothing left for this labeler. BudgetExhausted propagates only
    when the labeler holds no lease at all (otherwise they still have paid work in hand). Each lease comes
    with its comparison, prompt, completions and campaign loaded.
    """
    claim_now = now  # None: each claim reads the clock after taking its lock
    now = now or timezone.now()
    leases = live_leases_for_labeler(labeler=labeler, campaign=campaign, now=now, limit=prefetch + 1)
    while len(leases) < prefetch + 1:
        try:
            claimed = assignment_claim(labeler=labeler, campaign=campaign, now=claim_now)
        except BudgetExhausted:
            if leases:
                break
            raise
        if claimed is None:
            break
        leases.append(claimed)
    return leases


def comparison_close_when_filled(*, comparison_id: int) -> bool:
    """Close a comparison once every judgement it wants is in, so claims no longer scan past it.

    Called in the submit transaction. Locks the comparison row (FOR NO KEY UPDATE) before counting, in a
    later statement, so two last answers landing together see each other and one of them closes it. Lock
    order everywhere: campaign, then comparison. Returns True when this call closed it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {_COMPARISON} c WHERE c.id = %s{row_lock('FOR NO KEY UPDATE OF c')}", [comparison_id]
        )
        cursor.execute(
            f"""
            UPDATE {_COMPARISON} SET is_open = FALSE
             WHERE id = %(comparison)s AND is_open
               AND judgements_wanted <= (
                   SELECT COUNT(*) FROM {_ASSIGNMENT} a
                    WHERE a.comparison_id = {_COMPARISON}.id AND a.status = %(submitted)s)
            """,
            claim_sql_params(comparison=comparison_id),
        )
        return cursor.rowcount == 1

