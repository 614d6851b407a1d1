"""The leaderboard's statistics on synthetic battles: a dominant checkpoint, ties, a length-only preference,
determinism and bad input. No models are trained; every test runs in well under a second or two."""

import math
import random
from dataclasses import asdict

import pytest

from models_rl.leaderboard import Battle, LeaderboardConfig, fit_leaderboard, fit_ratings

MODELS = ["base", "round1", "round2", "star"]


def round_robin(per_pair: int, outcome_of, seed: int = 0) -> list[Battle]:
    """`per_pair` battles of every pair of MODELS, sides shuffled; outcome_of(model_a, model_b, rng) decides."""
    rng = random.Random(seed)
    battles = []
    for i, first in enumerate(MODELS):
        for second in MODELS[i + 1 :]:
            for _ in range(per_pair):
                a, b = (first, second) if rng.random() < 0.5 else (second, first)
                battles.append(Battle(a, b, outcome_of(a, b, rng)))
    return battles


def test_a_checkpoint_that_always_wins_is_on_top_with_an_interval_clear_of_the_others():
    def outcome(a, b, rng):
        if "star" in (a, b):
            return "a" if a == "star" else "b"
        return rng.choice(["a", "b", "tie"])

    board = fit_leaderboard(round_robin(15, outcome), LeaderboardConfig(baseline="base", seed=1, bootstrap=200))
    top, rest = board.standings[0], board.standings[1:]
    assert top.model == "star"
    assert all(top.rating_low > s.rating_high for s in rest), [asdict(s) for s in board.standings]
    assert board.standing("base").rating == pytest.approx(1000.0)
    assert (board.standing("base").rating_low, board.standing("base").rating_high) == pytest.approx((1000.0, 1000.0))
    assert top.battles == 45 and top.battles_vs_baseline == 15
    assert top.win_rate_vs_baseline == 1.0 and 0.7 < top.win_rate_low < 1.0 and top.win_rate_high == pytest.approx(1.0)
    assert board.length_coefficient is None and top.lc_rating is None  # no lengths given


def test_ties_and_both_bad_count_as_half_a_win_for_each_side():
    board = fit_leaderboard(round_robin(6, lambda a, b, rng: rng.choice(["tie", "both_bad"])),
                            LeaderboardConfig(baseline="base", bootstrap=50))
    for s in board.standings:
        assert s.rating == pytest.approx(1000.0, abs=0.5)
        assert s.rating_low == pytest.approx(1000.0, abs=0.5) and s.rating_high == pytest.approx(1000.0, abs=0.5)
        if s.model != "base":
            assert s.win_rate_vs_baseline == pytest.approx(0.5) and s.win_rate_low < 0.5 < s.win_rate_high
    assert board.standing("base").win_rate_vs_baseline is None

    # One win and one tie against the base is 0.75, not 1.0 (the tie is not dropped).
    half = fit_leaderboard([Battle("x", "base", "a"), Battle("base", "x", "tie")],
                           LeaderboardConfig(baseline="base", bootstrap=20))
    assert half.standing("x").win_rate_vs_baseline == pytest.approx(0.75)


def length_only_battles(seed: int = 0, firmness: float | None = 8.0) -> list[Battle]:
    """The labeler looks only at length; checkpoints differ only in their typical length, hence in how often
    they write the longer completion. With `firmness` k the longer one wins with probability sigmoid(k |d|), d the
    relative length difference; with None it always wins."""
    typical_length = {"base": 60, "round1": 90, "round2": 130, "star": 180}
    rng = random.Random(seed)
    battles = []
    for i, first in enumerate(MODELS):
        for second in MODELS[i + 1 :]:
            for _ in range(50):
                a, b = (first, second) if rng.random() < 0.5 else (second, first)
                length_a = round(typical_length[a] * rng.uniform(0.4, 1.6))
                length_b = round(typical_length[b] * rng.uniform(0.4, 1.6))
                d = (length_a - length_b) / (length_a + length_b)
                if length_a == length_b:
                    outcome = "tie"
                elif firmness is None:
                    outcome = "a" if d > 0 else "b"
                else:
                    outcome = "a" if rng.random() < 1 / (1 + math.exp(-firmness * d)) else "b"
                battles.append(Battle(a, b, outcome, length_a, length_b))
    return battles


