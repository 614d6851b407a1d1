"""Blind absolute ratings: a labeler rates single samples (say 20 from the original model and 20 from the final one,
shuffled, model names hidden) as positive, neutral or negative. This module turns them into a mean score per
model and a difference between two models, each with an interval.

Score. positive = +1, neutral = 0, negative = -1; a model's score is the mean over its ratings, in [-1, 1]. With
category shares (p+, p0, p-) the expected score is p+ - p-.

Interval: a Jeffreys-Dirichlet posterior, sampled. The counts (k+, k0, k-) of n ratings are a multinomial draw;
with the Jeffreys prior Dirichlet(1/2, 1/2, 1/2) the posterior of the shares is Dirichlet(k+ + 1/2, k0 + 1/2,
k- + 1/2). We draw `bootstrap` share vectors from it (seeded) and report the equal-tailed percentile interval of
p+ - p-. For a difference between models y and x, draws of the two independent posteriors give draws of
(p+ - p-)_y - (p+ - p-)_x, and the same percentiles. This is a Bayesian bootstrap in which each category also
carries half a pseudo-rating.

Why not the plain percentile bootstrap or a t interval: with 20 ratings, all positive is a likely outcome for a
good model, and both then say [1, 1] (no variation seen, so no uncertainty), which claims certainty that 20 ratings
cannot give. The half pseudo-rating per category keeps the interval honest at the boundary: for 20 of 20 positive
it is about [0.73, 1]. For two categories this is the Jeffreys interval, which Brown, Cai & DasGupta (2001) found
to cover close to its nominal level at small n, unlike the Wald (t) interval; and unlike treating a neutral as half
a positive and using Wilson's interval, it uses the neutrals' real (smaller) variance.

The reported point is the plain sample mean (what a reader can check by hand), not the posterior mean, which the
prior pulls a little toward 0. The interval is widened where needed to contain that point: this happens only at
the boundary (all positive gives an upper end of exactly 1, all negative a lower end of exactly -1), the same fix
Brown, Cai & DasGupta apply to the Jeffreys interval at x = 0 and x = n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATING_SCORES = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}
_CATEGORIES = ("positive", "neutral", "negative")
_JEFFREYS = 0.5  # pseudo-ratings per category
_SCORES = np.array([RATING_SCORES[c] for c in _CATEGORIES])


@dataclass
class RatingSummary:
    """One model's blind ratings. Mean score in [-1, 1] with its interval; None when there are no ratings."""

    model: str
    n: int
    positive: int
    neutral: int
    negative: int
    mean: float | None
    low: float | None
    high: float | None


@dataclass
class RatingComparison:
    """mean(y) - mean(x), in [-2, 2], with its interval; None when either model has no ratings."""

    model_x: str
    model_y: str
    difference: float | None
    low: float | None
    high: float | None


def _counts(model: str, values: list[str]) -> np.ndarray:
    """Counts of (positive, neutral, negative); ValueError on any other value."""
    for value in values:
        if value not in RATING_SCORES:
            raise ValueError(f"model {model!r}: unknown rating {value!r}, expected one of {list(RATING_SCORES)}")
    return np.array([sum(1 for v in values if v == c) for c in _CATEGORIES])


def _check(confidence: float, bootstrap: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if bootstrap < 1:
        raise ValueError(f"bootstrap must be at least 1, got {bootstrap}")


def _posterior_scores(counts: np.ndarray, rng: np.random.Generator, draws: int) -> np.ndarray:
    """`draws` samples of p+ - p- from the Jeffreys-Dirichlet posterior of the category shares."""
    return rng.dirichlet(counts + _JEFFREYS, size=draws) @ _SCORES


def _interval(samples: np.ndarray, point: float, confidence: float) -> tuple[float, float]:
    """Equal-tailed percentile interval of the samples, widened to contain the observed point (see docstring)."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return min(float(low), point), max(float(high), point)


def _mean(counts: np.ndarray) -> float:
    return float(counts @ _SCORES / counts.sum())


def summarize_ratings(ratings: dict[str, list[str]], confidence: float = 0.95, seed: int = 0,
                      bootstrap: int = 2000) -> list[RatingSummary]:
    """Counts, mean score and interval for every model in `ratings` (model -> its rating values), sorted by model
    name. Each model's draws start from the same seed, so its interval does not depend on which other models are
    in the dict. Raises ValueError for a rating value outside RATING_SCORES."""
    _check(confidence, bootstrap)
    summaries = []
    for model in sorted(ratings):
        counts = _counts(model, ratings[model])
        positive, neutral, negative = (int(c) for c in counts)
        n = positive + neutral + negative
        mean = low = high = None
        if n > 0:
            mean = _mean(counts)
            samples = _posterior_scores(counts, np.random.default_rng(seed), bootstrap)
            low, high = _interval(samples, mean, confidence)
        summaries.append(RatingSummary(model=model, n=n, positive=positive, neutral=neutral, negative=negative,
                                       mean=mean, low=low, high=high))
    return summaries


def compare_ratings(x: str, y: str, ratings: dict[str, list[str]], confidence: float = 0.95, seed: int = 0,
                    bootstrap: int = 2000) -> RatingComparison:
    """mean(y) - mean(x) with an interval from independent posterior draws of both models (see the module
    docstring): positive means y is rated better. A model missing from `ratings` counts as having no ratings, and
    then the difference and interval are None. Raises ValueError for an unknown rating value."""
    _check(confidence, bootstrap)
    counts_x, counts_y = _counts(x, ratings.get(x, [])), _counts(y, ratings.get(y, []))
    if counts_x.sum() == 0 or counts_y.sum() == 0:
        return RatingComparison(model_x=x, model_y=y, difference=None, low=None, high=None)
    difference = _mean(counts_y) - _mean(counts_x)
    rng = np.random.default_rng(seed)
    samples = _posterior_scores(counts_y, rng, bootstrap) - _posterior_scores(counts_x, rng, bootstrap)
    low, high = _interval(samples, difference, confidence)
    return RatingComparison(model_x=x, model_y=y, difference=difference, low=low, high=high)
