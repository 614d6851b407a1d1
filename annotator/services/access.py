"""Who may touch what: one access function per object type. Every view goes through these.

Campaigns: staff see every one; a manager sees and runs the campaigns they manage (`campaign_get_for_manager`,
and `campaigns_managed` for lists, a selector kept here too); a labeler sees, claims and answers in the active
campaigns they are a member of in the role labeler (`campaign_get_for_labeler`, and on the hot path the same rule
inside its statements), and every other campaign answers them as one that does not exist."""

from dataclasses import dataclass
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from rest_framework.authtoken.models import Token

from annotator.models import Assignment, Campaign, Comparison, LabelerProfile
from annotator.core.errors import AccessDenied, AuthenticationFailed, NotFound
from annotator.selectors.campaigns import campaigns_active, campaigns_for_labeler, campaigns_managed
from annotator.sql.rows import RowPart, split_row

User = get_user_model()


@dataclass(frozen=True)
class ApiToken:
    """An API token from a request's Authorization header, not yet checked.

    The labeling hot path (next item, answers) takes one wherever it takes a labeler and checks it in the first
    statement the call runs anyway, which then also reads the user and their labeler profile: one statement and
    round trip fewer per call than checking it first. `user_for_api_token` checks one on its own.
    """

    key: str


# What the labeling hot path reads of the rows it loads; their other fields are deferred (annotator.sql.rows).
HOT_USER_FIELDS = ("id", "username", "is_active", "is_staff")
HOT_PROFILE_FIELDS = ("id", "user_id", "kind", "pay_per_judgement", "hourly_rate", "api_cost_per_call")
HOT_CAMPAIGN_FIELDS = (  # what pricing, leases and the answers' checks and messages use
    "id", "name", "task_kind", "is_active", "lease_seconds", "currency", "money_budget", "pay_model",
    "pay_per_judgement", "hourly_rate", "max_paid_seconds_per_item", "platform_fee_percent",
)
HOT_COMPARISON_FIELDS = ("id", "campaign_id", "round_id", "prompt_id", "completion_a_id", "completion_b_id")
HOT_USER = RowPart(User, HOT_USER_FIELDS)
HOT_PROFILE = RowPart(LabelerProfile, HOT_PROFILE_FIELDS)
HOT_CAMPAIGN = RowPart(Campaign, HOT_CAMPAIGN_FIELDS)
HOT_COMPARISON = RowPart(Comparison, HOT_COMPARISON_FIELDS)
ASSIGNMENT = RowPart(Assignment)

# The asking labeler in a hot-path statement: their user row as `u` and their labeler profile as `lp` (NULLs when
# they have none), found by user id or by token, given as %(labeler)s. (FROM items, WHERE condition) by kind.
_PROFILES = f"LEFT JOIN {LabelerProfile._meta.db_table} lp ON lp.user_id = u.{User._meta.pk.column}"
_LABELER_SOURCES = {
    User: (f"{User._meta.db_table} u {_PROFILES}", f"u.{User._meta.pk.column} = %(labeler)s"),
    ApiToken: (
        f"{Token._meta.db_table} t JOIN {User._meta.db_table} u ON u.{User._meta.pk.column} = t.user_id {_PROFILES}",
        "t.key = %(labeler)s",
    ),
}
LABELER_COLUMNS = f"{HOT_USER.columns('u')}, {HOT_PROFILE.columns('lp')}"  # the parts HOT_USER, HOT_PROFILE


def labeler_sql(labeler: AbstractBaseUser | ApiToken) -> tuple[str, str, int | str]:
    """(FROM items, WHERE condition, the %(labeler)s parameter) that put the asking labeler's `LABELER_COLUMNS`
    into a statement, for a user or an unchecked API token."""
    if isinstance(labeler, ApiToken):
        return *_LABELER_SOURCES[ApiToken], labeler.key
    return *_LABELER_SOURCES[User], labeler.pk


