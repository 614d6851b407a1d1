"""Sampling from the session's tiny GPT-2: continuations with log-probs, seeds, lengths, left padding."""

import math

import pytest

from models_rl.sampling import SamplingConfig, main, sample

PROMPTS = ["Now is the winter of our discontent", "O Romeo,", "Friends, Romans, countrymen, lend me your ears;"]


def test_samples_are_continuations_grouped_by_prompt_with_token_logprobs(tiny_policy_dir):
    updates = []
    samples = sample(tiny_policy_dir, PROMPTS, SamplingConfig(max_new_tokens=8, batch_size=4),
                     samples_per_prompt=2, progress=updates.append)

    assert [s.prompt for s in samples] == [p for p in PROMPTS for _ in range(2)]
    for s in samples:
        assert s.text and not s.text.startswith(s.prompt)
        assert 1 <= len(s.token_logprobs) <= 8
        assert all(math.isfinite(lp) and lp <= 0 for lp in s.token_logprobs)
    assert updates == [{"step": 1, "total": 2}, {"step": 2, "total": 2}]


def test_a_seed_reproduces_samples_and_another_seed_changes_them(tiny_policy_dir):
    config = SamplingConfig(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=7)
    first = sample(tiny_policy_dir, PROMPTS, config)
    assert sample(tiny_policy_dir, PROMPTS, config) == first
    config.seed = 8
    assert [s.text for s in sample(tiny_policy_dir, PROMPTS, config)] != [s.text for s in first]


def test_max_new_tokens_bounds_every_continuation(tiny_policy_dir):
    for max_new_tokens in (1, 5):
        samples = sample(tiny_policy_dir, PROMPTS, SamplingConfig(max_new_tokens=max_new_tokens))
        assert all(1 <= len(s.token_logprobs) <= max_new_tokens for s in samples)


def test_left_padded_batches_match_prompts_sampled_alone(tiny_policy_dir):
    """Greedy decoding of prompts of different lengths in one batch gives what each gives alone."""
    greedy = SamplingConfig(max_new_tokens=12, temperature=0)
    batched = sample(tiny_policy_dir, PROMPTS, greedy)
    for prompt, together in zip(PROMPTS, batched, strict=True):
        (alone,) = sample(tiny_policy_dir, [prompt], greedy)
        assert together.text == alone.text
        assert together.token_logprobs == pytest.approx(alone.token_logprobs, abs=1e-4)
        # a greedy token is the most likely one, so at least as likely as uniform over the 512-token vocabulary
        assert all(lp >= math.log(1 / 512) for lp in alone.token_logprobs)


def test_prompts_longer_than_the_context_keep_their_end(tiny_policy_dir):
    long_prompt = "To be, or not to be, that is the question: " * 40
    (result,) = sample(tiny_policy_dir, [long_prompt], SamplingConfig(max_new_tokens=16))
    assert result.prompt == long_prompt and 1 <= len(result.token_logprobs) <= 16


def test_bad_requests_are_refused_with_a_clear_message(tiny_policy_dir):
    # An empty prompt is no bad request: it samples from the start token (tests/models_rl/test_unconditional.py).
    with pytest.raises(ValueError, match="no room"):
        sample(tiny_policy_dir, ["Once more"], SamplingConfig(max_new_tokens=128))


def test_command_line_prints_json_lines(tiny_policy_dir, capsys):
    main(["--model-path", str(tiny_policy_dir), "--n-prompts", "2", "--samples-per-prompt", "2",
          "--max-new-tokens", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all('"token_logprobs"' in line for line in lines)
