"""Tiny generated data and models shared by the test packages (never the real IMDB files)."""

from __future__ import annotations

import json
import random
from pathlib import Path

POSITIVE_WORDS = ["great", "wonderful", "loved", "superb", "moving", "brilliant", "fun"]
NEGATIVE_WORDS = ["awful", "boring", "hated", "dull", "terrible", "waste", "bad"]
FILLER_WORDS = ["the", "film", "movie", "plot", "actors", "was", "and", "it", "a", "story"]


def make_review(rng: random.Random, label: int, length: int | None = None) -> str:
    """Return a synthetic review whose sentiment words match ``label`` (1 positive, 0 negative)."""
    cue = POSITIVE_WORDS if label == 1 else NEGATIVE_WORDS
    length = length or rng.randint(3, 25)
    words = [
        rng.choice(cue) if rng.random() < 0.3 else rng.choice(FILLER_WORDS) for _ in range(length)
    ]
    words[rng.randrange(length)] = rng.choice(cue)  # at least one cue word
    return " ".join(words) + rng.choice([".", "!", "", "<br /><br />"])


def make_reviews(count: int, seed: int = 0) -> list[tuple[str, int]]:
    """Return ``count`` balanced (text, label) pairs."""
    rng = random.Random(seed)
    return [(make_review(rng, i % 2), i % 2) for i in range(count)]


def write_jsonl(path: Path, rows: list[tuple[str, int]]) -> Path:
    """Write rows in the IMDB JSON Lines layout."""
    with path.open("w", encoding="utf-8") as handle:
        for index, (text, label) in enumerate(rows):
            handle.write(json.dumps({"id": f"x/{index}", "text": text, "label": label}) + "\n")
    return path


# A model small enough to train in seconds on 2 CPU cores.
TINY_TRAIN_ARGS = [
    "--num-words",
    "64",
    "--maxlen",
    "24",
    "--embedding-dim",
    "8",
    "--units",
    "4",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--patience",
    "3",
    "--learning-rate",
    "0.02",
    "--label-names",
    "0=negative,1=positive",
    "--quiet",
]
