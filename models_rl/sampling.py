"""Batched sampling from any local Hugging Face causal LM: continuations of prompts with the log-probability of
every generated token. On CUDA when present, else CPU.

`python -m models_rl.sampling --model-path DIR --prompt "Now is the winter"` prints JSONL samples.
"""

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
import tyro
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from models_rl.device import pick_device, set_seed


@dataclass
class SamplingConfig:
    max_new_tokens: int = field(default=32, metadata={"help": "tokens generated after each prompt, at most"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature; 0 means greedy"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass; 1 keeps the whole distribution"})
    seed: int = field(default=0, metadata={"help": "the same seed, prompts and model give the same samples"})
    batch_size: int = field(default=32, metadata={"help": "sequences generated together"})


@dataclass
class Sample:
    """`text` is the continuation only (the prompt excluded; it stops before an end-of-text token).
    `token_logprobs[i]` is log p(token i | prompt, tokens < i) under the model's own distribution (temperature
    1, no top-p), for every generated token including a final end-of-text token when one was generated."""

    prompt: str
    text: str
    token_logprobs: list[float]


def load_causal_lm(model_path: str | Path, device: str) -> tuple[torch.nn.Module, object]:
    """Model in eval mode on `device` and its tokenizer, set up to left-pad batches of prompts."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"  # generation appends on the right, so padding must go left
    tokenizer.truncation_side = "left"  # an over-long prompt keeps its end, which the continuation follows
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path).to(device).eval()
    return model, tokenizer


def policy_prompt(tokenizer, prompt: str) -> str:
    """The text a completion of `prompt` is conditioned on: the prompt itself, or, for an empty prompt (an
    unconditional campaign), the tokenizer's start token, so that the policy has a first position to start from
    (a GPT-2 tokenizer gives no ids at all for "" and adds no BOS of its own)."""
    if prompt:
        return prompt
    start = tokenizer.bos_token or tokenizer.eos_token
    if not start:
        raise ValueError("an empty prompt needs a start token, and this tokenizer has neither a BOS nor an EOS token")
    return start


def prompt_token_ids(tokenizer, prompt: str) -> list[int]:
    """The ids a completion of `prompt` follows (see `policy_prompt`), without any special tokens added."""
    return tokenizer(policy_prompt(tokenizer, prompt), add_special_tokens=False).input_ids


def _context_length(model: torch.nn.Module, tokenizer) -> int | None:
    length = getattr(model.config, "max_position_embeddings", None)
    if length is None and tokenizer.model_max_length < 1_000_000:  # tokenizers without a limit say ~1e30
        length = tokenizer.model_max_length
    return length


def sample(
    model_path: str | Path,
    prompts: list[str],
    config: SamplingConfig,
    *,
    samples_per_prompt: int = 1,
    progress: Callable[[dict], None] | None = None,
) -> list[Sample]:
    """`samples_per_prompt` continuations of each prompt, grouped by prompt in input order.

    Prompts longer than the model's context minus `max_new_tokens` keep their last tokens. An empty prompt
    samples from the start token (`policy_prompt`); its samples keep the prompt "".
    """
    if config.max_new_tokens < 1 or config.batch_size < 1 or samples_per_prompt < 1:
        raise ValueError("max_new_tokens, batch_size and samples_per_prompt must be >= 1")
    device = pick_device()
    model, tokenizer = load_causal_lm(model_path, device)
    context = _context_length(model, tokenizer)
    max_prompt_tokens = None if context is None else context - config.max_new_tokens
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise ValueError(f"max_new_tokens={config.max_new_tokens} leaves no room for a prompt in {context} positions")
    generate_kwargs = {"do_sample": False}
    if config.temperature > 0:
        generate_kwargs = {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p, "top_k": 0}

    set_seed(config.seed)
    expanded = [prompt for prompt in prompts for _ in range(samples_per_prompt)]
    batches = [expanded[i : i + config.batch_size] for i in range(0, len(expanded), config.batch_size)]
    bar = tqdm(total=len(batches), desc="sampling", unit="batch", disable=progress is not None)
    samples = []
    for step, batch in enumerate(batches, start=1):
        inputs = tokenizer([policy_prompt(tokenizer, prompt) for prompt in batch], return_tensors="pt", padding=True,
                           truncation=max_prompt_tokens is not None, max_length=max_prompt_tokens).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=config.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                return_dict_in_generate=True,
                output_logits=True,
                **generate_kwargs,
            )
        generated = output.sequences[:, inputs.input_ids.shape[1] :]
        logprobs = torch.log_softmax(torch.stack(output.logits, dim=1).float(), dim=-1)
        token_logprobs = logprobs.gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        for row, prompt in enumerate(batch):
            tokens = generated[row].tolist()
            if tokenizer.eos_token_id in tokens:  # what follows the first end-of-text is padding
                tokens = tokens[: tokens.index(tokenizer.eos_token_id) + 1]
            text = tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            samples.append(Sample(prompt=prompt, text=text, token_logprobs=token_logprobs[row, : len(tokens)].tolist()))
        bar.update()
        if progress is not None:
            progress({"step": step, "total": len(batches)})
    bar.close()
    return samples


@dataclass
class _Command:
    """Sample continuations from a local causal LM; prints JSONL."""

    model_path: str = field(metadata={"help": "directory loadable by AutoModelForCausalLM"})
    config: Annotated[SamplingConfig, tyro.conf.arg(name="")]  # its fields as top-level flags
    prompt: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = field(
        default=(), metadata={"help": "a prompt; default: Shakespeare prompts"})
    n_prompts: int = field(default=4, metadata={"help": "how many Shakespeare prompts when no --prompt"})
    samples_per_prompt: int = field(default=1, metadata={"help": "continuations of each prompt"})


def main(argv: list[str] | None = None) -> None:
    from models_rl.data import shakespeare_prompts

    command = tyro.cli(_Command, args=argv, prog="python -m models_rl.sampling")
    config = command.config
    prompts = list(command.prompt) or shakespeare_prompts(command.n_prompts, seed=config.seed)
    for result in sample(command.model_path, prompts, config, samples_per_prompt=command.samples_per_prompt):
        json.dump(dataclasses.asdict(result), sys.stdout)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
