"""Handing items to labelers: claim the next one, keep a prefetched one ready, let stale leases lapse.

Only a campaign's labelers (its members in the role labeler: `annotator_labeler_member`, annotator/sql/rules.sql)
see, claim and answer its items; to anyone else it answers as a campaign that does not exist. The hot path checks
that inside the statements it runs anyway, never in a statement of its own.

A lease is live while LEASED and before `leased_until`. An item never has more live or submitted
assignments than it wants judgements, and a labeler never gets the same item twice (also a unique
constraint).

Claims in a campaign are serial: each holds the campaign row lock (`FOR UPDATE`) for its whole transaction,
and every submit holds it shared (see annotator.services.ledger). So the one statement that picks the
candidate and writes the lease starts after every earlier claim and submit of the campaign has committed,
and its count of free slots is exact. The candidate row is also taken `FOR UPDATE SKIP LOCKED`, so a
comparison that someone else holds (a round being closed by staff) is passed over rather than waited for.

This is the labeling hot path (every next-item call runs it), so its statements are written in SQL (see
annotator.sql.rows). A claim is one call of the server function `annotator_claim` (annotator/sql/claim.sql:
the campaign lock, then one statement: money check, lease write, the item's texts), so the lock is held only while
PostgreSQL works and a claim costs the web server one statement. Campaigns do not wait for each other. The rows
come back as ordinary model instances, a lease with its comparison, prompt, completions and campaign loaded.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from annotator.core.errors import BudgetExhausted, CampaignClosed, NotFound
from annotator.core.pricing import item_price, money
from annotator.models import Assignment, AssignmentStatus, Campaign, Comparison, Completion, Prompt
from annotator.services.access import (
    ASSIGNMENT,
    HOT_CAMPAIGN,
    HOT_COMPARISON,
    HOT_PROFILE,
    HOT_USER,
    LABELER_COLUMNS,
    ApiToken,
    campaign_lookup,
    labeler_checked,
    labeler_profile_get,
    labeler_sql,
)
from annotator.sql.rows import split_row

# A comparison as a labeler gets it: its HOT_ fields, then the texts of its prompt and completions.
_ITEM_COLUMNS = f"{HOT_COMPARISON.columns('c')}, p.text, ca.text, cb.text"
_ITEM = (HOT_COMPARISON, 3)


def _item(comparison: Comparison, texts: tuple[str, str, str | None]) -> Comparison:
    """The comparison with its prompt and completions (only their texts) attached."""
    prompt_text, text_a, text_b = texts
    comparison.prompt = Prompt.from_db(connection.alias, ["id", "text"], [comparison.prompt_id, prompt_text])
    comparison.completion_a = Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_a_id, text_a])
    comparison.completion_b = (
        Completion.from_db(connection.alias, ["id", "text"], [comparison.completion_b_id, text_b])
        if comparison.completion_b_id is not None else None
    )
    return comparison


# The asking labeler (see access.labeler_sql), the active campaign if they label it (NULLs: none such, or not
# theirs: annotator_labeler_member in annotator/sql/rules.sql) and the labeler's live leases in it, oldest first
# (none: one row with NULLs there).
_CAMPAIGN_AND_LIVE_LEASES = f"""
    SELECT {LABELER_COLUMNS}, {HOT_CAMPAIGN.columns("k")}, {ASSIGNMENT.columns("a")}, {_ITEM_COLUMNS}
      FROM {{source}}
      LEFT JOIN annotator_campaign k
        ON k.is_active AND k.{{column}} = %(campaign)s AND annotator_labeler_member(k.id, u.id)
      LEFT JOIN (annotator_assignment a
                 JOIN annotator_comparison c ON c.id = a.comparison_id
                 JOIN annotator_prompt p ON p.id = c.prompt_id
                 JOIN annotator_completion ca ON ca.id = c.completion_a_id
                 LEFT JOIN annotator_completion cb ON cb.id = c.completion_b_id)
        ON c.campaign_id = k.id AND a.labeler_id = u.id AND annotator_lease_live(a.status, a.leased_until, %(now)s)
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
    """The labeler (checked, with their profile: see access.labeler_checked), an active campaign by name or id
    that they label (its HOT_ fields), and the labeler's live leases in it (at most `limit`, oldest first, each
    with its comparison, prompt, completions and campaign loaded), in one statement. NotFound when no such campaign
    is active or the labeler is not one of its labelers (a member in the role labeler), in the same words, so a
    campaign's name tells a stranger nothing."""
    try:
        [(key, value)] = campaign_lookup(campaign).items()
    except NotFound:
        key, value = "pk", None  # an id no campaign can have: the labeler is still checked first
    source, condition, labeler_key = labeler_sql(labeler)
    sql = _campaign_and_live_leases_sql(source, condition, "id" if key == "pk" else "name")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"labeler": labeler_key, "campaign": value, "now": now, "limit": limit})
        rows = [split_row(row, HOT_USER, HOT_PROFILE, HOT_CAMPAIGN, ASSIGNMENT, *_ITEM) for row in cursor.fetchall()]
    user, profile, found = rows[0][:3] if rows else (None, None, None)
    labeler = labeler_checked(labeler, user, profile, found=bool(rows))
    if found is None:
        raise NotFound(f"No active campaign {campaign!r}.")
    leases = []
    for *_, lease, comparison, texts in rows:
        if lease is None:  # the LEFT JOIN found no lease
            break
        lease.comparison = _item(comparison, texts)
        lease.comparison.campaign, lease.labeler = found, labeler
        leases.append(lease)
    return labeler, found, leases


