"""What each round step reads and what it writes back: plain data out for models_rl, rows in from its results.

The worker's step functions (worker/steps.py) call the `*_inputs` functions before their slow work and hand
a `*_store` call to `round_step_finish`, which runs it in the transaction that finishes the step. Every
store is keyed by round and step: rows that carry a path are `update_or_create`d by it, other rows are
written only in that one finishing transaction, so a redone step never duplicates anything.
"""

import random
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import Avg

from annotator.models import (
    Choice,
    Comparison,
    ComparisonPurpose,
    Completion,
    PolicyCheckpoint,
    Prompt,
    PromptSplit,
    RewardModel,
    Round,
)
from annotator.selectors.rounds import (
    BASE_LABEL,
    FINAL_LABEL,
    campaign_base_checkpoint,
    judgements_for_training,
    policy_checkpoint_before,
    round_checkpoints,
    round_policy_checkpoint,
    round_reward_model,
)
from annotator.core.errors import InvalidInput
from annotator.services.rounds import RoundSettings, round_settings

EMBEDDED_BASE_MODEL_DIR = "base-model"


def embedded_base_model_dir() -> Path:
    """Where the embedded Shakespeare model lives (shared by every campaign that names no base model)."""
    return Path(settings.ARTIFACT_DIR) / EMBEDDED_BASE_MODEL_DIR


def _float(value) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------------------------------------------
# training_reward


@dataclass
class PreferenceExport:
    """Judgements as models_rl preference pairs: train (purpose train/gold) and held out (the random controls)."""

    train: list = field(default_factory=list)
    heldout: list = field(default_factory=list)
    judgements: int = 0
    ties: int = 0
    both_bad_skipped: int = 0


def preference_pairs_export(*, round_: Round) -> PreferenceExport:
    """Every judgement from the rounds before this one, as `PreferencePair`s.

    "a"/"b" order the pair, a tie is kept with `tie=True` (the loss pulls the two rewards together), and
    "both bad" is skipped: it says nothing about the order, and the pairwise loss has no absolute term.
    Judgements on the random control pairs (purpose eval) are the reward model's held-out set.
    """
    from models_rl.reward_model import PreferencePair

    export = PreferenceExport()
    for judgement in judgements_for_training(campaign=round_.campaign, before_number=round_.number):
        export.judgements += 1
        comparison = judgement.assignment.comparison
        a, b = comparison.completion_a.text, comparison.completion_b.text
        if judgement.choice == Choice.BOTH_BAD:
            export.both_bad_skipped += 1
            continue
        chosen, rejected = (b, a) if judgement.choice == Choice.B else (a, b)
        tie = judgement.choice == Choice.TIE
        export.ties += tie
        pair = PreferencePair(prompt=comparison.prompt.text, chosen=chosen, rejected=rejected, tie=tie, strength=judgement.strength)
        (export.heldout if comparison.purpose == ComparisonPurpose.EVAL else export.train).append(pair)
    return export


def base_policy_path(*, round_: Round) -> str:
    """The base policy's path: the registered base checkpoint, else the campaign's model, else the embedded one."""
    base = campaign_base_checkpoint(campaign=round_.campaign)
    if base is not None:
        return base.path
    return round_.campaign.base_model_path or str(embedded_base_model_dir())


def reward_model_store(*, round_: Round, path: Path, metrics: dict, export: PreferenceExport) -> dict:
    """Register the round's reward model (unique by path) and return the step's metrics."""
    RewardModel.objects.update_or_create(
        campaign=round_.campaign,
        path=str(path),
        defaults={
            "round": round_,
            "heldout_accuracy": _float(metrics.get("eval/accuracy")),
            "gold_agreement": _float(metrics.get("eval/gold_agreement")),
            "metrics": metrics,
        },
    )
    return {
        **metrics,
        "data/judgements": export.judgements,
        # What the trainer used: with no control pairs to hold out it holds out a share of the train pairs.
        "data/train_pairs": metrics.get("train/examples", len(export.train)),
        "data/heldout_pairs": metrics.get("eval/pairs", len(export.heldout)),
        "data/ties": export.ties,
        "data/both_bad_skipped": export.both_bad_skipped,
    }


