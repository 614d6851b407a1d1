"""Invitations: a single-use, expiring link that makes whoever holds it a member of one campaign.

Only the SHA-256 of the link's secret is stored (`Invitation.token_hash`), so a reader of the database cannot use
an invitation; the secret itself is shown once, to whoever created it, and put in the e-mail when one is sent.

Who may invite is the caller's check, made before `invitation_create` with `access.campaign_get_for_manager`
(staff any campaign, a manager the campaigns they manage).

Lock protocol: accepting locks the invitation row (`FOR UPDATE`) and, in the same transaction, saves the new user,
adds the labeler profile, creates or updates the membership (its row locked by `update_or_create`) and marks the
invitation used; anything that fails rolls all of it back. Two people using one link at once therefore get one
membership between them: the second waits for the lock, then finds the link used. Revoking takes the same lock.
"""

import hashlib
import secrets
import smtplib
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from annotator.core.errors import InvalidInput, NotFound, ServiceError
from annotator.models import Campaign, CampaignMembership, CampaignRole, Invitation, LabelerKind, LabelerProfile

INVITATION_VALID_FOR = timedelta(days=7)
INVITATION_MAX_VALID_FOR = timedelta(days=90)
SECRET_BYTES = 32  # token_urlsafe: 43 characters in the link


class InvitationUsed(ServiceError):
    status = 410
    code = "invitation_used"


class InvitationExpired(ServiceError):
    status = 410
    code = "invitation_expired"


class MailNotSent(ServiceError):
    """The mail server refused or could not be reached; the invitation exists and its link still works."""

    status = 502
    code = "mail_not_sent"


def invitation_secret_hash(secret: str) -> str:
    """What is stored of a link's secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def invitation_create(
    *,
    campaign: Campaign,
    role: str,
    created_by: AbstractBaseUser,
    email: str = "",
    valid_for: timedelta = INVITATION_VALID_FOR,
    now: datetime | None = None,
) -> tuple[Invitation, str]:
    """A new invitation to `campaign` as `role`, and the secret for its link (never stored; show it once).

    The caller has checked that `created_by` may manage the campaign. `email` only records where the link is
    sent (`invitation_email_send`); anyone holding the link can use it.
    """
    if role not in CampaignRole.values:
        raise InvalidInput(f"role must be one of {', '.join(CampaignRole.values)}; got {role!r}.")
    if not timedelta(0) < valid_for <= INVITATION_MAX_VALID_FOR:
        raise InvalidInput(f"An invitation is valid for more than no time and at most {INVITATION_MAX_VALID_FOR.days} days.")
    email = get_user_model().objects.normalize_email((email or "").strip())
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput(f"{email!r} is not an e-mail address.") from None
    secret = secrets.token_urlsafe(SECRET_BYTES)
    invitation = Invitation.objects.create(
        campaign=campaign,
        role=role,
        email=email,
        token_hash=invitation_secret_hash(secret),
        created_by=created_by,
        expires_at=(now or timezone.now()) + valid_for,
    )
    return invitation, secret


def invitation_get_for_secret(*, secret: str, now: datetime | None = None, lock: bool = False) -> Invitation:
    """The invitation a link's secret names, with its campaign, if it can still be used: NotFound for an unknown
    secret, InvitationUsed or InvitationExpired (410) for one that cannot. `lock`: `FOR UPDATE` (inside a
    transaction), for the one who accepts it."""
    invitations = Invitation.objects.select_related("campaign")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    try:
        invitation = invitations.get(token_hash=invitation_secret_hash(secret))
    except Invitation.DoesNotExist:
        raise NotFound("This invitation link is not valid. Check that you copied all of it.") from None
    if invitation.used_at is not None:
        raise InvitationUsed(
            "This invitation link was already used; each link works once. Log in, or ask whoever invited you for a "
            "new link."
        )
    if invitation.expires_at <= (now or timezone.now()):
        raise InvitationExpired(
            "This invitation link has expired or was withdrawn. Ask whoever invited you for a new one."
        )
    return invitation


@transaction.atomic
def invitation_accept(*, secret: str, user: AbstractBaseUser, now: datetime | None = None) -> CampaignMembership:
    """Use an invitation: `user` becomes a member of its campaign in its role, and the invitation is used up.

    `user` is the logged-in user, or a new, unsaved one (`InvitationSignUpForm.save(commit=False)`, whose username
    and password Django's validators have checked), saved here. A labeler invitation gives the user a (human)
    labeler profile when they have none; an existing membership takes the invitation's role. Holds the invitation
    row lock; see the module's lock protocol. Nothing is written when anything is refused.
    """
    now = now or timezone.now()
    invitation = invitation_get_for_secret(secret=secret, now=now, lock=True)
    if user.pk is None:
        if not user.email and invitation.email:
            user.email = invitation.email
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise InvalidInput(
                f"The username {user.get_username()!r} was just taken; choose another.", field="username"
            ) from None
    elif not user.is_active:
        raise InvalidInput("This account is inactive.")
    if invitation.role == CampaignRole.LABELER:
        LabelerProfile.objects.get_or_create(user=user, defaults={"kind": LabelerKind.HUMAN})
    membership, _ = CampaignMembership.objects.update_or_create(
        campaign=invitation.campaign, user=user, defaults={"role": invitation.role}
    )
    invitation.used_at = now
    invitation.used_by = user
    invitation.save(update_fields=["used_at", "used_by"])
    membership.campaign = invitation.campaign
    return membership


@transaction.atomic
def invitation_revoke(*, campaign: Campaign, invitation_id: int, now: datetime | None = None) -> Invitation:
    """Withdraw a pending invitation of `campaign` (the caller may manage it): it expires now, and its link is
    refused from then on. A used one cannot be withdrawn (remove the member instead). Holds its row lock."""
    now = now or timezone.now()
    invitation = Invitation.objects.select_for_update().filter(campaign=campaign, pk=invitation_id).first()
    if invitation is None:
        raise NotFound(f"No invitation {invitation_id} to {campaign.name}.")
    if invitation.used_at is not None:
        raise InvalidInput("This invitation was already used; it can no longer be withdrawn.")
    if invitation.expires_at > now:
        invitation.expires_at = now
        invitation.save(update_fields=["expires_at"])
    return invitation


def invitation_email_send(*, invitation: Invitation, link: str) -> None:
    """E-mail the link to the invitation's address through Django's mail backend (settings.EMAIL_BACKEND).
    Call it after the invitation is committed, never inside a transaction: a mail server can be slow."""
    if not invitation.email:
        raise InvalidInput("This invitation has no e-mail address to send it to.")
    context = {"invitation": invitation, "campaign": invitation.campaign, "link": link,
               "inviter": invitation.created_by}
    subject = render_to_string("members/invitation_subject.txt", context).strip().splitlines()[0]
    body = render_to_string("members/invitation_email.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as error:
        raise MailNotSent(f"The e-mail to {invitation.email} could not be sent ({error}); copy the link instead.") from None
