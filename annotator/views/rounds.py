"""Pages for RLHF rounds: each campaign's rounds with their steps updating live (htmx polls a partial),
per-round metrics, reward against sqrt(KL) as an inline SVG, samples from each checkpoint side by side, and
the button that starts the next round (the same service run_round uses). For staff (every campaign) and each
campaign's managers (theirs only: another campaign's pages answer 403)."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator.evaluation.selectors import leaderboard_latest
from annotator.models import Campaign
from annotator.services.access import campaigns_managed
from annotator.rounds.selectors import (
    campaign_reward_kl_points,
    round_get,
    round_is_active,
    round_samples_side_by_side,
    round_step_states,
    round_summary,
    rounds_for_campaign,
)
from annotator.core.errors import ServiceError
from annotator.views.access import campaign_manager_required, manager_required
from annotator.rounds.state_machine import round_start

PLOT = {"width": 520, "height": 300, "left": 56, "right": 16, "top": 16, "bottom": 44}
ROUND_COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]


@require_GET
@manager_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = campaigns_managed(user=request.user)
    rows = [{"campaign": c, "latest": rounds_for_campaign(campaign=c).first()} for c in campaigns]
    return render(request, "rounds/campaigns.html", {"rows": rows})


def _round_rows(campaign: Campaign) -> list[dict]:
    return [
        {"round": r, "steps": round_step_states(round_=r), "reward_model": r.reward_models.order_by("-pk").first()}
        for r in rounds_for_campaign(campaign=campaign)
    ]


@require_GET
@campaign_manager_required
def campaign_rounds(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """The campaign's rounds; an htmx request gets only the live table (polled while a step runs)."""
    rows = _round_rows(campaign)
    context = {"campaign": campaign, "rows": rows, "polling": any(round_is_active(row["round"]) for row in rows)}
    if request.htmx:
        return render(request, "rounds/campaign.html#round-table", context)
    context["plot"] = reward_kl_plot(campaign_reward_kl_points(campaign=campaign))
    context["leaderboard"] = leaderboard_latest(campaign=campaign)
    return render(request, "rounds/campaign.html", context)


@require_POST
@campaign_manager_required
def round_start_view(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Start the next round (or resume a failed one); `final=1` makes (or resumes) a final round, which trains
    on every label and publishes no pairs. A refusal comes back as a message, with status 400."""
    try:
        round_ = round_start(campaign=campaign, final=request.POST.get("final") == "1")
    except ServiceError as exc:
        if request.htmx:
            return render(request, "rounds/campaign.html#start-result", {"error": exc.message}, status=exc.status)
        messages.error(request, exc.message)
        return redirect("rounds:campaign", name=campaign.name)
    text = f"{'Final round' if round_.final else 'Round'} {round_.number} is {round_.get_state_display().lower()}."
    if request.htmx:
        response = render(request, "rounds/campaign.html#start-result", {"started": text})
        response["HX-Trigger"] = "round-started"
        return response
    messages.success(request, text)
    return redirect("rounds:campaign", name=campaign.name)


@require_GET
@campaign_manager_required
def round_detail(request: HttpRequest, campaign: Campaign, number: int) -> HttpResponse:
    round_ = round_get(campaign=campaign, number=number)
    if round_ is None:
        raise Http404(f"Campaign {campaign.name} has no round {number}.")
    checkpoints, samples = round_samples_side_by_side(round_=round_)
    summary = round_summary(round_=round_)
    return render(request, "rounds/round.html", {
        "campaign": campaign,
        "round": round_,
        "steps": round_step_states(round_=round_),
        "summary": summary,
        "checkpoint_rows": [
            {"checkpoint": c, "policy_reward": c.metrics.get("policy/reward"), "gold_reward": c.metrics.get("eval/gold_reward")}
            for c in summary["checkpoints"]
        ],
        "sample_checkpoints": checkpoints,
        "samples": samples,
        "leaderboard": leaderboard_latest(campaign=campaign),
    })


def reward_kl_plot(points: list[dict]) -> dict | None:
    """Gold reward against sqrt(KL from the base), as coordinates for an inline SVG: one colour and one
    line per round, axis ticks included. None when no checkpoint has a measured gold reward yet."""
    if not points:
        return None
    width, height = PLOT["width"], PLOT["height"]
    x0, x1 = PLOT["left"], width - PLOT["right"]
    y0, y1 = height - PLOT["bottom"], PLOT["top"]
    max_x = max(max(p["sqrt_kl"] for p in points), 1e-6) * 1.1
    low, high = min(p["reward"] for p in points), max(p["reward"] for p in points)
    pad = (high - low) * 0.1 or 0.05
    low, high = low - pad, high + pad

    def sx(value: float) -> float:
        return round(x0 + (x1 - x0) * value / max_x, 1)

    def sy(value: float) -> float:
        return round(y0 + (y1 - y0) * (value - low) / (high - low), 1)

    series: dict = {}
    for point in sorted(points, key=lambda p: (p["round"] is None, p["round"], p["sqrt_kl"])):
        entry = series.setdefault(point["round"], {"round": point["round"], "points": []})
        entry["points"].append({**point, "x": sx(point["sqrt_kl"]), "y": sy(point["reward"])})
    for index, entry in enumerate(series.values()):
        entry["colour"] = ROUND_COLOURS[index % len(ROUND_COLOURS)]
        entry["path"] = " ".join(f"{p['x']},{p['y']}" for p in entry["points"])
        entry["legend_y"] = PLOT["top"] + 14 * index
    ticks = 4
    return {
        **PLOT, "x0": x0, "x1": x1, "y0": y0, "y1": y1,
        "series": list(series.values()),
        "x_ticks": [{"x": sx(max_x * i / ticks), "label": f"{max_x * i / ticks:.2f}"} for i in range(ticks + 1)],
        "y_ticks": [{"y": sy(low + (high - low) * i / ticks), "label": f"{low + (high - low) * i / ticks:.2f}"}
                    for i in range(ticks + 1)],
    }
