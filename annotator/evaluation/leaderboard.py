"""A campaign's leaderboard and over-optimisation view, computed from its evaluation answers by models_rl and kept as
snapshots (`LeaderboardSnapshot`): the bootstrap takes seconds, so pages and the API read the newest snapshot, and
`leaderboard_refresh` writes a new one when answers came in since.

The snapshot's data is plain JSON (what the pages, `manage.py evaluate --show`, the API and the CSV export read):
- `standings`: one row per checkpoint in the battles: raw and length-controlled Bradley-Terry ratings with 95 %
  bootstrap intervals (base = 1000), battles, win rate against the base with its Wilson interval;
- `ratings` / `rating_comparisons`: the blind ratings' means (positive 1, neutral 0, negative -1) with intervals,
  and each rated checkpoint against the base;
- `overoptimization`: every checkpoint against sqrt(KL) (reward model score and spread, gold reward, evaluated
  rating and win rate), Gao et al.'s fits, the onset sentence and the recommended checkpoint.
"""

from collections import defaultdict
from dataclasses import asdict

from django.db import transaction
from django.db.models import Avg
from django.utils import timezone

from annotator.evaluation.schedule import evaluation_rebalance
from annotator.evaluation.selectors import (
    base_checkpoint,
    campaign_checkpoint_list,
    checkpoint_name,
    evaluation_answer_count,
    evaluation_battles,
    evaluation_ratings,
    leaderboard_latest,
)
from annotator.models import Campaign, Completion, EvaluationRun, EvaluationState, LeaderboardSnapshot, PromptSplit

BOOTSTRAP = 1000
SEED = 0


def _connected(battles, baseline: str) -> set[str]:
    """The checkpoints linked to the baseline by a chain of battles: only they can be rated against it."""
    neighbours = defaultdict(set)
    for b in battles:
        neighbours[b.model_a].add(b.model_b)
        neighbours[b.model_b].add(b.model_a)
    reached, frontier = {baseline}, [baseline]
    while frontier:
        for other in neighbours[frontier.pop()] - reached:
            reached.add(other)
            frontier.append(other)
    return reached


def _checkpoint_scores(campaign: Campaign) -> dict[int, dict]:
    """Per checkpoint: mean reward model score and ensemble spread, and mean gold reward, on held-out prompts."""
    rows = (
        Completion.objects.filter(checkpoint__campaign=campaign, prompt__split=PromptSplit.HELDOUT)
        .values("checkpoint_id")
        .annotate(proxy=Avg("reward_score"), spread=Avg("reward_uncertainty"), gold=Avg("gold_score"))
        .order_by()
    )
    return {row["checkpoint_id"]: row for row in rows}


