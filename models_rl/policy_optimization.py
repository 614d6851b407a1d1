"""Policy optimisation against what the labelers taught: online RL with a KL leash, DPO, and best-of-n / ReST.

- `optimize_rl`: RLOO (TRL) against a `RewardEnsemble`. The reward is the ensemble's mean score, normalised
  with a mean and std measured once on samples of the starting policy, minus kl_coef * log(pi / pi_ref) summed
  over the completion. KL per completion (nats) is watched after every step: each time it crosses one of
  `kl_levels` the policy is saved as a checkpoint, and training stops once it reaches `kl_limit` (with
  `kl_window` > 1, "it" is the mean of the last few batches' KL: one batch's estimate is noisy). KL is measured
  on the batch a policy generated, so each checkpoint is the policy as it was when it generated that batch,
  and "final" is the last policy measured under the limit, not the one that crossed it or a later update.
- `optimize_dpo`: DPO (TRL) on the collected pairs against the reference policy; ties carry no DPO signal and
  are skipped (and counted in "train/ties_skipped").
- `optimize_best_of_n`: sample n completions per prompt, keep the one the reward model likes best, fine-tune
  on those (TRL's SFTTrainer, loss on the completion only).

Every result lists its checkpoints (KL levels and "final") with the KL from the reference in nats per completion.
TRL stays behind `models_rl.trl_adapter`.

    python -m models_rl.policy_optimization rl --policy-path P --reward-model-path RM --output-dir OUT
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_rl import add_config_arguments, config_from_args
from models_rl.device import cpu_threads, pick_device, set_seed
from models_rl.reward_model import PreferencePair, RewardEnsemble, read_pairs_jsonl
from models_rl.sampling import SamplingConfig, sample

if TYPE_CHECKING:
    from models_rl.trl_adapter import MeasuredPolicy

ProgressCallback = Callable[[dict], None]
RESULT_FILE = "policy_result.json"
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
    reward_norm_samples: int = field(default=2048, metadata={"help": "samples of the starting policy that fix the reward's mean and std"})


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
    max_length: int = field(default=128, metadata={"help": "tokens of prompt + completion kept (the end is kept)"})
    eval_samples: int = field(default=64, metadata={"help": "samples of the final policy that measure its KL (and reward)"})
    max_new_tokens: int = field(default=32, metadata={"help": "length of those samples"})
    seed: int = field(default=0, metadata={"help": "seed for training and the evaluation samples"})


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


@dataclass
class Checkpoint:
    label: str  # "kl_<level>" or "final"
    path: Path
    kl: float  # nats per completion from the reference
    metrics: dict


@dataclass
class PolicyResult:
    final_path: Path
    checkpoints: list[Checkpoint]
    metrics: dict


# ---------------------------------------------------------------------------------------------------------------
# Online RL


@cpu_threads()  # torch threads that fit the machine's current load (busy cores stall every op)
def optimize_rl(prompts: list[str], config: RLConfig, progress: ProgressCallback | None = None) -> PolicyResult:
    """RLOO from `config.policy_path` against the reward ensemble, with KL-level checkpoints and a KL stop."""
    if not prompts:
        raise ValueError("no prompts given")
    if config.num_generations < 2 or config.batch_size % config.num_generations:
        raise ValueError("batch_size must be a multiple of num_generations, which must be at least 2")
    if config.kl_coef <= 0:
        raise ValueError("kl_coef must be > 0")
    if config.kl_window < 1:
        raise ValueError("kl_window must be at least 1")
    levels = sorted(level for level in config.kl_levels if level < config.kl_limit)
    reference = config.reference_path or config.policy_path
    output_dir = Path(config.output_dir)
    set_seed(config.seed)
    ensemble = RewardEnsemble.load(config.reward_model_path)
    norm_mean, norm_std = _reward_normalisation(ensemble, prompts, config, progress)

    def reward_fn(batch_prompts: list[str], completions: list[str]) -> tuple[list[float], float]:
        mean, _ = ensemble.score(batch_prompts, completions)
        return ((mean - norm_mean) / norm_std).tolist(), float(mean.mean())

    checkpoints: list[Checkpoint] = []
    history: list[dict] = []
    batch_kls: list[float] = []
    final: dict = {}  # KL and optimiser updates of the policy handed on: the last one measured under the limit

    def after_step(metrics: dict, policy: MeasuredPolicy) -> bool:
        """Add KL per completion; save a checkpoint at each newly crossed level; stop at the limit."""
        if "policy/kl_token" not in metrics:  # a step that reuses the last batch measures no new KL
            history.append(dict(metrics))
            return False
        # RLOO measured this on the batch it just generated, i.e. for `policy`: the weights before this step's
        # update, which is what the checkpoints save.
        batch_kls.append(metrics["policy/kl_token"] * metrics["policy/completion_length"])
        kl = float(np.mean(batch_kls[-config.kl_window:]))
        metrics.update({"policy/kl": kl, "policy/kl_batch": batch_kls[-1], "policy/sqrt_kl": math.sqrt(max(kl, 0.0))})
        history.append(dict(metrics))
        if not final:
            final.update(kl=kl, step=0)  # the starting policy, handed on if none is kept
        if kl >= config.kl_limit:
            return True
        policy.keep()
        final.update(kl=kl, step=len(history) - 1)  # optimiser updates this policy has had
        crossed = [level for level in levels if kl >= level and not any(c.label == _level_label(level) for c in checkpoints)]
        if crossed:
            path = output_dir / _level_label(crossed[-1])
            policy.save(path)  # one save serves every level crossed in this step
            checkpoints.extend(Checkpoint(_level_label(level), path, kl, dict(metrics)) for level in crossed)
        return False

    from models_rl.trl_adapter import rloo_train  # TRL takes seconds to import; only training needs it

    last = rloo_train(
        policy_path=config.policy_path, reference_path=reference, prompts=prompts, reward_fn=reward_fn,
        output_dir=output_dir, kl_coef=config.kl_coef, max_steps=config.max_steps, batch_size=config.batch_size,
        num_generations=config.num_generations, num_iterations=config.num_iterations,
        max_new_tokens=config.max_new_tokens, learning_rate=config.learning_rate, temperature=config.temperature,
        seed=config.seed, progress=progress, hook=after_step,
    )
    window = history[-FINAL_METRICS_WINDOW:]
    keys = dict.fromkeys(key for h in window for key in h)
    metrics = {key: float(np.mean([h[key] for h in window if key in h])) for key in keys}
    measured = [h for h in history if "policy/kl" in h]
    metrics.update({
        "train/steps": last["train/steps"],
        "policy/stopped_at_kl_limit": bool(measured) and measured[-1]["policy/kl"] >= config.kl_limit,
        "policy/final_step": final.get("step", 0),
        "reward_norm/mean": norm_mean,
        "reward_norm/std": norm_std,
    })
    checkpoints.append(Checkpoint("final", output_dir / "final", final.get("kl", 0.0), dict(metrics)))
    return _finish(config, checkpoints, metrics)


def _level_label(level: float) -> str:
    return f"kl_{level:g}"


def _reward_normalisation(ensemble: RewardEnsemble, prompts: list[str], config: RLConfig,
                          progress: ProgressCallback | None) -> tuple[float, float]:
    """Mean and std of the ensemble's mean score over `reward_norm_samples` samples of the starting policy;
    fixed for the whole run so that the reward scale does not drift as the policy moves."""
    n = max(2, config.reward_norm_samples)
    cycled = [prompts[i % len(prompts)] for i in range(n)]
    samples = sample(config.policy_path, cycled, SamplingConfig(max_new_tokens=config.max_new_tokens,
                     temperature=config.temperature, seed=config.seed), progress=_phase(progress, "reward_norm"))
    mean, _ = ensemble.score([s.prompt for s in samples], [s.text for s in samples])
    return float(mean.mean()), float(max(mean.std(), 1e-6))


def _phase(progress: ProgressCallback | None, phase: str) -> ProgressCallback | None:
    """Tag a sub-step's progress reports, so that a listener can tell them from training steps."""
    return None if progress is None else (lambda report: progress({**report, "phase": phase}))


