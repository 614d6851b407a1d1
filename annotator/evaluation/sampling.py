"""An evaluation run's sampling step: sample every checkpoint on the run's held-out prompts, score the samples with
the gold labeler and the newest reward model ensemble, then publish the battles and blind ratings in one go.

Battles: every pair of checkpoints on every prompt, one comparison each, the two completions in a random order
(the claim randomises the screen sides again for every assignment). Blind ratings: the first N samples of each
rated checkpoint (round-robin over the prompts), each a rating item; all the ratings are mixed by a seeded
shuffle of their priorities. Evaluation items sit in a priority band above training items, so an evaluation
finishes before more training labels are bought; within the band, `schedule` decides.
"""

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from annotator.evaluation.plan import SAMPLING_STEP
from annotator.evaluation.schedule import EVALUATION_PRIORITY, evaluation_rebalance
from annotator.models import (
    Campaign,
    Comparison,
    ComparisonPurpose,
    Completion,
    EvaluationRun,
    EvaluationState,
    Prompt,
    RewardModel,
)
from annotator.rounds.settings import campaign_gold, ml_config, round_settings
from annotator.rounds.step_context import StepLost
from annotator.services.budget import gpu_usage_charge

PROGRESS_MIN_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class EvaluationSample:
    checkpoint_id: int
    prompt_id: int
    text: str
    gold_score: float | None
    reward_score: float | None
    reward_uncertainty: float | None


def _progress(run_id: int, beat: Callable[[dict], bool], phase: str):
    """A models_rl progress callback that stores progress (at most once a second) through `beat`, and stops the
    work (StepLost) once the task no longer holds the step."""
    last = 0.0

    def report(update: dict) -> None:
        nonlocal last
        done, total = int(update.get("step", 0)), int(update.get("total", 0))
        if time.monotonic() - last < PROGRESS_MIN_INTERVAL_SECONDS and done < total:
            return
        last = time.monotonic()
        payload = {"phase": phase, "done": done, "total": total, "updated_at": timezone.now().isoformat()}
        if not beat(payload):
            raise StepLost(f"evaluation {run_id} sampling")

    return report


def _newest_reward_model(campaign: Campaign) -> RewardModel | None:
    return RewardModel.objects.filter(campaign=campaign).order_by("-pk").first()