# Why `annotator_claim` claimed nothing, when it is not that nothing is left for the labeler.
NOT_MEMBER = "not_member"
CLOSED = "closed"
OVER_BUDGET = "over_budget"
_CLAIM_CALL = """
    SELECT refused, budget, spent, reserved, lease_id,
           comparison_id, campaign_id, round_id, prompt_id, completion_a_id, completion_b_id,
           prompt_text, text_a, text_b
      FROM annotator_claim(%(campaign)s, %(labeler)s, %(swapped)s, %(now)s, %(until)s, %(reserved)s)"""


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

    def claim_params(self, *, campaign: Campaign) -> dict:
        return {"campaign": campaign.pk, "labeler": self.labeler.pk, "swapped": self.swapped, "now": self.now,
                "until": self.until, "reserved": self.reserved}

    def lease(self, *, lease_id: int, comparison_id: int) -> Assignment:
        """The lease as written, as the ORM would read it back."""
        stored = {
            "id": lease_id, "comparison_id": comparison_id, "labeler_id": self.labeler.pk,
            "status": AssignmentStatus.LEASED.value, "swapped": self.swapped, "leased_at": self.now,
            "leased_until": self.until, "submitted_at": None, "reserved_amount": self.reserved,
        }
        lease = Assignment.from_db(connection.alias, ASSIGNMENT.attnames, [stored[name] for name in ASSIGNMENT.attnames])
        lease.labeler = self.labeler
        return lease


def assignment_claim(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime | None = None) -> Assignment | None:
    """Claim one new item for the labeler, reserving its price. None when nothing is left for them; NotFound
    when they are not one of the campaign's labelers (checked before the campaign lock).

    One call of `annotator_claim` (the campaign lock and one statement), so the lock is held only while PostgreSQL
    works, never across the network or a Python thread waiting for a core. Raises BudgetExhausted when the
    campaign's money cap cannot cover one more item (annotator_budget_exceeded), checked under the campaign row
    lock, which every claim of the campaign takes (see the module docstring), so no two claims can both pass it.

    The price and the lease's length come from the campaign as the caller read it; the budget and whether the
    campaign is still active are read under the lock. A rate changed in between applies from the next claim, as
    when it changes during a lease (a submit never charges more than was reserved). `now` is read before the
    lock: earlier than the lock, it counts at least as many leases live, so the slot and money checks only err
    on the safe side. The lease comes back with its comparison, prompt, completions and campaign loaded.
    """
    profile = labeler_profile_get(user=labeler)
    price = item_price(campaign=campaign, profile=profile).total
    terms = _LeaseTerms.drawn(labeler=labeler, campaign=campaign, now=now or timezone.now(), reserved=price)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_CALL, terms.claim_params(campaign=campaign))
        row = cursor.fetchone()
    (refused, budget, spent, reserved, lease_id), comparison, texts = split_row(row, 5, *_ITEM)
    if refused == NOT_MEMBER:  # as campaign_and_live_leases words it
        raise NotFound(f"No active campaign {campaign.name!r}.")
    if refused == CLOSED:
        raise CampaignClosed(f"Campaign {campaign.name!r} is closed.")
    if refused == OVER_BUDGET:
        spent, reserved, budget = money(spent), money(reserved), money(budget)
        raise BudgetExhausted(
            f"Campaign {campaign.name!r} is paused for budget: {spent + reserved} of {budget} "
            f"{campaign.currency} is spent or reserved, and one more item costs up to {price}.",
            spent=str(spent), reserved=str(reserved), budget=str(budget),
        )
    if lease_id is None:
        return None
    lease = terms.lease(lease_id=lease_id, comparison_id=comparison.pk)
    lease.comparison = _item(comparison, texts)
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
