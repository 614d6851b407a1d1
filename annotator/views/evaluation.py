"""Staff page for a campaign's blind evaluation: the form that checks and starts a run (the same plan and start
services `manage.py evaluate` uses), the runs with their progress (htmx polls a partial while one is sampling or
labeling), the newest leaderboard snapshot with its intervals, the blind ratings, the over-optimisation view as
an inline SVG, and the leaderboard as CSV and JSON. For staff (every campaign) and each campaign's managers (theirs
only: another campaign's page answers 403).

A refused plan re-renders the form with the service's message and its status (400, or 402 when the budget cannot
cover it); nothing is written until the plan is accepted."""

import math

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator.core.errors import InvalidInput, ServiceError
from annotator.evaluation.export import leaderboard_csv_text
from annotator.evaluation.leaderboard import leaderboard_refresh
from annotator.evaluation.plan import DEFAULT_PROMPTS, DEFAULT_RATINGS, EvaluationPlan, evaluation_plan
from annotator.evaluation.runs import evaluation_close, evaluation_resume, evaluation_start
from annotator.evaluation.selectors import (
    campaign_checkpoint_list,
    checkpoint_name,
    default_evaluation_checkpoints,
    evaluation_answer_count,
    evaluation_run_get,
    evaluation_runs_for_campaign,
    leaderboard_latest,
)
from annotator.models import Campaign, EvaluationState, LeaderboardSnapshot
from annotator.views.access import campaign_manager_required

POLL_STATES = {EvaluationState.SAMPLING, EvaluationState.LABELING}
PANEL = {"width": 560, "height": 170, "left": 64, "right": 16, "top": 24, "bottom": 34}
FIT_STEPS = 48


# --- the start form ---------------------------------------------------------------------------------------------

def _form_values(campaign: Campaign, data: QueryDict | None = None) -> dict:
    """What the start form shows: the submitted values when re-rendered, else the defaults (the service's default
    checkpoints checked, no rated checkpoint checked: the service then rates the base and the newest final)."""
    if data is None:
        chosen = {str(c.pk) for c in default_evaluation_checkpoints(campaign=campaign)}
        rated: set[str] = set()
        values = {"prompts": "", "ratings_per_checkpoint": str(DEFAULT_RATINGS), "judgements_wanted": "1"}
    else:
        chosen, rated = set(data.getlist("checkpoints")), set(data.getlist("rated_checkpoints"))
        values = {key: data.get(key, "") for key in ("prompts", "ratings_per_checkpoint", "judgements_wanted")}
    rows = [
        {"id": c.pk, "name": checkpoint_name(c), "kl": c.kl_from_base, "checked": str(c.pk) in chosen,
         "rated": str(c.pk) in rated}
        for c in campaign_checkpoint_list(campaign=campaign)
    ]
    return {"checkpoints": rows, "default_prompts": DEFAULT_PROMPTS, **values}


