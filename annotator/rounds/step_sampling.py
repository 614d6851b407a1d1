"""The sampling step: completions from the round's policies (round 0: the base policy), scored by the gold
labeler -> Completion rows, and each checkpoint's mean held-out gold reward."""

import random
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Avg

from annotator.core.errors import InvalidInput
from annotator.models import Completion, PolicyCheckpoint, Prompt, PromptSplit, Round
from annotator.rounds.selectors import BASE_LABEL, policy_checkpoint_before, round_checkpoints, round_policy_checkpoint
from annotator.rounds.settings import (
    RoundSettings,
    campaign_gold,
    embedded_base_model_dir,
    ml_config,
    ml_settings,
    round_settings,
)
from annotator.rounds.step_context import StepContext


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
    contrast, and every new checkpoint on the held-out prompts. A final round pairs nothing: only the held-out
    prompts."""
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
    jobs = [] if round_.final else [job(policy.pk, policy.path, prompt_ids, round_sizes.completions_per_prompt, "train")]
    if previous is not None and round_sizes.contrast_per_prompt and not round_.final:
        jobs.append(job(previous.pk, previous.path, prompt_ids, round_sizes.contrast_per_prompt, "train"))
    if heldout_ids and round_sizes.eval_samples_per_prompt:
        for checkpoint in round_checkpoints(round_=round_):
            jobs.append(job(checkpoint.pk, checkpoint.path, heldout_ids, round_sizes.eval_samples_per_prompt, "eval"))
    return jobs


def _base_policy(context: StepContext, round_: Round) -> Path:
    """The campaign's base model, or the embedded one (trained once, then found on disk)."""
    if round_.campaign.base_model_path:
        return Path(round_.campaign.base_model_path)
    from models_rl.base_model import BaseModelConfig, embedded_base_model_config, ensure_base_model

    if not ml_settings(campaign=round_.campaign, section="base_model"):
        config = embedded_base_model_config()  # the shipped one (rebuilt as shipped if its folder was deleted)
    else:
        output_dir = str(embedded_base_model_dir(campaign=round_.campaign))
        config = ml_config(BaseModelConfig, given={"output_dir": output_dir}, campaign=round_.campaign, section="base_model")
    return ensure_base_model(config, progress=context.progress("base model"))


@dataclass(frozen=True)
class SampledText:
    text: str
    gold_score: float | None


def sample_completions(context: StepContext, round_: Round):
    from models_rl.sampling import SamplingConfig, sample

    base_path = None
    if round_.number == 0:
        base_path = str(_base_policy(context, round_))
    round_sizes = round_settings(campaign=round_.campaign)
    gold = campaign_gold(campaign=round_.campaign)
    results = []
    jobs = sampling_jobs(round_=round_, base_path=base_path)
    for index, job in enumerate(jobs):
        config = ml_config(
            SamplingConfig, given={"seed": round_sizes.seed * 1000 + round_.number * 50 + index},
            campaign=round_.campaign, section="sampling",
        )
        samples = sample(
            job.checkpoint_path, job.prompt_texts, config, samples_per_prompt=job.samples_per_prompt,
            progress=context.progress(f"sampling {index + 1}/{len(jobs)}"),
        )
        per_prompt = [
            [
                SampledText(text=s.text, gold_score=None if gold is None else gold.score(s.prompt, s.text))
                for s in samples[i * job.samples_per_prompt : (i + 1) * job.samples_per_prompt]
            ]
            for i in range(len(job.prompt_texts))
        ]
        results.append((job, per_prompt))
    return lambda locked: completions_store(round_=locked, jobs=results, base_path=base_path)


def base_checkpoint_store(*, round_: Round, path: Path) -> PolicyCheckpoint:
    """Round 0 registers the base policy as its checkpoint (KL 0)."""
    row, _ = PolicyCheckpoint.objects.update_or_create(
        campaign=round_.campaign, path=str(path), defaults={"round": round_, "label": BASE_LABEL, "kl_from_base": 0.0}
    )
    return row


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
