"""Account pages: accept an invitation, see one's own work and pay, and (Django's own views) reset or change a
password. Thin views: the invitation's rules live in annotator.services.invitations."""

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from annotator.core.errors import InvalidInput, ServiceError
from annotator.forms import InvitationSignUpForm
from annotator.models import CampaignMembership, CampaignRole
from annotator.selectors.earnings import earned_by_currency, work_by_campaign
from annotator.services.invitations import invitation_accept, invitation_get_for_secret
from annotator.services.sign_in import sign_in_succeeded


def message_page(request: HttpRequest, error: ServiceError) -> HttpResponse:
    """A refusal as a page of its own, with the service's message and status."""
    return render(request, "accounts/message.html", {"message": error.message}, status=error.status)


def campaign_landing_url(membership: CampaignMembership) -> str:
    """Where a new member starts: a labeler on the campaign's instructions, a manager on its rounds."""
    if membership.role == CampaignRole.MANAGER:
        return reverse("rounds:campaign", kwargs={"name": membership.campaign.name})
    return reverse("labeling:instructions", kwargs={"campaign_name": membership.campaign.name})


@never_cache
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, secret: str) -> HttpResponse:
    """The link's page: a visitor chooses a username and password, a logged-in user just accepts; either is
    logged in and lands on the campaign."""
    try:
        invitation = invitation_get_for_secret(secret=secret)
    except ServiceError as error:
        return message_page(request, error)
    signed_in = request.user.is_authenticated
    form = None if signed_in else InvitationSignUpForm(request.POST or None, initial={"email": invitation.email})
    if request.method == "POST" and (signed_in or form.is_valid()):
        try:
            membership = invitation_accept(secret=secret, user=request.user if signed_in else form.save(commit=False))
        except InvalidInput as error:
            if form is None:
                return message_page(request, error)
            form.add_error(error.details.get("field"), error.message)
        except ServiceError as error:  # used or expired meanwhile
            return message_page(request, error)
        else:
            if not signed_in:
                login(request, membership.user)
            return redirect(campaign_landing_url(membership))
    context = {"invitation": invitation, "campaign": invitation.campaign, "form": form}
    return render(request, "accounts/invitation_accept.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def my_work(request: HttpRequest) -> HttpResponse:
    rows = work_by_campaign(user=request.user)
    return render(request, "accounts/my_work.html", {"rows": rows, "totals": earned_by_currency(rows)})


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's, which also lifts a lock from too many failed sign-ins: the new password is the owner's."""

    def form_valid(self, form):
        response = super().form_valid(form)
        sign_in_succeeded(username=form.user.get_username())
        return response
