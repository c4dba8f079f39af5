"""Snippet augmentation: one-sentence pieces of training texts, with their text's label."""

from __future__ import annotations

import pytest

from training.augment import SNIPPET_WORDS, sentences, with_snippets
from training.data import Dataset
from training.errors import ConfigError

REVIEWS = Dataset(
    texts=[
        "A slow start. But the second half is a gripping, beautifully acted thriller!<br />Go.",
        "Dull. The jokes fall flat and the plot makes no sense at all, sadly? Skip it.",
        "tiny",
    ],
    labels=["positive", "negative", "negative"],
    source="memory",
)


def test_snippets_are_sentences_of_their_text_with_its_label() -> None:
    augmented = with_snippets(REVIEWS, 2.0, seed=1)
    assert augmented.texts[:3] == REVIEWS.texts
    added = list(zip(augmented.texts[3:], augmented.labels[3:], strict=True))
    assert len(added) == 6
    for snippet, label in added:
        source = next(i for i, text in enumerate(REVIEWS.texts) if snippet in text)
        assert REVIEWS.labels[source] == label
        if source < 2:  # long enough texts give one whole sentence of 5-40 words
            assert SNIPPET_WORDS[0] <= len(snippet.split()) <= SNIPPET_WORDS[1]
            assert "<br" not in snippet


def test_same_seed_same_snippets_and_zero_adds_nothing() -> None:
    assert with_snippets(REVIEWS, 1.0, seed=7) == with_snippets(REVIEWS, 1.0, seed=7)
    assert with_snippets(REVIEWS, 0.0, seed=7) is REVIEWS


@pytest.mark.parametrize("fraction", [-0.1, 5.0])
def test_out_of_range_fraction_is_rejected(fraction: float) -> None:
    with pytest.raises(ConfigError):
        with_snippets(REVIEWS, fraction, seed=0)


def test_sentences_split_at_ends_and_line_breaks() -> None:
    text = "A slow start. But great!<br />Go.  Really?"
    assert sentences(text) == ["A slow start.", "But great!", "Go.", "Really?"]