def evaluation_sample(*, run: EvaluationRun, beat: Callable[[dict], bool]) -> list[EvaluationSample]:
    """The slow part, outside any transaction: samples of every checkpoint, gold- and reward-model-scored.
    `beat(progress)` records progress and says whether the task still holds the step."""
    from models_rl.sampling import SamplingConfig, sample

    campaign = run.campaign
    seed = round_settings(campaign=campaign).seed
    texts = dict(Prompt.objects.filter(pk__in=run.prompt_ids).values_list("pk", "text"))
    prompt_texts = [texts[i] for i in run.prompt_ids]
    per_prompt = {int(k): v for k, v in run.metrics["plan"]["samples_per_prompt"].items()}
    checkpoints = list(run.checkpoints.order_by("pk"))
    samples: list[EvaluationSample] = []
    for index, checkpoint in enumerate(checkpoints):
        config = ml_config(SamplingConfig, given={"seed": seed * 1000 + 700 + run.number * 50 + index},
                           campaign=campaign, section="sampling")
        n = per_prompt[checkpoint.pk]
        drawn = sample(checkpoint.path, prompt_texts, config, samples_per_prompt=n,
                       progress=_progress(run.pk, beat, f"sampling {index + 1}/{len(checkpoints)}"))
        for position, item in enumerate(drawn):
            # A byte-level model can emit a NUL byte, which PostgreSQL text refuses: show it as U+FFFD instead.
            samples.append(EvaluationSample(checkpoint.pk, run.prompt_ids[position // n],
                                            item.text.replace("\x00", "\ufffd"), None, None, None))
    gold = campaign_gold(campaign=campaign)
    reward_model = _newest_reward_model(campaign)
    scores = None
    if reward_model is not None:
        from models_rl.reward_model import RewardEnsemble

        ensemble = RewardEnsemble.load(reward_model.path)
        scores = ensemble.score([texts[s.prompt_id] for s in samples], [s.text for s in samples])
    return [
        EvaluationSample(
            s.checkpoint_id, s.prompt_id, s.text,
            None if gold is None else float(gold.score(texts[s.prompt_id], s.text)),
            None if scores is None else float(scores[0][i]), None if scores is None else float(scores[1][i]),
        )
        for i, s in enumerate(samples)
    ]


def evaluation_publish(*, run_id: int, task_id: str, samples: list[EvaluationSample], device_type: str,
                       seconds: float) -> bool:
    """Write the samples, the battles and the blind ratings, charge the GPU time and open the run for labeling,
    in one transaction that re-checks the task still holds the step; False (nothing written) when it does not."""
    with transaction.atomic():
        campaign_id = EvaluationRun.objects.values_list("campaign_id", flat=True).get(pk=run_id)
        Campaign.objects.select_for_update().get(pk=campaign_id)
        run = (
            EvaluationRun.objects.select_for_update(of=("self",)).select_related("campaign")
            .filter(pk=run_id, state=EvaluationState.SAMPLING, step_owner=task_id).first()
        )
        if run is None:
            return False
        rows = Completion.objects.bulk_create(
            Completion(prompt_id=s.prompt_id, checkpoint_id=s.checkpoint_id, text=s.text, gold_score=s.gold_score,
                       reward_score=s.reward_score, reward_uncertainty=s.reward_uncertainty)
            for s in samples
        )
        by_checkpoint: dict[int, dict[int, list[Completion]]] = {}
        for row in rows:
            by_checkpoint.setdefault(row.checkpoint_id, {}).setdefault(row.prompt_id, []).append(row)
        rng = random.Random(run.pk * 7919 + run.number)
        items = _battles(run, by_checkpoint, rng) + _blind_ratings(run, by_checkpoint, rng)
        Comparison.objects.bulk_create(items)
        gpu_usage_charge(campaign=run.campaign, step=SAMPLING_STEP, task_ref=f"evaluation-{run.pk}/sampling",
                         device_type=device_type, gpu_seconds=Decimal(str(round(seconds, 3))))
        battles = sum(item.completion_b_id is not None for item in items)
        run.state = EvaluationState.LABELING
        run.step_owner, run.step_started_at, run.step_heartbeat_at = "", None, None
        metrics = {k: v for k, v in run.metrics.items() if k != "progress"}
        run.metrics = {**metrics, "sampling": {"seconds": round(seconds, 3), "device": device_type,
                                              "completions": len(rows), "battles": battles,
                                              "ratings": len(items) - battles, "task_id": task_id}}
        run.save(update_fields=["state", "step_owner", "step_started_at", "step_heartbeat_at", "metrics"])
        evaluation_rebalance(campaign=run.campaign)
    return True


def _item(run: EvaluationRun, prompt_id: int, a: Completion, b: Completion | None, priority: float) -> Comparison:
    return Comparison(
        campaign_id=run.campaign_id, round=None, prompt_id=prompt_id, completion_a=a, completion_b=b,
        purpose=ComparisonPurpose.EVALUATION, evaluation=run, priority=priority,
        judgements_wanted=run.judgements_wanted,
    )


def _battles(run: EvaluationRun, by_checkpoint: dict, rng: random.Random) -> list[Comparison]:
    """Every pair of checkpoints on every prompt, prompt by prompt, so the first battles cover every pair."""
    checkpoint_ids = sorted(by_checkpoint)
    items = []
    for prompt_id in run.prompt_ids:
        for first, second in itertools.combinations(checkpoint_ids, 2):
            a, b = by_checkpoint[first][prompt_id][0], by_checkpoint[second][prompt_id][0]
            if rng.random() < 0.5:
                a, b = b, a
            items.append(_item(run, prompt_id, a, b, EVALUATION_PRIORITY))
    return items


def _blind_ratings(run: EvaluationRun, by_checkpoint: dict, rng: random.Random) -> list[Comparison]:
    """N samples of each rated checkpoint (not the ones its battles use), round-robin over the prompts, mixed."""
    items = []
    for checkpoint_id in sorted(run.rated_checkpoints.values_list("pk", flat=True)):
        pool = [
            completions[depth]
            for depth in range(1, max(len(c) for c in by_checkpoint[checkpoint_id].values()))
            for prompt_id in run.prompt_ids
            for completions in [by_checkpoint[checkpoint_id][prompt_id]]
            if depth < len(completions)
        ]
        for completion in pool[: run.ratings_per_checkpoint]:
            items.append(_item(run, completion.prompt_id, completion, None, EVALUATION_PRIORITY + rng.uniform(0, 2)))
    return items
