"""Negated short sentences, labelled by rule: "not boring" is the other class from "boring".

Film reviews teach negation the wrong way round for the short texts clients send: "not bad",
"never boring" and "wasn't funny" all occur mostly in negative reviews, so a model trained on
them scores "Not bad at all, works fine" and "Never boring" strongly negative (the shipped
model did: docs/model-quality.md). This module writes sentences that pair a polar adjective
with and without a negation, labelled by the one rule that holds across domains: negating a
polar adjective gives the other class. The adjectives and their class come from two sources
that must agree (binary labels only):

* an *adjective* is a token of the training texts that follows "very", "so" or "too" at least
  ``MIN_ADVERB_COUNT`` times and does not end in "ly" (cheap: no tagger);
* its *class* is the side of its smoothed log-count ratio between the two labels' documents
  (the naive Bayes ratio NBSVM uses), kept only when that ratio is strong, the word common,
  and its sign agrees with the word's valence in VADER's lexicon (Hutto & Gilbert 2014: 7,500
  words rated by people, across domains; the ``vaderSentiment`` package of the ``train``
  extra). The agreement drops film-only polarity: "tragic", "gritty" and "haunting" mark
  positive film reviews, but "the hotel was tragic" is no praise.

The sentences are short on purpose (3-8 words, generic subjects from film, product, food and
service reviews), so they add what long reviews lack without moving long-review accuracy.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from training.data import Dataset
from training.errors import ConfigError
from training.tokenizer import WordStandardizer

log = logging.getLogger(__name__)

MIN_ADVERB_COUNT = 5  # "very/so/too WORD" at least this often: WORD is taken as an adjective
MIN_DOCUMENTS = 20  # a word rarer than this has too noisy a ratio
MIN_RATIO = 0.3  # |log-count ratio| at least this: 1.35x more frequent on one side
MIN_VALENCE = 1.0  # |VADER valence| (-4..4) at least this
WORDS_PER_CLASS = 150

_ADVERBS = frozenset({"very", "so", "too"})
# Generic subjects, so the pattern is learned apart from any one domain's nouns.
_SUBJECTS = (
    "it",
    "this",
    "the film",
    "the movie",
    "the show",
    "the story",
    "the acting",
    "the food",
    "the meal",
    "the service",
    "the staff",
    "the place",
    "the product",
    "this phone",
    "the hotel",
    "the room",
    "the app",
    "the price",
)
_PLAIN = ("{s} was {w}.", "{s} is {w}.", "{s} was very {w}.", "{s} is so {w}!", "{w}.")
_NEGATED = (
    "{s} was not {w}.",
    "{s} wasn't {w} at all.",
    "{s} is not {w}.",
    "{s} isn't {w}.",
    "{s} is never {w}.",
    "{s} was not at all {w}.",
    "not {w} at all.",
    "never {w}.",
    "{s} was not {w} in the least.",
    "not {w}, not at all.",
)


@dataclass(frozen=True)
class PolarWords:
    """Adjectives that mark each of the two labels in the training texts."""

    by_label: dict[str, list[str]]


def polar_adjectives(dataset: Dataset, *, per_class: int = WORDS_PER_CLASS) -> PolarWords:
    """Return the adjectives most typical of each label's texts (see the module docstring)."""
    labels = sorted(set(dataset.labels))
    if len(labels) != 2:
        raise ConfigError(f"negation sentences need exactly two labels, got {len(labels)}")
    standardizer = WordStandardizer()
    after_adverb: Counter[str] = Counter()
    documents = {label: Counter[str]() for label in labels}
    totals = Counter(dataset.labels)
    for text, label in zip(dataset.texts, dataset.labels, strict=True):
        tokens = standardizer.tokens(text)
        documents[label].update(set(tokens))
        after_adverb.update(b for a, b in itertools.pairwise(tokens) if a in _ADVERBS)
    first, second = labels
    valence = vader_valence()
    scored: list[tuple[float, str]] = []
    for word, count in after_adverb.items():
        seen = documents[first][word] + documents[second][word]
        if count < MIN_ADVERB_COUNT or seen < MIN_DOCUMENTS or not word.isalpha():
            continue
        if word.endswith("ly") or abs(valence.get(word, 0.0)) < MIN_VALENCE:
            continue
        ratio = math.log((documents[second][word] + 1) / (totals[second] + 2)) - math.log(
            (documents[first][word] + 1) / (totals[first] + 2)
        )
        if abs(ratio) >= MIN_RATIO:
            scored.append((ratio, word))
    # Which label is the positive one: the side most strong words' valence agrees with.
    agreement = sum(math.copysign(1.0, ratio * valence[word]) for ratio, word in scored)
    orientation = 1.0 if agreement >= 0 else -1.0
    kept = sorted((r, w) for r, w in scored if r * orientation * valence[w] > 0)
    return PolarWords(
        {
            first: [word for ratio, word in kept if ratio < 0][:per_class],
            second: [word for ratio, word in reversed(kept) if ratio > 0][:per_class],
        }
    )


def vader_valence() -> dict[str, float]:
    """Return VADER's lexicon: word -> mean valence (-4 very negative .. 4 very positive)."""
    try:
        import vaderSentiment
    except ImportError as exc:  # the `train` extra installs it
        hint = "pip install 'sentiment-service[train]'"
        raise ConfigError(f"negation sentences need VADER's lexicon: {hint}") from exc
    path = Path(vaderSentiment.__file__).with_name("vader_lexicon.txt")
    valence = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                valence[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return valence


def negation_sentences(words: PolarWords, count: int, *, seed: int) -> tuple[list[str], list[str]]:
    """Return ``count`` (texts, labels): half plain ("it was boring."), half negated."""
    labels = sorted(words.by_label)
    if any(not words.by_label[label] for label in labels):
        raise ConfigError(
            "no polar adjectives found for one of the labels: the training texts are too few "
            "or too alike for negation sentences"
        )
    rng = random.Random(seed)
    texts: list[str] = []
    targets: list[str] = []
    for index in range(count):
        side = labels[index % 2]
        other = labels[1 - index % 2]
        word = rng.choice(words.by_label[side])
        negated = (index // 2) % 2 == 1
        template = rng.choice(_NEGATED if negated else _PLAIN)
        text = template.format(s=rng.choice(_SUBJECTS), w=word)
        texts.append(text[0].upper() + text[1:])
        targets.append(other if negated else side)
    return texts, targets


def with_negations(dataset: Dataset, fraction: float, *, seed: int, source: Dataset) -> Dataset:
    """Return ``dataset`` plus ``fraction * len(source)`` rule-labelled negation sentences.

    The adjectives come from ``source`` (the training texts as read, without snippets).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"negation fraction must be in [0, 1], got {fraction}")
    count = round(fraction * len(source))
    if count == 0:
        return dataset
    words = polar_adjectives(source)
    log.info("negation sentences: %d, on the adjectives of %s", count, describe(words))
    texts, labels = negation_sentences(words, count, seed=seed)
    return replace(dataset, texts=[*dataset.texts, *texts], labels=[*dataset.labels, *labels])


def describe(words: PolarWords, *, shown: int = 8) -> str:
    """Return a log line with a few adjectives of each label."""
    return "; ".join(
        f"{label}: {len(found)} ({', '.join(found[:shown])})"
        for label, found in sorted(words.by_label.items())
    )