# ---------------------------------------------------------------------------------------------------------------
# optimizing


@dataclass(frozen=True)
class OptimizingInputs:
    optimizer: str  # Campaign.policy_optimizer: rl, dpo or best_of_n
    policy_path: str  # the last round's policy
    reference_path: str  # the base policy: KL is measured from it
    reward_model_path: str
    prompts: list[str]
    seed: int
    start_kl: float  # the starting policy's KL from the base, nats per completion
    kl_per_round: float  # RL: how much further this round may go (RoundSettings.kl_per_round)


def optimizing_inputs(*, round_: Round) -> OptimizingInputs:
    start = policy_checkpoint_before(campaign=round_.campaign, number=round_.number)
    reward_model = round_reward_model(round_=round_)
    if start is None or reward_model is None:
        raise InvalidInput(f"Round {round_.number} has no starting policy or no reward model to optimise against.")
    prompts = list(
        Prompt.objects.filter(campaign=round_.campaign, split=PromptSplit.TRAIN).order_by("pk").values_list("text", flat=True)
    )
    round_sizes = round_settings(campaign=round_.campaign)
    return OptimizingInputs(
        optimizer=round_.campaign.policy_optimizer,
        policy_path=start.path,
        reference_path=base_policy_path(round_=round_),
        reward_model_path=reward_model.path,
        prompts=prompts,
        seed=round_sizes.seed + round_.number,
        start_kl=start.kl_from_base or 0.0,
        kl_per_round=round_sizes.kl_per_round,
    )


def round_kl_limit(*, inputs: OptimizingInputs, policy_kl_limit: float) -> float:
    """Where this round's RL stops, in nats from the base: `kl_per_round` beyond its starting policy, and never
    past the policy's own limit. InvalidInput when the starting policy is already at that limit."""
    if inputs.start_kl >= policy_kl_limit:
        raise InvalidInput(
            f"The policy this round starts from is already {inputs.start_kl:.2f} nats from the base, at the KL limit "
            f"({policy_kl_limit:g}): RL has no room left. Raise settings.policy.kl_limit, or optimise with DPO or "
            "best-of-n."
        )
    return min(policy_kl_limit, inputs.start_kl + inputs.kl_per_round)


@dataclass(frozen=True)
class CheckpointResult:
    label: str
    path: str
    kl: float | None
    metrics: dict


def checkpoints_store(*, round_: Round, final_path: Path, checkpoints: list[CheckpointResult], metrics: dict) -> dict:
    """Register the round's policy checkpoints, each once (unique by path); the final one is labelled "final"."""
    final = str(final_path)
    registered = []
    for checkpoint in checkpoints:
        label = FINAL_LABEL if checkpoint.path == final else checkpoint.label
        if label == FINAL_LABEL and checkpoint.path != final:
            label = f"{checkpoint.label}-step"  # only the policy the round hands on is called final
        row, _ = PolicyCheckpoint.objects.update_or_create(
            campaign=round_.campaign,
            path=checkpoint.path,
            defaults={"round": round_, "label": label, "kl_from_base": checkpoint.kl, "metrics": checkpoint.metrics},
        )
        registered.append(row.pk)
    if final not in {c.path for c in checkpoints}:
        row, _ = PolicyCheckpoint.objects.update_or_create(
            campaign=round_.campaign, path=final,
            defaults={"round": round_, "label": FINAL_LABEL, "kl_from_base": _float(metrics.get("policy/kl")), "metrics": metrics},
        )
        registered.append(row.pk)
    return {**metrics, "checkpoints": len(registered), "final_path": final}


