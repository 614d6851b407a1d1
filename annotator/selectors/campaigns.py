"""Reads about campaigns: what a labeler can see, what a manager runs, how far a campaign has come.

Who sees a campaign is decided by its memberships (annotator.models.CampaignMembership): a labeler sees and labels
the active campaigns they are a member of in the role labeler, a manager runs the campaigns they manage, staff see
every campaign (and label only where they are labelers too)."""

from datetime import datetime, time, timezone as dt_timezone

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from annotator.models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignMembership,
    CampaignRole,
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


class LabelerMember(Func):
    """The user labels the campaign (`campaign`: the path to its id): a member of it in the role labeler. The
    database's own rule (`annotator_labeler_member`, annotator/sql/rules.sql), so a list shows exactly the campaigns
    the labeling hot path lets the user work on."""

    function = "annotator_labeler_member"
    output_field = BooleanField()

    def __init__(self, user: AbstractBaseUser, *, campaign: str = "pk"):
        super().__init__(F(campaign), Value(user.pk, output_field=IntegerField()))


def campaigns_active() -> QuerySet[Campaign]:
    """Every active campaign, by name (what staff see)."""
    return Campaign.objects.filter(is_active=True).order_by("name")


def campaigns_for_labeler(*, labeler: AbstractBaseUser) -> QuerySet[Campaign]:
    """The active campaigns the user labels, by name: the only ones they see, claim and answer in."""
    return campaigns_active().filter(LabelerMember(labeler))


def campaigns_managed(*, user: AbstractBaseUser) -> QuerySet[Campaign]:
    """The campaigns whose budget, rounds and evaluation the user sees and runs, by name: every one for staff,
    else those they are a manager of (none for anyone else)."""
    if user.is_staff:
        return Campaign.objects.order_by("name")
    if not user.is_authenticated:
        return Campaign.objects.none()
    managing = CampaignMembership.objects.filter(campaign=OuterRef("pk"), user=user, role=CampaignRole.MANAGER)
    return Campaign.objects.filter(Exists(managing)).order_by("name")


def campaign_managed_by(*, user: AbstractBaseUser, campaign: Campaign) -> bool:
    """Whether the user runs the campaign (`campaigns_managed`); no query for staff."""
    return user.is_staff or campaigns_managed(user=user).filter(pk=campaign.pk).exists()


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
    """Aggregate figures of a campaign; money for those who run it (staff, its managers), and the viewer's own
    progress when they label.

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
    if campaign_managed_by(user=viewer, campaign=campaign):
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
