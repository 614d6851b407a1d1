"""Online RL with a KL leash: RLOO (TRL's RLOOTrainer, behind models_rl.trl_adapter) against a reward ensemble.

Objective, for completions y of prompt x sampled from the policy pi:

    maximise  E[ r(x, y) - kl_coef * sum over y's tokens of log(pi / pi_ref) ],   r = (mean score - mu0) / sigma0

where the mean score is the ensemble's mean reward over its members (less `conservative_k` times their standard
deviation; a rating model's reward is log p(positive), see models_rl.reward_ensemble) and mu0, sigma0 are measured
once on samples of the starting policy (`NormalisedReward`). An empty prompt (an unconditional campaign) starts
from the policy's start token. RLOO's baseline for each of the `num_generations` completions of a prompt
is the mean reward of the others (leave one out).

KL per completion (nats) is watched after every step (`KLLeash`): each time it crosses one of `kl_levels` the
policy is saved as a checkpoint, and training stops once it reaches `kl_limit` (with `kl_window` > 1, "it" is the
mean of the last few batches' KL: one batch's estimate is noisy). KL is measured on the batch a policy
generated, so each checkpoint is the policy as it was when it generated that batch, and "final" is the last
policy measured under the limit, not the one that crossed it or a later update.

    python -m models_rl.rloo --policy-path P --reward-model-path RM --output-dir OUT
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import tyro

from models_rl.device import cpu_threads, set_seed
from models_rl.policy_result import (
    Checkpoint,
    PolicyResult,
    ProgressCallback,
    phase_progress,
    policy_command,
    write_policy_result,
)
from models_rl.reward_ensemble import RewardEnsemble
from models_rl.sampling import SamplingConfig, sample

if TYPE_CHECKING:
    from models_rl.trl_adapter import MeasuredPolicy

FINAL_METRICS_WINDOW = 5  # final RL metrics average the last few steps; one batch alone is noisy


@dataclass
class RLConfig:
    policy_path: str = field(metadata={"help": "causal LM to start from"})
    reward_model_path: str = field(metadata={"help": "a trained reward model (models_rl.reward_model output)"})
    output_dir: str = field(metadata={"help": "KL-level checkpoints kl_<level>/ and final/ are written here"})
    reference_path: str | None = field(default=None, metadata={"help": "KL is measured to this policy (default: policy_path)"})
    kl_coef: float = field(default=0.05, metadata={"help": "beta: reward penalty per nat of KL to the reference"})
    kl_levels: tuple[float, ...] = field(default=(0.5, 1, 2, 4, 8), metadata={"help": "save a checkpoint when KL per completion (nats) crosses each"})
    kl_limit: float = field(default=10.0, metadata={"help": "stop when KL per completion (nats) reaches this"})
    kl_window: int = field(default=5, metadata={"help": "the KL that levels and the stop compare is the mean over the last this "
                                                "many measured batches (one batch of completions gives a noisy estimate)"})
    max_steps: int = field(default=200, metadata={"help": "optimiser steps at most"})
    batch_size: int = field(default=32, metadata={"help": "completions per step (a multiple of num_generations)"})
    num_generations: int = field(default=8, metadata={"help": "completions per prompt; RLOO's baseline is their leave-one-out mean"})
    num_iterations: int = field(default=2, metadata={"help": "optimiser passes over each generated batch (clipped ratio after the first)"})
    max_new_tokens: int = field(default=32, metadata={"help": "completion length at most"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature during training"})
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate"})
    seed: int = field(default=0, metadata={"help": "seed for sampling and training"})
    conservative_k: float = field(default=0.0, metadata={"help": "reward = ensemble mean minus this many standard deviations "
                                                          "over its members (Coste et al.: a conservative ensemble "
                                                          "resists over-optimisation); 0: the mean"})
    reward_norm_samples: int = field(default=2048, metadata={"help": "samples of the starting policy that fix the reward's mean and std"})


@cpu_threads()  # torch threads that fit the machine's current load (busy cores stall every op)
def optimize_rl(prompts: list[str], config: RLConfig, progress: ProgressCallback | None = None) -> PolicyResult:
    """RLOO from `config.policy_path` against the reward ensemble, with KL-level checkpoints and a KL stop."""
    if not prompts:
        raise ValueError("no prompts given")
    if config.num_generations < 2 or config.batch_size % config.num_generations:
        raise ValueError("batch_size must be a multiple of num_generations, which must be at least 2")
    if config.kl_coef <= 0:
        raise ValueError("kl_coef must be > 0")
    if config.conservative_k < 0:
        raise ValueError("conservative_k must be >= 0")
    if config.kl_window < 1:
        raise ValueError("kl_window must be at least 1")
    output_dir = Path(config.output_dir)
    set_seed(config.seed)
    reward = NormalisedReward.measure(RewardEnsemble.load(config.reward_model_path), prompts, config, progress)
    leash = KLLeash(levels=config.kl_levels, limit=config.kl_limit, window=config.kl_window, output_dir=output_dir)
    from models_rl.trl_adapter import rloo_train  # TRL takes seconds to import; only training needs it

    last = rloo_train(
        policy_path=config.policy_path, reference_path=config.reference_path or config.policy_path, prompts=prompts,
        reward_fn=reward, output_dir=output_dir, kl_coef=config.kl_coef, max_steps=config.max_steps,
        batch_size=config.batch_size, num_generations=config.num_generations, num_iterations=config.num_iterations,
        max_new_tokens=config.max_new_tokens, learning_rate=config.learning_rate, temperature=config.temperature,
        seed=config.seed, progress=progress, hook=leash.after_step,
    )
    metrics = {
        **leash.final_metrics(),
        "train/steps": last["train/steps"],
        "reward_norm/mean": reward.mean,
        "reward_norm/std": reward.std,
    }
    checkpoints = [*leash.checkpoints, Checkpoint("final", output_dir / "final", leash.final_kl, dict(metrics))]
    return write_policy_result(config, checkpoints, metrics)


@dataclass
class NormalisedReward:
    """The reward RLOO maximises before its KL penalty: the ensemble's mean score, standardised with a mean and
    std measured once on samples of the starting policy, so that the reward's scale does not drift as the
    policy moves. Called by TRL with each batch; returns (rewards, the batch's raw mean score)."""

    ensemble: RewardEnsemble
    mean: float
    std: float
    conservative_k: float = 0.0

    @classmethod
    def measure(cls, ensemble: RewardEnsemble, prompts: list[str], config: RLConfig,
                progress: ProgressCallback | None) -> NormalisedReward:
        """Fix mean and std on `reward_norm_samples` samples of the starting policy."""
        n = max(2, config.reward_norm_samples)
        cycled = [prompts[i % len(prompts)] for i in range(n)]
        samples = sample(config.policy_path, cycled, SamplingConfig(max_new_tokens=config.max_new_tokens,
                         temperature=config.temperature, seed=config.seed),
                         progress=phase_progress(progress, "reward_norm"))
        scores = conservative_score(ensemble, [s.prompt for s in samples], [s.text for s in samples], config.conservative_k)
        return cls(ensemble, float(scores.mean()), float(max(scores.std(), 1e-6)), config.conservative_k)

    def __call__(self, prompts: list[str], completions: list[str]) -> tuple[list[float], float]:
        scores = conservative_score(self.ensemble, prompts, completions, self.conservative_k)
        return ((scores - self.mean) / self.std).tolist(), float(scores.mean())


def conservative_score(ensemble: RewardEnsemble, prompts: list[str], texts: list[str], k: float) -> np.ndarray:
    """The ensemble's mean reward (a pairwise model's score; a rating model's log p(positive)) less k standard
    deviations over its members (k = 0: the mean)."""
    mean, spread = ensemble.reward(prompts, texts)
    return mean - k * spread if k else mean


class KLLeash:
    """Watches KL per completion after every RLOO step (trl_adapter's step hook): saves a checkpoint at each KL
    level newly crossed, keeps the last policy measured under the limit as the final one, and stops training
    when KL reaches the limit. The KL compared is the mean over the last `window` measured batches."""

    def __init__(self, *, levels: Sequence[float], limit: float, window: int, output_dir: Path):
        self.levels = sorted(level for level in levels if level < limit)
        self.limit = limit
        self.window = window
        self.output_dir = output_dir
        self.checkpoints: list[Checkpoint] = []
        self.history: list[dict] = []  # every step's metrics
        self.batch_kls: list[float] = []  # KL per completion of each measured batch
        self.final_kl = 0.0  # of the policy handed on: the starting one until a later one is kept
        self.final_step = 0  # optimiser updates the policy handed on has had

    def after_step(self, metrics: dict, policy: MeasuredPolicy) -> bool:
        """Add KL per completion to `metrics`; save a checkpoint at each newly crossed level; True to stop."""
        if "policy/kl_token" not in metrics:  # a step that reuses the last batch measures no new KL
            self.history.append(dict(metrics))
            return False
        # RLOO measured this on the batch it just generated, i.e. for `policy`: the weights before this step's
        # update, which is what the checkpoints save.
        self.batch_kls.append(metrics["policy/kl_token"] * metrics["policy/completion_length"])
        kl = float(np.mean(self.batch_kls[-self.window:]))
        metrics.update({"policy/kl": kl, "policy/kl_batch": self.batch_kls[-1], "policy/sqrt_kl": math.sqrt(max(kl, 0.0))})
        self.history.append(dict(metrics))
        if len(self.batch_kls) == 1:
            self.final_kl = kl  # the starting policy, handed on if none is kept
        if kl >= self.limit:
            return True
        policy.keep()
        self.final_kl, self.final_step = kl, len(self.history) - 1
        crossed = [level for level in self.levels if kl >= level and not self._saved(level)]
        if crossed:
            path = self.output_dir / _level_label(crossed[-1])
            policy.save(path)  # one save serves every level crossed in this step
            self.checkpoints.extend(Checkpoint(_level_label(level), path, kl, dict(metrics)) for level in crossed)
        return False

    def final_metrics(self) -> dict:
        """Each metric averaged over the last few steps, whether the run stopped at the limit, and the step of
        the policy handed on."""
        window = self.history[-FINAL_METRICS_WINDOW:]
        keys = dict.fromkeys(key for h in window for key in h)
        metrics = {key: float(np.mean([h[key] for h in window if key in h])) for key in keys}
        measured = [h for h in self.history if "policy/kl" in h]
        metrics["policy/stopped_at_kl_limit"] = bool(measured) and measured[-1]["policy/kl"] >= self.limit
        metrics["policy/final_step"] = self.final_step
        return metrics

    def _saved(self, level: float) -> bool:
        return any(c.label == _level_label(level) for c in self.checkpoints)


def _level_label(level: float) -> str:
    return f"kl_{level:g}"


@dataclass
class _Command:
    """Online RL (RLOO) against a reward model, with KL-level checkpoints; prints the checkpoints and metrics."""

    config: Annotated[RLConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    prompts: str | None = field(default=None, metadata={"help": "text file, one prompt a line; without it, Shakespeare prompts"})
    n_prompts: int = field(default=256, metadata={"help": "Shakespeare prompts when no --prompts"})


def main(argv: Sequence[str] | None = None) -> int:
    from models_rl.data import read_prompts

    def optimize(command: _Command) -> PolicyResult:
        return optimize_rl(read_prompts(command.prompts, n=command.n_prompts, seed=command.config.seed), command.config)

    return policy_command(_Command, prog="python -m models_rl.rloo", argv=argv, optimize=optimize)


if __name__ == "__main__":
    sys.exit(main())