def _whole_number(data: QueryDict, field: str, label: str, *, default: int | None) -> int | None:
    text = data.get(field, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{label} must be a whole number; got {text[:40]!r}.") from None


def _checkpoint_ids(data: QueryDict, field: str, label: str) -> list[int]:
    ids = []
    for text in data.getlist(field):
        try:
            ids.append(int(text))
        except ValueError:
            raise InvalidInput(f"{label}: {text[:40]!r} is not a checkpoint id.") from None
    return ids


def _plan_arguments(data: QueryDict) -> dict:
    """The form's fields as evaluation_plan's arguments (the service checks the values themselves)."""
    rated = _checkpoint_ids(data, "rated_checkpoints", "Rated checkpoints")
    return {
        "checkpoint_ids": _checkpoint_ids(data, "checkpoints", "Checkpoints"),
        "prompts": _whole_number(data, "prompts", "Held-out prompts", default=None),
        "ratings_per_checkpoint": _whole_number(data, "ratings_per_checkpoint", "Blind ratings per checkpoint",
                                                default=DEFAULT_RATINGS),
        "rated_checkpoint_ids": rated or None,  # none checked: the service chooses
        "judgements_wanted": _whole_number(data, "judgements_wanted", "Judgements per item", default=1),
    }


# --- page context -----------------------------------------------------------------------------------------------

def _runs_context(campaign: Campaign) -> dict:
    rows = []
    for run in evaluation_runs_for_campaign(campaign=campaign):
        progress = run.metrics.get("progress") if run.state == EvaluationState.SAMPLING else None
        if progress and progress.get("total"):
            progress = {**progress, "percent": round(100 * progress["done"] / progress["total"])}
        rows.append({
            "run": run,
            "checkpoints": [checkpoint_name(c) for c in run.checkpoints.all()],
            "rated": [checkpoint_name(c) for c in run.rated_checkpoints.all()],
            "ratings": (run.item_count or 0) - (run.battle_count or 0),
            "answers_wanted": run.answers_wanted if run.item_count else run.metrics.get("plan", {}).get("answers"),
            "progress": progress,
        })
    return {"campaign": campaign, "runs": rows, "polling": any(row["run"].state in POLL_STATES for row in rows)}


def _render_page(request: HttpRequest, campaign: Campaign, *, form: dict | None = None,
                 plan: EvaluationPlan | None = None, error: str = "", status: int = 200) -> HttpResponse:
    snapshot = leaderboard_latest(campaign=campaign)
    context = {
        **_runs_context(campaign),
        "form": form or _form_values(campaign),
        "plan_lines": plan.describe().splitlines() if plan else [],
        "plan_total": plan.total_cost if plan else None,
        "error": error,
        "snapshot": snapshot,
        "board": snapshot.data if snapshot else None,
        "answers_since": evaluation_answer_count(campaign=campaign) - snapshot.answers if snapshot else 0,
        "plot": overoptimization_plot(snapshot.data["overoptimization"]) if snapshot else None,
    }
    return render(request, "evaluation/page.html", context, status=status)


# --- views ------------------------------------------------------------------------------------------------------

@require_GET
@campaign_manager_required
def evaluation_page(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """The evaluation page; an htmx request gets only the runs table (polled while a run samples or labels)."""
    if request.htmx:
        return render(request, "evaluation/page.html#runs-table", _runs_context(campaign))
    return _render_page(request, campaign)


@require_POST
@campaign_manager_required
def evaluation_start_view(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Check the plan ("Check cost" shows its figures) or start it; a refusal re-renders the form with the reason."""
    form = _form_values(campaign, request.POST)
    try:
        plan = evaluation_plan(campaign=campaign, **_plan_arguments(request.POST))
    except ServiceError as exc:
        return _render_page(request, campaign, form=form, error=exc.message, status=exc.status)
    if request.POST.get("action") != "start":
        return _render_page(request, campaign, form=form, plan=plan)
    run = evaluation_start(plan=plan, created_by=request.user)
    run.refresh_from_db()  # with no broker the sampling task ran on commit, in this request
    text = f"Evaluation {run.number} is {run.get_state_display().lower()}."
    if run.state == EvaluationState.FAILED:
        messages.error(request, f"{text} {run.error}")
    else:
        messages.success(request, text)
    return redirect("rounds:evaluation", name=campaign.name)


@require_POST
@campaign_manager_required
def evaluation_refresh_view(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Close the finished runs and compute a new leaderboard snapshot when answers came in since the last."""
    snapshot = leaderboard_refresh(campaign=campaign)
    if snapshot is None:
        messages.info(request, "No evaluation answers yet: there is nothing to rank.")
    else:
        messages.success(request, f"Leaderboard from {snapshot.answers} answers ({snapshot.data['battles']} battles).")
    return redirect("rounds:evaluation", name=campaign.name)


@require_POST
@campaign_manager_required
def evaluation_close_view(request: HttpRequest, campaign: Campaign, number: int) -> HttpResponse:
    """Close a labeling run now: its open items close, the answers so far are kept."""
    run = evaluation_run_get(campaign=campaign, number=number)
    if run is None:
        raise Http404(f"Campaign {campaign.name} has no evaluation {number}.")
    try:
        evaluation_close(run=run, force=True)
    except ServiceError as exc:
        return _render_page(request, campaign, error=exc.message, status=exc.status)
    messages.success(request, f"Evaluation {number} is closed; its answers so far are kept.")
    return redirect("rounds:evaluation", name=campaign.name)


@require_POST
@campaign_manager_required
def evaluation_resume_view(request: HttpRequest, campaign: Campaign, number: int) -> HttpResponse:
    """Send a failed run's sampling step again."""
    run = evaluation_run_get(campaign=campaign, number=number)
    if run is None:
        raise Http404(f"Campaign {campaign.name} has no evaluation {number}.")
    try:
        evaluation_resume(run=run)
    except ServiceError as exc:
        return _render_page(request, campaign, error=exc.message, status=exc.status)
    run.refresh_from_db()  # with no broker the sampling task ran on commit, in this request
    messages.success(request, f"Evaluation {number} is {run.get_state_display().lower()}.")
    return redirect("rounds:evaluation", name=campaign.name)


def _snapshot(campaign: Campaign) -> LeaderboardSnapshot:
    snapshot = leaderboard_latest(campaign=campaign)
    if snapshot is None:
        raise Http404(f"Campaign {campaign.name} has no leaderboard yet.")
    return snapshot


@require_GET
@campaign_manager_required
def leaderboard_json(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    snapshot = _snapshot(campaign)
    body = {"campaign": campaign.name, "snapshot": snapshot.pk, "answers": snapshot.answers, **snapshot.data}
    response = JsonResponse(body, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{campaign.name}-leaderboard.json"'
    return response


@require_GET
@campaign_manager_required
def leaderboard_csv(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    snapshot = _snapshot(campaign)
    response = HttpResponse(leaderboard_csv_text(snapshot.data), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{campaign.name}-leaderboard.csv"'
    return response


# --- the plot: plain data in, plain data out --------------------------------------------------------------------

def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))


def _gao(fit: dict, d: float) -> float:
    """Gao et al.'s R(d) = d (alpha - beta log d), 0 at d = 0 (models_rl.overoptimization)."""
    return 0.0 if d <= 0 else d * (fit["alpha"] - fit["beta"] * math.log(d))


def _panel(*, key: str, title: str, marks: list[tuple], sx, curve: list[tuple] | None = None,
           fixed: tuple[float, float] | None = None, reference: float | None = None) -> dict:
    """One panel's coordinates; `marks` are (label, d, value, low, high) with value set, `curve` (d, value)."""
    y0, y1 = PANEL["height"] - PANEL["bottom"], PANEL["top"]
    if fixed:
        low, high = fixed
    else:
        values = [v for _, _, value, lo, hi in marks for v in (value, lo, hi) if v is not None] or [0.0, 1.0]
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or 0.05
        low, high = low - pad, high + pad

    def sy(value: float) -> float:
        return round(y0 + (y1 - y0) * (value - low) / (high - low), 1)

    points = [
        {"label": label, "x": sx(d), "y": sy(value), "value": value, "low": lo, "high": hi,
         "y_low": sy(lo) if lo is not None else None, "y_high": sy(hi) if hi is not None else None}
        for label, d, value, lo, hi in sorted(marks, key=lambda m: m[1])
    ]
    ticks = 3
    return {
        "key": key, "title": title, "points": points,
        "path": " ".join(f"{p['x']},{p['y']}" for p in points),
        "curve": " ".join(f"{sx(d)},{sy(value)}" for d, value in curve) if curve else "",
        "reference_y": sy(reference) if reference is not None else None,
        "y_ticks": [{"y": sy(low + (high - low) * i / ticks), "label": f"{low + (high - low) * i / ticks:.2f}"}
                    for i in range(ticks + 1)],
        "y0": y0, "y1": y1, "plot_height": y0 - y1,
    }


def overoptimization_plot(view: dict) -> dict | None:
    """The over-optimisation view as three inline-SVG panels sharing the sqrt(KL) axis: the reward model's score
    with its ensemble spread, the gold reward (and Gao's fit when there is one), and the win rate against the base
    with its interval (and the evaluation fit, as a win rate). None when no checkpoint has a point yet."""
    points = view["points"]
    if not points:
        return None
    x0, x1 = PANEL["left"], PANEL["width"] - PANEL["right"]
    max_x = max(max(p["sqrt_kl"] for p in points), 1e-6) * 1.1

    def sx(d: float) -> float:
        return round(x0 + (x1 - x0) * d / max_x, 1)

    grid = [max_x * i / FIT_STEPS for i in range(FIT_STEPS + 1)]
    base_gold = next((p["gold"] for p in points if p["kl"] == 0 and p["gold"] is not None), None)
    gold_curve = ([(d, base_gold + _gao(view["gold_fit"], d)) for d in grid]
                  if view.get("gold_fit") and base_gold is not None else None)
    win_curve = [(d, _sigmoid(_gao(view["evaluation_fit"], d))) for d in grid] if view.get("evaluation_fit") else None

    def spread(p: dict, side: int) -> float | None:
        return p["proxy"] + side * p["proxy_spread"] if p["proxy_spread"] is not None else None

    panels = [
        _panel(key="proxy", title="Reward model score (± ensemble spread)", sx=sx,
               marks=[(p["label"], p["sqrt_kl"], p["proxy"], spread(p, -1), spread(p, 1))
                      for p in points if p["proxy"] is not None]),
        _panel(key="gold", title="Gold reward" + (" (dashed: Gao fit)" if gold_curve else ""), sx=sx,
               marks=[(p["label"], p["sqrt_kl"], p["gold"], None, None) for p in points if p["gold"] is not None],
               curve=gold_curve),
        _panel(key="win", title="Win rate against the base, 95 % interval" + (" (dashed: Gao fit)" if win_curve
                                                                             else ""),
               sx=sx, fixed=(0.0, 1.0), reference=0.5, curve=win_curve,
               marks=[(p["label"], p["sqrt_kl"], p["win_rate"], p["win_low"], p["win_high"])
                      for p in points if p["win_rate"] is not None]),
    ]
    ticks = 4
    return {
        **PANEL, "x0": x0, "x1": x1, "plot_width": x1 - x0, "panels": panels,
        "x_ticks": [{"x": sx(max_x * i / ticks), "label": f"{max_x * i / ticks:.2f}"} for i in range(ticks + 1)],
    }