def leaderboard_compute(*, campaign: Campaign, bootstrap: int = BOOTSTRAP, seed: int = SEED) -> dict:
    """The leaderboard and over-optimisation view of the campaign's evaluation answers so far, as JSON data."""
    from models_rl.blind_ratings import compare_ratings, summarize_ratings
    from models_rl.leaderboard import Battle, LeaderboardConfig, fit_leaderboard
    from models_rl.overoptimization import CheckpointPoint, overoptimization_view

    checkpoints = {c.pk: c for c in campaign_checkpoint_list(campaign=campaign)}
    names = {str(pk): checkpoint_name(c) for pk, c in checkpoints.items()}
    base = base_checkpoint(campaign=campaign)
    battles = [Battle(str(r.checkpoint_a), str(r.checkpoint_b), r.choice, r.length_a, r.length_b)
               for r in evaluation_battles(campaign=campaign)]
    in_battles = {m for b in battles for m in (b.model_a, b.model_b)}
    baseline = str(base.pk) if base is not None and str(base.pk) in in_battles else min(in_battles, default=None)

    standings, board = [], None
    if baseline is not None:
        linked = _connected(battles, baseline)
        fitted = [b for b in battles if b.model_a in linked]
        board = fit_leaderboard(fitted, LeaderboardConfig(baseline=baseline, seed=seed, bootstrap=bootstrap))
        for s in board.standings:
            standings.append({
                **asdict(s), "checkpoint_id": int(s.model), "name": names[s.model],
                "kl": checkpoints[int(s.model)].kl_from_base,
            })
        unlinked = sorted(in_battles - linked, key=int)
    else:
        unlinked = []

    given = {str(pk): values for pk, values in evaluation_ratings(campaign=campaign).items()}
    ratings = [{**asdict(r), "checkpoint_id": int(r.model), "name": names[r.model]}
               for r in summarize_ratings(given, seed=seed)] if given else []
    comparisons = []
    if base is not None and str(base.pk) in given:
        for other in sorted(set(given) - {str(base.pk)}, key=int):
            c = compare_ratings(str(base.pk), other, given, seed=seed)
            comparisons.append({**asdict(c), "name_x": names[c.model_x], "name_y": names[c.model_y]})

    scores = _checkpoint_scores(campaign)
    by_model = {s["checkpoint_id"]: s for s in standings}
    points = []
    for pk, checkpoint in checkpoints.items():
        standing, score = by_model.get(pk, {}), scores.get(pk, {})
        if checkpoint.kl_from_base is None or not (standing or score):
            continue
        points.append(CheckpointPoint(
            key=str(pk), label=names[str(pk)], kl=max(float(checkpoint.kl_from_base), 0.0),
            proxy=score.get("proxy"), proxy_spread=score.get("spread"), gold=score.get("gold"),
            rating=standing.get("rating"), rating_low=standing.get("rating_low"), rating_high=standing.get("rating_high"),
            win_rate=standing.get("win_rate_vs_baseline"), win_low=standing.get("win_rate_low"),
            win_high=standing.get("win_rate_high"),
        ))
    view = overoptimization_view(points)
    view_data = asdict(view)
    for point in view_data["points"]:
        point["sqrt_kl"] = float(point["kl"]) ** 0.5
    recommended = None
    if view.recommended is not None:
        row = by_model[int(view.recommended)]
        recommended = {"checkpoint_id": int(view.recommended), "name": names[view.recommended],
                       "path": checkpoints[int(view.recommended)].path, "rating": row["rating"],
                       "rating_low": row["rating_low"], "rating_high": row["rating_high"],
                       "reason": view.recommended_reason}
    return {
        "computed_at": timezone.now().isoformat(),
        "baseline": names.get(baseline) if baseline else None,
        "tie_rule": board.tie_rule if board else "ties and both-bad count as half a win for each side",
        "battles": len(battles),
        "bootstrap": bootstrap,
        "seed": seed,
        "confidence": 0.95,
        "length_coefficient": board.length_coefficient if board else None,
        "length_coefficient_low": board.length_coefficient_low if board else None,
        "length_coefficient_high": board.length_coefficient_high if board else None,
        "standings": standings,
        "not_yet_linked": [names[m] for m in unlinked],
        "ratings": ratings,
        "rating_comparisons": comparisons,
        "overoptimization": view_data,
        "recommended": recommended,
    }


def leaderboard_refresh(*, campaign: Campaign, force: bool = False, bootstrap: int = BOOTSTRAP) -> LeaderboardSnapshot | None:
    """Close the runs whose answers are all in, re-prioritise the open battles, and store a new snapshot when
    answers came in since the newest one (or `force`); the newest snapshot, or None when there is nothing yet."""
    from annotator.evaluation.runs import evaluation_close

    for run in EvaluationRun.objects.filter(campaign=campaign, state=EvaluationState.LABELING):
        evaluation_close(run=run)
    evaluation_rebalance(campaign=campaign)
    answers = evaluation_answer_count(campaign=campaign)
    latest = leaderboard_latest(campaign=campaign)
    if latest is not None and latest.answers == answers and not force:
        return latest
    if answers == 0 and latest is None:
        return None
    data = leaderboard_compute(campaign=campaign, bootstrap=bootstrap)
    with transaction.atomic():
        return LeaderboardSnapshot.objects.create(campaign=campaign, answers=answers, data=data)
