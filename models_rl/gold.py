"""Gold labelers: "idealised labelers" that score a completion, prefer one of two and rate one, so that the
loop can run and be measured without people.

- `VaderGold`: positive sentiment (VADER compound score of the completion, -1..1).
- `RewardModelGold`: any local sequence-classification model as the judge of (prompt + completion).
- `NoisyLabeler`: wraps either and answers like a person would: a Bradley-Terry choice on the score difference
  with a temperature, a band inside which it calls a tie, a bias toward the left (first) side, and optionally
  "both bad" when neither is good enough. Its randomness is a function of (seed, prompt, first, second), so
  the same simulated labeler gives the same answer to the same question in any order, and labelers with
  different seeds disagree.

`python -m models_rl.gold --input pairs.jsonl` labels {"prompt", "first", "second"} lines.
"""

import dataclasses
import hashlib
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol, runtime_checkable

import tyro

CHOICES = ("a", "b", "tie", "both_bad")
RATINGS = ("positive", "neutral", "negative")


@runtime_checkable
class GoldLabeler(Protocol):
    """What the loop asks of a labeler stand-in. "a" means `first`; strength is 1 (slight) .. 3 (clear)."""

    rating_thresholds: tuple[float, float]  # scores below the first are "negative", above the second "positive"

    def score(self, prompt: str, text: str) -> float: ...

    def prefer(self, prompt: str, first: str, second: str) -> tuple[str, int]: ...

    def rate(self, prompt: str, text: str) -> str: ...


def rating_from_score(score: float, thresholds: tuple[float, float]) -> str:
    negative_below, positive_above = thresholds
    if score > positive_above:
        return "positive"
    if score < negative_below:
        return "negative"
    return "neutral"


class _ScoreGold:
    """Deterministic preferences from a score: the higher score wins, equal scores tie; strength grows with the
    score difference in steps of `strength_steps` (in score units)."""

    rating_thresholds: tuple[float, float]
    strength_steps: tuple[float, float]

    def score(self, prompt: str, text: str) -> float:
        raise NotImplementedError

    def prefer(self, prompt: str, first: str, second: str) -> tuple[str, int]:
        difference = self.score(prompt, first) - self.score(prompt, second)
        if difference == 0:
            return "tie", 1
        strength = 1 + sum(abs(difference) >= step for step in self.strength_steps)
        return ("a" if difference > 0 else "b"), strength

    def rate(self, prompt: str, text: str) -> str:
        return rating_from_score(self.score(prompt, text), self.rating_thresholds)


class VaderGold(_ScoreGold):
    """Prefers positive sentiment: the score is VADER's compound score (-1..1) of the completion alone."""

    rating_thresholds = (-0.05, 0.05)  # VADER's own convention for neutral
    strength_steps = (0.2, 0.5)

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, prompt: str, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])


REWARD_MODEL_RATING_THRESHOLDS = (-0.5, 0.5)  # a reward model's default: its score in logits


