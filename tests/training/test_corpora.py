"""Shipped corpora: found by name, well formed, and disjoint from the short-review proxy."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
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


def close_texts(texts: list[str], others: list[str]) -> list[str]:
    """Return the texts that share most words with one of ``others`` (Jaccard >= 0.5), or
    whose words (three or more) are nearly all in it or it in them (80% of the smaller set).

    Word sets as binary sparse rows, so the 8 million pairs of the corpus and the proxy take
    one matrix product instead of a minute of Python set operations.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(binary=True, token_pattern=WORD.pattern).fit(texts + others)
    mine, theirs = vectorizer.transform(texts), vectorizer.transform(others)
    shared = (mine @ theirs.T).toarray()
    sizes_mine = np.asarray(mine.sum(axis=1))  # (texts, 1)
    sizes_theirs = np.asarray(theirs.sum(axis=1)).T  # (1, others)
    union = sizes_mine + sizes_theirs - shared
    smaller = np.minimum(sizes_mine, sizes_theirs)
    close = (shared >= 0.5 * np.maximum(union, 1)) | ((smaller >= 3) & (shared >= 0.8 * smaller))
    return [text for text, row in zip(texts, close.any(axis=1), strict=True) if row]


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
        proxy = [row["text"] for row in csv.DictReader(handle)]
    close = close_texts(dataset.texts, proxy)
    assert not close, f"{len(close)} texts close to a proxy text, e.g. {close[:3]}"


def test_closeness_catches_a_rewording_and_spares_a_different_text() -> None:
    proxy = [
        "The tent went up in ten minutes and stayed dry through a storm.",
        "Best haircut in years, she listened.",
    ]
    texts = [
        "The tent went up in ten minutes and stayed bone dry overnight.",  # most words shared
        "Best haircut in years!",  # all its words inside a proxy text
        "The zipper broke on day one.",
        "Love it.",  # too few words to call contained
    ]
    assert close_texts(texts, proxy) == texts[:2]
