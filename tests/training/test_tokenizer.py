"""Tokenizer: standardization, fitting, encoding, JSON round trips and Keras legacy parity."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.errors import TokenizerError
from training.tokenizer import (
    KerasLegacyStandardizer,
    Tokenizer,
    WordStandardizer,
)

legacy_text = pytest.importorskip("tensorflow.keras.preprocessing.text")

CORPUS = [
    "A wonderful, wonderful film!<br /><br />I loved it.",
    "Terrible acting... I didn't like it at all?!",
    "The plot was fine; the music was great.",
    "Ünïcödé wörds and 数字 123 with émojis 🎬 too",
    "tabs\tand\nnewlines and-dashes and under_scores",
]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Great film!", ["great", "film", "!"]),
        ("line<br />break<BR>again<br/>", ["line", "break", "again"]),
        ("don't stop", ["don't", "stop"]),
        ("wow!!", ["wow", "!", "!"]),
        ("  ", []),
        ("", []),
        ("Ça VA", ["ça", "va"]),
    ],
)
def test_word_standardizer(text: str, tokens: list[str]) -> None:
    assert WordStandardizer().tokens(text) == tokens


def test_fit_orders_by_frequency_then_first_seen() -> None:
    tokenizer = Tokenizer.fit(["b a a", "c b a"], oov_token="<oov>")
    assert tokenizer.word_index == {"<oov>": 1, "a": 2, "b": 3, "c": 4}
    assert tokenizer.encode("a b c z") == [2, 3, 4, 1]


def test_num_words_maps_rare_words_to_oov() -> None:
    tokenizer = Tokenizer.fit(["a a a b b c"], num_words=3, oov_token="<oov>")
    assert tokenizer.encode("a b c unknown") == [2, 1, 1, 1]
    assert tokenizer.vocabulary_size == 3


def test_without_oov_unknown_words_are_dropped() -> None:
    tokenizer = Tokenizer.fit(["a b"], oov_token=None)
    assert tokenizer.encode("a x b") == [1, 2]


def test_classic_keras_example() -> None:
    tokenizer = Tokenizer.fit(
        ["The earth is an awesome place live"],
        oov_token=None,
        standardizer=KerasLegacyStandardizer(),
    )
    assert tokenizer.encode("The earth is an great place live") == [1, 2, 3, 4, 6, 7]


def _keras_tokenizer(**kwargs: object) -> object:
    tokenizer = legacy_text.Tokenizer(**kwargs)
    tokenizer.fit_on_texts(CORPUS)
    return tokenizer


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"oov_token": "<OOV>"},
        {"num_words": 8, "oov_token": "<OOV>"},
        {"num_words": 8},
        {"lower": False, "filters": "!?."},
        {"char_level": True, "oov_token": "?"},
        {"split": "|", "filters": ""},
    ],
)
def test_loads_keras_legacy_json_and_encodes_identically(kwargs: dict[str, object]) -> None:
    keras_tokenizer = _keras_tokenizer(**kwargs)
    ours = Tokenizer.from_json(keras_tokenizer.to_json())  # type: ignore[attr-defined]
    probes = [*CORPUS, "never seen words here!", "Wonderful MUSIC, great plot"]
    expected = keras_tokenizer.texts_to_sequences(probes)  # type: ignore[attr-defined]
    assert ours.encode_batch(probes) == expected
    # ... and keeps doing so after a round trip through our own format.
    assert Tokenizer.from_json(ours.to_json()).encode_batch(probes) == expected


def test_legacy_classic_example_via_json() -> None:
    keras_tokenizer = legacy_text.Tokenizer()
    keras_tokenizer.fit_on_texts(["The earth is an awesome place live"])
    ours = Tokenizer.from_json(keras_tokenizer.to_json())
    assert ours.encode("The earth is an great place live") == [1, 2, 3, 4, 6, 7]


def test_save_and_load(tmp_path: pytest.TempPathFactory) -> None:
    tokenizer = Tokenizer.fit(CORPUS, num_words=10)
    path = tmp_path / "tokenizer.json"  # type: ignore[operator]
    tokenizer.save(path)
    loaded = Tokenizer.load(path)
    assert loaded.encode_batch(CORPUS) == tokenizer.encode_batch(CORPUS)
    assert loaded.vocabulary_size == tokenizer.vocabulary_size


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"format": "other"}', "unrecognized"),
        ('{"format": "sentiment-tokenizer", "version": 99}', "version 99"),
        ('{"format": "sentiment-tokenizer", "version": 1}', "lacks the key"),
        ('{"class_name": "Tokenizer", "config": {}}', "word_index"),
        (
            json.dumps(
                {
                    "format": "sentiment-tokenizer",
                    "version": 1,
                    "word_index": {"a": "x"},
                    "standardizer": {"kind": "words"},
                }
            ),
            "integer ids",
        ),
        (
            json.dumps(
                {
                    "format": "sentiment-tokenizer",
                    "version": 1,
                    "word_index": {},
                    "standardizer": {"kind": "bpe"},
                }
            ),
            "unknown standardizer",
        ),
    ],
)
def test_bad_json_is_a_clear_error(payload: str, message: str) -> None:
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.from_json(payload)


# -- properties -------------------------------------------------------------------------------

FITTED = Tokenizer.fit(CORPUS, num_words=12)
ROUND_TRIPPED = Tokenizer.from_json(FITTED.to_json())


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_unicode_encodes_in_range_and_survives_round_trip(text: str) -> None:
    ids = FITTED.encode(text)
    assert all(0 < i < FITTED.vocabulary_size for i in ids)
    assert ROUND_TRIPPED.encode(text) == ids


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=8), st.integers(1, 50))
def test_fit_on_anything_keeps_ids_in_range(texts: list[str], num_words: int) -> None:
    tokenizer = Tokenizer.fit(texts, num_words=num_words)
    for text in texts:
        assert all(0 < i < tokenizer.vocabulary_size for i in tokenizer.encode(text))
    assert Tokenizer.from_json(tokenizer.to_json()).encode_batch(texts) == tokenizer.encode_batch(
        texts
    )
