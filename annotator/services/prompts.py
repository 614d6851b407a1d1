"""A campaign's prompts: where they come from is always a choice someone made, never a silent default."""

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from annotator.core.errors import InvalidInput
from annotator.models import Campaign, Prompt, PromptSplit
from annotator.rounds.settings import round_settings

PLAYS_SOURCE = "shakespeare"


@transaction.atomic
def campaign_prompts_from_plays(*, campaign: Campaign, train: int | None = None, heldout: int | None = None,
                                seed: int | None = None) -> int:
    """Add `train + heldout` openings of lines cut from the Shakespeare texts (the first `heldout` of the seeded
    draw held out, never trained on); each left out is the campaign's own (`train_prompts`, `heldout_prompts`,
    `seed` of its round settings). Refused when the campaign already has prompts, so a rerun adds nothing twice.
    Returns how many were added."""
    sizes = round_settings(campaign=campaign)
    train = sizes.train_prompts if train is None else train
    heldout = sizes.heldout_prompts if heldout is None else heldout
    seed = sizes.seed if seed is None else seed
    if train < 1 or heldout < 0:
        raise InvalidInput("Ask for at least 1 train prompt and 0 or more held-out ones.")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    existing = Prompt.objects.filter(campaign=campaign).count()
    if existing:
        raise InvalidInput(f"{campaign.name!r} already has {existing} prompts; the plays' are added only to a "
                           "campaign without any.")
    from models_rl.data import shakespeare_prompts  # plain data; the ML stack loads only when needed

    texts = shakespeare_prompts(train + heldout, seed=seed)
    Prompt.objects.bulk_create(
        Prompt(campaign=campaign, text=text, source=PLAYS_SOURCE,
               split=PromptSplit.HELDOUT if index < heldout else PromptSplit.TRAIN)
        for index, text in enumerate(texts)
    )
    return len(texts)


MAX_PROMPT_FILE_BYTES = 20 * 1024 * 1024  # a 20 MB file holds ~100,000 prompts; larger ones belong in a dataset folder
MAX_PROMPT_CHARS = 4000
SOURCE_CHARS = Prompt._meta.get_field("source").max_length
PROMPT_FILE_KINDS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".txt": "text"}


@dataclass(frozen=True)
class PromptImport:
    """What a file import added, and each line it skipped with the reason (line numbers count from 1)."""

    train: int
    heldout: int
    skipped: list[tuple[int, str]]


def _messages_prompt(messages) -> str | None:
    """TRL's conversational format: the turns up to the last user turn, their contents one per line."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                 for m in messages):
        return None
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    return None if last_user is None else "\n".join(m["content"] for m in messages[: last_user + 1])


def _file_rows(text: str, kind: str, column: str | None) -> list[tuple[int, str | None, str]]:
    """(line number, prompt or None, why it is None) for each non-blank row of the file."""
    rows: list[tuple[int, str | None, str]] = []
    if kind == "text":
        return [(number, line.strip(), "") for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if kind == "csv":
        reader = csv.DictReader(io.StringIO(text))
        wanted = column or "prompt"
        if wanted not in (reader.fieldnames or []):
            columns = ", ".join(reader.fieldnames or []) or "none"
            raise InvalidInput(f"The CSV has no column {wanted!r}; its columns: {columns}. Name the prompts' column.")
        return [(reader.line_num, (row.get(wanted) or "").strip() or None, "empty") for row in reader]
    field = column or "prompt"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((number, None, f"not JSON ({exc.msg})"))
            continue
        if not isinstance(record, dict):
            rows.append((number, None, "not a JSON object"))
        elif isinstance(record.get(field), str):
            rows.append((number, record[field].strip() or None, "empty"))
        elif "messages" in record or isinstance(record.get(field), list):
            prompt = _messages_prompt(record.get("messages", record.get(field)))
            rows.append((number, prompt, "messages without a user turn"))
        else:
            rows.append((number, None, f"no {field!r} text and no 'messages'"))
    return rows


def prompt_file_size_check(*, name: str, size: int) -> None:
    """Refuse a prompt file over MAX_PROMPT_FILE_BYTES; callers holding an upload check its size before reading it."""
    if size > MAX_PROMPT_FILE_BYTES:
        raise InvalidInput(f"{name!r} is {size / 2**20:.1f} MB; files of up to "
                           f"{MAX_PROMPT_FILE_BYTES // 2**20} MB are taken.")


def _heldout_fraction_check(heldout_fraction: float) -> None:
    if not 0 <= heldout_fraction < 1:
        raise InvalidInput("The held-out fraction must be at least 0 and below 1.")


@transaction.atomic
def campaign_prompts_from_file(*, campaign: Campaign, data: bytes, name: str, column: str | None = None,
                               heldout_fraction: float = 0.1, seed: int = 0) -> PromptImport:
    """Add the prompts of a JSONL (a `prompt` text field, or TRL's conversational `messages`), CSV (a `prompt` or
    named column) or plain-text (one a line) file, kind by its name's ending. Blank, over-long and duplicate
    prompts (within the file or already in the campaign) are skipped with the reason; the rest are split by a
    seeded shuffle, `heldout_fraction` of them held out. All or nothing: a refused file adds no prompt."""
    kind = PROMPT_FILE_KINDS.get(Path(name).suffix.lower())
    if kind is None:
        raise InvalidInput(f"{name!r}: name a .jsonl, .csv or .txt file.")
    prompt_file_size_check(name=name, size=len(data))
    _heldout_fraction_check(heldout_fraction)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name!r} is not UTF-8 text (line {line}, byte {exc.start}).") from exc
    return _prompts_add(campaign=campaign, rows=_file_rows(text, kind, column), name=name,
                        source=f"file:{Path(name).name}"[:SOURCE_CHARS], heldout_fraction=heldout_fraction, seed=seed)


def _prompts_add(*, campaign: Campaign, rows, name: str, source: str, heldout_fraction: float,
                 seed: int, unit: str = "line") -> PromptImport:
    """Add the prompts of (number, prompt or None, why) rows (numbers count `unit`s): the file and dataset
    imports' rules. Takes the campaign's row lock, so two imports into one campaign do not both add a prompt; the
    caller's transaction makes it all or nothing."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    known = set(Prompt.objects.filter(campaign=campaign).values_list("text", flat=True))
    first_line: dict[str, int] = {}
    prompts, skipped = [], []
    for number, prompt, why in rows:
        if prompt is None:
            skipped.append((number, why))
        elif len(prompt) > MAX_PROMPT_CHARS:
            skipped.append((number, f"longer than {MAX_PROMPT_CHARS} characters"))
        elif prompt in known:
            skipped.append((number, "already in the campaign"))
        elif prompt in first_line:
            skipped.append((number, f"the same as {unit} {first_line[prompt]}"))
        else:
            first_line[prompt] = number
            prompts.append(prompt)
    if not prompts:
        why = ": it is empty."
        if skipped:
            why = f" ({len(skipped)} {unit}s skipped, the first: {unit} {skipped[0][0]}, {skipped[0][1]})."
        raise InvalidInput(f"{name!r} holds no prompt to add{why}")
    order = random.Random(seed).sample(range(len(prompts)), len(prompts))
    heldout = set(order[: round(len(prompts) * heldout_fraction)])
    Prompt.objects.bulk_create(
        Prompt(campaign=campaign, text=prompt, source=source,
               split=PromptSplit.HELDOUT if index in heldout else PromptSplit.TRAIN)
        for index, prompt in enumerate(prompts)
    )
    return PromptImport(train=len(prompts) - len(heldout), heldout=len(heldout), skipped=skipped)


