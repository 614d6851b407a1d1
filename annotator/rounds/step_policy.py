"""The optimizing step: from the last round's policy, against the new reward model, with KL measured from the
base (RL, DPO or best-of-n) -> the round's policy checkpoints."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from annotator.core.errors import InvalidInput
from annotator.models import PolicyCheckpoint, Prompt, PromptSplit, Round
from annotator.rounds.selectors import FINAL_LABEL, policy_checkpoint_before, round_reward_model
from annotator.rounds.settings import campaign_task_kind_check, ml_config, round_settings, round_step_dir_fresh
from annotator.rounds.step_context import StepContext
from annotator.rounds.step_reward_model import base_policy_path, preference_pairs_export


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


def optimize_policy(context: StepContext, round_: Round):
    from models_rl.best_of_n import BestOfNConfig, optimize_best_of_n
    from models_rl.dpo import DPOConfig, optimize_dpo
    from models_rl.rloo import RLConfig, optimize_rl

    campaign_task_kind_check(campaign=round_.campaign)  # the optimiser may have been changed since the round began
    inputs = optimizing_inputs(round_=round_)
    given = {
        "policy_path": inputs.policy_path,
        "reference_path": inputs.reference_path,
        "reward_model_path": inputs.reward_model_path,
        "output_dir": str(round_step_dir_fresh(round_=round_, step=context.step)),
        "seed": inputs.seed,
    }
    campaign = round_.campaign
    progress = context.progress(f"policy ({inputs.optimizer})")
    if inputs.optimizer == "dpo":
        pairs = preference_pairs_export(round_=round_).train
        config = ml_config(DPOConfig, given=given, campaign=campaign, section="policy")
        result = optimize_dpo(pairs, config, progress=progress)
    elif inputs.optimizer == "best_of_n":
        config = ml_config(BestOfNConfig, given=given, campaign=campaign, section="policy")
        result = optimize_best_of_n(inputs.prompts, config, progress=progress)
    elif inputs.optimizer == "rl":
        config = ml_config(RLConfig, given=given, campaign=campaign, section="policy")
        config = dataclasses.replace(config, kl_limit=round_kl_limit(inputs=inputs, policy_kl_limit=config.kl_limit))
        result = optimize_rl(inputs.prompts, config, progress=progress)
    else:
        raise InvalidInput(f"Unknown policy optimizer {inputs.optimizer!r}: use rl, dpo or best_of_n.")
    checkpoints = [CheckpointResult(label=c.label, path=str(c.path), kl=c.kl, metrics=c.metrics) for c in result.checkpoints]
    return lambda locked: checkpoints_store(
        round_=locked, final_path=result.final_path, checkpoints=checkpoints, metrics=result.metrics
    )


@dataclass(frozen=True)
class CheckpointResult:
    label: str
    path: str
    kl: float | None
    metrics: dict


def _float(value) -> float | None:
    return None if value is None else float(value)


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
