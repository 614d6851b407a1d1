"""A campaign's people: its members and roles, and the invitations still waiting to be used."""

from datetime import datetime

from django.db.models import QuerySet

from annotator.models import Campaign, CampaignMembership, Invitation


def campaign_members(*, campaign: Campaign) -> QuerySet[CampaignMembership]:
    """The campaign's members with their users (and labeler profiles), managers first, then by username."""
    return (
        CampaignMembership.objects.filter(campaign=campaign)
        .select_related("user", "user__labeler")
        .order_by("-role", "user__username")  # "manager" > "labeler"
    )


def invitations_pending(*, campaign: Campaign, now: datetime) -> QuerySet[Invitation]:
    """Invitations to the campaign not used and not expired (or withdrawn) at `now`, soonest to expire first."""
    return (
        Invitation.objects.filter(campaign=campaign, used_at__isnull=True, expires_at__gt=now)
        .select_related("created_by")
        .order_by("expires_at", "id")
    )