@pytest.mark.parametrize("firmness, shrink", [
    (8.0, 0.4),
    # Longer always wins: the battles are separable on length, so gamma runs to the L2 penalty's limit and the
    # controlled ratings are noisier, yet still far closer together than the raw ones.
    (None, 0.6),
])
def test_a_length_only_preference_shows_in_the_coefficient_and_shrinks_the_controlled_spread(firmness, shrink):
    board = fit_leaderboard(length_only_battles(seed=0, firmness=firmness),
                            LeaderboardConfig(baseline="base", seed=0, bootstrap=100))
    assert board.length_coefficient > 0 and board.length_coefficient_low > 0
    raw = [s.rating for s in board.standings]
    controlled = [s.lc_rating for s in board.standings]
    assert [s.model for s in board.standings] == ["star", "round2", "round1", "base"]  # verbosity read as quality
    assert max(raw) - min(raw) > 200
    assert max(controlled) - min(controlled) < shrink * (max(raw) - min(raw))
    assert board.standing("base").lc_rating == pytest.approx(1000.0)
    for s in board.standings:
        assert s.lc_rating_low <= s.lc_rating <= s.lc_rating_high


def test_the_same_seed_gives_the_same_board_and_another_seed_other_intervals():
    battles = length_only_battles(seed=3)
    first = fit_leaderboard(battles, LeaderboardConfig(baseline="base", seed=7, bootstrap=40))
    again = fit_leaderboard(battles, LeaderboardConfig(baseline="base", seed=7, bootstrap=40))
    other = fit_leaderboard(battles, LeaderboardConfig(baseline="base", seed=8, bootstrap=40))
    assert asdict(first) == asdict(again)
    assert [s.rating for s in first.standings] == [s.rating for s in other.standings]  # point fits need no seed
    assert [s.rating_low for s in first.standings] != [s.rating_low for s in other.standings]


@pytest.mark.parametrize("battles, baseline, message", [
    ([], "base", "no battles"),
    ([Battle("base", "x", "draw")], "base", "unknown outcome 'draw'"),
    ([Battle("x", "x", "a")], "x", "against itself"),
    ([Battle("x", "y", "a")], "base", "baseline 'base' is in no battle"),
    ([Battle("base", "x", "a", 10, 12), Battle("base", "x", "b")], "base", "give them for all or none"),
    ([Battle("base", "x", "a", -1, 12)], "base", "non-negative"),
    ([Battle("base", "x", "a"), Battle("y", "z", "b")], "base", "no chain of battles links ['y', 'z']"),
])
def test_bad_input_is_a_clear_value_error(battles, baseline, message):
    with pytest.raises(ValueError) as error:
        fit_leaderboard(battles, LeaderboardConfig(baseline=baseline, bootstrap=5))
    assert message in str(error.value)


def test_a_bootstrap_count_below_one_is_refused():
    with pytest.raises(ValueError, match="bootstrap must be at least 1"):
        fit_leaderboard([Battle("base", "x", "a")], LeaderboardConfig(baseline="base", bootstrap=0))


def test_the_point_fit_gives_the_leaderboards_raw_ratings_without_a_bootstrap():
    battles = length_only_battles(seed=5)
    board = fit_leaderboard(battles, LeaderboardConfig(baseline="base", bootstrap=1))
    ratings = fit_ratings(battles, "base")
    assert set(ratings) == set(MODELS)
    for s in board.standings:
        assert ratings[s.model] == pytest.approx(s.rating, abs=1e-6)
    assert ratings["base"] == 1000.0


@pytest.mark.parametrize("battles, message", [
    ([], "no battles"),
    ([Battle("x", "y", "a")], "baseline 'base' is in no battle"),
    ([Battle("base", "x", "a"), Battle("y", "z", "b")], "no chain of battles links ['y', 'z']"),
    ([Battle("base", "x", "draw")], "unknown outcome 'draw'"),
])
def test_the_point_fit_refuses_what_the_leaderboard_refuses(battles, message):
    with pytest.raises(ValueError) as error:
        fit_ratings(battles, "base")
    assert message in str(error.value)
