"""Shipped corpora: found by name, well formed, and disjoint from the short-review proxy."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from training.corpora import CORPORA_DIR, corpus_path, shipped_corpora
from training.data import read_labelled, summarize

PROXY = Path(__file__).resolve().parents[2] / "bench" / "data" / "short_reviews.csv"
WORD = re.compile(r"[a-z0-9']+")


def test_a_name_finds_the_shipped_file_and_anything_else_is_a_path(tmp_path: Path) -> None:
    for name in shipped_corpora():
        assert corpus_path(name) == CORPORA_DIR / f"{name}.csv"
    own = tmp_path / "mine.csv"
    assert corpus_path(str(own)) == own
    assert corpus_path("no-such-corpus") == Path("no-such-corpus")


def _words(text: str) -> frozenset[str]:
    return frozenset(WORD.findall(text.lower()))


def _close(first: frozenset[str], second: frozenset[str]) -> bool:
    """Most words shared, or one text's words (three or more) nearly all in the other's."""
    shared = len(first & second)
    smaller = min(len(first), len(second))
    return shared >= 0.5 * len(first | second) or (smaller >= 3 and shared >= 0.8 * smaller)


@pytest.mark.parametrize("name", shipped_corpora())
def test_shipped_corpus_is_balanced_unique_and_unlike_the_proxy(name: str) -> None:
    dataset = read_labelled(corpus_path(name), label_names={"0": "negative", "1": "positive"})
    counts = summarize(dataset)
    assert set(counts) == {"negative", "positive"}
    assert abs(counts["negative"] - counts["positive"]) <= 0.02 * len(dataset)
    normalized = [" ".join(WORD.findall(text.lower())) for text in dataset.texts]
    assert len(set(normalized)) == len(normalized), "duplicate texts"
    # The short-review proxy (bench/data) judges models trained on this corpus, so no text of
    # it may appear here, nor one that shares most of its words with a proxy text.
    with PROXY.open(encoding="utf-8", newline="") as handle:
        proxy = [_words(row["text"]) for row in csv.DictReader(handle)]
    close = [text for text in dataset.texts if any(_close(_words(text), p) for p in proxy)]
    assert not close, f"{len(close)} texts close to a proxy text, e.g. {close[:3]}"


def test_closeness_catches_a_rewording_and_spares_a_different_text() -> None:
    proxy = _words("The tent went up in ten minutes and stayed dry through a storm.")
    assert _close(_words("The tent went up in ten minutes and stayed bone dry overnight."), proxy)
    assert _close(
        _words("Best haircut I've had in years!"),
        _words("Best haircut I've had in years, she listened."),
    )
    assert not _close(_words("The zipper broke on day one."), proxy)
