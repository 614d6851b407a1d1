"""Training throughput on the embedded default model, and what our wrappers cost over TRL called directly.

Prints reward-model pairs/s (our flat Bradley-Terry loop vs TRL's RewardTrainer on the same tie-free pairs,
same batch, learning rate and epochs) and RL completion tokens/s (`optimize_rl` vs RLOOTrainer with the same
settings and the same reward function). Overhead = our wall time / TRL's wall time - 1 (target: under 10 %).
Both sides pay for loading the model, tokenising and saving; for RL ours also measures the reward
normalisation constants on `--norm-samples` samples of the starting policy, which TRL alone does not do.
Each side runs `--repeats` times, alternating with the other (TRL first), and its best time counts.

    .venv/bin/python bench/train.py [--pairs 512] [--rl-steps 20]

The base model is trained once (`ensure_base_model`) and cached under $ARTIFACT_DIR/bench or bench/out/.
"""

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models_rl.base_model import BaseModelConfig, ensure_base_model  # noqa: E402
from models_rl.data import shakespeare_prompts  # noqa: E402
from models_rl.device import cpu_thread_count, cpu_threads, device_name  # noqa: E402
from models_rl.gold import VaderGold  # noqa: E402
from models_rl.reward_ensemble import RewardEnsemble  # noqa: E402
from models_rl.reward_model import PreferencePair, RewardModelConfig, train_reward_model  # noqa: E402
from models_rl.rloo import RLConfig, optimize_rl  # noqa: E402

POSITIVE = [" love", " joy", " sweet", " good", " gentle"]
NEGATIVE = [" hate", " death", " vile", " grief", " cruel"]


def artifact_dir() -> Path:
    root = os.environ.get("ARTIFACT_DIR")
    return Path(root) / "bench" if root else Path(__file__).resolve().parent / "out"


def sentiment_pairs(n: int, seed: int = 0) -> list[PreferencePair]:
    """Prompt openings with a positive- and a negative-ended continuation, ordered by VADER (no ties)."""
    rng, gold = random.Random(seed), VaderGold()
    pairs = []
    for prompt in shakespeare_prompts(n, seed=seed, min_words=8, max_words=14):
        words = prompt.split()
        head, tail = " ".join(words[:4]), " " + " ".join(words[4:])
        first, second = tail + rng.choice(POSITIVE), tail + rng.choice(NEGATIVE)
        choice, strength = gold.prefer(head, first, second)
        chosen, rejected = (second, first) if choice == "b" else (first, second)
        pairs.append(PreferencePair(head, chosen, rejected))
    return pairs


def best_times(repeats: int, trl_direct, ours) -> tuple[float, float]:
    """Shortest wall time of each side over `repeats` alternating runs (TRL first): the first run of a process
    pays one-off warm-ups, and on a shared machine the load shifts; alternating spreads that over both sides."""
    times: dict[str, list[float]] = {"trl": [], "ours": []}
    for _ in range(repeats):
        for side, run in (("trl", trl_direct), ("ours", ours)):
            started = time.perf_counter()
            run()
            times[side].append(time.perf_counter() - started)
    return min(times["trl"]), min(times["ours"])


def bench_reward_model(base: Path, pairs: list[PreferencePair], out: Path, batch_size: int, max_length: int,
                       repeats: int) -> None:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from models_rl.trl_adapter import common_arguments

    def trl_direct() -> None:
        rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
        with cpu_threads():  # the same thread policy our entry points use
            trainer = RewardTrainer(
                model=str(base),
                args=RewardConfig(**common_arguments(out / "trl", seed=0, learning_rate=3e-4, batch_size=batch_size,
                                                     quiet=True),
                                  num_train_epochs=1, max_length=max_length),
                train_dataset=Dataset.from_list(rows),
            )
            trainer.train()
            trainer.save_model(str(out / "trl" / "final"))

    def ours() -> None:
        config = RewardModelConfig(base_model_path=str(base), output_dir=str(out / "ours"), epochs=1,
                                   batch_size=batch_size, learning_rate=3e-4, max_length=max_length)
        train_reward_model(pairs, config, heldout=[], progress=lambda report: None)

    theirs, mine = best_times(repeats, trl_direct, ours)
    print(f"reward model, {len(pairs)} pairs x 1 epoch, batch {batch_size} (best of {repeats}):")
    print(f"  ours (flat loop, ties + strength)  {len(pairs) / mine:8.1f} pairs/s  ({mine:.1f} s)")
    print(f"  TRL RewardTrainer                  {len(pairs) / theirs:8.1f} pairs/s  ({theirs:.1f} s)")
    print(f"  overhead of ours                   {100 * (mine / theirs - 1):+8.1f} %")


def bench_rl(base: Path, reward_model: Path, out: Path, steps: int, norm_samples: int, repeats: int) -> None:
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    from models_rl.trl_adapter import common_arguments, load_policy_tokenizer

    prompts = shakespeare_prompts(512, seed=1)
    batch, generations, tokens = 32, 8, 24
    config = RLConfig(policy_path=str(base), reward_model_path=str(reward_model), output_dir=str(out / "ours"),
                      max_steps=steps, batch_size=batch, num_generations=generations, num_iterations=1,
                      max_new_tokens=tokens, reward_norm_samples=norm_samples)

    def trl_direct() -> None:
        ensemble = RewardEnsemble.load(reward_model)

        def reward_model_mean(prompts, completions, **kwargs):
            return ensemble.score(prompts, completions)[0].tolist()

        with cpu_threads():
            trainer = RLOOTrainer(
                model=str(base),
                reward_funcs=reward_model_mean,
                args=RLOOConfig(**common_arguments(out / "trl", seed=0, learning_rate=config.learning_rate,
                                                   batch_size=batch, quiet=True),
                                max_steps=steps, beta=config.kl_coef, num_generations=generations, num_iterations=1,
                                max_completion_length=tokens, top_k=0, disable_dropout=True),
                train_dataset=Dataset.from_dict({"prompt": prompts}),
                processing_class=load_policy_tokenizer(base),
            )
            trainer.train()
            trainer.save_model(str(out / "trl" / "final"))

    theirs, mine = best_times(repeats, trl_direct, lambda: optimize_rl(prompts, config, progress=lambda report: None))
    generated = steps * batch * tokens  # every completion runs to the length limit (no end-of-text learnt yet)
    print(f"RL (RLOO), {steps} steps x {batch} completions of {tokens} tokens (best of {repeats}):")
    print(f"  ours (optimize_rl, {norm_samples} norm samples) {generated / mine:8.1f} tokens/s  ({mine:.1f} s)")
    print(f"  TRL RLOOTrainer                    {generated / theirs:8.1f} tokens/s  ({theirs:.1f} s)")
    print(f"  overhead of ours                   {100 * (mine / theirs - 1):+8.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--rl-steps", type=int, default=20)
    parser.add_argument("--norm-samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the best time counts")
    args = parser.parse_args()
    threads = cpu_thread_count()  # what the trainers will use (each entry point picks its own at call time)
    base = ensure_base_model(BaseModelConfig(output_dir=str(artifact_dir() / "base_model")))
    print(f"device: {device_name()} ({threads} threads); base model: {base}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        pairs = sentiment_pairs(args.pairs)
        bench_reward_model(base, pairs, scratch / "rm", args.batch_size, args.max_length, args.repeats)
        bench_rl(base, scratch / "rm" / "ours", scratch / "rl", args.rl_steps, args.norm_samples, args.repeats)


if __name__ == "__main__":
    main()
