"""The rating model on the tiny real policy: p(positive) from absolute ratings, read at the last token; the reward
a policy maximises, log p(positive); and the uncertainty of p(positive) that chooses which completions to rate."""

import random

import numpy as np
import pytest

from models_rl.acquisition import AcquisitionConfig, CandidateItem, score_items, select_items
from models_rl.policy_evaluation import evaluate_policy
from models_rl.reward_ensemble import RewardEnsemble, log_sigmoid, positive_probability
from models_rl.reward_model import RatingExample, RewardModelConfig, train_rating_model
from models_rl.rloo import conservative_score

WORDS = {
    "positive": ["love", "joy", "sweet", "happy", "good", "gentle", "kind", "glad"],
    "neutral": ["table", "stone", "river", "door", "window", "horse"],
    "negative": ["hate", "death", "vile", "grief", "sad", "evil", "cruel", "woe"],
}


def rated_lines(lines: list[str], seed: int) -> list[RatingExample]:
    """Each line's continuation with a positive, neutral or negative word put in anywhere (not only at the end:
    the last token has to carry what came before it), rated by that word."""
    rng, examples = random.Random(seed), []
    for number, line in enumerate(lines):
        words = line.split()
        prompt, rest = " ".join(words[:4]), words[4:10]
        value = ("positive", "neutral", "negative")[number % 3]
        cut = rng.randrange(len(rest) + 1)
        examples.append(RatingExample(prompt, " " + " ".join(rest[:cut] + [rng.choice(WORDS[value])] + rest[cut:]), value))
    return examples


@pytest.fixture(scope="module")
def lines(shakespeare_sample) -> list[str]:
    return [line for line in shakespeare_sample if len(line.split()) >= 8][:520]


@pytest.fixture(scope="module")
def heldout(lines) -> list[RatingExample]:
    return rated_lines(lines[400:], seed=1)


@pytest.fixture(scope="module")
def rating_model(tiny_policy_dir, lines, heldout, tmp_path_factory):
    """A two-member rating ensemble on 400 rated lines, evaluated on 120 others (a few seconds)."""
    config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path_factory.mktemp("rating")),
                               ensemble_size=2, epochs=3, learning_rate=1e-3, max_length=64, seed=0)
    return train_rating_model(rated_lines(lines[:400], seed=0), config, heldout=heldout, progress=lambda report: None)


def test_the_rating_model_ranks_positive_texts_above_negative_ones_on_heldout_lines(rating_model, heldout):
    metrics = rating_model.metrics
    assert metrics["train/loss"] < metrics["train/loss_first_epoch"]
    assert metrics["eval/accuracy"] > 0.45  # three classes: chance is 1/3
    ensemble = RewardEnsemble.load(rating_model.path)
    assert ensemble.kind == "rating" and ensemble.pooling == "last" and len(ensemble.members) == 2

    mean, spread = ensemble.score([e.prompt for e in heldout], [e.text for e in heldout])
    p_positive = positive_probability(mean)
    by_value = {value: p_positive[[e.value == value for e in heldout]] for value in WORDS}
    assert by_value["positive"].mean() > by_value["neutral"].mean() > by_value["negative"].mean()
    assert by_value["positive"].mean() - by_value["negative"].mean() > 0.2
    # The share of (positive, negative) pairs of held-out lines ordered right (the ROC area).
    assert np.mean(by_value["positive"][:, None] > by_value["negative"][None, :]) > 0.75
    assert (spread > 0).all()  # bootstrap members differ: an uncertainty to choose items by


