"""Handing items to labelers: claim the next one, keep a prefetched one ready, let stale leases lapse.

A lease is live while LEASED and before `leased_until`. An item never has more live or submitted
assignments than it wants judgements, and a labeler never gets the same item twice (also a unique
constraint).

Claims in a campaign are serial: each holds the campaign row lock (`FOR UPDATE`) for its whole transaction,
and every submit holds it shared (see annotator.services.ledger). So the one statement that picks the
candidate and writes the lease starts after every earlier claim and submit of the campaign has committed,
and its count of free slots is exact. The candidate row is also taken `FOR UPDATE SKIP LOCKED`, so a
comparison that someone else holds (a round being closed by staff) is passed over rather than waited for.

This is the labeling hot path (every next-item call runs it), so its statements are written in SQL (see
annotator.services.rows). On PostgreSQL a claim is one call of the server function `annotator_claim` (the
campaign lock, then one statement: money check, lease write, the item's texts; see
annotator.services.server_functions), so the lock is held only while PostgreSQL works and a claim costs the
web server one statement. Campaigns do not wait for each other. SQLite runs the same steps one by one. The rows
come back as ordinary model instances, a lease with its comparison, prompt, completions and campaign loaded.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotator.models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    Comparison,
    Completion,
    LabelerProfile,
    Prompt,
)
from annotator.services.access import (
    HOT_CAMPAIGN_FIELDS,
    HOT_COMPARISON_FIELDS,
    LABELER_COLUMNS,
    LABELER_WIDTH,
    ApiToken,
    campaign_lookup,
    labeler_from_row,
    labeler_profile_get,
    labeler_sql,
)
from annotator.core.errors import BudgetExhausted, CampaignClosed, NotFound
from annotator.services.ledger import (
    LEDGER_PREFIX_ADVANCE_IF_BUDGETED_SQL,
    campaign_lock,
    ledger_prefix_advance_and_read,
)
from annotator.core.pricing import item_price, money
from annotator.services.rows import (
    LEASED,
    SUBMITTED,
    attnames,
    columns,
    instance_from_row,
    row_lock,
)

_ASSIGNMENT = Assignment._meta.db_table
_COMPARISON = Comparison._meta.db_table
_CAMPAIGN = Campaign._meta.db_table
_ASSIGNMENT_FIELDS = attnames(Assignment)
_LEASES_START = LABELER_WIDTH + len(HOT_CAMPAIGN_FIELDS)  # in a row of _CAMPAIGN_AND_LIVE_LEASES
# A comparison as a labeler gets it: its HOT_ fields, then the texts of its prompt and completions.
_ITEM_COLUMNS = f"{columns(Comparison, 'c', HOT_COMPARISON_FIELDS)}, p.text, ca.text, cb.text"
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
    """A Comparison (its HOT_ fields) with its prompt and completions (only their texts) from `_ITEM_COLUMNS`."""
    count = len(HOT_COMPARISON_FIELDS)
    comparison = instance_from_row(Comparison, row, HOT_COMPARISON_FIELDS)
    prompt_text, text_a, text_b = row[count : count + 3]
    comparison.prompt = Prompt.from_db(connection.alias, ["id", "text"], [comparison.prompt_id, prompt_text])
    comparison.completion_a = Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_a_id, text_a])
    comparison.completion_b = (
        Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_b_id, text_b])
        if comparison.completion_b_id is not None else None
    )
    return comparison


# The asking labeler (see access.labeler_sql), the active campaign (NULLs: none such) and the labeler's
# unexpired unsubmitted leases in it, oldest first (none: one row with NULLs there).
_CAMPAIGN_AND_LIVE_LEASES = f"""
    SELECT {LABELER_COLUMNS}, {columns(Campaign, "k", HOT_CAMPAIGN_FIELDS)}, {columns(Assignment, "a")}, {_ITEM_COLUMNS}
      FROM {{source}}
      LEFT JOIN {_CAMPAIGN} k ON k.is_active AND k.{{column}} = %(campaign)s
      LEFT JOIN ({_ASSIGNMENT} a JOIN {_COMPARISON} c ON c.id = a.comparison_id {_ITEM_JOINS})
        ON c.campaign_id = k.id AND a.labeler_id = u.id AND a.status = {LEASED} AND a.leased_until > %(now)s
     WHERE {{condition}}
     ORDER BY a.leased_at, a.id
     LIMIT %(limit)s
