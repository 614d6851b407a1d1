"""Reads of answers: a labeler's own history, and a campaign's judgements and ratings for export."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotator.models import Assignment, AssignmentStatus, Campaign, Judgement, Rating

_ITEM = ("comparison__campaign", "comparison__prompt", "comparison__completion_a", "comparison__completion_b")


def assignments_answered_by_labeler(*, labeler: AbstractBaseUser, campaign_name: str | None = None) -> QuerySet[Assignment]:
    """The labeler's submitted assignments with their judgement or rating, newest first."""
    queryset = Assignment.objects.filter(labeler=labeler, status=AssignmentStatus.SUBMITTED)
    if campaign_name:
        queryset = queryset.filter(comparison__campaign__name=campaign_name)
    return queryset.select_related(*_ITEM, "judgement", "rating").order_by("-submitted_at", "-id")


def judgements_for_export(*, campaign: Campaign) -> QuerySet[Judgement]:
    """Every judgement of a campaign with what an export line needs, oldest first."""
    return (
        Judgement.objects.filter(assignment__comparison__campaign=campaign)
        .select_related(
            "assignment__labeler__labeler",
            "assignment__comparison__round",
            "assignment__comparison__prompt",
            "assignment__comparison__completion_a__checkpoint",
            "assignment__comparison__completion_b__checkpoint",
        )
        .order_by("id")
    )


def ratings_for_export(*, campaign: Campaign) -> QuerySet[Rating]:
    """Every rating of a campaign with what an export line needs, oldest first."""
    return (
        Rating.objects.filter(assignment__comparison__campaign=campaign)
        .select_related(
            "assignment__labeler__labeler",
            "assignment__comparison__round",
            "assignment__comparison__prompt",
            "assignment__comparison__completion_a__checkpoint",
        )
        .order_by("id")
    )