# ---------------------------------------------------------------------------------------------------------------
# DPO and best-of-n


@cpu_threads()
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
    evaluation = evaluate_policy(final, reference, _unique([p.prompt for p in pairs]), ensemble=ensemble,
                                 samples=config.eval_samples, max_new_tokens=config.max_new_tokens, seed=config.seed)
    metrics = {**trained, **evaluation, "train/pairs": len(rows), "train/ties_skipped": len(pairs) - len(rows)}
    return _finish(config, [Checkpoint("final", final, evaluation["policy/kl"], metrics)], metrics)


@cpu_threads()
def optimize_best_of_n(prompts: list[str], config: BestOfNConfig, progress: ProgressCallback | None = None) -> PolicyResult:
    """One ReST round: n samples per prompt, the reward model's favourite kept, supervised fine-tuning on it."""
    if not prompts or config.n < 1:
        raise ValueError("best-of-n needs prompts and n >= 1")
    reference = config.reference_path or config.policy_path
    set_seed(config.seed)
    ensemble = RewardEnsemble.load(config.reward_model_path)
    samples = sample(config.policy_path, prompts, SamplingConfig(max_new_tokens=config.max_new_tokens,
                     temperature=config.temperature, seed=config.seed), samples_per_prompt=config.n,
                     progress=_phase(progress, "sampling"))
    scores, _ = ensemble.score([s.prompt for s in samples], [s.text for s in samples])
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
    return _finish(config, [Checkpoint("final", final, evaluation["policy/kl"], metrics)], metrics)


