"""Measuring a policy against its reference: KL per completion, entropy and reward, on the policy's own samples.

KL(pi || pi_ref) per completion = E_{y ~ pi}[log pi(y | x) - log pi_ref(y | x)], each log-probability summed over
the completion's tokens: the quantity the KL leash of models_rl.rloo limits and every checkpoint records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_rl.device import pick_device
from models_rl.sampling import SamplingConfig, prompt_token_ids, sample

if TYPE_CHECKING:
    from models_rl.reward_ensemble import RewardEnsemble


@torch.no_grad()
def completion_logprobs(model_path: str | Path, prompts: Sequence[str], texts: Sequence[str], *,
                        batch_size: int = 32) -> np.ndarray:
    """log p(text | prompt) summed over the text's tokens (prompt and text tokenised apart, then joined; an empty
    prompt is the start token, so that the text's first token is scored too)."""
    device = pick_device()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path).to(device).eval()
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    totals = []
    for start in range(0, len(prompts), batch_size):
        rows, text_spans = [], []
        for prompt, text in zip(prompts[start : start + batch_size], texts[start : start + batch_size]):
            prompt_ids = prompt_token_ids(tokenizer, prompt)  # "" -> the start token the policy began with
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
        metrics["policy/reward"] = float(ensemble.reward(cycled, texts)[0].mean())
    return metrics
