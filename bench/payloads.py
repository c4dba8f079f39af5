"""Request bodies for the load generator, from real IMDB reviews (one JSON body per line)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from training.data import read_texts

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
SHORT_WORDS = (10, 20)  # a one-sentence review
LISTED = "-listed"  # suffix of a payload whose bodies are {"texts": [text]}
V2 = "-v2"  # suffix of a payload of V2 inference requests


def v2_body(text: str) -> dict[str, object]:
    """Return a V2 inference request for one text."""
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]}


def short_sentences(texts: list[str]) -> list[str]:
    """Return the first sentence of each review that has 10-20 words."""
    found = []
    for text in texts:
        first = _SENTENCE_END.split(_HTML_BREAK.sub(" ", text).strip(), maxsplit=1)[0]
        if SHORT_WORDS[0] <= len(first.split()) <= SHORT_WORDS[1]:
            found.append(first)
    return found


def write_bodies(path: Path, bodies: list[dict[str, object]]) -> Path:
    """Write one compact JSON body per line."""
    path.write_text("\n".join(json.dumps(body, separators=(",", ":")) for body in bodies) + "\n")
    return path


def build_payloads(
    data: Path, out_dir: Path, *, count: int = 2000, seed: int = 0
) -> dict[str, Path]:
    """Write the payload files: single IMDB texts, single short texts, 32-text requests."""
    texts = read_texts(data)
    rng = random.Random(seed)
    rng.shuffle(texts)
    short = short_sentences(texts)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "imdb": write_bodies(out_dir / "imdb.jsonl", [{"text": t} for t in texts[:count]]),
        "short": write_bodies(out_dir / "short.jsonl", [{"text": t} for t in short[:count]]),
        # The same single texts as one-element lists, for peers whose batchable API takes lists.
        f"imdb{LISTED}": write_bodies(
            out_dir / "imdb-listed.jsonl", [{"texts": [t]} for t in texts[:count]]
        ),
        f"short{LISTED}": write_bodies(
            out_dir / "short-listed.jsonl", [{"texts": [t]} for t in short[:count]]
        ),
        # The same single texts as Open Inference Protocol (V2) requests, JSON form.
        f"imdb{V2}": write_bodies(out_dir / "imdb-v2.jsonl", [v2_body(t) for t in texts[:count]]),
        f"short{V2}": write_bodies(out_dir / "short-v2.jsonl", [v2_body(t) for t in short[:count]]),
        "multi32": write_bodies(
            out_dir / "multi32.jsonl",
            [{"texts": texts[i : i + 32]} for i in range(0, min(len(texts), count * 8), 32)],
        ),
    }
