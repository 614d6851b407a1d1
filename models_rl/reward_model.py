"""Reward models: pairwise Bradley-Terry and absolute ratings, trained as an ensemble of K members.

Each member is a sequence-classification head (one logit) on the LM backbone. With `pooling="last"` (the
default) the score is the head's output at the last token, as Hugging Face's sequence classifiers do; with
`pooling="mean"` it is averaged over the completion's tokens (a tiny backbone may not carry a sentiment word
seen early to the last position, while every token's own output can learn it), with `"sum"` summed.
`features="embeddings"` puts the head on the input token embeddings instead of the last hidden state: a bag of
tokens, with only the embedding table and the head trained. For a lexicon-like judge (VADER) and a from-scratch
backbone that is what generalises from 1,000 pairs; a fine-tuned backbone memorises them. `train_backbone=False`
trains the head alone (a linear probe), `weight_decay` shrinks what the data does not support (AdamW decays every
embedding row, so tokens the pairs never show drift toward a score of 0), and `early_stopping` keeps each member's
best epoch on the held-out data (whose metrics are then slightly optimistic: they chose the epoch).

Pairwise members minimise the Bradley-Terry cross-entropy with soft targets (1 for a preference, 0.5 for a tie)
weighted by the judgement's strength; rating members minimise a binary cross-entropy with positive = 1,
neutral = 0.5, negative = 0. TRL's RewardTrainer can add a margin but cannot express soft
tie targets, per-pair weights or the rating loss, so this module trains with one flat loop of its own.

Members k > 0 see bootstrap resamples of the training data and start from differently seeded heads, so their
disagreement (`RewardEnsemble.score(...)[1]`) is an uncertainty estimate for pair acquisition.

Layout on disk: `output_dir/ensemble.json` (kind, config, metrics, member folders) and `output_dir/member_<k>/`
(each a model + tokenizer loadable by `AutoModelForSequenceClassification`); `models_rl.reward_ensemble` loads
and scores it.

    python -m models_rl.reward_model --pairs pairs.jsonl --base-model-path BASE --output-dir OUT --gold vader
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from tqdm.auto import tqdm

from models_rl.device import cpu_threads, pick_device, set_seed
from models_rl.reward_ensemble import (
    ENSEMBLE_FILE,
    FEATURES,
    PAIRWISE,
    POOLINGS,
    RATING,
    Features,
    Pooling,
    RewardEnsemble,
    forward_scores,
    load_scorer,
)

RATING_TARGETS = {"positive": 1.0, "neutral": 0.5, "negative": 0.0}
ProgressCallback = Callable[[dict], None]


@dataclass
class PreferencePair:
    """One judged comparison. For a tie, `chosen`/`rejected` is just the order the two were shown in."""

    prompt: str
    chosen: str
    rejected: str
    tie: bool = False
    strength: int = 2  # 1..3, how sure the labeler was; weights the pair by strength / 2


@dataclass
class RatingExample:
    """One absolute label of a completion: "positive", "neutral" or "negative"."""

    prompt: str
    text: str
    value: str


@dataclass
class RewardModelConfig:
    base_model_path: str = field(metadata={"help": "causal LM folder; its backbone gets a fresh one-logit head"})
    output_dir: str = field(metadata={"help": "where ensemble.json and member_<k>/ are written"})
    ensemble_size: int = field(default=1, metadata={"help": "K members; members after the first train on bootstrap resamples"})
    epochs: int = field(default=2, metadata={"help": "passes over the training data per member"})
    batch_size: int = field(default=32, metadata={"help": "pairs (or rating examples) per optimiser step"})
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW learning rate, constant after a short warm-up"})
    max_length: int = field(default=128, metadata={"help": "tokens of prompt + text kept; longer inputs lose their start, never the end"})
    pooling: Pooling = field(default="last", metadata={"help": "score = head output averaged or summed over the completion's "
                                                       "tokens, or at the last token"})
    features: Features = field(default="hidden", metadata={"help": "what the head reads at each token: the backbone's last hidden "
                                                           "state, or the input token embeddings (no context: a bag of "
                                                           "tokens; mean or sum pooling)"})
    train_backbone: bool = field(default=True, metadata={"help": "fine-tune the backbone (with embeddings features: the embedding "
                                                         "table) along with the head; --no-train-backbone trains the head alone"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    early_stopping: bool = field(default=False, metadata={"help": "score the held-out data after every epoch and keep each "
                                                          "member's weights from the epoch with the lowest held-out loss"})
    heldout_fraction: float = field(default=0.1, metadata={"help": "share held out for eval when no held-out set is given"})
    seed: int = field(default=0, metadata={"help": "seed of member 0; member k uses seed + k"})


@dataclass
class RewardModelResult:
    path: Path
    metrics: dict


# ---------------------------------------------------------------------------------------------------------------
# Losses


def pairwise_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry cross-entropy: target 1 is a plain preference (the usual -logsigmoid(r_chosen - r_rejected)),
    0.5 a tie, which pulls the two rewards together; each pair counts with its weight."""
    per_pair = -(target * F.logsigmoid(r_chosen - r_rejected) + (1 - target) * F.logsigmoid(r_rejected - r_chosen))
    return (weight * per_pair).sum() / weight.sum()


