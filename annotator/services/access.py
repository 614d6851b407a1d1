"""Who may touch what: one access function per object type. Every view goes through these."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from rest_framework.authtoken.models import Token

from annotator.models import Assignment, Campaign, Comparison, LabelerProfile
from annotator.services.errors import AccessDenied, NotFound
from annotator.services.rows import attnames, columns, instance_from_row, row_lock

User = get_user_model()


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


_USER_BY_TOKEN = f"""
    SELECT {columns(Token, "t")}, {columns(User, "u")}, {columns(LabelerProfile, "p")}
      FROM {Token._meta.db_table} t
      JOIN {User._meta.db_table} u ON u.{User._meta.pk.column} = t.user_id
      LEFT JOIN {LabelerProfile._meta.db_table} p ON p.user_id = u.{User._meta.pk.column}
     WHERE t.key = %s"""


def user_for_api_token(*, key: str) -> tuple[AbstractBaseUser | None, Token | None]:
    """The user an API token belongs to, with their labeler profile loaded when they have one, in one query
    (every API call runs it); (None, None) for an unknown token."""
    with connection.cursor() as cursor:
        cursor.execute(_USER_BY_TOKEN, [key])
        row = cursor.fetchone()
    if row is None:
        return None, None
    token = instance_from_row(Token, row)
    row = row[len(attnames(Token)):]
    token.user = user = instance_from_row(User, row)
    row = row[len(attnames(User)):]
    if row[0] is not None:  # the profile's id: the LEFT JOIN found one
        profile = instance_from_row(LabelerProfile, row)
        profile.user = user
        User.labeler.related.set_cached_value(user, profile)
    return user, token


MAX_ID = 2**63 - 1  # ids are BIGINT: a larger number names nothing (rather than failing in the database)


def campaign_lookup(campaign: str | int) -> dict:
    """A campaign is named by its id or its name; NotFound for an id no BIGINT can hold."""
    lookup = {"pk": int(campaign)} if isinstance(campaign, int) or str(campaign).isdigit() else {"name": campaign}
    if lookup.get("pk", 0) > MAX_ID:
        raise NotFound(f"No campaign {campaign!r}.")
    return lookup


def campaign_get_for_labeler(*, labeler: AbstractBaseUser, campaign: str | int) -> Campaign:
    """An active campaign by name or id, for a user who is a labeler. (The API's next item reads it together
    with the labeler's leases: `assignments.campaign_and_live_leases`.)"""
    labeler_profile_get(user=labeler)
    try:
        return Campaign.objects.get(is_active=True, **campaign_lookup(campaign))
    except Campaign.DoesNotExist:
        raise NotFound(f"No active campaign {campaign!r}.") from None


def campaign_get_for_viewer(*, user: AbstractBaseUser, campaign: str | int) -> Campaign:
    """A campaign whose statistics the user may read: staff any campaign, a labeler an active one."""
    if not user.is_staff:
        return campaign_get_for_labeler(labeler=user, campaign=campaign)
    try:
        return Campaign.objects.get(**campaign_lookup(campaign))
    except Campaign.DoesNotExist:
        raise NotFound(f"No campaign {campaign!r}.") from None


def campaign_get_for_staff(*, user: AbstractBaseUser, campaign: str | int) -> Campaign:
    """Any campaign, active or not, for staff only (exports, money)."""
    if not user.is_staff:
        raise AccessDenied("Only staff may do this.")
    return campaign_get_for_viewer(user=user, campaign=campaign)


_ASSIGNMENT_OF_LABELER = f"""
    SELECT {columns(Assignment, "a")}, {columns(Comparison, "c")}, {columns(Campaign, "k")}
      FROM {Assignment._meta.db_table} a
      JOIN {Comparison._meta.db_table} c ON c.id = a.comparison_id
      JOIN {Campaign._meta.db_table} k ON k.id = c.campaign_id
     WHERE a.id = %s AND a.labeler_id = %s"""


def assignment_get_for_labeler(*, labeler: AbstractBaseUser, assignment_id: int, lock: bool = False) -> Assignment:
    """The labeler's own assignment, with its comparison and campaign. Someone else's answers exactly like a
    missing one, so ids leak nothing. (SQL: every submit runs it.)

    With `lock=True`, for answering it: the assignment row is locked `FOR UPDATE` and its campaign row
    `FOR SHARE` until the caller's transaction ends (an answer writes ledger entries: see
    annotator.services.ledger).
    """
    if not isinstance(assignment_id, int) or isinstance(assignment_id, bool) or not 0 < assignment_id <= MAX_ID:
        raise NotFound(f"No assignment {assignment_id} for you.")
    sql = _ASSIGNMENT_OF_LABELER + (row_lock("FOR UPDATE OF a", "FOR SHARE OF k") if lock else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [assignment_id, labeler.pk])
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"No assignment {assignment_id} for you.")
    assignment = instance_from_row(Assignment, row)
    row = row[len(attnames(Assignment)):]
    assignment.comparison = instance_from_row(Comparison, row)
    assignment.comparison.campaign = instance_from_row(Campaign, row[len(attnames(Comparison)):])
    assignment.labeler = labeler  # the filter made sure of it; saves a query for whoever reads it
    return assignment
