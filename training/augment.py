"""Training-set augmentation: short snippets of long reviews, so short inputs are in-domain.

A model trained only on 230-word reviews has rarely seen a one-sentence text, yet that is what
many clients send ("Arrived broken, never again."). Adding single sentences cut from the
training reviews, labelled with their review's label, teaches it to decide on local evidence.
The labels are noisy (a positive review can contain a negative sentence), which is why this
adds a fraction of snippets beside the full reviews instead of replacing them.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from training.data import Dataset
from training.errors import ConfigError

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|<br\s*/?>", re.IGNORECASE)
SNIPPET_WORDS = (5, 40)  # a snippet is one sentence of this many words


def with_snippets(dataset: Dataset, fraction: float, *, seed: int) -> Dataset:
    """Return ``dataset`` plus ``fraction * len(dataset)`` one-sentence snippets of its texts.

    Each snippet is a random sentence of 5-40 words from a random text, with that text's
    label; a text without such a sentence yields its first 40 words instead.
    """
    if not 0.0 <= fraction <= 4.0:
        raise ConfigError(f"snippet fraction must be in [0, 4], got {fraction}")
    count = round(fraction * len(dataset))
    if count == 0:
        return dataset
    rng = random.Random(seed)
    texts, labels = list(dataset.texts), list(dataset.labels)
    for index in rng.choices(range(len(dataset)), k=count):
        texts.append(_snippet(dataset.texts[index], rng))
        labels.append(dataset.labels[index])
    return replace(dataset, texts=texts, labels=labels)


def sentences(text: str) -> list[str]:
    """Split ``text`` at sentence ends (. ! ? then space) and at <br /> tags."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece.strip()]


def _snippet(text: str, rng: random.Random) -> str:
    low, high = SNIPPET_WORDS
    fitting = [s for s in sentences(text) if low <= len(s.split()) <= high]
    if fitting:
        return rng.choice(fitting)
    return " ".join(text.split()[:high])