"""


@cache
def _campaign_and_live_leases_sql(source: str, condition: str, column: str) -> str:
    return _CAMPAIGN_AND_LIVE_LEASES.format(source=source, condition=condition, column=column)


def campaign_and_live_leases(
    *, labeler: AbstractBaseUser | ApiToken, campaign: str | int, now: datetime, limit: int
) -> tuple[AbstractBaseUser, Campaign, list[Assignment]]:
    """The labeler (checked, with their profile: see access.labeler_from_row), an active campaign by name or id
    (its HOT_ fields), and the labeler's live leases in it (at most `limit`, oldest first, each with its
    comparison, prompt, completions and campaign loaded), in one statement. NotFound when no such campaign is
    active."""
    try:
        [(key, value)] = campaign_lookup(campaign).items()
    except NotFound:
        key, value = "pk", None  # an id no campaign can have: the labeler is still checked first
    source, condition, labeler_key = labeler_sql(labeler)
    sql = _campaign_and_live_leases_sql(source, condition, "id" if key == "pk" else "name")
    with connection.cursor() as cursor:
        cursor.execute(sql, claim_sql_params(labeler=labeler_key, campaign=value, now=now, limit=limit))
        rows = cursor.fetchall()
    labeler, row = labeler_from_row(labeler, rows[0] if rows else None)
    if row[0] is None:
        raise NotFound(f"No active campaign {campaign!r}.")
    found = instance_from_row(Campaign, row, HOT_CAMPAIGN_FIELDS)
    leases = []
    for row in rows:
        row = row[_LEASES_START:]
        if row[0] is None:  # the LEFT JOIN found no lease
            break
        lease = instance_from_row(Assignment, row)
        lease.comparison = _comparison_from_row(row[len(_ASSIGNMENT_FIELDS):])
        lease.comparison.campaign, lease.labeler = found, labeler
        leases.append(lease)
    return labeler, found, leases


# The candidate (the first open comparison by priority that the labeler has not had and that has a free
# slot) and its lease, in one statement: see the module docstring for why its count is exact.
_LEASE_INSERT = f"""
    INSERT INTO {_ASSIGNMENT}
        (comparison_id, labeler_id, status, swapped, leased_at, leased_until, submitted_at, reserved_amount)
    SELECT c.id, %(labeler)s, {LEASED}, %(swapped)s, %(now)s, %(until)s, NULL, %(reserved)s
      FROM {_COMPARISON} c
     WHERE c.campaign_id = %(campaign)s AND c.is_open{{checks}}
       AND {_NOT_SEEN}
       AND c.judgements_wanted > {_LIVE_COUNT}
     ORDER BY c.priority DESC, c.id
     LIMIT 1{{lock}}
    RETURNING id, comparison_id
"""


def lease_insert_sql(checks: str = "") -> str:
    """The claim's lease write (parameters: campaign, labeler, swapped, now, until, reserved)."""
    return _LEASE_INSERT.format(lock=row_lock("FOR UPDATE OF c SKIP LOCKED"), checks=checks)


# The claim on PostgreSQL: after the campaign lock, one statement advances the ledger memo and reads the money
# (budgeted campaigns), writes the lease if the campaign is still active and the item's price still fits in its
# budget, and returns the campaign's state as locked, the money read, and the lease with its comparison (a whole
# row) and the item's texts (no lease: NULLs). The two checks are uncorrelated subqueries, run once before the
# candidate scan. The texts never change, so reading them under the lock costs the lock a join, not a round trip.
_CLAIM_CHECKS = f"""
       AND EXISTS (SELECT 1 FROM {_CAMPAIGN} k WHERE k.id = %(campaign)s AND k.is_active)
       AND NOT EXISTS (SELECT 1 FROM memo JOIN {_CAMPAIGN} k ON k.id = %(campaign)s
                        WHERE memo.spent + memo.reserved + %(reserved)s > k.money_budget)"""


@cache
def claim_sql() -> str:
    """The claim's one statement, run after the campaign lock (parameters: those of `lease_insert_sql`)."""
    return f"""
    WITH memo (spent, reserved) AS ({LEDGER_PREFIX_ADVANCE_IF_BUDGETED_SQL}),
         lease AS ({lease_insert_sql(checks=_CLAIM_CHECKS)})
    SELECT k.is_active, k.money_budget, memo.spent, memo.reserved, lease.id, c, p.text, ca.text, cb.text
      FROM {_CAMPAIGN} k
      LEFT JOIN memo ON TRUE
      LEFT JOIN (lease JOIN {_COMPARISON} c ON c.id = lease.comparison_id {_ITEM_JOINS}) ON TRUE
     WHERE k.id = %(campaign)s
"""


_CLAIM_PARAMETERS = {
    "campaign": "bigint", "labeler": "integer", "swapped": "boolean", "now": "timestamptz",
    "until": "timestamptz", "reserved": "numeric",
}