def rating_loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the last token's logit against positive = 1, neutral = 0.5, negative = 0."""
    return F.binary_cross_entropy_with_logits(scores, target)


# ---------------------------------------------------------------------------------------------------------------
# Training


@cpu_threads()  # torch threads that fit the machine's current load (busy cores stall every op)
def train_reward_model(
    pairs: list[PreferencePair],
    config: RewardModelConfig,
    *,
    heldout: list[PreferencePair] | None = None,
    gold=None,
    progress: ProgressCallback | None = None,
) -> RewardModelResult:
    """Train a K-member Bradley-Terry ensemble on `pairs` and evaluate it on `heldout` (or on a held-out share of
    `pairs`). `gold` (a models_rl.gold labeler) adds "eval/gold_agreement": how often the ensemble orders a
    held-out pair the way the gold score does."""
    for pair in pairs + (heldout or []):
        if not 1 <= pair.strength <= 3:
            raise ValueError(f"strength must be 1..3, got {pair.strength!r}")
    train, held = _split(pairs, heldout, config)

    def batch_loss(model, tokenizer, batch: list[PreferencePair], device: str) -> torch.Tensor:
        prompts = [p.prompt for p in batch]
        scores = forward_scores(model, tokenizer, prompts + prompts, [p.chosen for p in batch] + [p.rejected for p in batch],
                                 config.max_length, device, config.pooling, config.features)
        r_chosen, r_rejected = scores.chunk(2)
        target = torch.tensor([0.5 if p.tie else 1.0 for p in batch], device=device)
        weight = torch.tensor([p.strength / 2 for p in batch], device=device)
        return pairwise_loss(r_chosen, r_rejected, target, weight)

    train_metrics = _train_ensemble(train, held, batch_loss, config, kind=PAIRWISE, progress=progress)
    ensemble = RewardEnsemble.load(config.output_dir) if held else None  # loading K members costs seconds
    metrics = {**train_metrics, **pairwise_eval_metrics(ensemble, held, gold=gold)}
    _write_manifest(config, kind=PAIRWISE, metrics=metrics)
    return RewardModelResult(path=Path(config.output_dir), metrics=metrics)


