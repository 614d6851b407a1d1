"""The leaderboard from real answers on PostgreSQL: labelers of known preference, through the labeling services.

The completions are written by the test (each checkpoint's "style" is known), then published by the same
transaction a sampling task uses, so what is measured is the platform's path from answers to ratings.
"""

import math
import random

import pytest

from annotator.core.sides import FIRST, SECOND
from annotator.evaluation.leaderboard import leaderboard_refresh
from annotator.evaluation.plan import evaluation_plan
from annotator.evaluation.runs import evaluation_start, evaluation_step_claim
from annotator.evaluation.sampling import EvaluationSample, evaluation_publish
from annotator.models import Comparison, EvaluationRun, EvaluationState, PolicyCheckpoint, Prompt, PromptSplit
from annotator.services.assignments import assignment_next
from annotator.services.judgements import judgement_submit, rating_submit
from tests.factories import LabelerFactory

pytestmark = pytest.mark.django_db


def _publish(campaign, texts_of, *, prompts: int, ratings: int = 0) -> EvaluationRun:
    """Start a run (its task is not sent) and publish `texts_of[checkpoint label](prompt index, sample index)`."""
    plan = evaluation_plan(campaign=campaign, prompts=prompts, ratings_per_checkpoint=ratings,
                           checkpoint_ids=[c.pk for c in PolicyCheckpoint.objects.filter(campaign=campaign).order_by("pk")])
    run = evaluation_start(plan=plan)  # on-commit callbacks are not run: the test plays the dispatched task
    run.refresh_from_db()
    task_id = run.step_owner
    assert evaluation_step_claim(run_id=run.pk, task_id=task_id)
    samples = [
        EvaluationSample(checkpoint.pk, prompt_id, texts_of[checkpoint.label](p, s), None, None, None)
        for checkpoint in plan.checkpoints
        for p, prompt_id in enumerate(plan.prompt_ids)
        for s in range(plan.samples_per_prompt[checkpoint.pk])
    ]
    assert evaluation_publish(run_id=run.pk, task_id=task_id, samples=samples, device_type="cpu", seconds=1.0)
    run.refresh_from_db()
    assert run.state == EvaluationState.LABELING
    return run


def _answer_all(campaign, prefer, rate=lambda text: "neutral"):
    """One labeler answers every item: `prefer(first, second)` -> "first" / "second" / "tie" on screen texts."""
    labeler = LabelerFactory(campaigns=[campaign])
    while leases := assignment_next(labeler=labeler, campaign=campaign):
        lease = leases[0]
        comparison = lease.comparison
        if comparison.completion_b_id is None:
            rating_submit(labeler=labeler, assignment_id=lease.pk, value=rate(comparison.completion_a.text), milliseconds=500)
            continue
        a, b = comparison.completion_a.text, comparison.completion_b.text
        first, second = (b, a) if lease.swapped else (a, b)
        judgement_submit(labeler=labeler, assignment_id=lease.pk, screen_choice=prefer(first, second), milliseconds=500)


def _add_checkpoint(campaign, label, kl, tmp_path):
    path = tmp_path / label
    path.mkdir()
    return PolicyCheckpoint.objects.create(campaign=campaign, round=PolicyCheckpoint.objects.get(campaign=campaign, label="final").round,
                                           label=label, path=str(path), kl_from_base=kl)