MAX_DATASET_ROWS = 1_000_000  # a larger dataset is a sampling job, not a campaign's prompt list


def _dataset_rows(dataset, column: str) -> list[tuple[int, str | None, str]]:
    """(row number from 1, prompt or None, why it is None) for each row's `column`: text, or TRL's messages."""
    rows: list[tuple[int, str | None, str]] = []
    for number, value in enumerate(dataset[column], start=1):
        if isinstance(value, str):
            rows.append((number, value.strip() or None, "empty"))
        elif isinstance(value, list):
            rows.append((number, _messages_prompt(value), "messages without a user turn"))
        else:
            rows.append((number, None, f"not text ({type(value).__name__})"))
    return rows


@transaction.atomic
def campaign_prompts_from_dataset_dir(*, campaign: Campaign, path: str, column: str | None = None,
                                      heldout_fraction: float = 0.1, seed: int = 0) -> PromptImport:
    """Add the prompts of a folder written by `datasets.Dataset.save_to_disk` (or a DatasetDict's, whose "train"
    split is read) on this server: `column` (default "prompt") holds text or TRL's conversational messages. The
    file import's rules: blank, over-long and duplicate rows skipped with their row number and reason, a seeded
    held-out share, all or nothing."""
    _heldout_fraction_check(heldout_fraction)
    column = column or "prompt"
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"{path!r}: no such folder on this server.")
    import datasets  # large; loaded only for this import

    try:
        dataset = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(f"{path!r} is not a dataset saved with datasets' save_to_disk ({exc}).") from None
    if isinstance(dataset, datasets.DatasetDict):
        if "train" not in dataset:
            raise InvalidInput(f"{path!r} holds the splits {', '.join(dataset)}; a \"train\" split is read.")
        dataset = dataset["train"]
    if column not in dataset.column_names:
        raise InvalidInput(f"The dataset has no column {column!r}; its columns: "
                           f"{', '.join(dataset.column_names) or 'none'}. Name the prompts' column.")
    if dataset.num_rows > MAX_DATASET_ROWS:
        raise InvalidInput(f"{path!r} has {dataset.num_rows:,} rows; datasets of up to {MAX_DATASET_ROWS:,} are "
                           "taken: save a sample of it.")
    return _prompts_add(campaign=campaign, rows=_dataset_rows(dataset, column), name=path,
                        source=f"dataset:{folder.name}"[:SOURCE_CHARS], heldout_fraction=heldout_fraction, seed=seed,
                        unit="row")
