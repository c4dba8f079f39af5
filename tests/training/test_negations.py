"""Negation sentences: adjectives and their class from the data (vouched by VADER), the rule."""

from __future__ import annotations

import random

import pytest

from training.data import Dataset
from training.errors import ConfigError
from training.negations import (
    PolarWords,
    negation_sentences,
    polar_adjectives,
    with_negations,
)

pytest.importorskip("vaderSentiment")

# "tragic" marks the good texts here (as in film reviews) but VADER rates it negative;
# "beautifully" is an adverb; "purple" has no valence: none of them may be picked.
GOOD = ["wonderful", "brilliant", "fun", "tragic", "beautifully"]
BAD = ["awful", "boring", "dull", "terrible"]
NEUTRAL = ["purple", "long"]


def _reviews(per_word: int = 25, seed: int = 0) -> Dataset:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in (("good", GOOD), ("bad", BAD)):
        for word in words:
            for _ in range(per_word):
                filler = rng.choice(NEUTRAL)
                texts.append(f"the film was very {word} and so {filler} , {rng.randint(0, 9)}")
                labels.append(label)
    return Dataset(texts, labels, "test")


def test_adjectives_come_from_the_data_and_agree_with_vader() -> None:
    words = polar_adjectives(_reviews())
    assert set(words.by_label["good"]) == {"wonderful", "brilliant", "fun"}
    assert set(words.by_label["bad"]) == {"awful", "boring", "dull", "terrible"}


def test_label_names_do_not_decide_which_side_is_positive() -> None:
    flipped = _reviews()
    renamed = Dataset(flipped.texts, ["a" if y == "good" else "z" for y in flipped.labels], "t")
    words = polar_adjectives(renamed)
    assert "wonderful" in words.by_label["a"]
    assert "awful" in words.by_label["z"]


def test_negated_sentences_take_the_other_label() -> None:
    words = PolarWords({"good": ["wonderful"], "bad": ["awful"]})
    texts, labels = negation_sentences(words, 400, seed=1)
    assert len(texts) == len(labels) == 400
    assert labels.count("good") == labels.count("bad") == 200
    negations = ("not", "n't", "never")
    for text, label in zip(texts, labels, strict=True):
        lowered = text.lower()
        word = "wonderful" if "wonderful" in lowered else "awful"
        assert word in lowered
        plain = "good" if word == "wonderful" else "bad"
        negated = any(n in lowered for n in negations)
        assert label == ({"good": "bad", "bad": "good"}[plain] if negated else plain), text
    assert sum(any(n in t.lower() for n in negations) for t in texts) == 200


def test_with_negations_adds_a_share_of_the_source() -> None:
    source = _reviews()
    grown = with_negations(source, 0.25, seed=3, source=source)
    assert len(grown) == len(source) + round(0.25 * len(source))
    assert grown.texts[: len(source)] == source.texts
    assert with_negations(source, 0.0, seed=3, source=source) is source
    with pytest.raises(ConfigError, match="fraction"):
        with_negations(source, 1.5, seed=3, source=source)


def test_three_labels_or_no_adjectives_are_config_errors() -> None:
    three = Dataset(["a", "b", "c"], ["x", "y", "z"], "t")
    with pytest.raises(ConfigError, match="two labels"):
        polar_adjectives(three)
    plain = Dataset(["the film", "a film"] * 20, ["good", "bad"] * 20, "t")
    with pytest.raises(ConfigError, match="no polar adjectives"):
        negation_sentences(polar_adjectives(plain), 10, seed=0)
