"""Reads about campaigns: what a labeler can see, how far a campaign has come."""

from datetime import datetime, time, timezone as dt_timezone

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from annotator.models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    Choice,
    Comparison,
    ComparisonPurpose,
    Judgement,
    LabelerProfile,
    Rating,
    RatingValue,
)
from annotator.core.leases import HoldsSlot, LeaseLive
from annotator.selectors.money import campaign_money


def campaigns_active() -> QuerySet[Campaign]:
    """Campaigns labelers can work on, by name."""
    return Campaign.objects.filter(is_active=True).order_by("name")


def _open_comparisons_with_free_slots(*, campaign: Campaign, now: datetime) -> QuerySet[Comparison]:
    """Open comparisons of the campaign annotated with `free_slots`: judgements wanted minus live-or-submitted
    assignments, never below zero."""
    taken = (
        Assignment.objects.filter(HoldsSlot(now), comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Comparison.objects.filter(campaign=campaign, is_open=True)
        .annotate(taken=Coalesce(Subquery(taken, output_field=IntegerField()), Value(0)))
        .annotate(free_slots=Greatest(F("judgements_wanted") - F("taken"), Value(0)))
    )


def utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(dt_timezone.utc).date(), time.min, tzinfo=dt_timezone.utc)


def campaign_progress_for_labeler(*, labeler: AbstractBaseUser, campaign: Campaign, now: datetime | None = None) -> dict:
    """A labeler's progress in a campaign and the work left in it.

    done_today: the labeler's submitted items since UTC midnight; done_total: all of them;
    remaining: judgement slots still open in the campaign (over open comparisons, wanted minus
    live-or-submitted assignments, never below zero); available_to_me: those open slots on comparisons
    the labeler has never been assigned.
    """
    now = now or timezone.now()
    done = Assignment.objects.filter(
        labeler=labeler, comparison__campaign=campaign, status=AssignmentStatus.SUBMITTED
    ).aggregate(
        done_total=Count("pk"),
        done_today=Count("pk", filter=Q(submitted_at__gte=utc_midnight(now))),
    )
    seen_by_labeler = Assignment.objects.filter(comparison=OuterRef("pk"), labeler=labeler)
    slots = (
        _open_comparisons_with_free_slots(campaign=campaign, now=now)
        .annotate(seen=Exists(seen_by_labeler))
        .aggregate(
            remaining=Coalesce(Sum("free_slots"), 0),
            available_to_me=Coalesce(Sum("free_slots", filter=Q(seen=False)), 0),
        )
    )
    return {
        "done_today": done["done_today"],
        "done_total": done["done_total"],
        "remaining": slots["remaining"],
        "available_to_me": slots["available_to_me"],
    }


def _counts_by(queryset: QuerySet, field: str, values: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(values, 0)
    counts.update(queryset.order_by().values_list(field).annotate(n=Count("pk")).values_list(field, "n"))
    return counts


def campaign_statistics(
    *, campaign: Campaign, viewer: AbstractBaseUser, now: datetime | None = None
) -> dict:
    """Aggregate figures of a campaign; money for staff viewers, and the viewer's own progress when they label.

    Nothing in it names or singles out a labeler, so labelers of the campaign may read it.
    """
    now = now or timezone.now()
    items = Comparison.objects.filter(campaign=campaign).aggregate(
        items=Count("pk"), open_items=Count("pk", filter=Q(is_open=True))
    )
    slots = _open_comparisons_with_free_slots(campaign=campaign, now=now).aggregate(
        remaining=Coalesce(Sum("free_slots"), 0)
    )
    assignments = Assignment.objects.filter(comparison__campaign=campaign).aggregate(
        answers=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED)),
        live_leases=Count("pk", filter=LeaseLive(now)),
        labelers=Count("labeler", filter=Q(status=AssignmentStatus.SUBMITTED), distinct=True),
    )
    judgements = Judgement.objects.filter(assignment__comparison__campaign=campaign)
    ratings = Rating.objects.filter(assignment__comparison__campaign=campaign)
    gold = judgements.filter(assignment__comparison__purpose=ComparisonPurpose.GOLD).aggregate(
        answered=Count("pk"), agreed=Count("pk", filter=Q(choice=F("assignment__comparison__gold_choice")))
    )
    stats = {
        "campaign": campaign.name,
        "task_kind": campaign.task_kind,
        "is_active": campaign.is_active,
        **items,
        "remaining_slots": slots["remaining"],
        **assignments,
        "choices": _counts_by(judgements, "choice", Choice.values),
        "ratings": _counts_by(ratings, "value", RatingValue.values),
        "gold_answered": gold["answered"],
        "gold_agreement": gold["agreed"] / gold["answered"] if gold["answered"] else None,
        "money": None,
        "me": None,
    }
    if viewer.is_staff:
        funds = campaign_money(campaign_id=campaign.pk, now=now)
        stats["money"] = {
            "currency": campaign.currency,
            "budget": campaign.money_budget,
            "spent": funds.spent,
            "reserved": funds.reserved,
        }
    if LabelerProfile.objects.filter(user=viewer).exists():
        stats["me"] = campaign_progress_for_labeler(labeler=viewer, campaign=campaign, now=now)
    return stats
