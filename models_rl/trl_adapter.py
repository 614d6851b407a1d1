"""The only module that imports TRL (pinned: trl==1.16.0 in pyproject.toml). It runs TRL's RLOO, DPO and SFT
trainers with the settings this project needs everywhere: CPU-safe precision flags when there is no GPU, no
reporting to any service, no intermediate checkpoints (we save what we want ourselves), a log line every step.

An empty prompt (an unconditional campaign) goes to TRL as the policy's start token (models_rl.sampling's
`policy_prompt`): TRL would otherwise generate from no token at all, or score a completion's first token with no
context. The reward functions still see the prompt "".

TRL's own log keys are translated here into our namespaced metrics, so the rest of models_rl never depends on
them: "policy/reward_normalized", "policy/kl_token", "policy/completion_length", "policy/entropy",
"policy/clipfrac", "train/loss", "dpo/margin", "dpo/accuracy", "dpo/logp_chosen", "dpo/logp_rejected".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
from trl import DPOConfig, DPOTrainer, RLOOConfig, RLOOTrainer, SFTConfig, SFTTrainer

from models_rl.device import pick_device
from models_rl.sampling import policy_prompt

# Our metric name for each TRL log key we keep (RLOO, DPO and SFT log under these names in trl 1.16).
TRL_METRICS = {
    "loss": "train/loss",
    "reward": "policy/reward_normalized",
    "kl": "policy/kl_token",
    "completions/mean_length": "policy/completion_length",
    "entropy": "policy/entropy",
    "clip_ratio/region_mean": "policy/clipfrac",
    "reward_raw": "policy/reward",
    "rewards/margins": "dpo/margin",
    "rewards/accuracies": "dpo/accuracy",
    "logps/chosen": "dpo/logp_chosen",  # log pi(chosen | prompt) summed over its tokens, the batch's mean
    "logps/rejected": "dpo/logp_rejected",
    "mean_token_accuracy": "train/token_accuracy",
}

class MeasuredPolicy(TrainerCallback):
    """The weights as they were when the current step began: on a step that generated its batch, the policy
    that the step's metrics (reward, KL) describe, one or two optimiser updates behind the live model.

    Keeps two copies of the weights on the model's device: the snapshot taken at each step's start, and the
    one `keep()` marks as the final policy (until then, the starting one). With them a checkpoint is saved
    under the KL it was measured at, and a run stopped at its KL limit hands on the last policy measured under
    the limit rather than the one that crossed it."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._model = None
        self._snapshot: dict[str, torch.Tensor] = {}
        self._kept: dict[str, torch.Tensor] = {}

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self._model = model
        _copy_into(self._snapshot, model.state_dict())
        if not self._kept:
            self.keep()

    def save(self, path: Path) -> None:
        self._save(path, self._snapshot)

    def keep(self) -> None:
        _copy_into(self._kept, self._snapshot)

    def save_kept(self, path: Path) -> None:
        self._save(path, self._kept)

    def _save(self, path: Path, weights: dict[str, torch.Tensor]) -> None:
        self._model.save_pretrained(path, state_dict=weights)
        self._tokenizer.save_pretrained(path)


def _copy_into(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]) -> None:
    for name, tensor in source.items():
        if name in target:
            target[name].copy_(tensor)
        else:
            target[name] = tensor.detach().clone()


# Called after every optimiser step with our metrics (it may add to them) and the policy those metrics describe,
# to save or keep; returns True to stop training.
StepHook = Callable[[dict, MeasuredPolicy], bool]