@cpu_threads()
def train_rating_model(
    examples: list[RatingExample],
    config: RewardModelConfig,
    *,
    heldout: list[RatingExample] | None = None,
    gold=None,
    progress: ProgressCallback | None = None,
) -> RewardModelResult:
    """Train a K-member absolute-rating ensemble: a one-logit head on the policy's backbone whose output at the
    last token is the logit of "positive" (targets positive 1, neutral 0.5, negative 0), so p(positive) =
    sigmoid(score) and the reward a policy maximises is log p(positive) (`RewardEnsemble.reward`)."""
    for example in examples + (heldout or []):
        if example.value not in RATING_TARGETS:
            raise ValueError(f"rating must be one of {sorted(RATING_TARGETS)}, got {example.value!r}")
    if (config.pooling, config.features) != ("last", "hidden"):
        # The rating is of the whole text, read where the policy has read all of it: the last token's hidden state.
        raise ValueError(f"a rating model scores the last token's hidden state: pooling must be 'last' and features "
                         f"'hidden', got {config.pooling!r} and {config.features!r}")
    train, held = _split(examples, heldout, config)

    def batch_loss(model, tokenizer, batch: list[RatingExample], device: str) -> torch.Tensor:
        scores = forward_scores(model, tokenizer, [e.prompt for e in batch], [e.text for e in batch], config.max_length, device,
                                 config.pooling, config.features)
        return rating_loss(scores, torch.tensor([RATING_TARGETS[e.value] for e in batch], device=device))

    train_metrics = _train_ensemble(train, held, batch_loss, config, kind=RATING, progress=progress)
    ensemble = RewardEnsemble.load(config.output_dir) if held else None
    metrics = {**train_metrics, **rating_eval_metrics(ensemble, held, gold=gold)}
    _write_manifest(config, kind=RATING, metrics=metrics)
    return RewardModelResult(path=Path(config.output_dir), metrics=metrics)


def _split(items: list, heldout: list | None, config: RewardModelConfig) -> tuple[list, list]:
    if not items:
        raise ValueError("no training examples given")
    if config.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {config.pooling!r}")
    if config.features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {config.features!r}")
    if config.features == "embeddings" and config.pooling == "last":
        raise ValueError("features='embeddings' has no context: the last token alone says little; use mean or sum pooling")
    if heldout is not None:
        return list(items), list(heldout)
    shuffled = list(items)
    random.Random(config.seed).shuffle(shuffled)
    n_held = int(round(len(shuffled) * config.heldout_fraction))
    if n_held >= len(shuffled):
        raise ValueError(f"heldout_fraction {config.heldout_fraction} leaves nothing to train on")
    return shuffled[n_held:], shuffled[:n_held]


def _train_ensemble(items: list, held: list, batch_loss, config: RewardModelConfig, *, kind: str,
                    progress: ProgressCallback | None) -> dict:
    """Train and save each member in turn; returns "train/*" metrics averaged over members. With
    `config.early_stopping` (and held-out data) each member is saved as it was after its best epoch on `held`."""
    device = pick_device()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = math.ceil(len(items) / config.batch_size)
    total = config.ensemble_size * config.epochs * steps_per_epoch
    bar = tqdm(total=total, desc=f"reward model ({kind})", disable=progress is not None)
    step, first_losses, last_losses, best_epochs = 0, [], [], []
    for member in range(config.ensemble_size):
        member_seed = config.seed + member
        set_seed(member_seed)
        rng = random.Random(member_seed)
        # Member 0 sees the data as given; the others a bootstrap resample, so the ensemble spread means something.
        data = list(items) if member == 0 else [rng.choice(items) for _ in items]
        model, tokenizer = load_scorer(config.base_model_path, device)
        trained = _trainable_parameters(model, config)
        optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=config.weight_decay)
        warmup = max(1, steps_per_epoch // 4)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
        epoch_losses, best_loss, best_state, best_epoch = [], math.inf, None, config.epochs - 1
        for epoch in range(config.epochs):
            model.train()
            rng.shuffle(data)
            losses = []
            for start in range(0, len(data), config.batch_size):
                loss = batch_loss(model, tokenizer, data[start : start + config.batch_size], device)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                step += 1
                report = {"step": step, "total": total, "train/loss": losses[-1], "train/member": member, "train/epoch": epoch}
                if progress is not None:
                    progress(report)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}", member=member)
            epoch_losses.append(float(np.mean(losses)))
            if config.early_stopping and held:
                held_loss = _heldout_loss(model, tokenizer, held, batch_loss, config.batch_size, device)
                if held_loss < best_loss:
                    best_loss, best_epoch = held_loss, epoch
                    best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        if best_state is not None:
            model.load_state_dict(best_state)
        first_losses.append(epoch_losses[0])
        last_losses.append(epoch_losses[best_epoch])
        best_epochs.append(best_epoch + 1)
        model.save_pretrained(output_dir / f"member_{member}")
        tokenizer.save_pretrained(output_dir / f"member_{member}")
        del model, optimizer, best_state
    bar.close()
    _write_manifest(config, kind=kind, metrics={})
    return {
        "train/loss": float(np.mean(last_losses)),  # of the epoch that was kept
        "train/loss_first_epoch": float(np.mean(first_losses)),
        "train/epochs_kept": float(np.mean(best_epochs)),
        "train/examples": len(items),
        "train/steps": step,
    }


