"""A trained reward model, loaded and scoring: the K members of an ensemble saved by models_rl.reward_model,
each a sequence-classification head (one logit) on an LM backbone, read at the last token or pooled over the
completion's tokens, on the last hidden state or on the input token embeddings (see that module).

`RewardEnsemble.load(path).score(prompts, texts)` gives each text's mean score over members and their std, the
uncertainty that pair acquisition uses; `member_scores` gives every member's score.

What a policy maximises is `reward` (`member_rewards`): a pairwise (Bradley-Terry) model's score as it is; for a
rating model, whose score is the logit of "positive", log p(positive) = log sigmoid(score), so that RL, best-of-n
and policy evaluation pursue the probability that a labeler calls the text positive.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from models_rl.device import pick_device
from models_rl.sampling import prompt_token_ids

ENSEMBLE_FILE = "ensemble.json"
PAIRWISE, RATING = "pairwise", "rating"  # the kinds of ensemble (ensemble.json's "kind")
Pooling = Literal["mean", "sum", "last"]
Features = Literal["hidden", "embeddings"]
POOLINGS = get_args(Pooling)
FEATURES = get_args(Features)


def load_scorer(path: str | Path, device: str):
    """A sequence-classification model with one output, and its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a fresh head on a causal LM is expected, not worth a warning
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device), tokenizer


def _encode(tokenizer, prompts: Sequence[str], texts: Sequence[str], max_length: int,
            device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ids, attention mask, completion mask), padded on the right. Prompt and completion are tokenised
    apart, as the policy wrote them (an empty prompt as the start token the policy started from); a row longer
    than max_length loses its start, never the end. An empty completion is marked at the prompt's last token, so
    that every row has something to pool."""
    prompt_ids = [prompt_token_ids(tokenizer, prompt) for prompt in prompts]
    text_ids = tokenizer(list(texts), add_special_tokens=False).input_ids
    rows = []
    for prompt, text in zip(prompt_ids, text_ids):
        ids = (prompt + text)[-max_length:] or [tokenizer.eos_token_id]
        rows.append((ids, max(1, min(len(text), len(ids)))))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    completion = torch.zeros((len(rows), width))
    for row, (ids, n_text) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        completion[row, len(ids) - n_text : len(ids)] = 1
    return input_ids.to(device), attention.to(device), completion.to(device)


def forward_scores(model, tokenizer, prompts: Sequence[str], texts: Sequence[str], max_length: int, device: str,
                    pooling: str, features: str = "hidden") -> torch.Tensor:
    """One score per (prompt, text): the head's per-token outputs, on the last hidden state or on the input
    embeddings as `features` says, pooled as `pooling` says."""
    input_ids, attention, completion = _encode(tokenizer, prompts, texts, max_length, device)
    if features == "embeddings":
        states = model.get_input_embeddings()(input_ids)
    else:
        states = model.base_model(input_ids=input_ids, attention_mask=attention, use_cache=False).last_hidden_state
    per_token = model.score(states).squeeze(-1)
    if pooling == "last":
        return per_token[torch.arange(len(per_token), device=device), attention.sum(dim=1) - 1]
    summed = (per_token * completion).sum(dim=1)
    return summed if pooling == "sum" else summed / completion.sum(dim=1)


@torch.no_grad()
def _score_all(model, tokenizer, prompts: Sequence[str], texts: Sequence[str], max_length: int, device: str,
               pooling: str, features: str = "hidden", batch_size: int = 64) -> np.ndarray:
    model.eval()
    out = [
        forward_scores(model, tokenizer, prompts[i : i + batch_size], texts[i : i + batch_size], max_length, device,
                        pooling, features)
        .float().cpu().numpy()
        for i in range(0, len(prompts), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class RewardEnsemble:
    """The K members of a trained reward model; scores are raw logits (comparable within one ensemble)."""

    def __init__(self, members: list, tokenizer, *, kind: str, max_length: int, pooling: str, device: str,
                 metrics: dict, features: str = "hidden"):
        self.members = members
        self.tokenizer = tokenizer
        self.kind = kind
        self.max_length = max_length
        self.pooling = pooling
        self.features = features
        self.device = device
        self.metrics = metrics

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> RewardEnsemble:
        path = Path(path)
        manifest_path = path / ENSEMBLE_FILE
        if not manifest_path.exists():
            raise FileNotFoundError(f"{path} is not a trained reward model: {ENSEMBLE_FILE} is missing")
        manifest = json.loads(manifest_path.read_text())
        device = device or pick_device()
        members, tokenizer = [], None
        for folder in manifest["members"]:
            model, tokenizer = load_scorer(path / folder, device)
            members.append(model.eval())
        return cls(members, tokenizer, kind=manifest["kind"], max_length=manifest["config"]["max_length"],
                   pooling=manifest["config"].get("pooling", "last"),  # ensembles saved before pooling existed
                   features=manifest["config"].get("features", "hidden"),  # ... and before features existed
                   device=device, metrics=manifest.get("metrics", {}))

    def member_scores(self, prompts: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Scores of shape [members, n]."""
        if len(prompts) != len(texts):
            raise ValueError(f"{len(prompts)} prompts but {len(texts)} texts")
        return np.stack([_score_all(m, self.tokenizer, prompts, texts, self.max_length, self.device, self.pooling, self.features)
                         for m in self.members])

    def score(self, prompts: Sequence[str], texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members for each text; std is 0 for a single member."""
        scores = self.member_scores(prompts, texts)
        return scores.mean(axis=0), scores.std(axis=0)

    def member_rewards(self, prompts: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """What a policy maximises, per member, shape [members, n]: a pairwise model's scores, or a rating model's
        log p(positive) = log sigmoid(score)."""
        scores = self.member_scores(prompts, texts)
        return log_sigmoid(scores) if self.kind == RATING else scores

    def reward(self, prompts: Sequence[str], texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members of `member_rewards` for each text."""
        rewards = self.member_rewards(prompts, texts)
        return rewards.mean(axis=0), rewards.std(axis=0)


def positive_probability(scores: np.ndarray) -> np.ndarray:
    """A rating model's p(positive) = sigmoid(score), elementwise, without overflow."""
    return 0.5 * (1 + np.tanh(np.asarray(scores, dtype=np.float64) / 2))


def log_sigmoid(scores: np.ndarray) -> np.ndarray:
    """log sigmoid(score) = -log(1 + exp(-score)), elementwise, without overflow."""
    return -np.logaddexp(0.0, -np.asarray(scores, dtype=np.float64))