def test_the_reward_is_log_p_positive_and_rl_follows_it(rating_model, tiny_policy_dir):
    ensemble = RewardEnsemble.load(rating_model.path)
    prompts, texts = ["Good morrow,"] * 3, [" my sweet love and joy", " a vile and cruel death", " the stone door"]
    scores = ensemble.member_scores(prompts, texts)
    rewards = ensemble.member_rewards(prompts, texts)
    np.testing.assert_allclose(rewards, np.log(positive_probability(scores)), rtol=1e-5)
    assert (rewards < 0).all()  # a log-probability: a raw score would be any number
    mean, spread = ensemble.reward(prompts, texts)
    np.testing.assert_allclose(mean, rewards.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(spread, rewards.std(axis=0), rtol=1e-5, atol=1e-7)
    assert mean[0] > mean[1]
    # RL (and its conservative variant), best-of-n and policy evaluation all read `reward`.
    np.testing.assert_allclose(conservative_score(ensemble, prompts, texts, 0.0), mean, rtol=1e-6)
    np.testing.assert_allclose(conservative_score(ensemble, prompts, texts, 1.0), mean - spread, rtol=1e-5, atol=1e-6)
    measured = evaluate_policy(tiny_policy_dir, tiny_policy_dir, ["Good morrow,"], ensemble=ensemble, samples=8,
                               max_new_tokens=8, seed=0)
    assert measured["policy/reward"] < 0

    # A pairwise ensemble's reward is its score, as before.
    pairwise = RewardEnsemble(ensemble.members, ensemble.tokenizer, kind="pairwise", max_length=ensemble.max_length,
                              pooling=ensemble.pooling, device=ensemble.device, metrics={})
    np.testing.assert_array_equal(pairwise.member_rewards(prompts, texts), scores)


def test_a_rating_model_reads_the_last_tokens_hidden_state(tiny_policy_dir, tmp_path):
    examples = [RatingExample("Good morrow,", " sweet love", "positive")]
    for pooling, features in (("mean", "hidden"), ("sum", "hidden"), ("mean", "embeddings")):
        config = RewardModelConfig(base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path), pooling=pooling,
                                   features=features)
        with pytest.raises(ValueError, match="pooling must be 'last'"):
            train_rating_model(examples, config, heldout=[])


def test_log_sigmoid_and_p_positive_hold_at_extreme_scores():
    scores = np.array([-1000.0, -5.0, 0.0, 5.0, 1000.0])
    np.testing.assert_allclose(positive_probability(scores), [0.0, 1 / (1 + np.exp(5)), 0.5, 1 / (1 + np.exp(-5)), 1.0])
    np.testing.assert_allclose(log_sigmoid(scores), [-1000.0, -5.0 - np.log1p(np.exp(-5)), -np.log(2), -np.log1p(np.exp(-5)), 0.0])


def item(key, prompt, *probabilities) -> CandidateItem:
    return CandidateItem(key=key, prompt_key=prompt, member_probabilities=list(probabilities))


def test_items_to_rate_are_chosen_by_the_uncertainty_of_p_positive():
    candidates = [item("sure positive", 1, 0.95, 0.97), item("coin toss", 2, 0.5, 0.52), item("sure negative", 3, 0.03, 0.05),
                  item("members split", 4, 0.1, 0.9), item("leaning", 5, 0.7, 0.75)]
    uncertainty = dict(zip([c.key for c in candidates], score_items(candidates, "uncertainty")))
    assert uncertainty["coin toss"] == pytest.approx(0.51 * 0.49)
    assert max(uncertainty, key=uncertainty.get) in ("coin toss", "members split")
    assert uncertainty["sure positive"] < uncertainty["leaning"] < uncertainty["coin toss"]
    disagreement = dict(zip([c.key for c in candidates], score_items(candidates, "disagreement")))
    assert max(disagreement, key=disagreement.get) == "members split"
    gain = dict(zip([c.key for c in candidates], score_items(candidates, "information_gain")))
    assert max(gain, key=gain.get) == "members split" and gain["coin toss"] < 0.01

    picked = select_items(candidates, AcquisitionConfig(batch_size=2, strategy="uncertainty", random_share=0.0))
    assert {p.key for p in picked} == {"coin toss", "members split"} and not any(p.is_control for p in picked)
    with_control = select_items(candidates, AcquisitionConfig(batch_size=4, strategy="uncertainty", random_share=0.5, seed=3))
    assert [p.is_control for p in with_control] == [False, False, True, True]
    assert len({p.key for p in with_control}) == 4


def test_item_selection_keeps_the_per_prompt_cap_and_refuses_thompson():
    candidates = [item(k, "same prompt", 0.5, 0.5) for k in range(5)] + [item("other", "other prompt", 0.9, 0.9)]
    picked = select_items(candidates, AcquisitionConfig(batch_size=4, strategy="uncertainty", random_share=0.0,
                                                        max_per_prompt=2))
    assert len(picked) == 3 and "other" in {p.key for p in picked}
    with pytest.raises(ValueError, match="thompson strategy chooses between two completions"):
        select_items(candidates, AcquisitionConfig(batch_size=2, strategy="thompson"))
    with pytest.raises(ValueError, match="at least 2 members"):
        score_items([item("one member", 1, 0.5)], "disagreement")
