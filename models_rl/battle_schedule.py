"""Where the next blind-evaluation labels should go: a priority for every pair of checkpoints.

Labels go where the leaderboard is least certain. For an unordered pair {a, b} with n battles so far:

    measured pair (n >= 1):  priority = sqrt(p (1 - p) / (n + 1)),      p = P(a beats b) under the current fit
    unseen pair   (n == 0):  priority = 1 + sqrt(p (1 - p))

p comes from the Bradley-Terry point fit over all battles so far (`leaderboard.fit_ratings`):
p = 1 / (1 + 10 ** (-(rating_a - rating_b) / 400)). A checkpoint in no battle yet has no rating, and its pairs get
p = 0.5 (nothing is known about them).

Why this rule. sqrt(p (1 - p) / n) is the standard error of the pair's empirical win rate: it is largest for a
close pair (p near 0.5) with few battles, exactly the comparison whose order on the leaderboard is least settled,
and smallest for a lopsided pair with many battles, whose order more labels would not change. The n + 1 keeps it
finite and gives a pair's first battle after the zeroth the same treatment as the rest. A measured pair's priority
is at most sqrt(0.25 / 2) ~ 0.354 < 1, so every unseen pair (priority in (1, 1.5]) comes before every measured
one: coverage first, every pair of checkpoints gets compared at least once, because a pair never compared rests
only on the transitivity that BT assumes. Among unseen pairs those predicted close come first.

Fallback. When the battles so far cannot be fitted (none yet, the baseline in none of them, or some checkpoint with
no chain of battles to the baseline), every pair gets p = 0.5: measured pairs are then ordered by their battle
counts alone, sqrt(0.25 / (n + 1)), and unseen pairs all get 1.5.

All priorities lie in (0, 2]; the rule is deterministic (no sampling: ties are left to the caller, which may
break them by pair key).
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

from models_rl.leaderboard import OUTCOMES, Battle, fit_ratings

# Keeps p strictly inside (0, 1) so that every priority is strictly positive, even for a pair so lopsided that the
# fitted probability rounds to 0 or 1 in floating point.
_P_FLOOR = 1e-12


def pair_key(model_a: str, model_b: str) -> tuple[str, str]:
    """The key of an unordered pair: its two names sorted."""
    if model_a == model_b:
        raise ValueError(f"a pair needs two different models, got {model_a!r} twice")
    return (model_a, model_b) if model_a < model_b else (model_b, model_a)


def _win_probability(rating_a: float, rating_b: float) -> float:
    """P(a beats b) on the leaderboard's Elo scale (400 points = 10:1 odds)."""
    p = 1.0 / (1.0 + 10.0 ** (-(rating_a - rating_b) / 400.0))
    return min(max(p, _P_FLOOR), 1.0 - _P_FLOOR)


def _validate(models: list[str], battles: list[Battle]) -> None:
    if len(models) < 2:
        raise ValueError(f"need at least two models to pair, got {models!r}")
    repeated = sorted(m for m, count in Counter(models).items() if count > 1)
    if repeated:
        raise ValueError(f"models named more than once: {repeated}")
    known = set(models)
    for i, battle in enumerate(battles):
        for name in (battle.model_a, battle.model_b):
            if name not in known:
                raise ValueError(f"battle {i}: model {name!r} is not among the models {sorted(known)}")
        if battle.model_a == battle.model_b:
            raise ValueError(f"battle {i}: {battle.model_a!r} against itself")
        if battle.outcome not in OUTCOMES:
            raise ValueError(f"battle {i}: unknown outcome {battle.outcome!r}, expected one of {OUTCOMES}")


def battle_priorities(models: list[str], battles: list[Battle], baseline: str) -> dict[tuple[str, str], float]:
    """A priority in (0, 2] for every unordered pair of distinct `models` (keys from `pair_key`); higher means the
    next labels should go there. See the module docstring for the rule. Raises ValueError for fewer than two
    models, a model named twice, or a battle that names a model not in `models` (or is otherwise malformed)."""
    _validate(models, battles)
    played = Counter(pair_key(b.model_a, b.model_b) for b in battles)
    try:
        # Lengths play no part in the raw rating; dropping them spares a schedule the leaderboard's all-or-none
        # check on lengths, which is about the length control, not about where labels should go.
        ratings = fit_ratings([Battle(b.model_a, b.model_b, b.outcome) for b in battles], baseline)
    except ValueError:
        ratings = {}  # not fittable yet (see "Fallback"): every pair gets p = 0.5

    priorities = {}
    for first, second in combinations(sorted(models), 2):
        key = pair_key(first, second)
        p = _win_probability(ratings[first], ratings[second]) if first in ratings and second in ratings else 0.5
        n = played[key]
        if n == 0:
            priorities[key] = 1.0 + math.sqrt(p * (1.0 - p))
        else:
            priorities[key] = math.sqrt(p * (1.0 - p) / (n + 1))
    return priorities
