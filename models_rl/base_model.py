"""The embedded base policy: a byte-level BPE tokenizer and a small GPT-2-architecture causal LM trained from
scratch on Shakespeare (models_rl.data), saved with save_pretrained so that AutoTokenizer /
AutoModelForCausalLM load it like any other Hugging Face model.

Training stops at `max_steps` or after `time_budget_s` seconds, whichever comes first; the learning rate
decays over whichever of the two is closer. The directory is finished when `base_model.json` (config and
final losses) is there: it is written last, and `ensure_base_model` returns at once when it finds it.

`python -m models_rl.base_model --output-dir /tmp/base` trains with the defaults (about 3.5 minutes on 2 CPU
cores) and prints a sample.
"""

import dataclasses
import fcntl
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
from tqdm import tqdm
import tyro
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from models_rl import EMBEDDED_BASE_MODEL_DIR
from models_rl.data import END_OF_TEXT, sentiment_corpus, shakespeare_corpus
from models_rl.device import cpu_threads, pick_device, set_seed

MARKER = "base_model.json"
ARCHITECTURE_FIELDS = ("vocab_size", "n_layer", "n_head", "n_embd", "block_size")
HELDOUT_FRACTION = 0.02  # the end of the corpus, for the eval loss
EVAL_BATCHES = 8
CORPORA = {"all": shakespeare_corpus, "sentiment": sentiment_corpus}
# The embedded default (models_rl.EMBEDDED_BASE_MODEL_DIR) is shipped with the code: these defaults trained to
# convergence (3,000 steps, no time budget). `embedded_base_model()` finds it; deleting the folder (or
# `manage.py demo --retrain`) rebuilds it the same way.