def claim_function_sql() -> str:
    """`annotator_claim`, PostgreSQL's claim as one call: it takes the campaign lock, then runs `claim_sql()`,
    whose snapshot is taken after the lock (a volatile function's statements each take their own), so the free
    slots and the money it reads include every claim and answer that committed before. Installed after each
    migrate (annotator.services.server_functions)."""
    arguments = ", ".join(f"p_{name} {kind}" for name, kind in _CLAIM_PARAMETERS.items())
    return f"""
CREATE OR REPLACE FUNCTION annotator_claim({arguments})
RETURNS TABLE (is_active boolean, money_budget numeric, spent numeric, reserved numeric, lease_id bigint,
               comparison {_COMPARISON}, prompt_text text, text_a text, text_b text)
LANGUAGE plpgsql AS $function$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM {_CAMPAIGN} WHERE id = p_campaign FOR UPDATE;
    RETURN QUERY {claim_sql() % {name: f"p_{name}" for name in _CLAIM_PARAMETERS}};
END
$function$"""


_CLAIM_CALL = f"""
    SELECT r.is_active, r.money_budget, r.spent, r.reserved, r.lease_id,
           {columns(Comparison, "(r.comparison)", HOT_COMPARISON_FIELDS)},
           r.prompt_text, r.text_a, r.text_b
      FROM annotator_claim({", ".join(f"%({name})s" for name in _CLAIM_PARAMETERS)}) r"""

_ITEM_BY_ID = f"SELECT {_ITEM_COLUMNS} FROM {_COMPARISON} c {_ITEM_JOINS} WHERE c.id = %s"


@dataclass(frozen=True)
class _LeaseTerms:
    """What a claim writes into its lease besides the comparison it picks."""

    labeler: AbstractBaseUser
    swapped: bool  # sides randomised per assignment
    now: datetime
    until: datetime
    reserved: Decimal

    @classmethod
    def drawn(cls, *, labeler: AbstractBaseUser, campaign: Campaign, now: datetime, reserved: Decimal) -> "_LeaseTerms":
        return cls(labeler=labeler, swapped=random.random() < 0.5, now=now,
                   until=now + timedelta(seconds=campaign.lease_seconds), reserved=reserved)

    def sql_params(self, *, campaign: Campaign) -> dict:
        """The parameters of `lease_insert_sql()`, `claim_sql()` and `annotator_claim`."""
        return claim_sql_params(
            campaign=campaign.pk, labeler=self.labeler.pk, swapped=self.swapped,
            now=self.now, until=connection.ops.adapt_datetimefield_value(self.until),
            reserved=connection.ops.adapt_decimalfield_value(self.reserved),
        )

    def lease(self, *, lease_id: int, comparison_id: int) -> Assignment:
        """The lease as written, as the ORM would read it back."""
        stored = {
            "id": lease_id, "comparison_id": comparison_id, "labeler_id": self.labeler.pk,
            "status": AssignmentStatus.LEASED.value, "swapped": self.swapped, "leased_at": self.now,
            "leased_until": self.until, "submitted_at": None, "reserved_amount": self.reserved,
        }
        lease = Assignment.from_db(connection.alias, _ASSIGNMENT_FIELDS, [stored[name] for name in _ASSIGNMENT_FIELDS])
        lease.labeler = self.labeler
        return lease


def _budget_exhausted(
    *, campaign: Campaign, budget: Decimal, spent: Decimal, reserved: Decimal, price: Decimal
) -> BudgetExhausted:
    return BudgetExhausted(
        f"Campaign {campaign.name!r} is paused for budget: {spent + reserved} of {budget} "
        f"{campaign.currency} is spent or reserved, and one more item costs up to {price}.",
        spent=str(spent), reserved=str(reserved), budget=str(budget),
    )


def _claim_on_postgresql(
    *, labeler: AbstractBaseUser, campaign: Campaign, profile: LabelerProfile, now: datetime | None
) -> Assignment | None:
    """PostgreSQL's claim: one call of `annotator_claim` (the campaign lock and `claim_sql()`), so the lock is
    held only while PostgreSQL works, never across the network or a Python thread waiting for a core.

    The price and the lease's length come from the campaign as the caller read it; the budget and whether the
    campaign is still active are read under the lock. A rate changed in between applies from the next claim, as
    when it changes during a lease (a submit never charges more than was reserved). `now` is read before the
    lock: earlier than the lock, it counts at least as many leases live, so the slot and money checks only err
    on the safe side.
    """
    price = item_price(campaign=campaign, profile=profile).total
    terms = _LeaseTerms.drawn(labeler=labeler, campaign=campaign, now=now or timezone.now(), reserved=price)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_CALL, terms.sql_params(campaign=campaign))
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"No campaign {campaign.pk}.")
    is_active, budget, spent, reserved, lease_id, *item = row
    if not is_active:
        raise CampaignClosed(f"Campaign {campaign.name!r} is closed.")
    if lease_id is None:
        if spent is not None and spent + reserved + price > budget:
            raise _budget_exhausted(campaign=campaign, budget=money(budget), spent=money(spent),
                                    reserved=money(reserved), price=price)
        return None
    lease = terms.lease(lease_id=lease_id, comparison_id=item[0])
    lease.comparison = _comparison_from_row(item)
    lease.comparison.campaign = campaign
    return lease


