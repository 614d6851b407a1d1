"""Gold labelers: VADER sentiment, a local reward model, and the noise model that makes them disagree like
people (Bradley-Terry temperature, tie band, position bias, both bad)."""

import io
import json
import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from models_rl.gold import GoldLabeler, NoisyLabeler, RewardModelGold, VaderGold, main, make_gold

HAPPY = "What a wonderful, happy and glorious day, my love!"
GLAD = "A good day."
FINE = "A fine day."
GRIM = "A miserable, hateful, dreadful day of death."
PLAIN = ["The cart stood by the gate.", "He walked to the north tower.", "They counted the sheep twice."]


@pytest.fixture(scope="module")
def vader():
    return VaderGold()


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_vader_prefers_the_positive_text_and_rates_by_sentiment(vader):
    assert vader.score("", HAPPY) > vader.score("", GLAD) > 0 > vader.score("", GRIM)
    assert vader.prefer("Thou art", HAPPY, GRIM) == ("a", 3)
    assert vader.prefer("Thou art", GRIM, HAPPY) == ("b", 3)
    assert vader.prefer("Thou art", PLAIN[0], PLAIN[1]) == ("tie", 1)
    assert vader.prefer("Thou art", GLAD, FINE) == ("a", 2)  # a smaller difference is a weaker preference
    assert [vader.rate("", text) for text in (HAPPY, PLAIN[0], GRIM)] == ["positive", "neutral", "negative"]
    assert isinstance(vader, GoldLabeler)


def test_noisy_labeler_disagrees_at_the_rate_its_temperature_implies(vader):
    difference = vader.score("", HAPPY) - vader.score("", GLAD)
    for temperature in (0.2, 0.5):
        expected = sigmoid(-difference / temperature)
        picks = [NoisyLabeler(vader, temperature=temperature, tie_band=0, seed=seed).prefer("", HAPPY, GLAD)[0]
                 for seed in range(2000)]
        assert picks.count("b") / 2000 == pytest.approx(expected, abs=0.035)
    noiseless = NoisyLabeler(vader, temperature=0, tie_band=0)
    assert {noiseless.prefer("", HAPPY, GLAD) for _ in range(3)} == {("a", 3)}


def test_position_bias_shifts_choices_toward_the_first_text(vader):
    def share_first(bias: float) -> float:
        picks = [NoisyLabeler(vader, tie_band=0, position_bias=bias, seed=seed).prefer("", left, right)[0]
                 for seed in range(400) for left, right in ((PLAIN[0], PLAIN[1]), (PLAIN[1], PLAIN[0]))]
        return picks.count("a") / len(picks)

    assert share_first(0.0) == pytest.approx(0.5, abs=0.06)
    assert share_first(1.0) == pytest.approx(sigmoid(1.0), abs=0.06)


def test_ties_appear_inside_the_band_and_not_outside(vader):
    difference = vader.score("", HAPPY) - vader.score("", GLAD)
    inside = NoisyLabeler(vader, temperature=1.0, tie_band=difference + 0.01)
    outside = NoisyLabeler(vader, temperature=1.0, tie_band=difference - 0.01)
    assert inside.prefer("", HAPPY, GLAD) == ("tie", 1) and inside.prefer("", GLAD, HAPPY) == ("tie", 1)
    assert {outside.prefer("", HAPPY, GLAD)[0] for _ in range(5)} <= {"a", "b"}


def test_both_bad_when_neither_text_scores_above_the_floor(vader):
    labeler = NoisyLabeler(vader, both_bad_below=0.1)
    assert labeler.prefer("", GRIM, PLAIN[0]) == ("both_bad", 1)
    assert labeler.prefer("", GRIM, HAPPY)[0] != "both_bad"


def test_noise_is_a_function_of_seed_and_question(vader):
    answers = {seed: [NoisyLabeler(vader, temperature=0.2, seed=seed).prefer(p, HAPPY, GLAD) for p in PLAIN]
               for seed in range(30)}
    assert answers[3] == [NoisyLabeler(vader, temperature=0.2, seed=3).prefer(p, HAPPY, GLAD) for p in PLAIN]
    assert len({tuple(a) for a in answers.values()}) > 1  # labelers with different seeds disagree
    # a pick against the gold is made with less confidence than one with it
    assert {strength for a in answers.values() for choice, strength in a if choice == "a"} == {2}
    assert {strength for a in answers.values() for choice, strength in a if choice == "b"} == {1}


def test_noisy_ratings_follow_the_gold_at_low_temperature_and_scatter_at_high(vader):
    assert NoisyLabeler(vader, temperature=0).rate("", HAPPY) == "positive"
    ratings = [NoisyLabeler(vader, temperature=1.0, seed=seed).rate("", GLAD) for seed in range(200)]
    # negative when the logistic noise pushes the score below VADER's -0.05
    expected_negative = sigmoid(-(vader.score("", GLAD) + 0.05) / 1.0)
    assert ratings.count("negative") / 200 == pytest.approx(expected_negative, abs=0.08)


def test_a_local_reward_model_is_a_gold_labeler(tiny_policy_dir, tmp_path):
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(tiny_policy_dir, num_labels=1).save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_bytes((tiny_policy_dir / "tokenizer.json").read_bytes())
    (tmp_path / "tokenizer_config.json").write_bytes((tiny_policy_dir / "tokenizer_config.json").read_bytes())

    gold = make_gold(str(tmp_path))
    assert isinstance(gold, RewardModelGold)
    first, second = gold.score("Thou art", " a king"), gold.score("Thou art", " a fool")
    assert first != second and gold.score("Thou art", " a king") == first
    assert gold.prefer("Thou art", " a king", " a fool")[0] == ("a" if first > second else "b")
    assert gold.rate("Thou art", " a king") in {"positive", "neutral", "negative"}
    assert gold.score("Thou art" * 200, " a king") == pytest.approx(gold.score("Thou art" * 201, " a king"), abs=1e-4)


def test_make_gold_wraps_noise_and_refuses_unknown_names(tmp_path):
    assert isinstance(make_gold("vader"), VaderGold)
    noisy = make_gold("vader", temperature=0.3, seed=4)
    assert isinstance(noisy, NoisyLabeler) and noisy.temperature == 0.3 and noisy.seed == 4
    with pytest.raises(ValueError, match="unknown gold labeler"):
        make_gold("no/such/model")
    with pytest.raises(ValueError, match="no config.json"):
        make_gold(str(tmp_path))


def test_command_line_labels_json_lines(monkeypatch, capsys):
    pairs = [{"prompt": "Thou art", "first": GRIM, "second": HAPPY},
             {"prompt": "Thou art", "first": HAPPY, "second": GRIM}]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(json.dumps(p) for p in pairs) + "\n"))
    main(["--noisy", "--temperature", "0.05", "--seed", "2"])
    labelled = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["choice"], row["strength"]) for row in labelled] == [("b", 3), ("a", 3)]