# ---------------------------------------------------------------------------------------------------------------
# Measuring a policy


@torch.no_grad()
def completion_logprobs(model_path: str | Path, prompts: Sequence[str], texts: Sequence[str], *,
                        batch_size: int = 32) -> np.ndarray:
    """log p(text | prompt) summed over the text's tokens (prompt and text tokenised apart, then joined)."""
    device = pick_device()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path).to(device).eval()
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    totals = []
    for start in range(0, len(prompts), batch_size):
        rows, text_spans = [], []
        for prompt, text in zip(prompts[start : start + batch_size], texts[start : start + batch_size]):
            prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
            text_ids = tokenizer(text, add_special_tokens=False).input_ids
            ids = (prompt_ids + text_ids)[-context:]  # an over-long pair keeps its end, the text
            rows.append(ids)
            text_spans.append(min(len(text_ids), len(ids) - 1))
        width = max(len(ids) for ids in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for i, ids in enumerate(rows):
            end = len(ids) - 1  # logprobs[j] scores token j + 1
            totals.append(float(logprobs[i, end - text_spans[i] : end].sum()))
    return np.array(totals)


def evaluate_policy(policy_path: str | Path, reference_path: str | Path, prompts: list[str], *,
                    ensemble: RewardEnsemble | None, samples: int, max_new_tokens: int, seed: int) -> dict:
    """KL per completion from the reference (mean of log pi - log pi_ref over the policy's own samples), its
    square root, per-token entropy (minus the mean sampled token log-probability) and, with an ensemble, the
    mean reward of the samples."""
    cycled = [prompts[i % len(prompts)] for i in range(max(1, samples))]
    drawn = sample(policy_path, cycled, SamplingConfig(max_new_tokens=max_new_tokens, seed=seed))
    texts = [s.text for s in drawn]
    kl = float(np.mean(completion_logprobs(policy_path, cycled, texts) - completion_logprobs(reference_path, cycled, texts)))
    token_logprobs = [lp for s in drawn for lp in s.token_logprobs]
    metrics = {"policy/kl": kl, "policy/sqrt_kl": math.sqrt(max(kl, 0.0)),
               "policy/entropy": float(-np.mean(token_logprobs)) if token_logprobs else 0.0}
    if ensemble is not None:
        metrics["policy/reward"] = float(ensemble.score(cycled, texts)[0].mean())
    return metrics


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _finish(config, checkpoints: list[Checkpoint], metrics: dict) -> PolicyResult:
    """Write policy_result.json (config, checkpoints, metrics) next to the checkpoints and return the result."""
    output_dir = Path(config.output_dir)
    record = {
        "config": dataclasses.asdict(config),
        "checkpoints": [{"label": c.label, "path": str(c.path), "kl": c.kl, "metrics": c.metrics} for c in checkpoints],
        "metrics": metrics,
    }
    (output_dir / RESULT_FILE).write_text(json.dumps(record, indent=2, default=str))
    return PolicyResult(final_path=output_dir / "final", checkpoints=checkpoints, metrics=metrics)


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _read_prompts(path: str | None, n: int, seed: int) -> list[str]:
    if path:
        return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    from models_rl.data import shakespeare_prompts

    return shakespeare_prompts(n, seed=seed)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m models_rl.policy_optimization", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, config_class, data_help, summary in [
        ("rl", RLConfig, "prompts", "online RL (RLOO) against a reward model, with KL-level checkpoints"),
        ("dpo", DPOConfig, "pairs", "DPO on preference pairs"),
        ("best-of-n", BestOfNConfig, "prompts", "best-of-n / ReST: fine-tune on the reward model's favourite samples"),
    ]:
        sub = commands.add_parser(name, help=summary, description=summary,
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if data_help == "pairs":
            sub.add_argument("--pairs", required=True, help="JSONL of prompt/chosen/rejected (+ optional tie, strength)")
        else:
            sub.add_argument("--prompts", help="text file, one prompt a line (default: Shakespeare prompts)")
            sub.add_argument("--n-prompts", type=int, default=256, help="Shakespeare prompts when no --prompts")
        add_config_arguments(sub, config_class)
        sub.set_defaults(config_class=config_class)
    args = parser.parse_args(argv)
    config = config_from_args(args.config_class, args)
    try:
        if args.command == "rl":
            result = optimize_rl(_read_prompts(args.prompts, args.n_prompts, config.seed), config)
        elif args.command == "dpo":
            result = optimize_dpo(read_pairs_jsonl(args.pairs), config)
        else:
            result = optimize_best_of_n(_read_prompts(args.prompts, args.n_prompts, config.seed), config)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(json.dumps({"final_path": str(result.final_path),
                      "checkpoints": [{"label": c.label, "path": str(c.path), "kl": c.kl} for c in result.checkpoints],
                      **result.metrics}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
