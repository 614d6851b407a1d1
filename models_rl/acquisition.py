"""Acquisition: which candidate pairs (or, for a rating campaign, single completions) are worth a label, judged
from the reward ensemble's rewards.

Strategies (higher score = more worth asking):
- "disagreement": the standard deviation over ensemble members of each member's Bradley-Terry probability
  P_m(a > b) = sigmoid(r_m(a) - r_m(b)); needs at least two members.
- "uncertainty": p (1 - p) with p the ensemble-mean Bradley-Terry probability (largest when the ensemble
  thinks the pair is a coin toss).
- "information_gain": the mutual information (in nats) between the label and which member is right (BALD),
  H(mean_m P_m) - mean_m H(P_m) with H the binary entropy: 0 when the members agree, whatever p; largest when
  each member is sure and they split. Needs at least two members.
- "thompson": double Thompson sampling over the ensemble, prompt by prompt (Dwaracherla et al. 2024, "Efficient
  Exploration for LLMs"): draw two distinct members as two samples of the reward; the prompt's pair is the
  completion best under the first with the one best under the second, i.e. the pair with the largest
  r_1(a) + r_2(b) either way round. That pair scores 1 + p (1 - p), every other pair p (1 - p): a batch takes one
  pair of each prompt, the least certain first, and labels land among each prompt's best completions, where RL
  goes. Needs at least two members.
- "random": a uniform random score, the baseline.
A batch takes the best-scored pairs, then a share of uniformly random pairs as a control group, and never
more than `max_per_prompt` pairs of one prompt.

Items to rate (`select_items`) are scored the same way with P_m the member's p(positive) = sigmoid(score) of a
rating model instead of a pair's Bradley-Terry probability: "uncertainty" asks about the texts the ensemble
thinks a coin toss between positive and negative, "disagreement" and "information_gain" those its members split
on. "thompson" chooses between two completions, so it has no meaning for a single one and is refused.

`python -m models_rl.acquisition --batch-size 50 --input candidates.jsonl` selects from JSONL candidates.
"""

import json
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal, get_args

import numpy as np
import tyro

Strategy = Literal["disagreement", "uncertainty", "information_gain", "thompson", "random"]
STRATEGIES = get_args(Strategy)


@dataclass
class CandidatePair:
    """A pair that could be published; `key` and `prompt_key` are whatever the caller uses to find them."""

    key: object
    prompt_key: object
    member_rewards_a: list[float]  # reward of completion A from each ensemble member
    member_rewards_b: list[float]


@dataclass
class AcquisitionConfig:
    batch_size: int = field(metadata={"help": "pairs to select"})
    strategy: Strategy = field(default="disagreement", metadata={"help": "what makes a pair worth a label"})
    random_share: float = field(default=0.2, metadata={"help": "share of the batch picked uniformly (control)"})
    max_per_prompt: int = field(default=2, metadata={"help": "pairs of one prompt in a batch, at most"})
    seed: int = field(default=0, metadata={"help": "seed for the random scores, control picks and tie order"})


@dataclass
class CandidateItem:
    """A single completion that could be published for rating."""

    key: object
    prompt_key: object
    member_probabilities: list[float]  # p(positive) from each ensemble member


@dataclass
class SelectedPair:
    key: object
    score: float  # the strategy's score, also for control pairs, so the two groups can be compared
    is_control: bool


SelectedItem = SelectedPair  # the same record, for an item to rate


def _member_probabilities(candidates: list[CandidatePair]) -> np.ndarray:
    """[pairs, members] Bradley-Terry probabilities that A beats B, one per ensemble member."""
    sizes = {len(c.member_rewards_a) for c in candidates} | {len(c.member_rewards_b) for c in candidates}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError("every candidate needs the same, non-zero number of member rewards for A and B")
    rewards_a = np.array([c.member_rewards_a for c in candidates], dtype=np.float64)
    rewards_b = np.array([c.member_rewards_b for c in candidates], dtype=np.float64)
    return 0.5 * (1 + np.tanh((rewards_a - rewards_b) / 2))  # the logistic sigmoid, without overflow


def score_pairs(candidates: list[CandidatePair], strategy: str, *, seed: int = 0) -> list[float]:
    """One acquisition score per candidate, in order (see the module docstring)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown acquisition strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if not candidates:
        return []
    probabilities = _member_probabilities(candidates)
    scores = _probability_scores(probabilities, strategy, seed=seed)
    if strategy == "thompson":
        return (scores + _double_thompson_picks(candidates, seed=seed)).tolist()
    return scores.tolist()


def score_items(candidates: list[CandidateItem], strategy: str, *, seed: int = 0) -> list[float]:
    """One acquisition score per item to rate, in order, from its members' p(positive) (see the module docstring)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown acquisition strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if strategy == "thompson":
        raise ValueError("the thompson strategy chooses between two completions; a single completion to rate needs "
                         "uncertainty, disagreement, information_gain or random")
    if not candidates:
        return []
    sizes = {len(c.member_probabilities) for c in candidates}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError("every candidate needs the same, non-zero number of member probabilities")
    probabilities = np.array([c.member_probabilities for c in candidates], dtype=np.float64)
    return _probability_scores(probabilities, strategy, seed=seed).tolist()


