"""RLOO on tiny real policies: against a reward model taught by the VADER gold labeler (VADER's score of fresh
samples rises, KL stays under its limit, KL-level checkpoints exist), the KL stop and window, and the command
line."""

import itertools
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from models_rl.data import shakespeare_prompts
from models_rl.gold import VaderGold
from models_rl.policy_evaluation import evaluate_policy
from models_rl.reward_model import PreferencePair, RewardModelConfig, train_reward_model
from models_rl.rloo import RLConfig, main, optimize_rl
from models_rl.sampling import SamplingConfig, sample
from tests.models_rl.conftest import weights_differ
from tests.stats import welch_t

COMPLETION_TOKENS = 16


def own_sample_pairs(policy, prompts: list[str], gold: VaderGold) -> list[PreferencePair]:
    """Every pair of a policy's own samples for each prompt, ordered by the gold labeler (equal scores: a tie),
    as a campaign's first round would collect them."""
    by_prompt: dict[str, list[str]] = {}
    for drawn in sample(policy, prompts, SamplingConfig(max_new_tokens=COMPLETION_TOKENS, seed=1), samples_per_prompt=8,
                        progress=lambda report: None):
        by_prompt.setdefault(drawn.prompt, []).append(drawn.text)
    pairs = []
    for prompt, texts in by_prompt.items():
        for first, second in itertools.combinations(texts, 2):
            choice, strength = gold.prefer(prompt, first, second)
            chosen, rejected = (second, first) if choice == "b" else (first, second)
            pairs.append(PreferencePair(prompt, chosen, rejected, tie=choice == "tie", strength=strength))
    random.Random(0).shuffle(pairs)
    return pairs


def gold_scores(policy, prompts: list[str], gold: VaderGold) -> list[float]:
    drawn = sample(policy, prompts, SamplingConfig(max_new_tokens=COMPLETION_TOKENS, seed=123), samples_per_prompt=8,
                   progress=lambda report: None)
    return [gold.score(s.prompt, s.text) for s in drawn]


@pytest.mark.slow
def test_rl_raises_gold_sentiment_under_the_kl_limit_with_kl_checkpoints(word_policy_dir, tmp_path):
    """The whole recipe on a policy that writes words (VADER scores words; the 512-token tiny policy writes
    fragments, and RL on it raised the learned reward without writing more of them): ~2,700 pairs of the policy's
    own samples labelled by VADER, a bag-of-tokens reward model, RLOO under a KL penalty, and VADER itself on 768
    fresh samples before and after, from prompts neither training step saw."""
    gold = VaderGold()
    prompts = shakespeare_prompts(96 + 96, seed=0)
    train_prompts, heldout_prompts = prompts[:96], prompts[96:]
    rl_prompts = [prompt for prompt in shakespeare_prompts(400, seed=100) if prompt not in heldout_prompts][:256]
    pairs = own_sample_pairs(word_policy_dir, train_prompts, gold)
    reward_model = train_reward_model(
        pairs[:-300],
        RewardModelConfig(base_model_path=str(word_policy_dir), output_dir=str(tmp_path / "reward_model"), epochs=20,
                          batch_size=16, max_length=64, features="embeddings", pooling="mean", learning_rate=1e-2,
                          weight_decay=1.0),
        heldout=pairs[-300:], gold=gold, progress=lambda report: None,
    )
    assert reward_model.metrics["eval/gold_agreement"] > 0.8, reward_model.metrics

    reports: list[dict] = []
    config = RLConfig(policy_path=str(word_policy_dir), reward_model_path=str(reward_model.path),
                      output_dir=str(tmp_path / "policy"), kl_coef=0.1, kl_levels=(0.5, 2.0, 4.0), kl_limit=10.0,
                      max_steps=300, batch_size=32, num_generations=8, max_new_tokens=COMPLETION_TOKENS,
                      learning_rate=5e-4, reward_norm_samples=64)
    result = optimize_rl(rl_prompts, config, progress=reports.append)
    assert weights_differ(word_policy_dir, result.final_path)

    metrics = result.metrics
    for key in ("policy/reward", "policy/kl", "policy/sqrt_kl", "policy/clipfrac", "policy/entropy",
                "reward_norm/mean", "reward_norm/std"):
        assert key in metrics
    training = [r for r in reports if "phase" not in r]
    assert training[-1]["step"] == metrics["train/steps"]
    assert json.loads((tmp_path / "policy" / "policy_result.json").read_text())["checkpoints"][-1]["label"] == "final"
    # The KL leash: either the run used its steps below the limit, or it stopped as soon as KL reached it.
    # (Here KL climbs slowly, then by several nats in a few dozen steps once the policy finds what the reward model
    # likes, somewhere between about 140 and 300 steps: both happen.) With kl_coef 0.03 the policy gamed the reward
    # model with "the the the" (gold at 4 nats: t 3.6; with a reward model of half these pairs, t 0).
    final = result.checkpoints[-1]
    assert final.kl < config.kl_limit
    assert metrics["train/steps"] < config.max_steps if metrics["policy/stopped_at_kl_limit"] else metrics["train/steps"] == config.max_steps
    assert [c.label for c in result.checkpoints] == ["kl_0.5", "kl_2", "kl_4", "final"]
    for checkpoint, level in zip(result.checkpoints, config.kl_levels):
        assert level <= checkpoint.kl < config.kl_limit
        assert (checkpoint.path / "config.json").exists() and (checkpoint.path / "tokenizer.json").exists()

    # VADER itself, on 768 fresh samples of held-out prompts, prefers the policy saved at 4 nats to the base, and
    # that policy's KL, measured afresh on its own samples, is under the limit.
    at_four_nats = result.checkpoints[2].path
    fresh_kl = evaluate_policy(at_four_nats, word_policy_dir, heldout_prompts, ensemble=None, samples=256,
                               max_new_tokens=COMPLETION_TOKENS, seed=5)["policy/kl"]
    assert 0 < fresh_kl < config.kl_limit
    before, after = gold_scores(word_policy_dir, heldout_prompts, gold), gold_scores(at_four_nats, heldout_prompts, gold)
    t = welch_t(after, before)
    assert t > 4, f"gold sentiment {np.mean(before):.3f} -> {np.mean(after):.3f} (Welch t {t:.2f}, KL {fresh_kl:.2f})"


