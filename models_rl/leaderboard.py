"""A Bradley-Terry leaderboard of checkpoints from blind battles, with bootstrap intervals and a length control.

The model. For a battle of checkpoints a and b,
    P(a beats b) = sigmoid(theta_a - theta_b + gamma * d),   d = (len_a - len_b) / (len_a + len_b),
fitted by maximum likelihood with `scipy.optimize.minimize` (L-BFGS, analytic gradient) plus a tiny L2 penalty on
every parameter, which makes the fit unique (BT is blind to a common shift) and finite when one checkpoint wins
every battle. The raw rating drops the length term (gamma = 0); the length-controlled rating keeps it, as
LMArena's style control does: a checkpoint that wins only by writing longer loses that advantage to gamma.
`d` is the relative length difference in [-1, 1] (0 when both are empty); gamma is in logits per unit of d.

Ties. "tie" and "both_bad" count as half a win for each side: the battle's target is 0.5 in the Bernoulli
log-likelihood, -[0.5 log p + 0.5 log(1 - p)], which is the same as a win and a loss of weight one half each.
Nothing is dropped.

Scale. rating = 1000 + (400 / ln 10) * (theta - theta_baseline): the baseline (the base checkpoint) is 1000, and
a gap of 400 points means 10:1 odds of winning (Elo's scale). Expected win rate of X over the baseline is
1 / (1 + 10 ** (-(rating_X - 1000) / 400)).

Intervals. Ratings and gamma: percentile intervals over a seeded bootstrap that resamples battles with replacement
(multinomial weights over the same battles, so each replicate is one more weighted fit), each replicate anchored
to the baseline again, so the baseline's own interval is [1000, 1000]. Win rate against the baseline: the
empirical rate over direct battles with the baseline (ties half) and a Wilson score interval; with ties the true
variance is below p (1 - p), so the interval is conservative. Why Wilson rather than the bootstrap here: a
checkpoint that won all of its 12 battles gets [0.76, 1.0], not a bootstrap's degenerate [1.0, 1.0].

Point fit alone. `fit_ratings` gives the raw ratings without intervals (the same fit as the leaderboard's rating
column, so the numbers agree exactly); the battle scheduler refits it after every few labels, where a bootstrap
would cost a thousand fits for nothing it uses.

Why scipy and not a ranking library: evalica and choix fit plain BT but none takes a covariate, so the length
control would need a hand-written fit anyway; one objective for both ratings keeps the raw and controlled
numbers comparable, differing only by the length term. (arena-rank does both but pins another numpy and jax.)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

OUTCOMES = ("a", "b", "tie", "both_bad")
SCORE_OF_A = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}  # the half-win rule, in one place
BASE_RATING = 1000.0
POINTS_PER_LOGIT = 400.0 / math.log(10.0)


@dataclass
class Battle:
    """One blind comparison of two different checkpoints' completions for the same prompt."""

    model_a: str
    model_b: str
    outcome: str  # "a", "b", "tie" or "both_bad"
    length_a: int | None = None  # completion lengths (tokens or characters, the same unit for every battle)
    length_b: int | None = None


