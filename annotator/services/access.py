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


def _campaign_lookup(campaign: str | int) -> dict:
    """A campaign is named by its id or its name."""
    return {"pk": int(campaign)} if isinstance(campaign, int) or str(campaign).isdigit() else {"name": campaign}


def campaign_get_for_labeler(*, labeler: AbstractBaseUser, campaign: str | int) -> Campaign:
    """An active campaign by name or id, for a user who is a labeler."""
    labeler_profile_get(user=labeler)
    try:
        return Campaign.objects.get(is_active=True, **_campaign_lookup(campaign))
    except Campaign.DoesNotExist:
        raise NotFound(f"No active campaign {campaign!r}.") from None


def campaign_get_for_viewer(*, user: AbstractBaseUser, campaign: str | int) -> Campaign:
    """A campaign whose statistics the user may read: staff any campaign, a labeler an active one."""
    if not user.is_staff:
        return campaign_get_for_labeler(labeler=user, campaign=campaign)
    try:
        return Campaign.objects.get(**_campaign_lookup(campaign))
    except Campaign.DoesNotExist:
        raise NotFound(f"No campaign {campaign!r}.") from None


def campaign_get_for_staff(*, user: AbstractBaseUser, campaign: str | int) -> Campaign:
    """Any campaign, active or not, for staff only (exports, money)."""
    if not user.is_staff:
        raise AccessDenied("Only staff may do this.")
    return campaign_get_for_viewer(user=user, campaign=campaign)


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
