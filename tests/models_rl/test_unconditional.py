"""An empty prompt (an unconditional campaign) on the tiny real policy: the policy starts from its start token in
sampling, KL, reward models, RLOO, DPO and best-of-n, and the first token of every completion counts."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_rl.best_of_n import BestOfNConfig, optimize_best_of_n
from models_rl.dpo import DPOConfig, optimize_dpo
from models_rl.policy_evaluation import completion_logprobs
from models_rl.reward_ensemble import RewardEnsemble
from models_rl.reward_model import PreferencePair
from models_rl.rloo import RLConfig, optimize_rl
from models_rl.sampling import SamplingConfig, policy_prompt, prompt_token_ids, sample
from tests.models_rl.conftest import weights_differ


def test_an_empty_prompt_is_the_start_token(tiny_policy_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    assert tokenizer("").input_ids == []  # what a GPT-2 tokenizer gives: nothing to start generating from
    assert policy_prompt(tokenizer, "") == tokenizer.bos_token
    assert prompt_token_ids(tokenizer, "") == [tokenizer.bos_token_id]
    assert policy_prompt(tokenizer, "Now is the winter") == "Now is the winter"
    assert prompt_token_ids(tokenizer, "Now is the winter") == tokenizer("Now is the winter").input_ids


def test_sampling_from_no_prompt(tiny_policy_dir):
    config = SamplingConfig(max_new_tokens=12, seed=3)
    samples = sample(tiny_policy_dir, ["", "Now is the winter", ""], config, samples_per_prompt=4)
    unconditional = [s for s in samples if s.prompt == ""]
    assert len(unconditional) == 8 and [s.prompt for s in samples[4:8]] == ["Now is the winter"] * 4
    assert len({s.text for s in unconditional}) > 4 and all(s.token_logprobs for s in unconditional)
    again = sample(tiny_policy_dir, ["", "Now is the winter", ""], config, samples_per_prompt=4)
    assert [s.text for s in again] == [s.text for s in samples]


@torch.no_grad()
def test_the_first_token_of_an_unconditional_completion_is_scored(tiny_policy_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval()
    text = " my love is like a red rose"
    ids = [tokenizer.bos_token_id, *tokenizer(text).input_ids]
    logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], dim=-1)
    by_hand = float(logprobs.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).sum())
    (measured,) = completion_logprobs(tiny_policy_dir, [""], [text])
    assert measured == pytest.approx(by_hand, rel=1e-4)
    # The KL between two policies on unconditional samples is measured over every token, the first included.
    assert len(ids) - 1 == len(tokenizer(text).input_ids)


def test_a_reward_model_reads_an_empty_prompt_as_the_start_token(reward_model_dir):
    ensemble = RewardEnsemble.load(reward_model_dir)
    texts = [" my sweet love", " a vile death", ""]
    empty, _ = ensemble.score(["", "", ""], texts)
    started, _ = ensemble.score([ensemble.tokenizer.bos_token] * 3, texts)
    np.testing.assert_allclose(empty, started, rtol=1e-5)


@pytest.mark.slow
def test_dpo_scores_the_first_token_of_unconditional_completions(tiny_policy_dir, tmp_path):
    """TRL scores a completion's tokens from the positions before them: with no start token before an empty
    prompt's completion, its first token would count for nothing. DPO's first logged log-probability of the chosen
    text (the starting policy's) must be the whole text's from the start token, end of text included."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    reports: list[dict] = []
    config = DPOConfig(policy_path=str(tiny_policy_dir), output_dir=str(tmp_path), epochs=1, batch_size=8,
                       learning_rate=1e-3, max_length=64, eval_samples=8, max_new_tokens=8)
    optimize_dpo([PreferencePair("", " love and joy", " no")] * 16, config, progress=reports.append)
    (expected,) = completion_logprobs(tiny_policy_dir, [""], [" love and joy" + tokenizer.eos_token])
    assert reports[0]["dpo/logp_chosen"] == pytest.approx(expected, abs=1e-3)
    (without_first,) = completion_logprobs(tiny_policy_dir, [" love"], [" and joy" + tokenizer.eos_token])
    assert abs(expected - without_first) > 0.5  # the first token's share is no rounding error


@pytest.mark.slow
def test_best_of_ns_fine_tuning_scores_the_first_token_of_unconditional_completions(tiny_policy_dir, tmp_path):
    """As for DPO: the first logged loss (the starting policy's) is the mean negative log-likelihood of every token
    of the completion, its first and the end of text included."""
    from models_rl.trl_adapter import sft_train

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    reports: list[dict] = []
    sft_train(policy_path=tiny_policy_dir, rows=[{"prompt": "", "completion": " love and joy"}] * 8,
              output_dir=tmp_path, epochs=1, batch_size=8, learning_rate=1e-3, max_length=64, seed=0,
              progress=reports.append)
    text = " love and joy" + tokenizer.eos_token
    (total,) = completion_logprobs(tiny_policy_dir, [""], [text])
    tokens = len(tokenizer(text).input_ids)
    assert reports[0]["train/loss"] == pytest.approx(-total / tokens, rel=1e-3)


@pytest.mark.slow
def test_best_of_n_and_rl_run_with_no_prompt(tiny_policy_dir, reward_model_dir, tmp_path):
    best_of_n = optimize_best_of_n([""] * 8, BestOfNConfig(
        policy_path=str(tiny_policy_dir), reward_model_path=str(reward_model_dir), output_dir=str(tmp_path / "bon"),
        n=4, max_new_tokens=10, epochs=1, batch_size=8, learning_rate=1e-3, eval_samples=8))
    assert weights_differ(tiny_policy_dir, best_of_n.final_path)
    assert best_of_n.metrics["bon/reward_best"] > best_of_n.metrics["bon/reward_all"]

    reports: list[dict] = []
    rl = optimize_rl([""] * 8, RLConfig(
        policy_path=str(tiny_policy_dir), reward_model_path=str(reward_model_dir), output_dir=str(tmp_path / "rl"),
        max_steps=3, batch_size=8, num_generations=4, max_new_tokens=10, reward_norm_samples=16, learning_rate=1e-3,
        kl_levels=(), kl_window=1), progress=reports.append)
    assert rl.metrics["train/steps"] == 3 and np.isfinite(rl.metrics["policy/reward"])
    assert (rl.final_path / "config.json").exists()
    assert any("policy/completion_length" in report and report["policy/completion_length"] > 0 for report in reports)