def _trainable_parameters(model, config: RewardModelConfig) -> list[torch.nn.Parameter]:
    """The head, plus the part of the backbone the head reads when `train_backbone` (all of it for hidden
    features, the embedding table for embeddings features); everything else is frozen."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    parts = [model.score]
    if config.train_backbone:
        parts.append(model.get_input_embeddings() if config.features == "embeddings" else model.base_model)
    trained = list(dict.fromkeys(p for part in parts for p in part.parameters()))  # tied weights appear once
    for parameter in trained:
        parameter.requires_grad_(True)
    return trained


@torch.no_grad()
def _heldout_loss(model, tokenizer, held: list, batch_loss, batch_size: int, device: str) -> float:
    model.eval()
    losses = [(batch_loss(model, tokenizer, held[i : i + batch_size], device).item(), len(held[i : i + batch_size]))
              for i in range(0, len(held), batch_size)]
    return sum(loss * n for loss, n in losses) / sum(n for _, n in losses)


def _write_manifest(config: RewardModelConfig, *, kind: str, metrics: dict) -> None:
    manifest = {
        "kind": kind,
        "config": dataclasses.asdict(config),
        "members": [f"member_{k}" for k in range(config.ensemble_size)],
        "metrics": metrics,
    }
    (Path(config.output_dir) / ENSEMBLE_FILE).write_text(json.dumps(manifest, indent=2))


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    if len(confidence) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def pairwise_eval_metrics(ensemble: RewardEnsemble | None, heldout: list[PreferencePair], *, gold=None) -> dict:
    """Accuracy and ECE of P(chosen > rejected) = sigmoid(mean reward difference) on non-tie held-out pairs,
    the mean ensemble std, and agreement with the gold score's order where the gold scores differ."""
    metrics: dict[str, Any] = {"eval/pairs": len(heldout)}
    if not heldout:
        return metrics
    prompts = [p.prompt for p in heldout]
    mean_c, std_c = ensemble.score(prompts, [p.chosen for p in heldout])
    mean_r, std_r = ensemble.score(prompts, [p.rejected for p in heldout])
    diff = mean_c - mean_r
    decided = np.array([not p.tie for p in heldout])
    metrics["eval/reward_std"] = float(np.mean(np.concatenate([std_c, std_r])))
    if decided.any():
        p_chosen = 1 / (1 + np.exp(-diff[decided]))
        correct = (p_chosen > 0.5).astype(float)
        metrics["eval/accuracy"] = float(correct.mean())
        metrics["eval/ece"] = expected_calibration_error(np.maximum(p_chosen, 1 - p_chosen), correct)
        metrics["eval/loss"] = float(np.mean(np.logaddexp(0.0, -diff[decided])))
    if gold is not None:
        gold_diff = np.array([gold.score(p.prompt, p.chosen) - gold.score(p.prompt, p.rejected) for p in heldout])
        ordered = gold_diff != 0
        if ordered.any():
            metrics["eval/gold_agreement"] = float(np.mean(np.sign(diff[ordered]) == np.sign(gold_diff[ordered])))
    return metrics