def common_arguments(output_dir: str | Path, *, seed: int, learning_rate: float, batch_size: int,
                     quiet: bool) -> dict:
    """TrainingArguments shared by every trainer: CPU-safe on CPU, offline, no checkpoints of TRL's own."""
    on_cpu = pick_device() == "cpu"
    return {
        "output_dir": str(output_dir),
        "seed": seed,
        "learning_rate": learning_rate,
        "per_device_train_batch_size": batch_size,
        # TRL's configs default to bf16=True, and on a machine without a GPU every trainer then stops with
        # "Your setup doesn't support bf16/gpu": say CPU outright there, and use bf16 only where the GPU has it.
        "use_cpu": on_cpu,
        "bf16": not on_cpu and torch.cuda.is_bf16_supported(),
        # Tiny models: checkpointing only slows them down. transformers 5 renamed the flag; setting the new name
        # too keeps TRL's gradient_checkpointing=True default from coming back through the deprecated alias.
        "activation_checkpointing": False,
        "gradient_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": quiet,  # our own progress callback replaces TRL's bar
        "dataloader_num_workers": 0,
        "push_to_hub": False,
    }


def _quiet(trainer, progress: Callable[[dict], None] | None):
    """With a progress callback, drop the printer that would echo every raw log dict to stdout."""
    if progress is not None:
        trainer.remove_callback(PrinterCallback)
    return trainer


class _StepCallback(TrainerCallback):
    """Forwards each log line (translated) to the progress callback and the step hook, and keeps the last."""

    def __init__(self, progress: Callable[[dict], None] | None, hook: StepHook | None = None,
                 measured: MeasuredPolicy | None = None):
        self.progress = progress
        self.hook = hook
        self.measured = measured
        self.last: dict = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = {ours: float(logs[theirs]) for theirs, ours in TRL_METRICS.items() if logs and theirs in logs}
        if not metrics:
            return
        self.last.update(metrics)
        if self.hook is not None:  # first, so that metrics the hook adds (KL per completion) reach progress too
            if self.hook(metrics, self.measured):
                control.should_training_stop = True
        if self.progress is not None:
            self.progress({"step": state.global_step, "total": state.max_steps, **metrics})


def _train_and_save(trainer, tokenizer, steps: _StepCallback, output_dir: str | Path,
                    save_final: Callable[[Path], None] | None = None) -> dict:
    """Train, save the policy (the trained one, or what `save_final` saves) and its tokenizer to
    output_dir/final, and return the last logged metrics."""
    trainer.train()
    final = Path(output_dir) / "final"
    if save_final is not None:
        save_final(final)
    else:
        trainer.save_model(str(final))
        tokenizer.save_pretrained(final)
    return {**steps.last, "train/steps": trainer.state.global_step}


def _with_policy_prompts(rows: list[dict], tokenizer) -> list[dict]:
    """The rows with each empty prompt as the policy's start token (see the module docstring)."""
    return [{**row, "prompt": policy_prompt(tokenizer, row["prompt"])} for row in rows]


