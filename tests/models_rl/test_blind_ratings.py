"""Blind positive / neutral / negative ratings: means, intervals at the boundary and inside, the difference between
two models, determinism and bad values."""

import pytest

from models_rl.blind_ratings import RatingComparison, compare_ratings, summarize_ratings

ORIGINAL = ["negative"] * 8 + ["neutral"] * 7 + ["positive"] * 5  # mean -0.15
FINAL = ["negative"] * 2 + ["neutral"] * 5 + ["positive"] * 13  # mean 0.55


def test_all_positive_gives_mean_one_and_an_honest_interval_that_reaches_one():
    (summary,) = summarize_ratings({"final": ["positive"] * 20}, bootstrap=200)
    assert (summary.n, summary.positive, summary.neutral, summary.negative) == (20, 20, 0, 0)
    assert summary.mean == 1.0 and summary.high == 1.0
    assert 0.6 < summary.low < 0.9  # 20 ratings cannot prove a model is always rated positive


def test_summaries_are_sorted_by_name_with_counts_means_and_intervals_around_them():
    summaries = summarize_ratings({"original": ORIGINAL, "final": FINAL, "unrated": []}, bootstrap=200)
    assert [s.model for s in summaries] == ["final", "original", "unrated"]
    final, original, unrated = summaries
    assert (original.positive, original.neutral, original.negative) == (5, 7, 8)
    assert original.mean == pytest.approx(-0.15) and final.mean == pytest.approx(0.55)
    for s in (final, original):
        assert -1.0 <= s.low < s.mean < s.high <= 1.0 and 0.3 < s.high - s.low < 0.9
    assert (unrated.n, unrated.mean, unrated.low, unrated.high) == (0, None, None, None)
    (neutral,) = summarize_ratings({"m": ["neutral"] * 20}, bootstrap=200)
    assert neutral.mean == 0.0 and neutral.low < 0.0 < neutral.high and neutral.high - neutral.low < 0.3


def test_the_difference_is_final_minus_original_and_its_sign_is_clear():
    ratings = {"original": ORIGINAL, "final": FINAL}
    better = compare_ratings("original", "final", ratings, bootstrap=200)
    assert better.difference == pytest.approx(0.70) and 0.0 < better.low < 0.70 < better.high
    worse = compare_ratings("final", "original", ratings, bootstrap=200)
    assert worse.difference == pytest.approx(-0.70) and worse.low < -0.70 < worse.high < 0.0
    same = compare_ratings("original", "again", {"original": ORIGINAL, "again": list(reversed(ORIGINAL))},
                           bootstrap=200)
    assert same.difference == 0.0 and same.low < 0.0 < same.high
    assert compare_ratings("original", "missing", ratings, bootstrap=200) == RatingComparison(
        "original", "missing", None, None, None)


def test_the_same_seed_gives_the_same_interval():
    ratings = {"original": ORIGINAL, "final": FINAL}
    assert summarize_ratings(ratings, seed=3, bootstrap=200) == summarize_ratings(ratings, seed=3, bootstrap=200)
    assert compare_ratings("original", "final", ratings, seed=3, bootstrap=200) == compare_ratings(
        "original", "final", ratings, seed=3, bootstrap=200)
    assert summarize_ratings(ratings, seed=3, bootstrap=200) != summarize_ratings(ratings, seed=4, bootstrap=200)


def test_bad_values_and_settings_are_a_value_error():
    with pytest.raises(ValueError, match="model 'final': unknown rating 'great'"):
        summarize_ratings({"final": ["positive", "great"]})
    with pytest.raises(ValueError, match="unknown rating 'Positive'"):
        compare_ratings("original", "final", {"original": ORIGINAL, "final": ["Positive"]})
    with pytest.raises(ValueError, match="confidence"):
        summarize_ratings({"final": FINAL}, confidence=1.0)
    with pytest.raises(ValueError, match="bootstrap"):
        compare_ratings("original", "final", {"original": ORIGINAL, "final": FINAL}, bootstrap=0)
