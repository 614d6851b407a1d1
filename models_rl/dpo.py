"""DPO (TRL's DPOTrainer, behind models_rl.trl_adapter) on the labelers' preference pairs, against a frozen
reference policy. The loss, per pair of a chosen y_w and a rejected y_l:

    -logsigmoid(beta * ((log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))))

Ties carry no DPO signal and are skipped (counted in "train/ties_skipped"). The final policy's KL from the
reference (and, with a reward model, its reward) is measured afterwards on its own samples.

    python -m models_rl.dpo --pairs pairs.jsonl --policy-path P --output-dir OUT
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from models_rl.device import cpu_threads, set_seed
from models_rl.policy_evaluation import evaluate_policy
from models_rl.policy_result import Checkpoint, PolicyResult, ProgressCallback, policy_command, write_policy_result
from models_rl.reward_ensemble import RewardEnsemble
from models_rl.reward_model import PreferencePair, read_pairs_jsonl


@dataclass
class DPOConfig:
    policy_path: str = field(metadata={"help": "causal LM to start from"})
    output_dir: str = field(metadata={"help": "final/ is written here"})
    reference_path: str | None = field(default=None, metadata={"help": "the DPO reference (default: policy_path)"})
    reward_model_path: str | None = field(default=None, metadata={"help": "when set, policy/reward of the final policy's samples"})
    beta: float = field(default=0.1, metadata={"help": "DPO temperature: higher keeps the policy nearer the reference"})
    epochs: int = field(default=1, metadata={"help": "passes over the pairs"})
    batch_size: int = field(default=16, metadata={"help": "pairs per step"})
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate"})
    max_length: int = field(default=128, metadata={"help": "tokens of prompt + completion kept (TRL keeps the start)"})
    eval_samples: int = field(default=64, metadata={"help": "samples of the final policy that measure its KL (and reward)"})
    max_new_tokens: int = field(default=32, metadata={"help": "length of those samples"})
    seed: int = field(default=0, metadata={"help": "seed for training and the evaluation samples"})


@cpu_threads()  # torch threads that fit the machine's current load (busy cores stall every op)
def optimize_dpo(pairs: list[PreferencePair], config: DPOConfig, progress: ProgressCallback | None = None) -> PolicyResult:
    """DPO on the non-tie pairs; the final policy's KL (and reward, with a reward model) is measured on samples."""
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs if not p.tie]
    if not rows:
        raise ValueError("no non-tie pairs: DPO needs at least one preference")
    reference = config.reference_path or config.policy_path
    set_seed(config.seed)
    from models_rl.trl_adapter import dpo_train  # TRL takes seconds to import; only training needs it

    trained = dpo_train(policy_path=config.policy_path, reference_path=reference, rows=rows,
                        output_dir=config.output_dir, beta=config.beta, epochs=config.epochs,
                        batch_size=config.batch_size, learning_rate=config.learning_rate,
                        max_length=config.max_length, seed=config.seed, progress=progress)
    final = Path(config.output_dir) / "final"
    ensemble = RewardEnsemble.load(config.reward_model_path) if config.reward_model_path else None
    prompts = list(dict.fromkeys(p.prompt for p in pairs))  # each prompt once, in order
    evaluation = evaluate_policy(final, reference, prompts, ensemble=ensemble, samples=config.eval_samples,
                                 max_new_tokens=config.max_new_tokens, seed=config.seed)
    metrics = {**trained, **evaluation, "train/pairs": len(rows), "train/ties_skipped": len(pairs) - len(rows)}
    return write_policy_result(config, [Checkpoint("final", final, evaluation["policy/kl"], metrics)], metrics)


@dataclass
class _Command:
    """DPO on preference pairs; prints the final policy's path, KL and metrics."""

    config: Annotated[DPOConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    pairs: str = field(metadata={"help": "JSONL of prompt/chosen/rejected (+ optional tie, strength)"})


def main(argv: Sequence[str] | None = None) -> int:
    return policy_command(_Command, prog="python -m models_rl.dpo", argv=argv,
                          optimize=lambda command: optimize_dpo(read_pairs_jsonl(command.pairs), command.config))


if __name__ == "__main__":
    sys.exit(main())