def assignment_claim(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime | None = None) -> Assignment | None:
    """Claim one new item for the labeler, reserving its price. None when nothing is left for them.

    Raises BudgetExhausted when the campaign's money cap cannot cover one more item (spent + reserved +
    price > budget), checked under the campaign row lock, which every claim of the campaign takes (see the
    module docstring), so no two claims can both pass it. The lease comes back with its comparison, prompt,
    completions and campaign loaded.
    """
    profile = labeler_profile_get(user=labeler)
    if connection.vendor == "postgresql":
        return _claim_on_postgresql(labeler=labeler, campaign=campaign, profile=profile, now=now)
    # SQLite (first runs only): the same steps one by one, the money checked here.
    with transaction.atomic():
        # Read under the lock: the caller's object may predate a cap set since.
        campaign = campaign_lock(campaign_id=campaign.pk)
        now = now or timezone.now()
        if not campaign.is_active:
            raise CampaignClosed(f"Campaign {campaign.name!r} is closed.")
        price = item_price(campaign=campaign, profile=profile).total
        if campaign.money_budget is not None:
            spent, reserved = ledger_prefix_advance_and_read(campaign_id=campaign.pk, now=now)
            if spent + reserved + price > campaign.money_budget:
                raise _budget_exhausted(campaign=campaign, budget=campaign.money_budget, spent=spent,
                                        reserved=reserved, price=price)
        terms = _LeaseTerms.drawn(labeler=labeler, campaign=campaign, now=now, reserved=price)
        with connection.cursor() as cursor:
            cursor.execute(lease_insert_sql(), terms.sql_params(campaign=campaign))
            row = cursor.fetchone()
    if row is None:
        return None
    lease = terms.lease(lease_id=row[0], comparison_id=row[1])
    with connection.cursor() as cursor:  # the texts, read after the lock is released
        cursor.execute(_ITEM_BY_ID, [lease.comparison_id])
        lease.comparison = _comparison_from_row(cursor.fetchone())
    lease.comparison.campaign = campaign
    return lease


def assignment_next(
    *, labeler: AbstractBaseUser | ApiToken, campaign: Campaign | str | int, prefetch: int = 0,
    now: datetime | None = None,
) -> list[Assignment]:
    """The labeler's current item and up to `prefetch` more, already claimed, oldest first, in an active
    campaign (given as a Campaign, or by name or id: NotFound when none such is active).

    Live leases are reused, so asking again (a reload, a retry) never claims a second copy of work. An
    empty list means the campaign has nothing left for this labeler. BudgetExhausted propagates only
    when the labeler holds no lease at all (otherwise they still have paid work in hand). Each lease comes
    with its comparison, prompt, completions, campaign and labeler loaded. The labeler may be an unchecked
    API token (see access.ApiToken): the first statement checks it.
    """
    claim_now = now  # None: each claim reads the clock itself
    now = now or timezone.now()
    labeler, found, leases = campaign_and_live_leases(
        labeler=labeler, campaign=campaign.pk if isinstance(campaign, Campaign) else campaign, now=now,
        limit=prefetch + 1,
    )
    if isinstance(campaign, Campaign):  # the caller's, with all its fields: checked active just now
        found = campaign
        for lease in leases:
            lease.comparison.campaign = campaign
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


def comparison_answer_counted_sql(*, comparison: str = "%s") -> str:
    """The UPDATE that counts one more answer on comparison `comparison` (a parameter, or an expression of the
    server function that stores answers) and closes it when that was the last one wanted, so claims no longer
    scan past it. Run in the submit transaction: the row update waits for any other answer to the same
    comparison and then reads its count, so two last answers never both miss closing it. Lock order everywhere:
    campaign, then comparison."""
    return f"""UPDATE {_COMPARISON} SET judgements_received = judgements_received + 1,
                   is_open = is_open AND judgements_received + 1 < judgements_wanted
             WHERE id = {comparison}"""
