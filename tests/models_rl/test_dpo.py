"""DPO on a tiny real policy: the chosen-over-rejected margin grows, ties are skipped, and the command line."""

import random
import subprocess
import sys

import numpy as np
import pytest

from models_rl.dpo import DPOConfig, main, optimize_dpo
from models_rl.gold import VaderGold
from models_rl.policy_evaluation import completion_logprobs
from models_rl.reward_model import PreferencePair
from tests.models_rl.conftest import NEGATIVE, POSITIVE, weights_differ


@pytest.mark.slow
def test_dpo_raises_the_chosen_over_rejected_margin(tiny_policy_dir, shakespeare_sample, tmp_path):
    gold, rng = VaderGold(), random.Random(0)
    pairs = []
    for line in shakespeare_sample[:96]:
        words = line.split()
        prompt, text = " ".join(words[:4]), " " + " ".join(words[4:8])
        first, second = text + rng.choice(POSITIVE), text + rng.choice(NEGATIVE)
        choice, strength = gold.prefer(prompt, first, second)
        chosen, rejected = (second, first) if choice == "b" else (first, second)
        pairs.append(PreferencePair(prompt, chosen, rejected, strength=strength))
    pairs.append(PreferencePair("A tie", " is skipped", " by DPO", tie=True))

    def margin(policy) -> float:
        prompts = [p.prompt for p in pairs[:-1]]
        chosen = completion_logprobs(policy, prompts, [p.chosen for p in pairs[:-1]])
        rejected = completion_logprobs(policy, prompts, [p.rejected for p in pairs[:-1]])
        return float(np.mean(chosen - rejected))

    config = DPOConfig(policy_path=str(tiny_policy_dir), output_dir=str(tmp_path), beta=0.1, epochs=2, batch_size=16,
                       learning_rate=1e-3, max_length=64, eval_samples=16, max_new_tokens=8)
    result = optimize_dpo(pairs, config)
    assert margin(result.final_path) > margin(tiny_policy_dir) + 1.0
    assert weights_differ(tiny_policy_dir, result.final_path)
    assert result.metrics["train/ties_skipped"] == 1 and result.metrics["train/pairs"] == 96
    assert result.metrics["dpo/margin"] > 0
    assert result.metrics["policy/kl"] > 0
    assert [c.label for c in result.checkpoints] == ["final"]


def test_bad_input_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="no non-tie pairs"):
        optimize_dpo([PreferencePair("p", "a", "b", tie=True)], DPOConfig(policy_path="p", output_dir=str(tmp_path)))


def test_command_line_help_lists_the_config(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--pairs" in capsys.readouterr().out
    dpo_help = subprocess.run([sys.executable, "-m", "models_rl.dpo", "--help"],
                              capture_output=True, text=True, check=True).stdout
    assert "--beta" in dpo_help and "--reference-path" in dpo_help