def base_checkpoint_store(*, round_: Round, path: Path) -> PolicyCheckpoint:
    """Round 0 registers the base policy as its checkpoint (KL 0)."""
    row, _ = PolicyCheckpoint.objects.update_or_create(
        campaign=round_.campaign, path=str(path), defaults={"round": round_, "label": BASE_LABEL, "kl_from_base": 0.0}
    )
    return row


# ---------------------------------------------------------------------------------------------------------------
# sampling


@dataclass(frozen=True)
class SampleJob:
    """Sample `samples_per_prompt` completions from one checkpoint for some prompts."""

    checkpoint_id: int | None  # None: the base policy, registered when round 0 stores its samples
    checkpoint_path: str
    prompt_ids: list[int]
    prompt_texts: list[str]
    samples_per_prompt: int
    purpose: str  # "train": material for pairs; "eval": held-out prompts to measure gold reward


def round_prompt_ids(*, round_: Round, round_sizes: RoundSettings) -> list[int]:
    """The train prompts this round samples for: a seeded draw, different each round."""
    ids = list(Prompt.objects.filter(campaign=round_.campaign, split=PromptSplit.TRAIN).order_by("pk").values_list("pk", flat=True))
    if not ids:
        raise InvalidInput(f"Campaign {round_.campaign.name!r} has no train prompts.")
    rng = random.Random(round_sizes.seed * 1_000_003 + round_.number)
    return sorted(rng.sample(ids, min(round_sizes.prompts_per_round, len(ids))))


def sampling_jobs(*, round_: Round, base_path: str | None = None) -> list[SampleJob]:
    """What the sampling step generates. Round 0: the base policy (at `base_path`) on the round's prompts and
    the held-out prompts. Later rounds: the new policy on the round's prompts, the previous policy for
    contrast, and every new checkpoint on the held-out prompts."""
    round_sizes = round_settings(campaign=round_.campaign)
    prompt_ids = round_prompt_ids(round_=round_, round_sizes=round_sizes)
    texts = dict(Prompt.objects.filter(campaign=round_.campaign).values_list("pk", "text"))
    heldout_ids = list(
        Prompt.objects.filter(campaign=round_.campaign, split=PromptSplit.HELDOUT).order_by("pk").values_list("pk", flat=True)
    )[: round_sizes.heldout_prompts]

    def job(checkpoint_id, path, ids, n, purpose):
        return SampleJob(checkpoint_id, str(path), ids, [texts[i] for i in ids], n, purpose)

    if round_.number == 0:
        jobs = [job(None, base_path, prompt_ids, round_sizes.completions_per_prompt, "train")]
        if heldout_ids and round_sizes.eval_samples_per_prompt:
            jobs.append(job(None, base_path, heldout_ids, round_sizes.eval_samples_per_prompt, "eval"))
        return jobs
    policy = round_policy_checkpoint(round_=round_)
    previous = policy_checkpoint_before(campaign=round_.campaign, number=round_.number)
    if policy is None:
        raise InvalidInput(f"Round {round_.number} has no final policy checkpoint to sample from.")
    jobs = [job(policy.pk, policy.path, prompt_ids, round_sizes.completions_per_prompt, "train")]
    if previous is not None and round_sizes.contrast_per_prompt:
        jobs.append(job(previous.pk, previous.path, prompt_ids, round_sizes.contrast_per_prompt, "train"))
    if heldout_ids and round_sizes.eval_samples_per_prompt:
        for checkpoint in round_checkpoints(round_=round_):
            jobs.append(job(checkpoint.pk, checkpoint.path, heldout_ids, round_sizes.eval_samples_per_prompt, "eval"))
    return jobs


@dataclass(frozen=True)
class SampledText:
    text: str
    gold_score: float | None