@pytest.mark.slow
def test_rl_stops_when_kl_reaches_the_limit(tiny_policy_dir, reward_model_dir, tmp_path):
    config = RLConfig(policy_path=str(tiny_policy_dir), reward_model_path=str(reward_model_dir), output_dir=str(tmp_path),
                      kl_coef=0.01, kl_levels=(0.25, 0.5, 20.0), kl_limit=1.0, max_steps=40, batch_size=8,
                      num_generations=4, num_iterations=1, max_new_tokens=8, learning_rate=1e-2, reward_norm_samples=16)
    reports: list[dict] = []
    result = optimize_rl(shakespeare_prompts(64, seed=0), config, progress=reports.append)
    assert result.metrics["policy/stopped_at_kl_limit"]
    assert result.metrics["train/steps"] < 40
    # Levels are saved only for policies measured under the limit (20 is above it; one step may jump past 0.5).
    assert [c.label for c in result.checkpoints] in (["kl_0.25", "kl_0.5", "final"], ["kl_0.25", "final"], ["final"])
    for checkpoint in result.checkpoints[:-1]:
        assert float(checkpoint.label.removeprefix("kl_")) <= checkpoint.kl < 1.0
    # The policy handed on is the last one measured under the limit, not the one that crossed it.
    measured = [r["policy/kl"] for r in reports if "policy/kl" in r]
    assert measured[-1] >= 1.0 > measured[-2]
    assert result.checkpoints[-1].kl == pytest.approx(measured[-2]) and result.checkpoints[-1].kl < 1.0


