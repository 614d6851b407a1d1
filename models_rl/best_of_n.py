"""Best-of-n / ReST, one round: sample n completions per prompt, keep the one the reward model likes best,
and fine-tune the policy on those (TRL's SFTTrainer behind models_rl.trl_adapter). The loss is the negative
log-likelihood of each kept completion, on the completion's tokens only:

    -log pi(y_best | x),   y_best = argmax over n samples y_i ~ pi(. | x) of r(x, y_i)

with r the reward ensemble's mean reward (a rating model's: log p(positive)).

The final policy's KL from the reference and its reward are measured afterwards on its own samples.

    python -m models_rl.best_of_n --policy-path P --reward-model-path RM --output-dir OUT
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from models_rl.device import cpu_threads, set_seed
from models_rl.policy_evaluation import evaluate_policy
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


@dataclass
class BestOfNConfig:
    policy_path: str = field(metadata={"help": "causal LM to start from"})
    reward_model_path: str = field(metadata={"help": "the reward model that picks the best of n"})
    output_dir: str = field(metadata={"help": "final/ is written here"})
    reference_path: str | None = field(default=None, metadata={"help": "KL is measured to this policy (default: policy_path)"})
    n: int = field(default=8, metadata={"help": "samples per prompt to choose from"})
    max_new_tokens: int = field(default=32, metadata={"help": "completion length at most"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    epochs: int = field(default=2, metadata={"help": "fine-tuning passes over the kept samples"})
    batch_size: int = field(default=16, metadata={"help": "examples per fine-tuning step"})
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate"})
    max_length: int = field(default=128, metadata={"help": "tokens of prompt + completion kept"})
    eval_samples: int = field(default=64, metadata={"help": "samples of the final policy that measure its KL and reward"})
    seed: int = field(default=0, metadata={"help": "seed for sampling and training"})


@cpu_threads()  # torch threads that fit the machine's current load (busy cores stall every op)
def optimize_best_of_n(prompts: list[str], config: BestOfNConfig, progress: ProgressCallback | None = None) -> PolicyResult:
    """One ReST round: n samples per prompt, the reward model's favourite kept, supervised fine-tuning on it."""
    if not prompts or config.n < 1:
        raise ValueError("best-of-n needs prompts and n >= 1")
    reference = config.reference_path or config.policy_path
    set_seed(config.seed)
    ensemble = RewardEnsemble.load(config.reward_model_path)
    samples = sample(config.policy_path, prompts, SamplingConfig(max_new_tokens=config.max_new_tokens,
                     temperature=config.temperature, seed=config.seed), samples_per_prompt=config.n,
                     progress=phase_progress(progress, "sampling"))
    scores, _ = ensemble.reward([s.prompt for s in samples], [s.text for s in samples])
    by_prompt = scores.reshape(len(prompts), config.n)
    best = [samples[i * config.n + int(np.argmax(row))] for i, row in enumerate(by_prompt)]
    rows = [{"prompt": s.prompt, "completion": s.text} for s in best if s.text]
    if not rows:
        raise ValueError("every best sample was empty: nothing to fine-tune on")
    from models_rl.trl_adapter import sft_train  # TRL takes seconds to import; only training needs it

    trained = sft_train(policy_path=config.policy_path, rows=rows, output_dir=config.output_dir,
                        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
                        max_length=config.max_length, seed=config.seed, progress=progress)
    final = Path(config.output_dir) / "final"
    evaluation = evaluate_policy(final, reference, prompts, ensemble=ensemble, samples=config.eval_samples,
                                 max_new_tokens=config.max_new_tokens, seed=config.seed + 1)
    metrics = {**trained, **evaluation, "bon/reward_all": float(scores.mean()),
               "bon/reward_best": float(by_prompt.max(axis=1).mean()), "train/examples": len(rows)}
    return write_policy_result(config, [Checkpoint("final", final, evaluation["policy/kl"], metrics)], metrics)


@dataclass
class _Command:
    """Best-of-n / ReST: fine-tune on the reward model's favourite samples; prints the final policy's path,
    KL and metrics."""

    config: Annotated[BestOfNConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    prompts: str | None = field(default=None, metadata={"help": "text file, one prompt a line; without it, Shakespeare prompts"})
    n_prompts: int = field(default=256, metadata={"help": "Shakespeare prompts when no --prompts"})


def main(argv: Sequence[str] | None = None) -> int:
    from models_rl.data import read_prompts

    def optimize(command: _Command) -> PolicyResult:
        prompts = read_prompts(command.prompts, n=command.n_prompts, seed=command.config.seed)
        return optimize_best_of_n(prompts, command.config)

    return policy_command(_Command, prog="python -m models_rl.best_of_n", argv=argv, optimize=optimize)


if __name__ == "__main__":
    sys.exit(main())
