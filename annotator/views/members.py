"""A campaign's members page, for staff and the campaign's managers: its members and their roles, pending
invitations, inviting someone (the link is shown once, right after) and withdrawing an invitation.

Every view asks `access.campaign_get_for_manager` first (403 for anyone else). The invite and withdraw forms post
with htmx and get back the invitations part of the page (a 4xx too, retargeted there); without htmx an invitation renders the whole page (the
link must be shown in that answer) and a withdrawal redirects back.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from annotator.core.errors import ServiceError
from annotator.forms import InvitationForm
from annotator.models import Campaign, Invitation
from annotator.selectors.members import campaign_members, invitations_pending
from annotator.services.access import campaign_get_for_manager, campaigns_managed
from annotator.services.invitations import (
    MailNotSent,
    invitation_create,
    invitation_email_send,
    invitation_revoke,
)

MESSAGE_TARGET = "#members-message"
INVITATIONS_TARGET = "#invitations"


def _refusal(request: HttpRequest, error: ServiceError) -> HttpResponse:
    """The service's message with its status; htmx puts it in the page's message area."""
    template = "accounts/message.html#message" if request.htmx else "accounts/message.html"
    response = render(request, template, {"message": error.message}, status=error.status)
    if request.htmx:
        retarget(response, MESSAGE_TARGET)
        reswap(response, "innerHTML")
    return response


def _render_members(request: HttpRequest, campaign: Campaign, *, form: InvitationForm | None = None,
                    new_link: str = "", new_invitation: Invitation | None = None, notice: str = "",
                    status: int = 200) -> HttpResponse:
    context = {
        "campaign": campaign,
        "members": campaign_members(campaign=campaign),
        "invitations": invitations_pending(campaign=campaign, now=timezone.now()),
        "form": form or InvitationForm(),
        "new_link": new_link,
        "new_invitation": new_invitation,
        "notice": notice,
    }
    if not request.htmx:
        return render(request, "members/campaign.html", context, status=status)
    response = render(request, "members/campaign.html#invitations", context, status=status)
    if status >= 400:  # htmx swaps a 4xx only with these headers (static/js/labeling.js)
        retarget(response, INVITATIONS_TARGET)
        reswap(response, "outerHTML")
    return response


@login_required
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    return render(request, "members/campaigns.html", {"campaigns": campaigns_managed(user=request.user)})


@login_required
@require_GET
def campaign_members_view(request: HttpRequest, name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_manager(user=request.user, campaign=name)
    except ServiceError as error:
        return _refusal(request, error)
    return _render_members(request, campaign)


@login_required
@require_POST
def invitation_new(request: HttpRequest, name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_manager(user=request.user, campaign=name)
    except ServiceError as error:
        return _refusal(request, error)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _render_members(request, campaign, form=form, status=400)
    try:
        invitation, secret = invitation_create(campaign=campaign, created_by=request.user, **form.cleaned_data)
    except ServiceError as error:
        form.add_error(None, error.message)
        return _render_members(request, campaign, form=form, status=error.status)
    link = request.build_absolute_uri(reverse("invitation_accept", kwargs={"secret": secret}))
    notice = ""
    if invitation.email:
        try:
            invitation_email_send(invitation=invitation, link=link)
            notice = f"The link was e-mailed to {invitation.email}."
        except MailNotSent as error:
            notice = error.message
    return _render_members(request, campaign, new_link=link, new_invitation=invitation, notice=notice, status=201)


@login_required
@require_POST
def invitation_revoke_view(request: HttpRequest, name: str, invitation_id: int) -> HttpResponse:
    try:
        campaign = campaign_get_for_manager(user=request.user, campaign=name)
        invitation_revoke(campaign=campaign, invitation_id=invitation_id)
    except ServiceError as error:
        return _refusal(request, error)
    if request.htmx:
        return _render_members(request, campaign, notice="Invitation withdrawn: its link no longer works.")
    messages.success(request, "Invitation withdrawn: its link no longer works.")
    return redirect("members:campaign", name=campaign.name)