def completions_store(*, round_: Round, jobs: list[tuple[SampleJob, list[list[SampledText]]]], base_path: str | None = None) -> dict:
    """Write the sampled completions (grouped per job, then per prompt), and each checkpoint's mean gold
    reward on the held-out prompts into its metrics. Returns the step's metrics, including the ids of the
    train completions that the selecting step pairs up."""
    base = base_checkpoint_store(round_=round_, path=Path(base_path)) if base_path is not None else None
    train_ids: list[int] = []
    eval_checkpoints: set[int] = set()
    for sample_job, per_prompt in jobs:
        checkpoint_id = sample_job.checkpoint_id if sample_job.checkpoint_id is not None else base.pk
        rows = [
            # A byte-level model can emit a NUL byte, which PostgreSQL text refuses: show it as U+FFFD instead.
            Completion(prompt_id=prompt_id, checkpoint_id=checkpoint_id, text=sampled.text.replace("\x00", "\ufffd"),
                       gold_score=sampled.gold_score)
            for prompt_id, texts in zip(sample_job.prompt_ids, per_prompt, strict=True)
            for sampled in texts
        ]
        created = Completion.objects.bulk_create(rows)
        if sample_job.purpose == "train":
            train_ids.extend(row.pk for row in created)
        else:
            eval_checkpoints.add(checkpoint_id)
    gold_rewards = {}
    for checkpoint in PolicyCheckpoint.objects.filter(pk__in=eval_checkpoints):
        mean = (
            Completion.objects.filter(checkpoint=checkpoint, prompt__split=PromptSplit.HELDOUT, gold_score__isnull=False)
            .aggregate(m=Avg("gold_score"))["m"]
        )
        if mean is not None:
            checkpoint.metrics = {**checkpoint.metrics, "eval/gold_reward": mean}
            checkpoint.save(update_fields=["metrics"])
            gold_rewards[checkpoint.label] = mean
    return {"completions": len(train_ids), "train_completion_ids": train_ids, "eval/gold_reward": gold_rewards}


# ---------------------------------------------------------------------------------------------------------------
# selecting


@dataclass(frozen=True)
class CandidateCompletion:
    completion_id: int
    prompt_id: int
    prompt: str
    text: str
    gold_score: float | None


def selecting_candidates(*, round_: Round) -> list[CandidateCompletion]:
    """The round's train completions (from its sampling step), to be paired within each prompt."""
    ids = round_.metrics.get("sampling", {}).get("train_completion_ids", [])
    completions = Completion.objects.filter(pk__in=ids).select_related("prompt").order_by("prompt_id", "pk")
    return [CandidateCompletion(c.pk, c.prompt_id, c.prompt.text, c.text, c.gold_score) for c in completions]


@dataclass(frozen=True)
class PairToPublish:
    completion_a: int
    completion_b: int
    prompt_id: int
    purpose: str
    acquisition_score: float | None
    gold_choice: str = ""


def comparisons_publish(
    *, round_: Round, pairs: list[PairToPublish], reward_scores: dict[int, tuple[float, float]]
) -> dict:
    """Publish the round's pairs for labeling (in the given order: earlier ones are served first) and store
    the reward model's mean and spread on the scored completions."""
    for completion_id, (mean, spread) in reward_scores.items():
        Completion.objects.filter(pk=completion_id).update(reward_score=mean, reward_uncertainty=spread)
    overlap = round_.campaign.overlap
    Comparison.objects.bulk_create(
        Comparison(
            campaign=round_.campaign, round=round_, prompt_id=pair.prompt_id,
            completion_a_id=pair.completion_a, completion_b_id=pair.completion_b, purpose=pair.purpose,
            acquisition_score=pair.acquisition_score, priority=float(len(pairs) - position),
            judgements_wanted=overlap, gold_choice=pair.gold_choice,
        )
        for position, pair in enumerate(pairs)
    )
    counts = {purpose: sum(p.purpose == purpose for p in pairs) for purpose in ComparisonPurpose.values}
    return {"pairs_published": len(pairs), **{f"pairs/{k}": v for k, v in counts.items()}, "judgements_wanted": len(pairs) * overlap}


def gold_choice_for(score_a: float, score_b: float) -> str:
    return Choice.A if score_a > score_b else Choice.B
