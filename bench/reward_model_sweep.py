"""Reward-model settings side by side on the shipped base: which one orders fresh samples most like gold?

Labels `--pairs` pairs of base samples (training prompts, seed 0) and 600 held-out pairs (held-out prompts, seed
99) with the noisy VADER labeler of bench/sentiment_rlhf.py, caches them, then trains one reward model per
named setting (JSON: name -> RewardModelConfig fields) and prints its held-out accuracy, agreement with
noiseless VADER's order and Spearman correlation with VADER over the held-out samples.

    .venv/bin/python bench/reward_model_sweep.py '{"default": {"features": "embeddings", "pooling": "mean",
        "learning_rate": 0.01, "epochs": 20, "weight_decay": 1.0}, "sum": {...}}' [--pairs 1000]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from bench.sentiment_rlhf import artifact_dir, labelled_pairs  # noqa: E402
from models_rl.base_model import embedded_base_model  # noqa: E402
from models_rl.data import shakespeare_prompts  # noqa: E402
from models_rl.gold import NoisyLabeler, VaderGold  # noqa: E402
from models_rl.reward_ensemble import RewardEnsemble  # noqa: E402
from models_rl.reward_model import PreferencePair, RewardModelConfig, train_reward_model  # noqa: E402

HELDOUT_PAIRS = 600


def labelled_data(base: Path, n: int, cache: Path) -> tuple[list[PreferencePair], list[PreferencePair]]:
    if cache.exists():
        data = json.loads(cache.read_text())
        return [PreferencePair(**p) for p in data["train"]], [PreferencePair(**p) for p in data["held"]]
    train_prompts = shakespeare_prompts(n, seed=0)
    seen = set(train_prompts)
    held_prompts = [p for p in shakespeare_prompts(HELDOUT_PAIRS * 2 + 200, seed=99) if p not in seen][:HELDOUT_PAIRS]
    train = labelled_pairs(base, train_prompts, NoisyLabeler(VaderGold(), temperature=0.1, tie_band=0.05, seed=0), 32, seed=0)
    held = labelled_pairs(base, held_prompts, NoisyLabeler(VaderGold(), temperature=0.1, tie_band=0.05, seed=1), 32, seed=5)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"train": [p.__dict__ for p in train], "held": [p.__dict__ for p in held]}))
    return train, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", help="JSON object: name -> RewardModelConfig fields")
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args()
    out = artifact_dir() / "reward_model_sweep"
    base = embedded_base_model()
    train, held = labelled_data(base, args.pairs, out / f"pairs_{args.pairs}.json")
    gold = VaderGold()
    texts = [(p.prompt, text) for p in held for text in (p.chosen, p.rejected)]
    gold_scores = np.array([gold.score(prompt, text) for prompt, text in texts])
    print(f"{len(train)} training pairs, {len(held)} held-out pairs; {np.mean(gold_scores != 0):.2f} of held-out "
          "samples have a VADER score other than 0")
    for name, fields in json.loads(args.settings).items():
        started = time.perf_counter()
        result = train_reward_model(train, RewardModelConfig(base_model_path=str(base), output_dir=str(out / name),
                                                             max_length=96, **fields), heldout=held, gold=gold)
        scores, _ = RewardEnsemble.load(result.path).score([p for p, _ in texts], [t for _, t in texts])
        m = result.metrics
        print(f"{name:28s} held-out acc. {m['eval/accuracy']:.3f}  gold agreement {m['eval/gold_agreement']:.3f}  "
              f"Spearman {spearmanr(scores, gold_scores).correlation:.3f}  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
