"""Campaign set-up pages: the campaigns a user may set up, the new/edit form with a live cost preview (htmx posts
the form to a preview that loads no model), and a campaign's prompts page (a file upload, a dataset folder on the
server, or the plays). Creating a campaign is for staff; editing one and its prompts for staff and its managers.

Thin views: parse the request, call one service of annotator.services.campaign_setup (the same the API and
`manage.py campaign` call), render. A refusal is the page (or partial) again with the message, status 4xx.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotator.core.errors import AccessDenied, InvalidInput, ServiceError
from annotator.models import Campaign
from annotator.rounds.settings import round_settings
from annotator.services.access import campaign_get_for_manager
from annotator.services.campaign_setup import (
    DEFAULT_HELDOUT_FRACTION,
    SPEC_SECTIONS,
    CampaignSetupForm,
    CampaignSpecInvalid,
    campaign_cost_preview,
    campaign_create,
    campaign_prompt_counts,
    campaign_prompts_import,
    campaign_setup_form,
    campaign_update,
    campaigns_for_setup,
    estimate_text,
    form_errors,
    instructions_render,
)
from annotator.services.prompts import MAX_PROMPT_FILE_BYTES
from annotator.views.access import staff_required

SKIPS_SHOWN = 50


def _refusal(request: HttpRequest, error: ServiceError) -> HttpResponse:
    template = "setup/message.html#message" if request.htmx else "setup/message.html"
    return render(request, template, {"message": error.message}, status=error.status)


def _spec_data(request: HttpRequest) -> dict:
    """The form's fields as posted (each field's last value: a checkbox posts "false" before it, see form.html)."""
    data = request.POST.dict()
    data.pop("csrfmiddlewaretoken", None)
    return data


def _form_page(request: HttpRequest, form: CampaignSetupForm, campaign: Campaign | None, *, status: int = 200):
    """The form in its sections, with the cost preview of what it shows (of what was sent, after a refusal)."""
    sections = [(title, [form[name] for name in names]) for title, names in SPEC_SECTIONS]
    preview = campaign_cost_preview(campaign=campaign, data=_spec_data(request) if form.is_bound else {})
    context = {"form": form, "sections": sections, "campaign": campaign,
               "preview": _preview_context(preview, instructions=form["instructions"].value() or "")}
    return render(request, "setup/form.html", context, status=status)


def _preview_context(preview, *, instructions: str) -> dict:
    text = None if preview.estimate is None else estimate_text(preview.estimate, preview.currency)
    return {"preview": preview, "text": text, "instructions": instructions_render(instructions)}


@require_http_methods(["GET"])
@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = campaigns_for_setup(user=request.user)
    if not request.user.is_staff and not campaigns:
        return _refusal(request, AccessDenied("These pages are for staff and campaign managers."))
    return render(request, "setup/campaigns.html", {"campaigns": campaigns})


@require_http_methods(["GET", "POST"])
@staff_required
def campaign_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _form_page(request, campaign_setup_form(), None)
    try:
        campaign = campaign_create(data=_spec_data(request), created_by=request.user)
    except CampaignSpecInvalid as error:
        return _form_page(request, error.form, None, status=error.status)
    except ServiceError as error:
        return _refusal(request, error)
    messages.success(request, f"Campaign {campaign.name!r} created. Now give it prompts.")
    return redirect("setup:prompts", name=campaign.name)


@require_POST
@staff_required
def campaign_new_preview(request: HttpRequest) -> HttpResponse:
    return _preview(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def campaign_edit(request: HttpRequest, name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_manager(user=request.user, campaign=name)
        if request.method == "GET":
            return _form_page(request, campaign_setup_form(campaign=campaign), campaign)
        campaign = campaign_update(campaign=campaign, data=_spec_data(request), changed_by=request.user)
    except CampaignSpecInvalid as error:
        return _form_page(request, error.form, campaign, status=error.status)
    except ServiceError as error:
        return _refusal(request, error)
    messages.success(request, f"Campaign {campaign.name!r} saved.")
    return redirect("setup:edit", name=campaign.name)


@require_POST
@login_required
def campaign_edit_preview(request: HttpRequest, name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_manager(user=request.user, campaign=name)
    except ServiceError as error:
        return _refusal(request, error)
    return _preview(request, campaign)


def _preview(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    data = _spec_data(request)
    try:
        preview = campaign_cost_preview(campaign=campaign, data=data)
    except ServiceError as error:
        return _refusal(request, error)
    context = {"preview": _preview_context(preview, instructions=data.get("instructions", ""))}
    return render(request, "setup/form.html#cost-preview", context)


class PromptSourceForm(forms.Form):
    """The shape of a prompts request; campaign_prompts_import checks its meaning."""

    file = forms.FileField(required=False, allow_empty_file=True)  # the import says why an empty file adds nothing
    dataset_dir = forms.CharField(required=False, max_length=1000)
    plays = forms.BooleanField(required=False)
    column = forms.CharField(required=False, max_length=200)
    heldout_fraction = forms.FloatField(required=False)
    seed = forms.IntegerField(required=False)


@require_http_methods(["GET", "POST"])
@login_required
def campaign_prompts(request: HttpRequest, name: str) -> HttpResponse:
    try:
        campaign = campaign_get_for_manager(user=request.user, campaign=name)
    except ServiceError as error:
        return _refusal(request, error)
    report, error = None, None
    if request.method == "POST":
        try:
            report = _prompts_import(request, campaign)
        except ServiceError as exc:
            error = exc
    return _prompts_page(request, campaign, report=report, error=error)


def _prompts_import(request: HttpRequest, campaign: Campaign) -> dict:
    form = PromptSourceForm(request.POST, request.FILES)
    if not form.is_valid():
        raise InvalidInput(" ".join(f"{name}: {' '.join(texts)}" for name, texts in form_errors(form).items()))
    fields = dict(form.cleaned_data)
    result = campaign_prompts_import(campaign=campaign, requested_by=request.user, upload=fields.pop("file"), **fields)
    return {"result": result, "skipped": result.skipped[:SKIPS_SHOWN],
            "more": max(len(result.skipped) - SKIPS_SHOWN, 0)}


def _prompts_page(request: HttpRequest, campaign: Campaign, *, report: dict | None,
                  error: ServiceError | None) -> HttpResponse:
    try:
        sizes = round_settings(campaign=campaign)
    except ServiceError as exc:  # settings typed into the admin that the set-up form would refuse
        sizes, error = None, error or exc
    context = {
        "campaign": campaign, "report": report, "error": error and error.message, "sizes": sizes,
        "counts": campaign_prompt_counts(campaign=campaign), "heldout_fraction": DEFAULT_HELDOUT_FRACTION,
        "max_mb": MAX_PROMPT_FILE_BYTES // 2**20,
    }
    return render(request, "setup/prompts.html", context, status=error.status if error else 200)
