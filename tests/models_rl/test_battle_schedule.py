"""Battle priorities on constructed battles: unseen pairs first, close pairs with few battles before lopsided pairs
with many, the fallback when the battles cannot be fitted yet, and bad input."""

import pytest

from models_rl.battle_schedule import battle_priorities, pair_key
from models_rl.leaderboard import Battle

MODELS = ["base", "round1", "round2", "round3"]


def test_pair_keys_are_sorted_and_cover_every_pair_once():
    assert pair_key("round2", "base") == ("base", "round2") == pair_key("base", "round2")
    priorities = battle_priorities(MODELS, [], baseline="base")
    assert set(priorities) == {("base", "round1"), ("base", "round2"), ("base", "round3"), ("round1", "round2"),
                               ("round1", "round3"), ("round2", "round3")}
    # Nothing fitted yet: every pair is unseen with p = 0.5.
    assert all(value == pytest.approx(1.5) for value in priorities.values())
    with pytest.raises(ValueError, match="two different models"):
        pair_key("base", "base")


def test_unseen_pairs_come_first_then_close_pairs_with_few_battles_before_lopsided_pairs_with_many():
    battles = (
        [Battle("base", "round1", "a"), Battle("round1", "base", "a")]  # close: one win each, 2 battles
        + [Battle("round2", "base", "a")] * 29 + [Battle("base", "round2", "a")]  # lopsided: 29 to 1, 30 battles
    )
    priorities = battle_priorities(MODELS, battles, baseline="base")
    measured = {pair_key("base", "round1"), pair_key("base", "round2")}
    assert min(v for k, v in priorities.items() if k not in measured) > 1.0 > max(priorities[k] for k in measured)
    assert priorities[pair_key("base", "round1")] > priorities[pair_key("base", "round2")]
    assert priorities[pair_key("base", "round1")] == pytest.approx((0.25 / 3) ** 0.5, rel=0.02)  # p ~ 0.5, n = 2
    # Unseen pairs predicted close come first: round1 is near base and far from round2; round3 has no battles
    # (p = 0.5, the most uncertain of all).
    assert priorities[pair_key("round1", "round3")] == pytest.approx(1.5)
    assert 1.0 < priorities[pair_key("round1", "round2")] < priorities[pair_key("round1", "round3")]
    assert all(0.0 < v <= 2.0 for v in priorities.values())
    assert battle_priorities(MODELS, battles, baseline="base") == priorities  # deterministic


def test_battles_that_cannot_be_fitted_fall_back_to_counts():
    # round2 and round3 have no chain of battles to the base: no fit, so p = 0.5 for every pair.
    battles = [Battle("base", "round1", "a")] * 5 + [Battle("round2", "round3", "b")]
    priorities = battle_priorities(MODELS, battles, baseline="base")
    assert priorities[pair_key("base", "round1")] == pytest.approx((0.25 / 6) ** 0.5)
    assert priorities[pair_key("round2", "round3")] == pytest.approx((0.25 / 2) ** 0.5)
    assert priorities[pair_key("base", "round2")] == pytest.approx(1.5)


def test_lengths_given_for_some_battles_only_do_not_matter_to_the_schedule():
    battles = [Battle("base", "round1", "a", 10, 20), Battle("base", "round1", "b")]
    assert battle_priorities(["base", "round1"], battles, "base")[("base", "round1")] == pytest.approx(
        (0.25 / 3) ** 0.5)


@pytest.mark.parametrize("models, battles, message", [
    (["base"], [], "at least two models"),
    (["base", "round1", "base"], [], "named more than once: ['base']"),
    (["base", "round1"], [Battle("base", "round9", "a")], "model 'round9' is not among the models"),
    (["base", "round1"], [Battle("base", "round1", "draw")], "unknown outcome 'draw'"),
    (["base", "round1"], [Battle("base", "base", "a")], "against itself"),
])
def test_bad_input_is_a_value_error(models, battles, message):
    with pytest.raises(ValueError) as error:
        battle_priorities(models, battles, baseline="base")
    assert message in str(error.value)
