"""Pages for the living budget: overview, one campaign's figures and burn-down, the ledger, staff entries
and reversals, and CSV exports for payroll and bookkeeping. For staff (every campaign) and each campaign's managers
(theirs only: another campaign's pages answer 403); recording and reversing entries is for staff alone.
Anonymous visitors are sent to log in."""

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from annotator.forms import LedgerEntryForm, LedgerReversalForm
from annotator.models import Campaign, LedgerCategory
from annotator.selectors.budget import (
    campaign_budget_summary,
    campaigns_for_budget,
    gpu_figures,
    labeler_earnings,
    ledger_entries,
    money_figures,
)
from annotator.services.budget import ledger_entry_record, ledger_entry_reverse
from annotator.core.errors import ServiceError
from annotator.views.access import campaign_manager_required, manager_required, staff_required

LEDGER_PAGE_SIZE = 50


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, template, {**admin.site.each_context(request), **context}, status=status)


@require_GET
@manager_required
def budget_overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [
        {"campaign": c, "money": money_figures(campaign=c, now=now), "gpu": gpu_figures(campaign=c)}
        for c in campaigns_for_budget(user=request.user)
    ]
    return _page(request, "budget/overview.html", {"title": "Budget", "rows": rows})


@require_GET
@campaign_manager_required
def campaign_budget(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    summary = campaign_budget_summary(campaign=campaign, now=timezone.now())
    return _page(
        request,
        "budget/campaign.html",
        {
            "title": f"Budget: {campaign.title}",
            "campaign": campaign,
            "summary": summary,
            "chart": burn_down_chart(
                series=summary.burn_down,
                budget=campaign.money_budget,
                reserved=summary.money.reserved,
                spend_per_day=summary.projection.spend_per_day,
            ),
            "recent_entries": ledger_entries(campaign=campaign).order_by("-created_at", "-id")[:10],
        },
    )


@require_GET
@campaign_manager_required
def ledger(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    entries = ledger_entries(campaign=campaign).order_by("-created_at", "-id")
    category = request.GET.get("category", "")
    if category in LedgerCategory.values:
        entries = entries.filter(category=category)
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(
        request,
        "budget/ledger.html",
        {"title": f"Ledger: {campaign.title}", "campaign": campaign, "page": page, "category": category,
         "categories": LedgerCategory.choices},
    )


@require_http_methods(["GET", "POST"])
@staff_required  # staff alone record and reverse entries (annotator.services.budget)
@campaign_manager_required
def ledger_entry_new(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    form = LedgerEntryForm(request.POST or None, campaign=campaign)
    if request.method == "POST" and form.is_valid():
        try:
            entry = ledger_entry_record(campaign=campaign, recorded_by=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Recorded entry {entry.pk}: {entry.get_category_display()} {entry.amount}.")
            return redirect("budget:campaign", name=campaign.name)
    status = 400 if request.method == "POST" else 200
    context = {"title": f"New ledger entry: {campaign.title}", "campaign": campaign, "form": form}
    return _page(request, "budget/entry_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@staff_required  # staff alone record and reverse entries (annotator.services.budget)
@campaign_manager_required
def ledger_entry_reversal(request: HttpRequest, campaign: Campaign, entry_id: int) -> HttpResponse:
    entry = get_object_or_404(ledger_entries(campaign=campaign), pk=entry_id)
    form = LedgerReversalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            reversal = ledger_entry_reverse(entry_id=entry.pk, recorded_by=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Entry {entry.pk} reversed by entry {reversal.pk}.")
            return redirect("budget:ledger", name=campaign.name)
    status = 400 if request.method == "POST" else 200
    context = {"title": f"Reverse entry {entry.pk}", "campaign": campaign, "entry": entry, "form": form}
    return _page(request, "budget/reverse_form.html", context, status=status)


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    """Text that a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _csv_response(rows, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([_csv_cell(cell) for cell in row]) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@campaign_manager_required
def earnings_csv(request: HttpRequest, campaign: Campaign) -> StreamingHttpResponse:
    header = ["username", "kind", "items", "seconds_on_page", "earned", "currency", "effective_hourly", "underpaid"]
    rows = (
        [
            r.username, r.kind, r.items, r.seconds_on_page, r.earned, campaign.currency,
            "" if r.effective_hourly is None else r.effective_hourly.quantize(Decimal("0.01")), r.underpaid,
        ]
        for r in labeler_earnings(campaign=campaign)
    )
    return _csv_response([header, *rows], f"{campaign.name}-earnings.csv")


@require_GET
@campaign_manager_required
def ledger_csv(request: HttpRequest, campaign: Campaign) -> StreamingHttpResponse:
    header = [
        "id", "created_at", "category", "amount", "currency", "quantity", "unit", "labeler", "assignment", "round",
        "task_ref", "device_type", "seconds_on_page", "reverses", "reversed_by", "recorded_by", "reason",
    ]

    def rows():
        yield header
        for e in ledger_entries(campaign=campaign).iterator(chunk_size=2000):
            yield [
                e.pk, e.created_at.isoformat(), e.category, e.amount, campaign.currency, e.quantity, e.unit,
                e.labeler.get_username() if e.labeler else "", e.assignment_id, e.round.number if e.round else "",
                e.task_ref, e.device_type, e.seconds_on_page, e.reverses_id,
                getattr(getattr(e, "reversed_by", None), "pk", ""),
                e.recorded_by.get_username() if e.recorded_by else "", e.reason,
            ]

    return _csv_response(rows(), f"{campaign.name}-ledger.csv")


# The burn-down chart: drawn here as plain SVG geometry (no JavaScript, no library).

CHART_WIDTH, CHART_HEIGHT = 720, 260
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 80, 20, 16, 36
# The projection may stretch the time axis at most this many times the history shown, so history stays legible.
MAX_PROJECTION_STRETCH = 3
MIN_TICK_GAP = 110  # pixels between time labels


@dataclass(frozen=True)
class ChartTick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class BurnDownChart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    points: str  # the polyline of remaining (or, without a cap, spent) money
    projection: str  # a dashed segment to where the money runs out; empty without a cap or spending
    y_ticks: list[ChartTick]
    x_ticks: list[ChartTick]
    y_title: str


def burn_down_chart(
    *, series: list[tuple[datetime, Decimal]], budget: Decimal | None, reserved: Decimal, spend_per_day: Decimal
) -> BurnDownChart:
    """Scale the spending series into SVG coordinates: money left over time; then, dashed, the reservations
    taken off and the recent rate carried on until nothing is left (the projection's date)."""
    start, now = series[0][0], series[-1][0]
    values = [(t, budget - spent if budget is not None else spent) for t, spent in series]
    end = now
    projection: list[tuple[datetime, Decimal]] = []
    uncommitted = values[-1][1] - reserved
    if budget is not None and spend_per_day > 0 and uncommitted > 0:
        runs_out = now + timedelta(days=float(uncommitted / spend_per_day))
        history = max(now - start, timedelta(hours=1))
        end = min(runs_out, now + history * MAX_PROJECTION_STRETCH)
        left_at_end = uncommitted - spend_per_day * Decimal((end - now).total_seconds()) / 86400
        projection = [(now, values[-1][1]), (now, uncommitted), (end, max(left_at_end, Decimal(0)))]
    top_value = max([budget or Decimal(0), *(v for _, v in values)]) or Decimal(1)
    bottom_value = min([Decimal(0), *(v for _, v in values)])
    right, bottom = CHART_WIDTH - CHART_RIGHT, CHART_HEIGHT - CHART_BOTTOM
    span = max((end - start).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return round(CHART_LEFT + (right - CHART_LEFT) * (t - start).total_seconds() / span, 1)

    def y(v: Decimal) -> float:
        return round(bottom - (bottom - CHART_TOP) * float((v - bottom_value) / (top_value - bottom_value)), 1)

    def polyline(points: list[tuple[datetime, Decimal]]) -> str:
        return " ".join(f"{x(t)},{y(v)}" for t, v in points)

    date_format = "%d %b %H:%M" if span < 3 * 86400 else "%d %b %Y"
    x_ticks: list[ChartTick] = []
    for t in (start, now, end):  # labels closer than their width would overlap: keep the later one
        if x_ticks and x(t) - x_ticks[-1].x < MIN_TICK_GAP:
            x_ticks.pop()
        x_ticks.append(ChartTick(x=x(t), y=bottom + 18, label=f"{t:{date_format}}"))
    return BurnDownChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=CHART_LEFT,
        right=right,
        top=CHART_TOP,
        bottom=bottom,
        points=polyline(values),
        projection=polyline(projection),
        y_ticks=[
            ChartTick(x=CHART_LEFT - 6, y=y(v), label=f"{v:.2f}")
            for v in sorted({bottom_value, Decimal(0), top_value / 2, top_value})
        ],
        x_ticks=x_ticks,
        y_title="money left" if budget is not None else "money spent",
    )
