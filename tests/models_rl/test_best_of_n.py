"""Best-of-n / ReST on a tiny real policy: fine-tuned on the reward model's favourite samples, and the command
line."""

import subprocess
import sys

import pytest

from models_rl.best_of_n import BestOfNConfig, main, optimize_best_of_n
from models_rl.data import shakespeare_prompts
from tests.models_rl.conftest import weights_differ


@pytest.mark.slow
def test_best_of_n_fine_tunes_on_the_reward_models_favourites(tiny_policy_dir, reward_model_dir, tmp_path):
    config = BestOfNConfig(policy_path=str(tiny_policy_dir), reward_model_path=str(reward_model_dir),
                           output_dir=str(tmp_path), n=4, max_new_tokens=12, epochs=1, batch_size=8,
                           learning_rate=1e-3, eval_samples=16)
    result = optimize_best_of_n(shakespeare_prompts(32, seed=3), config)
    assert weights_differ(tiny_policy_dir, result.final_path)
    metrics = result.metrics
    assert metrics["bon/reward_best"] > metrics["bon/reward_all"]
    assert metrics["train/examples"] == 32
    for key in ("policy/reward", "policy/kl", "policy/entropy", "train/loss"):
        assert key in metrics


def test_command_line_help_lists_the_config(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--prompts" in capsys.readouterr().out
    bon_help = subprocess.run([sys.executable, "-m", "models_rl.best_of_n", "--help"],
                              capture_output=True, text=True, check=True).stdout
    assert "--n " in bon_help and "--eval-samples" in bon_help
