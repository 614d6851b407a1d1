"""Labeler pages: choose a campaign, read its instructions, label items one keystroke (or tap) at a time.

Thin function views: parse the form, call one service, render. An answer sent by htmx gets back only the
work area (the next item, already claimed by `assignment_next(prefetch=1)`, and the progress), so the page
never reloads; without htmx the answer redirects back to the labeling page.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from annotator.models import Campaign, Choice, RatingValue, TaskKind
from annotator.selectors.campaigns import campaign_progress_for_labeler
from annotator.selectors.labeling import campaign_cards_for_labeler, labeling_item
from annotator.services.access import campaign_get_for_labeler, campaigns_managed, labeler_profile_get
from annotator.services.assignments import assignment_next
from annotator.services.campaign_setup import instructions_render  # Markdown, sanitised (scripts removed)
from annotator.core.errors import (
    AccessDenied,
    AlreadySubmitted,
    BudgetExhausted,
    CampaignClosed,
    InvalidInput,
    LeaseExpired,
    ServiceError,
)
from annotator.services.judgements import judgement_submit, rating_submit
from annotator.core.sides import FIRST, SECOND

MESSAGE_TARGET = "#labeling-message"
# The page's answer buttons, in the screen terms of annotator.core.sides (left is shown first).
PAGE_ANSWERS = {"left": FIRST, "right": SECOND, "tie": Choice.TIE.value, "both_bad": Choice.BOTH_BAD.value}


def _error_response(request: HttpRequest, error: ServiceError) -> HttpResponse:
    """The service's message with its status; htmx puts it in the message area and leaves the item alone."""
    template = "labeling/message.html#message" if request.htmx else "labeling/message.html"
    response = render(request, template, {"message": error.message}, status=error.status)
    if request.htmx:
        retarget(response, MESSAGE_TARGET)
        reswap(response, "innerHTML")
    return response


def _work_context(*, labeler: AbstractBaseUser, campaign: Campaign, notice: str = "") -> dict:
    """The labeler's current item (claiming it and the one after, if need be), or why there is none."""
    try:
        leases = assignment_next(labeler=labeler, campaign=campaign, prefetch=1)
        state = "item" if leases else "all_done"
    except BudgetExhausted:
        leases, state = [], "paused"
    except CampaignClosed:
        leases, state = [], "closed"
    return {
        "campaign": campaign,
        "state": state,
        "item": labeling_item(assignment=leases[0]) if leases else None,
        "progress": campaign_progress_for_labeler(labeler=labeler, campaign=campaign),
        "notice": notice,
    }


@login_required
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    """The campaigns the user labels; a manager (not staff, who have the menu) also finds the ones they run here."""
    context = {"managed": campaigns_managed(user=request.user) if not request.user.is_staff else []}
    try:
        labeler_profile_get(user=request.user)
    except AccessDenied as error:
        return render(request, "labeling/campaign_list.html", {**context, "not_a_labeler": error.message})
    context["cards"] = campaign_cards_for_labeler(labeler=request.user)
    return render(request, "labeling/campaign_list.html", context)


@login_required
@require_GET
def campaign_instructions(request: HttpRequest, campaign_name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_labeler(labeler=request.user, campaign=campaign_name)
    except ServiceError as error:
        return _error_response(request, error)
    return render(
        request,
        "labeling/instructions.html",
        {
            "campaign": campaign,
            "instructions": instructions_render(campaign.instructions),
            "progress": campaign_progress_for_labeler(labeler=request.user, campaign=campaign),
        },
    )


@login_required
@require_GET
def label(request: HttpRequest, campaign_name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_labeler(labeler=request.user, campaign=campaign_name)
    except ServiceError as error:
        return _error_response(request, error)
    context = _work_context(labeler=request.user, campaign=campaign)
    context["instructions"] = instructions_render(campaign.instructions)
    return render(request, "labeling/label.html", context)


def _submit_answer(*, labeler: AbstractBaseUser, campaign: Campaign, assignment_id: int, form) -> None:
    """Read the answer form and record it; raises a ServiceError for anything wrong."""
    answer = form.get("answer", "")
    rationale = form.get("rationale", "")
    milliseconds = form.get("milliseconds", "")
    # The answer names its kind (the two sets of answers are apart); the item's own kind is checked where it is
    # stored. An answer of neither kind is refused in the words of the campaign's kind.
    if answer in RatingValue.values or (answer not in PAGE_ANSWERS and campaign.task_kind == TaskKind.RATING):
        rating_submit(
            labeler=labeler, assignment_id=assignment_id, value=answer, rationale=rationale, milliseconds=milliseconds
        )
        return
    try:
        strength = int(form.get("strength", "2"))
    except ValueError:
        raise InvalidInput(f"strength must be 1, 2 or 3; got {form.get('strength')!r}.") from None
    if answer not in PAGE_ANSWERS:
        raise InvalidInput(f"answer must be one of {', '.join(PAGE_ANSWERS)}; got {answer!r}.")
    judgement_submit(
        labeler=labeler,
        assignment_id=assignment_id,
        screen_choice=PAGE_ANSWERS[answer],
        strength=strength,
        rationale=rationale,
        milliseconds=milliseconds,
    )


@login_required
@require_POST
def item_answer(request: HttpRequest, campaign_name: str, assignment_id: int) -> HttpResponse:
    notice = ""
    try:
        campaign = campaign_get_for_labeler(labeler=request.user, campaign=campaign_name)
        _submit_answer(labeler=request.user, campaign=campaign, assignment_id=assignment_id, form=request.POST)
    except (LeaseExpired, AlreadySubmitted) as error:
        # Nothing new was recorded, but the labeler can go on: show why, with the next item.
        notice = error.message
    except ServiceError as error:
        return _error_response(request, error)
    if not request.htmx:
        if notice:
            messages.warning(request, notice)
        return redirect("labeling:label", campaign_name=campaign.name)
    context = _work_context(labeler=request.user, campaign=campaign, notice=notice)
    return render(request, "labeling/label.html#work", context)
