"""The over-optimisation view: reward against distance from the base, per checkpoint, and where the two part ways.

Each checkpoint is a point at d = sqrt(KL(policy || base)) (nats; the base is at d = 0) with up to three rewards:
the proxy (the reward model's mean score, the thing RL optimises), the gold reward (a reference labeler's mean
score, when the campaign has one) and the evaluated Bradley-Terry rating from blind battles (base = 1000).
Over-optimisation is the proxy still rising while the true reward falls.

The curve. Gao, Schulman & Hilton (2022, "Scaling laws for reward model overoptimization") found that for RL the
gold reward, measured from the base, follows

    R(d) = d (alpha - beta log d),      d = sqrt(KL),

which rises, peaks at dR/dd = alpha - beta - beta log d = 0, i.e. d* = exp(alpha / beta - 1) when beta > 0, and
then falls. `fit_gao_rl` fits alpha and beta by ordinary least squares on R itself:

    minimise  sum_i (R_i - alpha d_i + beta d_i log d_i)^2,

which is linear in (alpha, beta) with design columns d and -d log d. Why on R rather than on R / d (the form in
which the model is a straight line in log d): dividing by d blows up the noise of the checkpoints nearest the base
(d small), so they would dominate the fit; the measured quantity, with roughly even noise, is R. The base itself
(d = 0) has R = 0 by construction and carries no information, so only points with d > 0 enter; two distinct
values of d > 0 are the mathematical minimum (the two columns are then independent), and the view asks for
`min_fit_points` (3 by default) so that a curve through two points is not shown as a law.

Two fits are shown: the gold reward minus the base's gold reward (None without a base point that has a gold
reward), and the evaluated rating in logits against the base, (rating - 1000) / (400 / ln 10), which is already
0 at the base. Gao et al. fitted gold reward-model scores; reading BT logits as a reward is our extension, and the
page should say the fit is descriptive.

The onset rule. Walk the checkpoints in order of KL, keeping those that have a proxy score and a true signal. For
each consecutive step (earlier -> later) the true signal is the evaluated rating when both points have one, else
the gold reward when both have one; a step where neither is shared is skipped. The onset is the KL of the earlier
point of the first step where the proxy strictly rises and the true signal strictly falls. When the signal is the
rating and both points have intervals, the sentence says whether the intervals overlap: a fall within overlapping
intervals is still reported, but as possibly noise. The rule is deliberately local and simple (one step is enough);
the fitted curves are there for the global shape.

Recommendation. The checkpoint with the highest evaluated rating (ties: lower KL, as the one that moved less from
the base; then key), with a sentence giving its rating and interval and saying whether the runner-up's interval
overlaps it. None without any evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from models_rl.leaderboard import BASE_RATING, POINTS_PER_LOGIT


@dataclass
class CheckpointPoint:
    key: str  # the checkpoint's id as text
    label: str  # e.g. "round 2 final", shown in sentences
    kl: float  # KL from the base, nats (>= 0; the base is 0)
    proxy: float | None = None  # reward model mean score on held-out samples
    proxy_spread: float | None = None  # mean ensemble std
    gold: float | None = None  # mean gold reward on held-out samples
    rating: float | None = None  # evaluated BT rating (base = 1000), with interval
    rating_low: float | None = None
    rating_high: float | None = None
    win_rate: float | None = None  # evaluated win rate against the base, with interval
    win_low: float | None = None
    win_high: float | None = None

    @property
    def sqrt_kl(self) -> float:
        return math.sqrt(self.kl)


@dataclass
class GaoFit:
    """R(d) = d (alpha - beta log d) fitted to `points` checkpoints with d = sqrt(KL) > 0."""

    alpha: float
    beta: float
    points: int
    peak_sqrt_kl: float | None  # argmax of R(d) when beta > 0: d* = exp(alpha / beta - 1); None otherwise
    peak_kl: float | None  # d*^2

    def predict(self, d: float) -> float:
        if d < 0:
            raise ValueError(f"d = sqrt(KL) cannot be negative, got {d}")
        if d == 0:
            return 0.0  # the limit of d log d at 0
        return d * (self.alpha - self.beta * math.log(d))


@dataclass
class OveroptimizationView:
    points: list[CheckpointPoint]  # sorted by kl, then key
    gold_fit: GaoFit | None  # fit to gold(d) - gold(base)
    evaluation_fit: GaoFit | None  # fit to (rating - 1000) / POINTS_PER_LOGIT (logits vs base)
    onset_kl: float | None  # KL (nats) from which the proxy rises while gold / evaluation falls
    sentence: str  # one plain sentence for the page, always set
    recommended: str | None  # key of the best checkpoint by evaluation, None without evaluation
    recommended_reason: str  # plain sentence with its rating and interval


def fit_gao_rl(sqrt_kl: list[float], reward: list[float]) -> GaoFit | None:
    """Least-squares fit of R(d) = d (alpha - beta log d) on the points with d > 0 (see the module docstring);
    None with fewer than two distinct d > 0. Raises ValueError for unequal lengths, a negative or non-finite d, or
    a non-finite reward."""
    if len(sqrt_kl) != len(reward):
        raise ValueError(f"{len(sqrt_kl)} distances but {len(reward)} rewards")
    d, r = np.asarray(sqrt_kl, dtype=np.float64), np.asarray(reward, dtype=np.float64)
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(r))):
        raise ValueError("distances and rewards must be finite")
    if np.any(d < 0):
        raise ValueError("d = sqrt(KL) cannot be negative")
    d, r = d[d > 0], r[d > 0]
    if len(np.unique(d)) < 2:
        return None
    design = np.column_stack([d, -d * np.log(d)])
    (alpha, beta), *_ = np.linalg.lstsq(design, r, rcond=None)
    peak = peak_kl = None
    if beta > 0:
        try:
            peak = math.exp(alpha / beta - 1.0)
            peak_kl = peak * peak
        except OverflowError:  # a peak beyond float range: the curve is still rising everywhere we can name
            peak = peak_kl = None
        if peak_kl is not None and math.isinf(peak_kl):
            peak = peak_kl = None
    return GaoFit(alpha=float(alpha), beta=float(beta), points=len(d), peak_sqrt_kl=peak, peak_kl=peak_kl)


def _fit_if_enough(pairs: list[tuple[float, float]], min_fit_points: int) -> GaoFit | None:
    if len(pairs) < min_fit_points:
        return None
    return fit_gao_rl([d for d, _ in pairs], [r for _, r in pairs])


def _name(point: CheckpointPoint) -> str:
    return point.label or point.key


def _nats(kl: float) -> str:
    return f"{kl:.2f}" if kl < 1 else f"{kl:.1f}"


def _from_to(first: float, second: float, decimals: int) -> str:
    """'from X to Y' with enough decimals that a strict change does not print as 'from 0.40 to 0.40'."""
    while decimals < 6 and f"{first:.{decimals}f}" == f"{second:.{decimals}f}":
        decimals += 1
    return f"from {first:.{decimals}f} to {second:.{decimals}f}"


def _interval_text(low: float | None, high: float | None) -> str:
    return f" (interval {low:.0f} to {high:.0f})" if low is not None and high is not None else ""


def _overlap(a: CheckpointPoint, b: CheckpointPoint) -> bool | None:
    """Whether the two rating intervals overlap; None when either point lacks one."""
    if None in (a.rating_low, a.rating_high, b.rating_low, b.rating_high):
        return None
    return max(a.rating_low, b.rating_low) <= min(a.rating_high, b.rating_high)


def _onset(ordered: list[CheckpointPoint]) -> tuple[float | None, str]:
    """The onset rule of the module docstring: (onset KL or None, the sentence)."""
    usable = [p for p in ordered if p.proxy is not None and (p.rating is not None or p.gold is not None)]
    signals_used = set()
    for earlier, later in pairwise(usable):
        if earlier.rating is not None and later.rating is not None:
            signal, before, after = "rating", earlier.rating, later.rating
        elif earlier.gold is not None and later.gold is not None:
            signal, before, after = "gold", earlier.gold, later.gold
        else:
            continue  # no true signal shared by these two points
        signals_used.add(signal)
        if later.proxy > earlier.proxy and after < before:
            opening = (f"Over-optimisation from KL {_nats(earlier.kl)} nats on ({_name(earlier)} to {_name(later)}): "
                       f"the reward model's score rises {_from_to(earlier.proxy, later.proxy, 2)} while ")
            if signal == "gold":
                return earlier.kl, opening + f"the gold reward falls {_from_to(before, after, 2)}."
            falls = f"the evaluated rating falls {_from_to(before, after, 0)}"
            overlap = _overlap(earlier, later)
            if overlap is True:
                falls += ", within the two checkpoints' intervals (so the fall may be noise)"
            elif overlap is False:
                falls += ", beyond the two checkpoints' intervals"
            return earlier.kl, opening + falls + "."
    if not signals_used:
        return None, (f"Too few checkpoints to tell: {len(usable)} of {len(ordered)} have both a reward-model score "
                      f"and an evaluated rating or gold reward, and two that share one are needed.")
    signal_name = {frozenset({"rating"}): "evaluated rating", frozenset({"gold"}): "gold reward"}.get(
        frozenset(signals_used), "evaluated rating (or gold reward)")
    return None, (f"No sign of over-optimisation: over {len(usable)} checkpoints up to KL "
                  f"{_nats(usable[-1].kl)} nats, the {signal_name} never falls while the reward model's score rises.")


def _recommend(ordered: list[CheckpointPoint]) -> tuple[str | None, str]:
    rated = sorted((p for p in ordered if p.rating is not None), key=lambda p: (-p.rating, p.kl, p.key))
    if not rated:
        return None, "No checkpoint has an evaluated rating yet, so none is recommended."
    best = rated[0]
    reason = (f"{_name(best)} has the highest evaluated rating, {best.rating:.0f}"
              f"{_interval_text(best.rating_low, best.rating_high)}, at KL {_nats(best.kl)} nats from the base")
    if best.win_rate is not None:
        reason += f", winning {100 * best.win_rate:.0f} % of its battles against the base"
        if best.win_low is not None and best.win_high is not None:
            reason += f" ({100 * best.win_low:.0f} to {100 * best.win_high:.0f} %)"
    if len(rated) > 1:
        runner = rated[1]
        if runner.rating == best.rating:
            reason += (f"; {_name(runner)} rates the same but lies further from the base "
                       f"(KL {_nats(runner.kl)} nats), so the closer one is preferred")
        elif _overlap(best, runner):
            reached = (f"reaches down to {_name(runner)}'s fixed {runner.rating:.0f}"
                       if runner.rating_low == runner.rating_high else
                       f"overlaps {_name(runner)}'s ({runner.rating_low:.0f} to {runner.rating_high:.0f})")
            reason += f"; its interval {reached}, so the lead is not clear-cut"
    return best.key, reason + "."


def overoptimization_view(points: list[CheckpointPoint], min_fit_points: int = 3) -> OveroptimizationView:
    """Sort the checkpoints by KL, fit the Gao curves where there are at least `min_fit_points` points with
    KL > 0, find the onset and the recommended checkpoint (rules in the module docstring). Raises ValueError for
    a negative or non-finite KL, a repeated key, or min_fit_points below 2."""
    if min_fit_points < 2:
        raise ValueError(f"min_fit_points must be at least 2 (two distances fix alpha and beta), got {min_fit_points}")
    seen = set()
    for p in points:
        if not (math.isfinite(p.kl) and p.kl >= 0):
            raise ValueError(f"checkpoint {p.key!r}: KL must be finite and >= 0, got {p.kl}")
        if p.key in seen:
            raise ValueError(f"checkpoint {p.key!r} given twice")
        seen.add(p.key)
    ordered = sorted(points, key=lambda p: (p.kl, p.key))

    away = [p for p in ordered if p.kl > 0]  # the base (d = 0) carries no information for the fits
    base = next((p for p in ordered if p.kl == 0 and p.gold is not None), None)
    gold_fit = None
    if base is not None:
        gold_fit = _fit_if_enough([(p.sqrt_kl, p.gold - base.gold) for p in away if p.gold is not None],
                                  min_fit_points)
    evaluation_fit = _fit_if_enough(
        [(p.sqrt_kl, (p.rating - BASE_RATING) / POINTS_PER_LOGIT) for p in away if p.rating is not None],
        min_fit_points)
    onset_kl, sentence = _onset(ordered) if ordered else (None, "No checkpoints to show yet.")
    recommended, reason = _recommend(ordered)
    return OveroptimizationView(points=ordered, gold_fit=gold_fit, evaluation_fit=evaluation_fit, onset_kl=onset_kl,
                                sentence=sentence, recommended=recommended, recommended_reason=reason)
