"""Handing items to labelers: claim the next one, keep a prefetched one ready, let stale leases lapse.

A lease is live while LEASED and before `leased_until`. An item never has more live or submitted
assignments than it wants judgements, and a labeler never gets the same item twice (also a unique
constraint). On PostgreSQL candidate rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, and the
count is taken again under the row lock, in a fresh statement, before the assignment is written.
"""

import random
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator.models import Assignment, AssignmentStatus, Campaign, Comparison
from annotator.services.access import labeler_profile_get
from annotator.services.errors import BudgetExhausted, CampaignClosed
from annotator.services.ledger import campaign_lock, money_spent_and_reserved
from annotator.services.pricing import item_price

MAX_CLAIM_ATTEMPTS = 50


def live_q(now: datetime, prefix: str = "") -> Q:
    """Assignments that hold a slot: submitted, or leased and not yet expired."""
    return Q(**{f"{prefix}status": AssignmentStatus.SUBMITTED}) | Q(
        **{f"{prefix}status": AssignmentStatus.LEASED, f"{prefix}leased_until__gt": now}
    )


def live_leases_for_labeler(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime) -> QuerySet[Assignment]:
    """The labeler's unexpired, unsubmitted leases in a campaign, oldest first."""
    return (
        Assignment.objects.filter(
            labeler=labeler,
            comparison__campaign=campaign,
            status=AssignmentStatus.LEASED,
            leased_until__gt=now,
        )
        .select_related("comparison__prompt", "comparison__completion_a", "comparison__completion_b")
        .order_by("leased_at", "id")
    )


def _open_candidates(*, campaign: Campaign, labeler: AbstractBaseUser, now: datetime) -> QuerySet[Comparison]:
    live_count = (
        Assignment.objects.filter(live_q(now), comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    seen_by_labeler = Assignment.objects.filter(comparison=OuterRef("pk"), labeler=labeler)
    return (
        Comparison.objects.filter(campaign=campaign, is_open=True)
        .filter(~Exists(seen_by_labeler))
        .annotate(live=Coalesce(Subquery(live_count, output_field=IntegerField()), Value(0)))
        .filter(live__lt=F("judgements_wanted"))
        .order_by("-priority", "id")
    )


@transaction.atomic
def assignment_claim(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime | None = None) -> Assignment | None:
    """Claim one new item for the labeler, reserving its price. None when nothing is left for them.

    Raises BudgetExhausted when the campaign's money cap cannot cover one more item (spent + reserved +
    price > budget), checked while holding the campaign row lock so no two claims can both pass it.
    """
    profile = labeler_profile_get(user=labeler)
    # The budget is read fresh: the caller's object may predate a cap set since.
    has_budget = Campaign.objects.filter(pk=campaign.pk, money_budget__isnull=False).exists()
    campaign = campaign_lock(campaign_id=campaign.pk) if has_budget else Campaign.objects.get(pk=campaign.pk)
    now = now or timezone.now()  # taken after the lock: see annotator.services.ledger
    if not campaign.is_active:
        raise CampaignClosed(f"Campaign {campaign.name!r} is closed.")
    price = item_price(campaign=campaign, profile=profile)
    if campaign.money_budget is not None:
        spent, reserved = money_spent_and_reserved(campaign_id=campaign.pk, now=now)
        if spent + reserved + price.total > campaign.money_budget:
            raise BudgetExhausted(
                f"Campaign {campaign.name!r} is paused for budget: {spent + reserved} of "
                f"{campaign.money_budget} {campaign.currency} is spent or reserved, and one more item costs up to "
                f"{price.total}.",
                spent=str(spent), reserved=str(reserved), budget=str(campaign.money_budget),
            )

    tried: set[int] = set()
    for _ in range(MAX_CLAIM_ATTEMPTS):
        open_items = _open_candidates(campaign=campaign, labeler=labeler, now=now).exclude(pk__in=tried)
        # Usually an unlocked row is free: take it without waiting. When every open row is momentarily held
        # by other claimers, wait for the first one rather than wrongly answering "nothing left".
        row = open_items.select_for_update(skip_locked=True, of=("self",)).values_list("pk", "judgements_wanted").first()
        if row is None:
            row = open_items.select_for_update(of=("self",)).values_list("pk", "judgements_wanted").first()
        if row is None:
            return None
        comparison_id, wanted = row
        tried.add(comparison_id)
        # Counted again under the row lock: a claim that committed since our first statement is visible now.
        taken = Assignment.objects.filter(live_q(now), comparison_id=comparison_id).count()
        if taken >= wanted or Assignment.objects.filter(comparison_id=comparison_id, labeler=labeler).exists():
            continue
        return Assignment.objects.create(
            comparison_id=comparison_id,
            labeler=labeler,
            swapped=random.random() < 0.5,
            leased_at=now,
            leased_until=now + timedelta(seconds=campaign.lease_seconds),
            reserved_amount=price.total,
        )
    return None


def assignment_next(
    *, labeler: AbstractBaseUser, campaign: Campaign, prefetch: int = 0, now: datetime | None = None
) -> list[Assignment]:
    """The labeler's current item and up to `prefetch` more, already claimed, oldest first.

    Live leases are reused, so asking again (a reload, a retry) never claims a second copy of work. An
    empty list means the campaign has nothing left for this labeler. BudgetExhausted propagates only
    when the labeler holds no lease at all (otherwise they still have paid work in hand).
    """
    claim_now = now  # None: each claim reads the clock after taking its lock
    now = now or timezone.now()
    leases = list(live_leases_for_labeler(labeler=labeler, campaign=campaign, now=now)[: prefetch + 1])
    while len(leases) < prefetch + 1:
        try:
            claimed = assignment_claim(labeler=labeler, campaign=campaign, now=claim_now)
        except BudgetExhausted:
            if leases:
                break
            raise
        if claimed is None:
            break
        leases.append(live_leases_for_labeler(labeler=labeler, campaign=campaign, now=now).get(pk=claimed.pk))
    return leases


def comparison_close_when_filled(*, comparison_id: int) -> bool:
    """Close a comparison once every judgement it wants is in, so claims no longer scan past it.

    Called in the submit transaction. Locks the comparison row (FOR NO KEY UPDATE) before counting, so two
    last answers landing together see each other and one of them closes it. Lock order everywhere: campaign,
    then comparison. Returns True when this call closed it.
    """
    wanted = (
        Comparison.objects.select_for_update(no_key=True)
        .filter(pk=comparison_id)
        .values_list("judgements_wanted", flat=True)
        .get()
    )
    submitted = Assignment.objects.filter(comparison_id=comparison_id, status=AssignmentStatus.SUBMITTED).count()
    if submitted < wanted:
        return False
    return Comparison.objects.filter(pk=comparison_id, is_open=True).update(is_open=False) == 1


def assignments_expire(*, now: datetime | None = None) -> int:
    """Mark lapsed leases EXPIRED (bookkeeping only: a lapsed lease already frees its slot and money)."""
    now = now or timezone.now()
    return Assignment.objects.filter(status=AssignmentStatus.LEASED, leased_until__lte=now).update(
        status=AssignmentStatus.EXPIRED
    )