class RewardModelGold(_ScoreGold):
    """A local sequence-classification model judges prompt + completion (the completion continues the prompt,
    so they are joined as they are). One output is the reward; with two, it is logit[1] - logit[0] (a
    negative/positive classifier); with more, pass `label` to choose the output that counts as reward."""

    def __init__(
        self,
        path: str | Path,
        *,
        label: int | None = None,
        rating_thresholds: tuple[float, float] = REWARD_MODEL_RATING_THRESHOLDS,
        strength_steps: tuple[float, float] = (0.5, 2.0),
        max_length: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from models_rl.device import pick_device

        self._torch = torch
        self._device = pick_device()
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._tokenizer.truncation_side = "left"  # keep the completion when prompt + completion is too long
        self._model = AutoModelForSequenceClassification.from_pretrained(path).to(self._device).eval()
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        if self._model.config.pad_token_id is None:
            self._model.config.pad_token_id = self._tokenizer.pad_token_id
        num_labels = self._model.config.num_labels
        if label is None and num_labels > 2:
            raise ValueError(f"{path} has {num_labels} outputs: pass label= to say which one is the reward")
        self._label = label
        self._max_length = max_length or getattr(self._model.config, "max_position_embeddings", None) or 512
        self.rating_thresholds = rating_thresholds
        self.strength_steps = strength_steps

    def score(self, prompt: str, text: str) -> float:
        inputs = self._tokenizer(prompt + text, return_tensors="pt", truncation=True, max_length=self._max_length)
        with self._torch.no_grad():
            logits = self._model(**inputs.to(self._device)).logits[0].float()
        if self._label is not None:
            return float(logits[self._label])
        return float(logits[0]) if logits.numel() == 1 else float(logits[1] - logits[0])


class NoisyLabeler:
    """A simulated person on top of a gold labeler.

    With d = score(first) - score(second):
    - both scores below `both_bad_below` (when set) -> "both_bad";
    - |d| < `tie_band` -> "tie";
    - else "a" with probability sigmoid(d / temperature + position_bias) (Bradley-Terry; `position_bias` is
      added to the log-odds of picking the left/first side; temperature 0 means no noise), "b" otherwise.
    Strength follows the labeler's confidence in its own pick: 1 below 75 %, 2 below 95 %, 3 above; ties and
    "both bad" carry strength 1.
    Ratings add logistic noise of scale `temperature` to the score before thresholding.
    """

    def __init__(
        self,
        gold: GoldLabeler,
        *,
        temperature: float = 0.1,
        tie_band: float = 0.05,
        position_bias: float = 0.0,
        both_bad_below: float | None = None,
        seed: int = 0,
    ) -> None:
        if temperature < 0 or tie_band < 0:
            raise ValueError("temperature and tie_band must be >= 0")
        self.gold = gold
        self.temperature = temperature
        self.tie_band = tie_band
        self.position_bias = position_bias
        self.both_bad_below = both_bad_below
        self.seed = seed
        self.rating_thresholds = gold.rating_thresholds

    def _rng(self, *parts: str) -> random.Random:
        digest = hashlib.sha256("\x00".join((str(self.seed), *parts)).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def score(self, prompt: str, text: str) -> float:
        return self.gold.score(prompt, text)

    def probability_first(self, difference: float) -> float:
        """P(choose first) for a score difference outside the tie band."""
        if self.temperature == 0:
            return _sigmoid(math.copysign(math.inf, difference) if difference else self.position_bias)
        return _sigmoid(difference / self.temperature + self.position_bias)

    def prefer(self, prompt: str, first: str, second: str) -> tuple[str, int]:
        score_first, score_second = self.score(prompt, first), self.score(prompt, second)
        difference = score_first - score_second
        if self.both_bad_below is not None and max(score_first, score_second) < self.both_bad_below:
            return "both_bad", 1
        if abs(difference) < self.tie_band:
            return "tie", 1
        p_first = self.probability_first(difference)
        choice = "a" if self._rng("prefer", prompt, first, second).random() < p_first else "b"
        confidence = p_first if choice == "a" else 1 - p_first
        return choice, 1 + (confidence >= 0.75) + (confidence >= 0.95)

    def rate(self, prompt: str, text: str) -> str:
        uniform = min(max(self._rng("rate", prompt, text).random(), 1e-12), 1 - 1e-12)
        noise = self.temperature * math.log(uniform / (1 - uniform))  # logistic(0, temperature)
        return rating_from_score(self.score(prompt, text) + noise, self.rating_thresholds)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    exp_x = math.exp(x)
    return exp_x / (1 + exp_x)


def make_gold(name: str, **noise_kwargs) -> GoldLabeler:
    """"vader" or the path of a local reward model; any noise keyword (temperature, tie_band, position_bias,
    both_bad_below, seed) wraps the labeler in a NoisyLabeler."""
    if name == "vader":
        gold: GoldLabeler = VaderGold()
    elif (Path(name) / "config.json").is_file():
        gold = RewardModelGold(name)
    elif Path(name).is_dir():
        raise ValueError(f"{name} holds no config.json, so it is no Hugging Face model directory (for a reward "
                         f"ensemble, name one member folder, e.g. {Path(name) / 'member_0'})")
    else:
        raise ValueError(f"unknown gold labeler {name!r}: use 'vader' or the directory of a reward model")
    return NoisyLabeler(gold, **noise_kwargs) if noise_kwargs else gold


def gold_rating_thresholds(name: str) -> tuple[float, float]:
    """The rating thresholds of `make_gold(name)`, without loading its model: "vader" or a reward model's folder."""
    return VaderGold.rating_thresholds if name == "vader" else REWARD_MODEL_RATING_THRESHOLDS


@dataclass
class GoldLabelConfig:
    gold: str = field(default="vader", metadata={"help": "'vader' or the directory of a reward model"})
    noisy: bool = field(default=False, metadata={"help": "answer through a NoisyLabeler with the settings below"})
    temperature: float = field(default=0.1, metadata={"help": "Bradley-Terry temperature, in score units"})
    tie_band: float = field(default=0.05, metadata={"help": "score differences below this are ties"})
    position_bias: float = field(default=0.0, metadata={"help": "log-odds added in favour of the first text"})
    both_bad_below: float | None = field(default=None, metadata={"help": "both scores below this: both_bad"})
    seed: int = field(default=0, metadata={"help": "the simulated labeler's identity"})


@dataclass
class _Command:
    """Label pairs with a gold labeler. Reads JSONL lines {"prompt", "first", "second"} and writes them back
    with "choice" and "strength"."""

    config: Annotated[GoldLabelConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    input: str = field(default="-", metadata={"help": "JSONL file; - reads stdin"})


def main(argv: list[str] | None = None) -> None:
    command = tyro.cli(_Command, args=argv, prog="python -m models_rl.gold")
    noise = dataclasses.asdict(command.config)
    name, noisy = noise.pop("gold"), noise.pop("noisy")
    labeler = make_gold(name, **noise) if noisy else make_gold(name)
    lines = sys.stdin if command.input == "-" else open(command.input, encoding="utf-8")
    for line in lines:
        if line.strip():
            pair = json.loads(line)
            choice, strength = labeler.prefer(pair["prompt"], pair["first"], pair["second"])
            print(json.dumps({**pair, "choice": choice, "strength": strength}))


if __name__ == "__main__":
    main()
