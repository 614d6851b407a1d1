"""Who may touch what: one access function per object type. Every view goes through these."""

from django.contrib.auth.models import AbstractBaseUser

from annotator.models import Assignment, Campaign, LabelerProfile
from annotator.services.errors import AccessDenied, NotFound


def labeler_profile_get(*, user: AbstractBaseUser) -> LabelerProfile:
    try:
        return LabelerProfile.objects.get(user=user)
    except LabelerProfile.DoesNotExist:
        raise AccessDenied("This account is not a labeler. Ask an administrator to add a labeler profile.") from None


def campaign_get_for_labeler(*, labeler: AbstractBaseUser, campaign: str | int) -> Campaign:
    """An active campaign by name or id, for a user who is a labeler."""
    labeler_profile_get(user=labeler)
    lookup = {"pk": campaign} if isinstance(campaign, int) or str(campaign).isdigit() else {"name": campaign}
    try:
        return Campaign.objects.get(is_active=True, **lookup)
    except Campaign.DoesNotExist:
        raise NotFound(f"No active campaign {campaign!r}.") from None


def assignment_get_for_labeler(*, labeler: AbstractBaseUser, assignment_id: int, lock: bool = False) -> Assignment:
    """The labeler's own assignment. Someone else's answers exactly like a missing one, so ids leak nothing.

    With `lock=True` the row is locked (`SELECT ... FOR UPDATE`) until the caller's transaction ends.
    """
    queryset = Assignment.objects.select_related("comparison__campaign", "comparison__prompt")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    try:
        return queryset.get(pk=assignment_id, labeler=labeler)
    except (Assignment.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No assignment {assignment_id} for you.") from None