def test_the_preferred_checkpoint_comes_first_with_an_interval_clear_of_the_others(eval_campaign, tmp_path):
    _add_checkpoint(eval_campaign, "kl_3", 3.0, tmp_path)
    styles = {"base": lambda p, s: f"a dull grey stone {p} {s}", "final": lambda p, s: f"a happy lovely day {p} {s}",
              "kl_3": lambda p, s: f"a dreadful awful night {p} {s}"}
    score = {"dull": 0, "happy": 1, "dreadful": -1}
    _publish(eval_campaign, styles, prompts=6, ratings=4)

    def prefer(first, second):
        a, b = score[first.split()[1]], score[second.split()[1]]
        return FIRST if a > b else SECOND if b > a else "tie"

    _answer_all(eval_campaign, prefer, rate=lambda text: {1: "positive", 0: "neutral", -1: "negative"}[score[text.split()[1]]])
    data = leaderboard_refresh(campaign=eval_campaign, bootstrap=200).data
    board = {row["name"]: row for row in data["standings"]}
    assert [row["name"] for row in data["standings"]] == ["round 1", "base", "round 1 kl_3"]
    top = board["round 1"]
    assert top["rating_low"] > max(board["base"]["rating_high"], board["round 1 kl_3"]["rating_high"])
    assert top["battles"] == 12 and top["win_rate_vs_baseline"] == 1.0 and top["win_rate_low"] > 0.5
    assert board["base"]["rating"] == 1000.0 and board["base"]["rating_low"] == board["base"]["rating_high"] == 1000.0
    assert data["recommended"]["name"] == "round 1"
    ratings = {row["name"]: row for row in data["ratings"]}
    assert ratings["round 1"]["positive"] == 4 and ratings["round 1"]["mean"] == 1.0
    assert ratings["base"]["neutral"] == 4
    (versus,) = data["rating_comparisons"]
    assert versus["name_y"] == "round 1" and versus["low"] > 0
    # Over-optimisation: the evaluated rating falls from KL 1.5 to KL 3.
    view = data["overoptimization"]
    assert [p["label"] for p in view["points"]] == ["base", "round 1", "round 1 kl_3"]
    # All runs are answered: closed by the refresh.
    assert not EvaluationRun.objects.filter(campaign=eval_campaign, state=EvaluationState.LABELING).exists()


LENGTH_SEED = 7  # seeds 0-9 checked when this was written: 9 held; with seed 3 the 95 % interval missed 1000 (1 in 20 expected)


def test_a_length_only_preference_shows_in_the_length_control(eval_campaign):
    """Labelers who prefer longer texts, and nothing else: P(first wins) = sigmoid(8 d), d the relative length
    difference. The later checkpoint writes longer, so it wins the raw rating, but the length-controlled rating
    puts the win down to length: the controlled rating drops and its interval holds the base's 1000."""
    for index in range(144):
        Prompt.objects.create(campaign=eval_campaign, text=f"More held out {index}", split=PromptSplit.HELDOUT)
    rng = random.Random(LENGTH_SEED)
    lengths = {label: [rng.randint(lo, lo + 55) for _ in range(150)] for label, lo in (("base", 5), ("final", 25))}
    styles = {label: (lambda label: lambda p, s: "x" * lengths[label][p])(label) for label in lengths}
    _publish(eval_campaign, styles, prompts=150, ratings=0)

    def prefer_longer(first, second):
        d = (len(first) - len(second)) / (len(first) + len(second))
        return FIRST if rng.random() < 1 / (1 + math.exp(-8 * d)) else SECOND

    _answer_all(eval_campaign, prefer_longer)
    data = leaderboard_refresh(campaign=eval_campaign, bootstrap=300).data
    final = next(row for row in data["standings"] if row["name"] == "round 1")
    assert final["rating_low"] > 1000  # longer writing wins the raw rating...
    assert data["length_coefficient_low"] > 0  # ...the fit puts it down to length,
    assert final["lc_rating"] < final["rating"]  # ...so the controlled rating loses the advantage,
    assert final["lc_rating_low"] < 1000 < final["lc_rating_high"]  # down to no clear gap from the base


def test_ties_count_half_a_win(eval_campaign):
    _publish(eval_campaign, {"base": lambda p, s: "same text", "final": lambda p, s: "same text"}, prompts=4)
    _answer_all(eval_campaign, lambda first, second: "tie")
    data = leaderboard_refresh(campaign=eval_campaign, bootstrap=100).data
    final = next(row for row in data["standings"] if row["name"] == "round 1")
    assert final["win_rate_vs_baseline"] == 0.5 and final["battles_vs_baseline"] == 4
    assert abs(final["rating"] - 1000) < 1e-6
    assert "half a win" in data["tie_rule"]
    assert Comparison.objects.filter(campaign=eval_campaign, is_open=True).count() == 0