def labeler_checked(
    labeler: AbstractBaseUser | ApiToken, user: AbstractBaseUser | None, profile: LabelerProfile | None, *, found: bool
) -> AbstractBaseUser:
    """The labeler that a hot-path row's `LABELER_COLUMNS` name (`found`: the statement returned a row; none means
    the token is unknown), with their profile loaded. AuthenticationFailed for an unknown token or an inactive user;
    AccessDenied for a user who is not a labeler."""
    if not found:
        raise AuthenticationFailed("Invalid token." if isinstance(labeler, ApiToken) else "User inactive or deleted.")
    if isinstance(labeler, ApiToken):
        labeler = user
        if not labeler.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
    if not User.labeler.is_cached(labeler):
        User.labeler.related.set_cached_value(labeler, profile)  # None: `labeler_profile_get` refuses, no query
    labeler_profile_get(user=labeler)
    return labeler


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


_TOKEN, _USER, _PROFILE = RowPart(Token), RowPart(User), RowPart(LabelerProfile)
_USER_BY_TOKEN = f"""
    SELECT {_TOKEN.columns("t")}, {_USER.columns("u")}, {_PROFILE.columns("p")}
      FROM {Token._meta.db_table} t
      JOIN {User._meta.db_table} u ON u.{User._meta.pk.column} = t.user_id
      LEFT JOIN {LabelerProfile._meta.db_table} p ON p.user_id = u.{User._meta.pk.column}
     WHERE t.key = %s"""


_TOKEN_KEY_MAX_LENGTH = Token._meta.get_field("key").max_length


def api_token_key_possible(key: str) -> bool:
    """Whether any token could have this key. One that cannot is refused without a query: PostgreSQL answers a
    NUL character in a text parameter with an error (a 500), not with no row."""
    return len(key) <= _TOKEN_KEY_MAX_LENGTH and "\x00" not in key


def user_for_api_token(*, key: str) -> tuple[AbstractBaseUser | None, Token | None]:
    """The user an API token belongs to, with their labeler profile loaded when they have one, in one query
    (every API call runs it); (None, None) for an unknown token."""
    if not api_token_key_possible(key):
        return None, None
    with connection.cursor() as cursor:
        cursor.execute(_USER_BY_TOKEN, [key])
        row = cursor.fetchone()
    if row is None:
        return None, None
    token, user, profile = split_row(row, _TOKEN, _USER, _PROFILE)
    token.user = user
    if profile is not None:  # the LEFT JOIN found one
        profile.user = user
        User.labeler.related.set_cached_value(user, profile)
    return user, token


MAX_ID = 2**63 - 1  # ids are BIGINT: a larger number names nothing (rather than failing in the database)


def number_from_digits(digits: str) -> int:
    """The number a string of ASCII digits writes; MAX_ID + 1 for one too long for int() (over 4,300 digits), which
    like it names no id and is over every limit it is checked against."""
    try:
        return int(digits)
    except ValueError:
        return MAX_ID + 1


def campaign_lookup(campaign: str | int) -> dict:
    """A campaign is named by its id or its name; NotFound for an id no BIGINT can hold."""
    if isinstance(campaign, int):
        number = campaign
    elif campaign.isascii() and campaign.isdigit():
        number = number_from_digits(campaign)
    else:
        return {"name": campaign}
    if number > MAX_ID:
        raise NotFound(f"No campaign {campaign!r}.")
    return {"pk": number}


def campaign_get_for_labeler(*, labeler: AbstractBaseUser, campaign: str | int) -> Campaign:
    """An active campaign by name or id that the user labels (a member in the role labeler:
    `selectors.campaigns.campaigns_for_labeler`), for a user who is a labeler. Any other campaign, active or not,
    is NotFound in the same words, so a campaign's name tells a stranger nothing. (The API's next item reads it
    together with the labeler's leases: `assignments.campaign_and_live_leases`.)"""
    labeler_profile_get(user=labeler)
    try:
        return campaigns_for_labeler(labeler=labeler).get(**campaign_lookup(campaign))
    except Campaign.DoesNotExist:
        raise NotFound(f"No active campaign {campaign!r}.") from None


def campaigns_listed(*, user: AbstractBaseUser):
    """The active campaigns the API lists for the user: every one for staff, the ones they label for a labeler
    (`selectors.campaigns.campaigns_for_labeler`); AccessDenied for anyone else."""
    if user.is_staff:
        return campaigns_active()
    labeler_profile_get(user=user)
    return campaigns_for_labeler(labeler=user)


