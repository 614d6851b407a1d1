"""Accounts for simulated labelers and AI judges: labelers that work through the API with a token, like people,
and, like people, only on the campaigns they are members of (as labelers).

The labeling itself goes over HTTP (annotator.simulation); only the accounts and their memberships are made here.
"""

import re
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotator.core.errors import InvalidInput
from annotator.models import Campaign, CampaignMembership, CampaignRole, LabelerKind, LabelerProfile

USERNAME_PREFIX = re.compile(r"[\w.@+-]{1,100}")


@transaction.atomic
def simulated_labelers_ensure(
    *,
    count: int,
    prefix: str = "sim",
    kind: str = LabelerKind.SIMULATED,
    pay_per_judgement: Decimal | None = Decimal("0"),
    campaign: Campaign | None = None,
) -> list[tuple[AbstractBaseUser, str]]:
    """Create or reuse `count` labeler accounts named `<prefix>-001`, ... and return (user, API token key) pairs;
    with a `campaign`, each is (or becomes) one of its labelers, so it can work on it.

    New accounts get no usable password (they only use their token). The profile's kind and
    `pay_per_judgement` are set to what is asked (None: paid the campaign's rate). An existing account
    that is not a simulated or AI labeler is refused, so a run never takes over a person's account, and so is
    one that manages the campaign (a manager does not label it).
    Locks: each profile row (`SELECT ... FOR UPDATE`) while it is checked and updated.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInput(f"count must be a whole number of at least 1; got {count!r}.")
    if kind not in (LabelerKind.SIMULATED, LabelerKind.AI_JUDGE):
        raise InvalidInput(f"kind must be {LabelerKind.SIMULATED.value!r} or {LabelerKind.AI_JUDGE.value!r}; got {kind!r}.")
    if not USERNAME_PREFIX.fullmatch(prefix):
        raise InvalidInput(f"prefix may hold letters, digits and @.+-_ only; got {prefix!r}.")
    if pay_per_judgement is not None and Decimal(pay_per_judgement) < 0:
        raise InvalidInput("pay_per_judgement must not be negative.")

    user_model = get_user_model()
    accounts = []
    for number in range(1, count + 1):
        username = f"{prefix}-{number:03d}"
        user, user_created = user_model.objects.get_or_create(username=username)
        if user_created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        profile = LabelerProfile.objects.select_for_update().filter(user=user).first()
        if profile is None and not user_created:
            raise InvalidInput(f"Account {username!r} exists and is not a simulated labeler; choose another prefix.")
        if profile is not None and profile.kind == LabelerKind.HUMAN:
            raise InvalidInput(f"Account {username!r} belongs to a human labeler; choose another prefix.")
        if profile is None:
            LabelerProfile.objects.create(user=user, kind=kind, pay_per_judgement=pay_per_judgement)
        elif (profile.kind, profile.pay_per_judgement) != (kind, pay_per_judgement):
            profile.kind, profile.pay_per_judgement = kind, pay_per_judgement
            profile.save(update_fields=["kind", "pay_per_judgement"])
        if campaign is not None:
            membership, _ = CampaignMembership.objects.get_or_create(
                campaign=campaign, user=user, defaults={"role": CampaignRole.LABELER}
            )
            if membership.role != CampaignRole.LABELER:
                raise InvalidInput(f"Account {username!r} manages campaign {campaign.name!r} and cannot label it; "
                                   "choose another prefix.")
        token, _ = Token.objects.get_or_create(user=user)
        accounts.append((user, token.key))
    return accounts