def load_policy_tokenizer(path: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # RLOO generates: new tokens go on the right, so padding goes left
    return tokenizer


def rloo_train(
    *,
    policy_path: str | Path,
    reference_path: str | Path,
    prompts: list[str],
    reward_fn: Callable[[list[str], list[str]], tuple[list[float], float]],
    output_dir: str | Path,
    kl_coef: float,
    max_steps: int,
    batch_size: int,
    num_generations: int,
    num_iterations: int,
    max_new_tokens: int,
    learning_rate: float,
    temperature: float,
    seed: int,
    progress: Callable[[dict], None] | None,
    hook: StepHook,
) -> dict:
    """Online RL with TRL's RLOOTrainer: the KL penalty kl_coef * sum over tokens of log(pi/pi_ref) is taken out
    of each completion's reward; `reward_fn(prompts, completions)` gives (rewards, raw mean). `hook` sees each
    step's metrics with the policy they describe (MeasuredPolicy). Saves to output_dir/final the last policy the
    hook kept (the starting one if it kept none) and returns the last step's metrics."""
    if kl_coef <= 0:
        raise ValueError("kl_coef must be > 0: without it RLOO has no KL leash")
    tokenizer = load_policy_tokenizer(policy_path)
    model = AutoModelForCausalLM.from_pretrained(policy_path)
    # RLOOTrainer builds its reference model from the policy's config name; point that at the reference.
    model.config._name_or_path = str(reference_path)

    given = {policy_prompt(tokenizer, prompt): prompt for prompt in prompts}  # what TRL sees -> ours

    # TRL calls a reward function with the batch's columns as keywords, and passes `log_metric` to log more
    # metrics with the step's: the raw (unnormalised) reward goes out that way, as "reward_raw".
    def reward_model(prompts, completions, log_metric=None, **kwargs) -> list[float]:
        rewards, raw_mean = reward_fn([given.get(prompt, prompt) for prompt in prompts], completions)
        if log_metric is not None:
            log_metric("reward_raw", raw_mean)
        return rewards

    args = RLOOConfig(
        **common_arguments(output_dir, seed=seed, learning_rate=learning_rate, batch_size=batch_size,
                           quiet=progress is not None),
        max_steps=max_steps,
        beta=kl_coef,
        num_generations=num_generations,
        num_iterations=num_iterations,
        max_completion_length=max_new_tokens,
        temperature=temperature,
        top_k=0,  # sample from the whole distribution: the KL estimate is of the policy itself
        disable_dropout=True,  # the KL to the reference must not include dropout noise
    )
    measured = MeasuredPolicy(tokenizer)
    steps = _StepCallback(progress, hook, measured)
    trainer = _quiet(RLOOTrainer(
        model=model,
        reward_funcs=reward_model,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": [policy_prompt(tokenizer, prompt) for prompt in prompts]}),
        processing_class=tokenizer,
        callbacks=[measured, steps],
    ), progress)
    return _train_and_save(trainer, tokenizer, steps, output_dir, save_final=measured.save_kept)


def dpo_train(
    *,
    policy_path: str | Path,
    reference_path: str | Path,
    rows: list[dict],
    output_dir: str | Path,
    beta: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    seed: int,
    progress: Callable[[dict], None] | None,
) -> dict:
    """TRL's DPOTrainer on prompt/chosen/rejected rows; saves to output_dir/final; returns the last metrics."""
    tokenizer = load_policy_tokenizer(policy_path)
    tokenizer.padding_side = "right"  # no generation here: pad as TRL's collators do (and save it so)
    model = AutoModelForCausalLM.from_pretrained(policy_path)
    reference = AutoModelForCausalLM.from_pretrained(reference_path)
    args = DPOConfig(
        **common_arguments(output_dir, seed=seed, learning_rate=learning_rate, batch_size=batch_size,
                           quiet=progress is not None),
        num_train_epochs=epochs,
        beta=beta,
        max_length=max_length,
    )
    steps = _StepCallback(progress)
    trainer = _quiet(DPOTrainer(
        model=model,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(_with_policy_prompts(rows, tokenizer)),
        processing_class=tokenizer,
        callbacks=[steps],
    ), progress)
    return _train_and_save(trainer, tokenizer, steps, output_dir)


def sft_train(
    *,
    policy_path: str | Path,
    rows: list[dict],
    output_dir: str | Path,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    seed: int,
    progress: Callable[[dict], None] | None,
) -> dict:
    """TRL's SFTTrainer on prompt/completion rows, loss on the completion only; saves to output_dir/final."""
    tokenizer = load_policy_tokenizer(policy_path)
    tokenizer.padding_side = "right"  # no generation here: pad as TRL's collators do (and save it so)
    model = AutoModelForCausalLM.from_pretrained(policy_path)
    args = SFTConfig(
        **common_arguments(output_dir, seed=seed, learning_rate=learning_rate, batch_size=batch_size,
                           quiet=progress is not None),
        num_train_epochs=epochs,
        max_length=max_length,
        completion_only_loss=True,
        packing=False,
    )
    steps = _StepCallback(progress)
    trainer = _quiet(SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(_with_policy_prompts(rows, tokenizer)),
        processing_class=tokenizer,
        callbacks=[steps],
    ), progress)
    return _train_and_save(trainer, tokenizer, steps, output_dir)
