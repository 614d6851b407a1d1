"""Who may open the staff pages: one guard for all of them."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


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