@dataclass
class BaseModelConfig:
    output_dir: str = field(metadata={"help": "where the tokenizer and model are saved (and found next time)"})
    vocab_size: int = field(default=2000, metadata={"help": "byte-level BPE vocabulary size"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=128, metadata={"help": "hidden size (~1.1 M parameters with the defaults)"})
    block_size: int = field(default=128, metadata={"help": "context length in tokens"})
    batch_size: int = field(default=32, metadata={"help": "sequences per optimizer step"})
    max_steps: int = field(default=3000, metadata={"help": "optimizer steps at most (a GPU gets there first)"})
    learning_rate: float = field(default=3e-3, metadata={"help": "peak AdamW learning rate"})
    warmup_steps: int = field(default=30, metadata={"help": "linear warm-up steps before the cosine decay"})
    time_budget_s: float | None = field(default=190.0, metadata={"help": "stop training after this many seconds"})
    max_chars: int | None = field(default=None, metadata={"help": "train on only the first N characters"})
    corpus: Literal["all", "sentiment"] = field(default="all", metadata={"help": "all of Shakespeare, or only its lines "
                                                                     "with strong sentiment words (models_rl.data.sentiment_corpus)"})
    seed: int = field(default=0, metadata={"help": "seed for initialisation and batches"})


def train_tokenizer(lines: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `lines`, with END_OF_TEXT as its end-of-text, padding and unknown token."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT,
                                   pad_token=END_OF_TEXT, unk_token=END_OF_TEXT)


def _is_finished(output_dir: Path, config: BaseModelConfig) -> bool:
    marker = output_dir / MARKER
    if not marker.exists():
        return False
    saved = json.loads(marker.read_text())["config"]
    mismatched = [name for name in ARCHITECTURE_FIELDS if saved.get(name) != getattr(config, name)]
    if mismatched:
        raise ValueError(f"{output_dir} holds a base model with other {', '.join(mismatched)}: choose another "
                         "output_dir or delete it")
    return True


def ensure_base_model(config: BaseModelConfig, progress: Callable[[dict], None] | None = None) -> Path:
    """The directory of a finished base model for `config`, training it first unless one is already there.

    Holds an exclusive file lock on `<output_dir>/.lock` while training, so concurrent callers (several
    workers) train once and the others wait and reuse it. Raises ValueError when the directory holds a
    model of another architecture.
    """
    output_dir = Path(config.output_dir)
    if _is_finished(output_dir, config):
        return output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_finished(output_dir, config):
            with cpu_threads():
                _train(config, output_dir, progress)
    return output_dir


def embedded_base_model_config(output_dir: str | Path = EMBEDDED_BASE_MODEL_DIR) -> "BaseModelConfig":
    """How the shipped base model was trained: the defaults, to 3,000 steps whatever the time."""
    return BaseModelConfig(output_dir=str(output_dir), max_steps=3000, time_budget_s=None)


def embedded_base_model(progress: Callable[[dict], None] | None = None) -> Path:
    """The shipped, converged Shakespeare base model (trained here first if its folder is missing: ~25 minutes
    on 2 CPU cores, under a minute on a GPU)."""
    return ensure_base_model(embedded_base_model_config(), progress=progress)


def _encode(tokenizer: PreTrainedTokenizerFast, lines: list[str]) -> torch.Tensor:
    """All lines as one token stream, encoded in chunks of lines that the Rust tokenizer runs in parallel."""
    chunks = ["".join(lines[start : start + 500]) for start in range(0, len(lines), 500)]
    encodings = tokenizer.backend_tokenizer.encode_batch_fast(chunks, add_special_tokens=False)
    return torch.from_numpy(np.concatenate([np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]))


def _learning_rate(config: BaseModelConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak over the steps or the time budget."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    done = step / config.max_steps
    if config.time_budget_s:
        done = max(done, elapsed_s / config.time_budget_s)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def _expected_steps(config: BaseModelConfig, step: int, elapsed_s: float) -> int:
    """Steps the run will end at: max_steps, or fewer when the time budget will run out first at this pace."""
    if not config.time_budget_s or elapsed_s <= 0:
        return config.max_steps
    return min(config.max_steps, max(step, round(step * config.time_budget_s / elapsed_s)))


@torch.no_grad()
def _eval_loss(model: GPT2LMHeadModel, heldout: torch.Tensor, config: BaseModelConfig, device: str) -> float:
    """Mean loss over the first EVAL_BATCHES batches of consecutive held-out blocks (the same every time)."""
    model.eval()
    blocks = heldout[: (len(heldout) // config.block_size) * config.block_size].view(-1, config.block_size)
    losses = []
    for start in range(0, min(len(blocks), EVAL_BATCHES * config.batch_size), config.batch_size):
        batch = blocks[start : start + config.batch_size].to(device)
        losses.append(model(batch, labels=batch).loss.item())
    model.train()
    return sum(losses) / len(losses)


def _train(config: BaseModelConfig, output_dir: Path, progress: Callable[[dict], None] | None) -> None:
    started = time.monotonic()
    device = pick_device()
    set_seed(config.seed)

    if config.corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {', '.join(CORPORA)}, got {config.corpus!r}")
    lines = CORPORA[config.corpus](config.max_chars).splitlines(keepends=True)
    tokenizer = train_tokenizer(lines, config.vocab_size)
    tokenizer.model_max_length = config.block_size
    ids = _encode(tokenizer, lines)
    split = int(len(ids) * (1 - HELDOUT_FRACTION))
    train_ids, heldout_ids = ids[:split], ids[split:]
    if len(train_ids) <= config.block_size or len(heldout_ids) < config.block_size:
        raise ValueError(f"{len(ids)} tokens are too few for block_size={config.block_size}")

    model_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.block_size, n_embd=config.n_embd, n_layer=config.n_layer,
        n_head=config.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # too little training to overfit
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.95), weight_decay=0.1)
    generator = torch.Generator().manual_seed(config.seed)
    eval_loss_before = _eval_loss(model, heldout_ids, config, device)

    bar = tqdm(total=config.max_steps, desc="base model", unit="step", disable=progress is not None)
    train_started = time.monotonic()
    smoothed_loss = None
    step = 0
    while step < config.max_steps:
        elapsed = time.monotonic() - train_started
        if config.time_budget_s is not None and elapsed >= config.time_budget_s:
            break
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step, elapsed)
        starts = torch.randint(0, len(train_ids) - config.block_size, (config.batch_size,), generator=generator)
        batch = torch.stack([train_ids[s : s + config.block_size] for s in starts.tolist()]).to(device)
        loss = model(batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        smoothed_loss = loss.item() if smoothed_loss is None else 0.95 * smoothed_loss + 0.05 * loss.item()
        total = _expected_steps(config, step, time.monotonic() - train_started)
        bar.total = total
        bar.set_postfix(loss=f"{smoothed_loss:.3f}", refresh=False)
        bar.update()
        if progress is not None:
            progress({"step": step, "total": total, "train/loss": loss.item(),
                      "train/learning_rate": optimizer.param_groups[0]["lr"]})
    bar.close()
    train_seconds = time.monotonic() - train_started

    metrics = {
        "train/loss": smoothed_loss,
        "train/steps": step,
        "train/tokens": step * config.batch_size * config.block_size,
        "train/tokens_per_s": step * config.batch_size * config.block_size / max(train_seconds, 1e-9),
        "train/seconds": time.monotonic() - started,
        "eval/loss_before": eval_loss_before,
        "eval/loss": _eval_loss(model, heldout_ids, config, device),
        "model/parameters": sum(p.numel() for p in model.parameters()),
        "model/device": device,
    }
    tokenizer.save_pretrained(output_dir)
    model.save_pretrained(output_dir)
    marker_tmp = output_dir / f".{MARKER}.tmp"
    marker_tmp.write_text(json.dumps({"config": dataclasses.asdict(config), "metrics": metrics}, indent=2))
    os.replace(marker_tmp, output_dir / MARKER)  # the marker appears whole, and last


def main(argv: list[str] | None = None) -> None:
    from models_rl.data import shakespeare_prompts
    from models_rl.sampling import SamplingConfig, sample

    config = tyro.cli(BaseModelConfig, args=argv, prog="python -m models_rl.base_model",
                      description=__doc__.split("\n\n")[0])
    path = ensure_base_model(config)
    print(json.dumps(json.loads((path / MARKER).read_text())["metrics"], indent=2))
    for result in sample(path, shakespeare_prompts(3, seed=1), SamplingConfig(max_new_tokens=60, temperature=0.8)):
        print(f"\n>>> {result.prompt}{result.text}")


if __name__ == "__main__":
    main()
