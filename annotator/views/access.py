"""Who may open the staff pages. Two guards: one for the pages of one campaign (its budget, rounds and
evaluation: staff and that campaign's managers), one for the pages that list campaigns (staff and anyone who
manages one; the lists show only what each may run). Pages for staff alone keep `staff_required`."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotator.core.errors import AccessDenied, ServiceError
from annotator.services.access import campaign_get_for_manager, campaigns_managed


def refused(request: HttpRequest, error: ServiceError) -> HttpResponse:
    """A staff page's refusal (403, 404) as a page that gives the reason."""
    context = {"message": error.message, "status": error.status}
    return render(request, "rounds/refused.html", context, status=error.status)


def staff_required(view):
    """Anonymous visitors go to the login page; logged-in non-staff get 403."""

    @wraps(view)
    def check(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("These pages are for staff only.")
        return view(request, *args, **kwargs)

    return check


def manager_required(view):
    """For the pages that list the campaigns one runs: staff, and users who manage at least one campaign.
    Anonymous visitors go to the login page; anyone else gets 403, on a page that says why."""

    @wraps(view)
    def check(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        user = request.user
        if not (user.is_active and (user.is_staff or campaigns_managed(user=user).exists())):
            return refused(request, AccessDenied("These pages are for staff and campaign managers."))
        return view(request, *args, **kwargs)

    return check


def campaign_manager_required(view):
    """For the pages of one campaign, named by the URL's `name`: the view gets `campaign` (the Campaign) instead.
    Staff may open any campaign's (404 for none such); a manager only those of the campaigns they manage (403 for
    another, or for one that does not exist: the same answer). Anonymous visitors go to the login page; anyone
    else gets 403 (`access.campaign_get_for_manager` decides), on a page that says why."""

    @wraps(view)
    def check(request: HttpRequest, *args, name: str, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_active:
            raise PermissionDenied("This account is inactive.")
        try:
            campaign = campaign_get_for_manager(user=request.user, campaign=name)
        except ServiceError as error:
            return refused(request, error)
        return view(request, *args, campaign=campaign, **kwargs)

    return check