def campaign_get_for_viewer(*, user: AbstractBaseUser, campaign: str | int) -> Campaign:
    """A campaign whose statistics the user may read: staff any campaign, a manager the campaigns they manage, a
    labeler an active one they label (`campaign_get_for_labeler`)."""
    if not user.is_staff:
        if user.is_authenticated:
            managed = campaigns_managed(user=user).filter(**campaign_lookup(campaign)).first()
            if managed is not None:
                return managed
        return campaign_get_for_labeler(labeler=user, campaign=campaign)
    try:
        return Campaign.objects.get(**campaign_lookup(campaign))
    except Campaign.DoesNotExist:
        raise NotFound(f"No campaign {campaign!r}.") from None


def campaign_get_for_manager(*, user: AbstractBaseUser, campaign: str | int) -> Campaign:
    """A campaign whose budget, rounds and evaluation the user may see and run: staff any campaign (NotFound for
    none such), a manager (`CampaignRole.MANAGER`) the campaigns they manage and no other
    (`selectors.campaigns.campaigns_managed`). AccessDenied for anyone else, and for a manager asking about
    another campaign or one that does not exist (the same answer, so names leak nothing)."""
    if not user.is_authenticated:
        raise AccessDenied("Log in first.")
    if user.is_staff:
        return campaign_get_for_viewer(user=user, campaign=campaign)
    try:
        return campaigns_managed(user=user).get(**campaign_lookup(campaign))
    except (Campaign.DoesNotExist, NotFound):
        raise AccessDenied(
            f"You do not manage campaign {campaign!r}: only staff and its managers may do this."
        ) from None


_ASSIGNMENT_OF_LABELER = f"""
    SELECT {LABELER_COLUMNS}, {ASSIGNMENT.columns("a")}, {HOT_COMPARISON.columns("c")}, {HOT_CAMPAIGN.columns("k")}
      FROM {{source}}
      LEFT JOIN ({Assignment._meta.db_table} a
                 JOIN {Comparison._meta.db_table} c ON c.id = a.comparison_id
                 JOIN {Campaign._meta.db_table} k ON k.id = c.campaign_id)
        ON a.id = %(assignment)s AND a.labeler_id = u.{User._meta.pk.column}
           AND annotator_labeler_member(k.id, u.{User._meta.pk.column})
     WHERE {{condition}}"""


@cache
def _assignment_of_labeler_sql(source: str, condition: str) -> str:
    return _ASSIGNMENT_OF_LABELER.format(source=source, condition=condition)


def assignment_get_for_labeler(*, labeler: AbstractBaseUser | ApiToken, assignment_id: int) -> Assignment:
    """The labeler's own assignment, with its comparison, campaign and labeler (their profile loaded; the
    comparison and campaign with their HOT_ fields), in a campaign they still label (a lease taken before they
    left it can no longer be answered). Someone else's answers exactly like a missing one, so ids leak nothing.
    One statement, which also checks an API token (see `ApiToken`). Nothing is locked: answers lock in the
    statement that stores them.
    """
    valid = isinstance(assignment_id, int) and not isinstance(assignment_id, bool) and 0 < assignment_id <= MAX_ID
    source, condition, key = labeler_sql(labeler)
    with connection.cursor() as cursor:
        cursor.execute(_assignment_of_labeler_sql(source, condition),
                       {"assignment": assignment_id if valid else None, "labeler": key})  # a token is still checked
        row = cursor.fetchone()
    user, profile, assignment, comparison, campaign = (
        split_row(row, HOT_USER, HOT_PROFILE, ASSIGNMENT, HOT_COMPARISON, HOT_CAMPAIGN) if row else [None] * 5
    )
    labeler = labeler_checked(labeler, user, profile, found=row is not None)
    if assignment is None:
        raise NotFound(f"No assignment {assignment_id} for you.")
    assignment.comparison = comparison
    assignment.comparison.campaign = campaign
    assignment.labeler = labeler
    return assignment
