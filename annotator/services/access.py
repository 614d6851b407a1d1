"""Who may touch what: one access function per object type. Every view goes through these."""

from django.contrib.auth.models import AbstractBaseUser

from annotator.models import Assignment, Campaign, LabelerProfile
from annotator.services.errors import AccessDenied, NotFound


def labeler_profile_get(*, user: AbstractBaseUser) -> LabelerProfile:
    """The user's labeler profile; AccessDenied when they are not a labeler.

    Read through `user.labeler`, so it is loaded at most once per user object (one request): the API's token
    authentication loads it with the user, and the services that ask again in the same request get it free.
    """
    if not user.is_authenticated:
        raise AccessDenied("Log in first.")
    try:
        return user.labeler
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
    """The labeler's own assignment, with its comparison and campaign. Someone else's answers exactly like a
    missing one, so ids leak nothing.

    With `lock=True` the assignment row (only it) is locked (`SELECT ... FOR UPDATE`) until the caller's
    transaction ends.
    """
    queryset = Assignment.objects.select_related("comparison__campaign")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    try:
        assignment = queryset.get(pk=assignment_id, labeler=labeler)
    except (Assignment.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No assignment {assignment_id} for you.") from None
    assignment.labeler = labeler  # the filter made sure of it; saves a query for whoever reads it
    return assignment