def _probability_scores(probabilities: np.ndarray, strategy: str, *, seed: int) -> np.ndarray:
    """The strategy's score of each row of [candidates, members] probabilities; for "thompson" the uncertainty,
    which its picks are added to."""
    if strategy == "random":
        return np.random.default_rng(seed).random(len(probabilities))
    if strategy in ("disagreement", "information_gain", "thompson") and probabilities.shape[1] < 2:
        raise ValueError(f"the {strategy} strategy needs a reward ensemble of at least 2 members; "
                         "use 'uncertainty' with a single reward model")
    if strategy == "disagreement":
        return probabilities.std(axis=1)
    mean = probabilities.mean(axis=1)
    if strategy == "information_gain":
        return (_binary_entropy(mean) - _binary_entropy(probabilities).mean(axis=1)).clip(min=0)
    return mean * (1 - mean)


def _double_thompson_picks(candidates: list[CandidatePair], *, seed: int) -> np.ndarray:
    """1.0 for each prompt's double-Thompson pair, 0.0 elsewhere. Per prompt (in order of first appearance, so a
    seed gives the same draws) two distinct members m1, m2; the pair maximising r_m1(a) + r_m2(b) or r_m1(b) +
    r_m2(a) holds the completion best under m1 and the one best under m2 (distinct completions)."""
    rng = np.random.default_rng(seed)
    members = len(candidates[0].member_rewards_a)
    draws: dict[object, tuple[int, int]] = {}
    best: dict[object, tuple[float, int]] = {}
    for index, candidate in enumerate(candidates):
        if candidate.prompt_key not in draws:
            first, second = rng.choice(members, size=2, replace=False)
            draws[candidate.prompt_key] = (int(first), int(second))
        first, second = draws[candidate.prompt_key]
        a, b = candidate.member_rewards_a, candidate.member_rewards_b
        value = max(a[first] + b[second], b[first] + a[second])
        if candidate.prompt_key not in best or value > best[candidate.prompt_key][0]:
            best[candidate.prompt_key] = (value, index)
    picks = np.zeros(len(candidates))
    picks[[index for _, index in best.values()]] = 1.0
    return picks


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """-p log p - (1 - p) log(1 - p) in nats, 0 at p = 0 and p = 1."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def select_pairs(candidates: list[CandidatePair], config: AcquisitionConfig) -> list[SelectedPair]:
    """Up to `batch_size` pairs: the best-scored ones first, then round(batch_size * random_share) control
    pairs drawn uniformly from the rest, at most `max_per_prompt` per prompt over both groups (fewer pairs
    come back when the candidates or the cap run out). Equal scores are ordered randomly (by seed)."""
    _check(config)
    return _select(candidates, score_pairs(candidates, config.strategy, seed=config.seed), config)


def select_items(candidates: list[CandidateItem], config: AcquisitionConfig) -> list[SelectedItem]:
    """Up to `batch_size` completions to rate, chosen as `select_pairs` chooses pairs (best-scored first, then a
    random control share, at most `max_per_prompt` per prompt), scored by `score_items`."""
    _check(config)
    return _select(candidates, score_items(candidates, config.strategy, seed=config.seed), config)


def _check(config: AcquisitionConfig) -> None:
    if config.batch_size < 0 or not 0 <= config.random_share <= 1 or config.max_per_prompt < 1:
        raise ValueError("need batch_size >= 0, 0 <= random_share <= 1 and max_per_prompt >= 1")


def _select(candidates: list, scores: list[float], config: AcquisitionConfig) -> list[SelectedPair]:
    """The best-scored candidates, then the random control share, under the per-prompt cap."""
    rng = random.Random(config.seed)
    shuffled = rng.sample(range(len(candidates)), len(candidates))  # random order first: ties break randomly
    by_score = sorted(shuffled, key=lambda index: scores[index], reverse=True)
    per_prompt: Counter = Counter()
    taken: set[int] = set()

    def take(order: list[int], limit: int) -> list[int]:
        picked = []
        for index in order:
            if len(picked) == limit:
                break
            prompt = candidates[index].prompt_key
            if index not in taken and per_prompt[prompt] < config.max_per_prompt:
                picked.append(index)
                taken.add(index)
                per_prompt[prompt] += 1
        return picked

    control_size = round(config.batch_size * config.random_share)
    active = take(by_score, config.batch_size - control_size)
    control = take(shuffled, control_size)
    return [SelectedPair(key=candidates[i].key, score=scores[i], is_control=False) for i in active] + [
        SelectedPair(key=candidates[i].key, score=scores[i], is_control=True) for i in control
    ]


@dataclass
class _Command:
    """Select pairs to label. Reads JSONL candidates {"key", "prompt_key", "member_rewards_a",
    "member_rewards_b"}; prints the selection."""

    config: Annotated[AcquisitionConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    input: str = field(default="-", metadata={"help": "JSONL file; - reads stdin"})


def main(argv: list[str] | None = None) -> None:
    command = tyro.cli(_Command, args=argv, prog="python -m models_rl.acquisition")
    lines = sys.stdin if command.input == "-" else open(command.input, encoding="utf-8")
    candidates = [CandidatePair(**json.loads(line)) for line in lines if line.strip()]
    for selected in select_pairs(candidates, command.config):
        print(json.dumps(asdict(selected)))


if __name__ == "__main__":
    main()
