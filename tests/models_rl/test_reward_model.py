"""Reward models on the tiny real policy: Bradley-Terry pairs labelled by the VADER gold labeler, ratings, the
ensemble's uncertainty, the tie-aware loss and the command line."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from models_rl.gold import VaderGold
from models_rl.reward_ensemble import RewardEnsemble, load_scorer
from models_rl.reward_model import (
    PreferencePair,
    RatingExample,
    RewardModelConfig,
    main,
    pairwise_loss,
    read_pairs_jsonl,
    train_rating_model,
    train_reward_model,
)

POSITIVE_WORDS = ["love", "joy", "sweet", "happy", "good", "gentle", "kind", "glad", "merry"]
NEGATIVE_WORDS = ["hate", "death", "vile", "grief", "sad", "evil", "cruel", "woe"]
NEUTRAL_WORDS = ["table", "stone", "river", "door", "window", "horse"]


def split_line(line: str) -> tuple[str, str]:
    """A prompt of the first four words and the rest of the line as its completion."""
    words = line.split()
    return " ".join(words[:4]), " " + " ".join(words[4:10])


def gold_pairs(lines: list[str], seed: int) -> list[PreferencePair]:
    """Each line's completion with a positive and with a negative word appended, ordered by the VADER gold
    labeler; every fifth pair appends two neutral words instead, which gold calls a tie."""
    rng, gold = random.Random(seed), VaderGold()
    pairs = []
    for number, line in enumerate(lines):
        prompt, text = split_line(line)
        if number % 5 == 4:
            first, second = text + " " + rng.choice(NEUTRAL_WORDS), text + " " + rng.choice(NEUTRAL_WORDS)
        else:
            first, second = text + " " + rng.choice(POSITIVE_WORDS), text + " " + rng.choice(NEGATIVE_WORDS)
            if rng.random() < 0.5:
                first, second = second, first
        choice, strength = gold.prefer(prompt, first, second)
        chosen, rejected = (second, first) if choice == "b" else (first, second)
        pairs.append(PreferencePair(prompt, chosen, rejected, tie=choice == "tie", strength=strength))
    return pairs


@pytest.fixture(scope="module")
def lines(shakespeare_sample) -> list[str]:
    return [line for line in shakespeare_sample if len(line.split()) >= 8][:520]


@pytest.fixture(scope="module")
def trained_ensemble(tiny_policy_dir, lines, tmp_path_factory):
    """A two-member ensemble on 400 gold pairs, evaluated on 120 pairs built from other lines."""
    losses: list[float] = []
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path_factory.mktemp("rm")),
                               ensemble_size=2, epochs=3, batch_size=32, learning_rate=1e-3, max_length=64)
    result = train_reward_model(gold_pairs(lines[:400], seed=0), config, heldout=gold_pairs(lines[400:], seed=1),
                                gold=VaderGold(), progress=lambda report: losses.append(report["train/loss"]))
    return result, losses


@pytest.mark.slow
def test_reward_model_beats_chance_on_heldout_gold_pairs(trained_ensemble, tiny_policy_dir):
    result, losses = trained_ensemble
    metrics = result.metrics
    assert metrics["train/loss"] < metrics["train/loss_first_epoch"]
    assert metrics["eval/accuracy"] > 0.7
    assert metrics["eval/gold_agreement"] > 0.7
    assert 0.0 <= metrics["eval/ece"] <= 1.0
    assert len(losses) == metrics["train/steps"] == 2 * 3 * 13

    # The backbone moved away from the policy it started from.
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    ensemble = RewardEnsemble.load(result.path)
    before = policy.transformer.h[0].mlp.c_fc.weight
    after = ensemble.members[0].transformer.h[0].mlp.c_fc.weight
    assert not torch.allclose(before, after)


@pytest.mark.slow
def test_ensemble_scores_positive_text_higher_with_nonzero_uncertainty(trained_ensemble):
    ensemble = RewardEnsemble.load(trained_ensemble[0].path)
    prompts = ["Now is the winter", "What light through yonder"] * 2
    texts = [" of our discontent, my love and joy", " window breaks, sweet and happy",
             " of our discontent, my hate and grief", " window breaks, vile and cruel"]
    member_scores = ensemble.member_scores(prompts, texts)
    mean, std = ensemble.score(prompts, texts)
    assert member_scores.shape == (2, 4)
    np.testing.assert_allclose(mean, member_scores.mean(axis=0), rtol=1e-5)
    assert (std > 0).all()
    assert mean[:2].mean() > mean[2:].mean()


def test_pairwise_loss_is_bradley_terry_and_ties_pull_rewards_together():
    r_chosen = torch.tensor([2.0, 0.0], requires_grad=True)
    r_rejected = torch.tensor([0.0, 0.0], requires_grad=True)
    one = torch.ones(1)
    plain = pairwise_loss(r_chosen[:1], r_rejected[:1], one, one)
    assert plain.item() == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(2.0)).item())

    # A tie is cheapest when the rewards are equal; its gradient pushes a gap closed.
    tie = torch.tensor([0.5])
    assert pairwise_loss(r_chosen[1:], r_rejected[1:], tie, one).item() == pytest.approx(np.log(2))
    pairwise_loss(r_chosen[:1], r_rejected[:1], tie, one).backward()
    assert r_chosen.grad[0] > 0 > r_rejected.grad[0]  # descent lowers r_chosen and raises r_rejected

    # Weights (strength / 2) decide how much each pair counts.
    weighted = pairwise_loss(torch.tensor([2.0, -1.0]), torch.zeros(2), torch.ones(2), torch.tensor([1.5, 0.5]))
    per_pair = -torch.nn.functional.logsigmoid(torch.tensor([2.0, -1.0]))
    assert weighted.item() == pytest.approx(((1.5 * per_pair[0] + 0.5 * per_pair[1]) / 2).item())


@pytest.mark.slow
def test_rating_model_orders_positive_neutral_negative(tiny_policy_dir, lines, tmp_path):
    rng = random.Random(0)

    def examples(chunk: list[str]) -> list[RatingExample]:
        out = []
        for number, line in enumerate(chunk):
            prompt, text = split_line(line)
            value, words = [("positive", POSITIVE_WORDS), ("neutral", NEUTRAL_WORDS), ("negative", NEGATIVE_WORDS)][number % 3]
            out.append(RatingExample(prompt, text + " " + rng.choice(words), value))
        return out

    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path), epochs=3,
                               learning_rate=1e-3, max_length=64)
    heldout = examples(lines[400:490])
    result = train_rating_model(examples(lines[:360]), config, heldout=heldout, gold=VaderGold())
    assert result.metrics["train/loss"] < result.metrics["train/loss_first_epoch"]
    assert result.metrics["eval/accuracy"] > 0.5  # three classes: chance is 1/3
    assert "eval/gold_agreement" in result.metrics and "eval/ece" in result.metrics

    mean, _ = RewardEnsemble.load(result.path).score([e.prompt for e in heldout], [e.text for e in heldout])
    by_value = {value: mean[[e.value == value for e in heldout]].mean() for value in ("positive", "neutral", "negative")}
    assert by_value["positive"] > by_value["neutral"] > by_value["negative"]


def test_bad_input_is_refused_with_a_clear_message(tiny_policy_dir, tmp_path):
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no training examples"):
        train_reward_model([], config)
    with pytest.raises(ValueError, match="strength must be 1..3"):
        train_reward_model([PreferencePair("p", "a", "b", strength=5)], config)
    with pytest.raises(ValueError, match="rating must be one of"):
        train_rating_model([RatingExample("p", "a", "great")], config)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_pairs_jsonl(bad)


@pytest.mark.slow
def test_command_line_trains_from_trl_style_jsonl(tiny_policy_dir, lines, tmp_path, capsys):
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(
        json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "tie": p.tie, "strength": p.strength}) + "\n"
        for p in gold_pairs(lines[:60], seed=2)
    ))
    out = tmp_path / "rm"
    assert main(["--pairs", str(pairs_file), "--base-model-path", str(tiny_policy_dir), "--output-dir", str(out),
                 "--epochs", "1", "--heldout-fraction", "0.2", "--gold", "vader"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["eval/pairs"] == 12 and "eval/gold_agreement" in printed
    assert (out / "ensemble.json").exists() and (out / "member_0" / "config.json").exists()

    help_text = subprocess.run([sys.executable, "-m", "models_rl.reward_model", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--ensemble-size" in help_text and "--pairs" in help_text


def _fresh_head(tiny_policy_dir, seed: int) -> torch.Tensor:
    """The head a member starts from: training seeds with its member seed before loading the scorer."""
    torch.manual_seed(seed)
    return load_scorer(tiny_policy_dir, "cpu")[0].score.weight.detach().clone()


@pytest.mark.slow
def test_frozen_backbone_trains_the_head_alone(tiny_policy_dir, lines, tmp_path):
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path), epochs=2,
                               learning_rate=1e-2, max_length=64, pooling="mean", train_backbone=False, seed=3)
    train_reward_model(gold_pairs(lines[:96], seed=0), config, heldout=[], progress=lambda report: None)
    member = RewardEnsemble.load(tmp_path).members[0]
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    for name, before in policy.transformer.state_dict().items():
        assert torch.equal(before, member.transformer.state_dict()[name]), name
    assert not torch.allclose(member.score.weight, _fresh_head(tiny_policy_dir, seed=3))


def test_embedding_features_train_the_embedding_table_and_head_and_learn_sentiment_words(tiny_policy_dir, lines, tmp_path):
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path), epochs=5,
                               learning_rate=1e-2, weight_decay=1.0, max_length=64, pooling="mean",
                               features="embeddings", seed=4)
    result = train_reward_model(gold_pairs(lines[:400], seed=0), config, heldout=gold_pairs(lines[400:], seed=1),
                                gold=VaderGold(), progress=lambda report: None)
    assert result.metrics["eval/accuracy"] > 0.8  # a bag of tokens is what VADER is

    ensemble = RewardEnsemble.load(tmp_path)
    assert ensemble.features == "embeddings"
    member = ensemble.members[0]
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    assert not torch.allclose(policy.transformer.wte.weight, member.transformer.wte.weight)
    assert torch.equal(policy.transformer.h[0].mlp.c_fc.weight, member.transformer.h[0].mlp.c_fc.weight)
    assert not torch.allclose(member.score.weight, _fresh_head(tiny_policy_dir, seed=4))

    # The score is a bag of tokens: the same words in another order score the same.
    mean, _ = ensemble.score(["Now is the winter"] * 3, [" my love and joy", " joy and my love", " my hate and grief"])
    assert mean[0] == pytest.approx(mean[1], abs=1e-4)
    assert mean[0] > mean[2]


def test_early_stopping_keeps_the_epoch_with_the_lowest_heldout_loss(tiny_policy_dir, lines, tmp_path):
    # Training labels at random, held-out labels from gold: every epoch after the first fits noise.
    rng = random.Random(5)
    noisy = [PreferencePair(p.prompt, p.rejected, p.chosen, strength=3) if rng.random() < 0.5 else
             PreferencePair(p.prompt, p.chosen, p.rejected, strength=3) for p in gold_pairs(lines[:200], seed=0) if not p.tie]
    heldout = gold_pairs(lines[400:], seed=1)

    def train(out, epochs: int, early_stopping: bool):
        config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(out), epochs=epochs,
                                   learning_rate=3e-2, max_length=64, pooling="mean", features="embeddings",
                                   early_stopping=early_stopping, seed=6)
        return train_reward_model(noisy, config, heldout=heldout, progress=lambda report: None).metrics

    stopped = train(tmp_path / "stopped", epochs=6, early_stopping=True)
    kept = int(stopped["train/epochs_kept"])
    assert kept < 6
    assert stopped["train/steps"] == 6 * -(-len(noisy) // 32)  # all epochs ran; the weights kept are earlier ones
    again = train(tmp_path / "again", epochs=kept, early_stopping=False)
    assert stopped["eval/loss"] == pytest.approx(again["eval/loss"], rel=1e-5)
    full = train(tmp_path / "full", epochs=6, early_stopping=False)
    assert full["eval/loss"] > stopped["eval/loss"]


def test_ensembles_saved_before_pooling_and_features_existed_still_load(tiny_policy_dir, lines, tmp_path):
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path), epochs=1, max_length=64)
    train_reward_model(gold_pairs(lines[:32], seed=0), config, heldout=[], progress=lambda report: None)
    prompts, texts = ["Now is the winter"] * 2, [" of our discontent", " my love and joy"]
    expected = RewardEnsemble.load(tmp_path).score(prompts, texts)[0]
    manifest = json.loads((tmp_path / "ensemble.json").read_text())
    for key in ("pooling", "features", "train_backbone", "weight_decay", "early_stopping"):
        del manifest["config"][key]
    (tmp_path / "ensemble.json").write_text(json.dumps(manifest))
    ensemble = RewardEnsemble.load(tmp_path)
    assert (ensemble.pooling, ensemble.features) == ("last", "hidden")
    np.testing.assert_allclose(ensemble.score(prompts, texts)[0], expected, rtol=1e-5)


def test_embedding_features_need_a_pooled_completion(tiny_policy_dir, tmp_path):
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path), features="embeddings",
                               pooling="last")
    with pytest.raises(ValueError, match="mean or sum pooling"):
        train_reward_model([PreferencePair("p", "a", "b")], config)