@pytest.mark.slow
def test_checkpoints_are_the_policies_their_kl_was_measured_on(tiny_policy_dir, reward_model_dir, tmp_path):
    """The first batch is generated by the starting policy itself (KL 0); the limit is reached right after, so
    the policy handed on is the starting one, unchanged, although the optimiser has updated the weights since."""
    config = RLConfig(policy_path=str(tiny_policy_dir), reward_model_path=str(reward_model_dir), output_dir=str(tmp_path),
                      kl_coef=0.01, kl_levels=(0.0,), kl_limit=1e-3, max_steps=20, batch_size=8, num_generations=4,
                      num_iterations=1, max_new_tokens=8, learning_rate=1e-2, reward_norm_samples=16)
    result = optimize_rl(shakespeare_prompts(32, seed=0), config)
    assert result.metrics["policy/stopped_at_kl_limit"] and result.metrics["train/steps"] >= 2
    assert [c.label for c in result.checkpoints] == ["kl_0", "final"]
    assert [c.kl for c in result.checkpoints] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert result.metrics["policy/final_step"] == 0
    for checkpoint in result.checkpoints:
        assert not weights_differ(tiny_policy_dir, checkpoint.path)


@pytest.mark.slow
def test_kl_window_stops_on_the_mean_of_the_last_batches(tiny_policy_dir, reward_model_dir, tmp_path):
    reports: list[dict] = []
    config = RLConfig(policy_path=str(tiny_policy_dir), reward_model_path=str(reward_model_dir), output_dir=str(tmp_path),
                      kl_coef=0.01, kl_levels=(0.25,), kl_limit=1.0, kl_window=3, max_steps=80, batch_size=8,
                      num_generations=4, num_iterations=1, max_new_tokens=8, learning_rate=1e-2, reward_norm_samples=16)
    result = optimize_rl(shakespeare_prompts(64, seed=0), config, progress=reports.append)
    measured = [r for r in reports if "policy/kl_batch" in r]
    batch = [r["policy/kl_batch"] for r in measured]
    for i, report in enumerate(measured):
        assert report["policy/kl"] == pytest.approx(np.mean(batch[max(0, i - 2) : i + 1]))
    assert result.metrics["policy/stopped_at_kl_limit"]
    assert all(r["policy/kl"] < 1.0 for r in measured[:-1]) and measured[-1]["policy/kl"] >= 1.0
    assert result.checkpoints[-1].kl == pytest.approx(measured[-2]["policy/kl"])  # the last one under the limit


def test_bad_input_is_refused_with_a_clear_message(tmp_path):
    config = RLConfig(policy_path="p", reward_model_path="rm", output_dir=str(tmp_path), batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="multiple of num_generations"):
        optimize_rl(["a prompt"], config)
    with pytest.raises(ValueError, match="no prompts"):
        optimize_rl([], config)


def test_command_line_help_lists_the_config(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--prompts" in capsys.readouterr().out
    rl_help = subprocess.run([sys.executable, "-m", "models_rl.rloo", "--help"],
                             capture_output=True, text=True, check=True).stdout
    assert "--kl-levels" in rl_help and "--reward-norm-samples" in rl_help


def test_conservative_reward_is_the_ensemble_mean_less_k_spreads(tiny_policy_dir, shakespeare_sample, tmp_path):
    """Coste et al.'s conservative ensemble: RL maximises mean - k * std over members, so a text the members
    disagree on is worth less than one they agree on at the same mean."""
    from models_rl.reward_ensemble import RewardEnsemble
    from models_rl.rloo import conservative_score
    from tests.models_rl.conftest import word_pairs

    lines = [line for line in shakespeare_sample if len(line.split()) >= 8]
    train_reward_model(word_pairs(lines[:96], seed=0), RewardModelConfig(
        base_model_path=str(tiny_policy_dir), output_dir=str(tmp_path / "rm"), ensemble_size=2, epochs=1, max_length=64,
    ), progress=lambda report: None)
    ensemble = RewardEnsemble.load(tmp_path / "rm")
    prompts, texts = ["Good morrow,"] * 3, [" sweet love", " a plague upon it", " and so to bed"]
    members = ensemble.member_scores(prompts, texts)
    assert members.std(axis=0).min() > 0  # bootstrap members differ
    np.testing.assert_allclose(conservative_score(ensemble, prompts, texts, 0.0), members.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(conservative_score(ensemble, prompts, texts, 1.5),
                               members.mean(axis=0) - 1.5 * members.std(axis=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="conservative_k"):
        optimize_rl(["a prompt"], RLConfig(policy_path="p", reward_model_path="rm", output_dir=str(tmp_path), conservative_k=-1))