def rating_class(score: np.ndarray) -> np.ndarray:
    """Map logits to labels: P(positive) above 2/3 is positive, below 1/3 negative, else neutral."""
    p = 1 / (1 + np.exp(-score))
    return np.where(p > 2 / 3, "positive", np.where(p < 1 / 3, "negative", "neutral"))


def rating_eval_metrics(ensemble: RewardEnsemble | None, heldout: list[RatingExample], *, gold=None) -> dict:
    """Three-way accuracy, ECE of P(positive) on the positive/negative examples, and agreement with gold.rate."""
    metrics: dict[str, Any] = {"eval/examples": len(heldout)}
    if not heldout:
        return metrics
    mean, std = ensemble.score([e.prompt for e in heldout], [e.text for e in heldout])
    predicted = rating_class(mean)
    metrics["eval/accuracy"] = float(np.mean(predicted == np.array([e.value for e in heldout])))
    metrics["eval/reward_std"] = float(std.mean())
    polar = np.array([e.value != "neutral" for e in heldout])
    if polar.any():
        p_positive = 1 / (1 + np.exp(-mean[polar]))
        is_positive = np.array([e.value == "positive" for e in heldout])[polar]
        correct = ((p_positive > 0.5) == is_positive).astype(float)
        metrics["eval/ece"] = expected_calibration_error(np.maximum(p_positive, 1 - p_positive), correct)
    if gold is not None:
        gold_labels = np.array([gold.rate(e.prompt, e.text) for e in heldout])
        metrics["eval/gold_agreement"] = float(np.mean(predicted == gold_labels))
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# Files and command line


def read_pairs_jsonl(path: str | Path) -> list[PreferencePair]:
    """TRL's prompt/chosen/rejected JSONL, with optional "tie" (bool) and "strength" (1..3) fields."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(PreferencePair(prompt=row.get("prompt", ""), chosen=row["chosen"], rejected=row["rejected"],
                                        tie=bool(row.get("tie", False)), strength=int(row.get("strength", 2))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}:{number}: not a prompt/chosen/rejected row ({error})") from error
    return pairs


def read_ratings_jsonl(path: str | Path) -> list[RatingExample]:
    """JSONL rows {"prompt": ..., "text": ..., "value": "positive" | "neutral" | "negative"}."""
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(RatingExample(prompt=row.get("prompt", ""), text=row["text"], value=row["value"]))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a prompt/text/value row ({error})") from error
    return examples


_DATA = tyro.conf.create_mutex_group(required=True, title="training data (one of)")


@dataclass
class _Command:
    """Train a reward model (an ensemble) on judged pairs or ratings; prints its metrics."""

    config: Annotated[RewardModelConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    pairs: Annotated[str | None, _DATA] = field(default=None, metadata={
        "help": "JSONL of prompt/chosen/rejected (+ optional tie, strength): a pairwise model"})
    ratings: Annotated[str | None, _DATA] = field(default=None, metadata={
        "help": "JSONL of prompt/text/value: an absolute-rating model"})
    heldout: str | None = field(default=None, metadata={
        "help": "held-out JSONL in the same form; without it a heldout_fraction share is held out"})
    gold: str | None = field(default=None, metadata={
        "help": 'gold labeler for eval/gold_agreement: "vader" or a reward-model path'})


def main(argv: Sequence[str] | None = None) -> int:
    command = tyro.cli(_Command, args=argv, prog="python -m models_rl.reward_model")
    config = command.config
    gold = None
    if command.gold:
        from models_rl.gold import make_gold

        gold = make_gold(command.gold)
    try:
        if command.pairs:
            heldout = read_pairs_jsonl(command.heldout) if command.heldout else None
            result = train_reward_model(read_pairs_jsonl(command.pairs), config, heldout=heldout, gold=gold)
        else:
            heldout = read_ratings_jsonl(command.heldout) if command.heldout else None
            result = train_rating_model(read_ratings_jsonl(command.ratings), config, heldout=heldout, gold=gold)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps({"path": str(result.path), **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