@dataclass
class LeaderboardConfig:
    baseline: str = field(metadata={"help": "the checkpoint anchored at 1000 (the base model)"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap resampling"})
    bootstrap: int = field(default=1000, metadata={"help": "bootstrap replicates for the intervals"})
    confidence: float = field(default=0.95, metadata={"help": "coverage of every interval"})
    l2: float = field(default=1e-3, metadata={"help": "L2 penalty on the logits (identifiability; ~no effect)"})


@dataclass
class Standing:
    """One checkpoint's row. Ratings are on the 400 * log10 scale with the baseline at 1000."""

    model: str
    rating: float
    rating_low: float
    rating_high: float
    battles: int
    # Direct battles with the baseline, ties and both-bad as half a win; None for the baseline itself or
    # a checkpoint that never met it.
    battles_vs_baseline: int
    win_rate_vs_baseline: float | None
    win_rate_low: float | None
    win_rate_high: float | None
    # With the length covariate; None when the battles carry no lengths.
    lc_rating: float | None
    lc_rating_low: float | None
    lc_rating_high: float | None


@dataclass
class Leaderboard:
    baseline: str
    standings: list[Standing]  # best raw rating first
    battles: int
    length_coefficient: float | None  # gamma, logits per unit of relative length difference; > 0: longer wins
    length_coefficient_low: float | None
    length_coefficient_high: float | None
    config: LeaderboardConfig
    tie_rule: str = "ties and both-bad count as half a win for each side"

    def standing(self, model: str) -> Standing:
        return next(s for s in self.standings if s.model == model)


def _validate(battles: list[Battle], config: LeaderboardConfig) -> bool:
    """Raise ValueError on bad input; return whether the battles carry lengths (all or none must)."""
    if not battles:
        raise ValueError("no battles: a leaderboard needs at least one")
    if config.bootstrap < 1:
        raise ValueError(f"bootstrap must be at least 1, got {config.bootstrap}")
    if not 0.0 < config.confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {config.confidence}")
    return _validate_battles(battles, config.baseline)


def _validate_battles(battles: list[Battle], baseline: str) -> bool:
    """The checks on the battles themselves, shared by the leaderboard and the point fit (which has no
    bootstrap or confidence to check). Returns whether the battles carry lengths."""
    if not battles:
        raise ValueError("no battles: a leaderboard needs at least one")
    with_lengths = 0
    for i, battle in enumerate(battles):
        if battle.outcome not in OUTCOMES:
            raise ValueError(f"battle {i}: unknown outcome {battle.outcome!r}, expected one of {OUTCOMES}")
        if not battle.model_a or not battle.model_b:
            raise ValueError(f"battle {i}: model names must be non-empty")
        if battle.model_a == battle.model_b:
            raise ValueError(f"battle {i}: {battle.model_a!r} against itself")
        lengths = (battle.length_a, battle.length_b)
        if any(n is not None for n in lengths):
            if any(n is None or n < 0 for n in lengths):
                raise ValueError(f"battle {i}: lengths must both be given and non-negative, got {lengths}")
            with_lengths += 1
    if 0 < with_lengths < len(battles):
        raise ValueError(f"{with_lengths} of {len(battles)} battles carry lengths: give them for all or none")
    models = {b.model_a for b in battles} | {b.model_b for b in battles}
    if baseline not in models:
        raise ValueError(f"baseline {baseline!r} is in no battle (models: {sorted(models)})")
    _check_connected(battles, baseline, models)
    return with_lengths > 0


def _check_connected(battles: list[Battle], baseline: str, models: set[str]) -> None:
    """A checkpoint with no chain of battles to the baseline has no rating relative to it."""
    neighbours: dict[str, set[str]] = {m: set() for m in models}
    for b in battles:
        neighbours[b.model_a].add(b.model_b)
        neighbours[b.model_b].add(b.model_a)
    reached, frontier = {baseline}, [baseline]
    while frontier:
        for other in neighbours[frontier.pop()] - reached:
            reached.add(other)
            frontier.append(other)
    if reached != models:
        raise ValueError(f"no chain of battles links {sorted(models - reached)} to the baseline {baseline!r}")


def _fit(a: np.ndarray, b: np.ndarray, d: np.ndarray | None, y: np.ndarray, weights: np.ndarray,
         n_models: int, l2: float) -> np.ndarray:
    """Penalised maximum likelihood of the BT model; returns [theta_0..theta_{K-1}] (+ [gamma] when d is given)."""
    n_params = n_models + (d is not None)

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta = params[:n_models]
        margin = theta[a] - theta[b] + (params[-1] * d if d is not None else 0.0)
        # -[y log s(m) + (1 - y) log s(-m)], with log s(m) = -logaddexp(0, -m) for stability
        nll = y * np.logaddexp(0.0, -margin) + (1.0 - y) * np.logaddexp(0.0, margin)
        residual = weights * (expit(margin) - y)  # d nll / d margin, weighted
        grad = np.zeros(n_params)
        grad[:n_models] = np.bincount(a, residual, n_models) - np.bincount(b, residual, n_models)
        if d is not None:
            grad[-1] = residual @ d
        return float(weights @ nll + l2 * params @ params), grad + 2.0 * l2 * params

    # The L2 term makes the objective strictly convex: L-BFGS's stopping point is the one optimum, even when it
    # stops on a line-search precision limit rather than gtol (success False), so no check on `result.success`.
    result = minimize(loss_and_grad, np.zeros(n_params), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "gtol": 1e-8})
    return result.x


def _to_ratings(theta: np.ndarray, baseline_index: int) -> np.ndarray:
    return BASE_RATING + POINTS_PER_LOGIT * (theta - theta[..., baseline_index : baseline_index + 1])


def _wilson(score: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a rate of `score` successes in n trials (score may be fractional)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = score / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _encode(battles: list[Battle]) -> tuple[list[str], dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """Models sorted by name, their indices, and the battles as index arrays a, b and targets y (A's score)."""
    models = sorted({bt.model_a for bt in battles} | {bt.model_b for bt in battles})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[bt.model_a] for bt in battles])
    b = np.array([index[bt.model_b] for bt in battles])
    y = np.array([SCORE_OF_A[bt.outcome] for bt in battles])
    return models, index, a, b, y


def _raw_ratings(a: np.ndarray, b: np.ndarray, y: np.ndarray, n_models: int, baseline_index: int,
                 l2: float) -> np.ndarray:
    """The raw (no length term) point ratings: one home for the fit that the leaderboard and fit_ratings share."""
    return _to_ratings(_fit(a, b, None, y, np.ones(len(y)), n_models, l2), baseline_index)


def fit_ratings(battles: list[Battle], baseline: str) -> dict[str, float]:
    """Raw Bradley-Terry point ratings (no bootstrap, no length term) on the leaderboard's scale, the baseline at
    1000: the same numbers as the leaderboard's `rating` column, for callers that need only the point fit (the
    battle scheduler). Lengths, if given, are checked as the leaderboard checks them and otherwise ignored.
    Raises ValueError on bad input, including a model with no chain of battles to the baseline."""
    _validate_battles(battles, baseline)
    models, index, a, b, y = _encode(battles)
    ratings = _raw_ratings(a, b, y, len(models), index[baseline], LeaderboardConfig(baseline=baseline).l2)
    return {m: float(ratings[i]) for m, i in index.items()}


def fit_leaderboard(battles: list[Battle], config: LeaderboardConfig) -> Leaderboard:
    """Raw and length-controlled Bradley-Terry ratings with bootstrap intervals, and win rates against the
    baseline with Wilson intervals; deterministic for a given seed. Raises ValueError on bad input."""
    has_lengths = _validate(battles, config)
    models, index, a, b, y = _encode(battles)
    base = index[config.baseline]
    d = None
    if has_lengths:
        len_a = np.array([bt.length_a for bt in battles], dtype=np.float64)
        len_b = np.array([bt.length_b for bt in battles], dtype=np.float64)
        total = len_a + len_b
        d = np.divide(len_a - len_b, total, out=np.zeros_like(total), where=total > 0)

    ones = np.ones(len(battles))
    raw = _raw_ratings(a, b, y, len(models), base, config.l2)
    controlled = _fit(a, b, d, y, ones, len(models), config.l2) if d is not None else None

    # Bootstrap: resample battles with replacement as multinomial counts, refit, anchor each replicate.
    rng = np.random.default_rng(config.seed)
    boot_raw, boot_lc, boot_gamma = [], [], []
    for _ in range(config.bootstrap):
        weights = rng.multinomial(len(battles), ones / len(battles)).astype(np.float64)
        boot_raw.append(_to_ratings(_fit(a, b, None, y, weights, len(models), config.l2), base))
        if d is not None:
            params = _fit(a, b, d, y, weights, len(models), config.l2)
            boot_lc.append(_to_ratings(params[: len(models)], base))
            boot_gamma.append(params[-1])
    tail = 100.0 * (1.0 - config.confidence) / 2.0
    raw_low, raw_high = np.percentile(np.array(boot_raw), [tail, 100.0 - tail], axis=0)
    if controlled is not None:
        lc = _to_ratings(controlled[: len(models)], base)
        lc_low, lc_high = np.percentile(np.array(boot_lc), [tail, 100.0 - tail], axis=0)
        gamma_low, gamma_high = np.percentile(np.array(boot_gamma), [tail, 100.0 - tail])

    played = Counter([bt.model_a for bt in battles] + [bt.model_b for bt in battles])
    standings = []
    for m, i in index.items():
        versus = [bt for bt in battles if {bt.model_a, bt.model_b} == {m, config.baseline}]
        win_rate = low = high = None
        if versus and i != base:
            score = sum(SCORE_OF_A[bt.outcome] if bt.model_a == m else 1.0 - SCORE_OF_A[bt.outcome] for bt in versus)
            win_rate = score / len(versus)
            low, high = _wilson(score, len(versus), config.confidence)
        standings.append(Standing(
            model=m, rating=float(raw[i]), rating_low=float(raw_low[i]), rating_high=float(raw_high[i]),
            battles=played[m], battles_vs_baseline=len(versus) if i != base else 0,
            win_rate_vs_baseline=win_rate, win_rate_low=low, win_rate_high=high,
            lc_rating=float(lc[i]) if controlled is not None else None,
            lc_rating_low=float(lc_low[i]) if controlled is not None else None,
            lc_rating_high=float(lc_high[i]) if controlled is not None else None,
        ))
    standings.sort(key=lambda s: (-s.rating, s.model))
    return Leaderboard(
        baseline=config.baseline, standings=standings, battles=len(battles),
        length_coefficient=float(controlled[-1]) if controlled is not None else None,
        length_coefficient_low=float(gamma_low) if controlled is not None else None,
        length_coefficient_high=float(gamma_high) if controlled is not None else None,
        config=config,
    )
