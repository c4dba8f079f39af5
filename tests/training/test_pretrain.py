"""word2vec pre-training: vectors for the tokenizer's own ids, learned from context."""

from __future__ import annotations

import numpy as np
import pytest

from training.errors import ConfigError
from training.pretrain import PretrainConfig, pretrain_embeddings
from training.tokenizer import Tokenizer

pytest.importorskip("gensim")


def _corpus() -> list[str]:
    # "good" and "great" share every context; "awful" lives in other contexts.
    rng = np.random.default_rng(0)
    texts = []
    for _ in range(600):
        word = ("good", "great")[rng.integers(2)]
        texts.append(f"the film was {word} and the cast was {word} too")
        texts.append("the plot was awful and the sound was awful again")
    return texts


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_cover_the_vocabulary_and_learn_from_context() -> None:
    texts = _corpus()
    tokenizer = Tokenizer.fit(texts, num_words=50)
    config = PretrainConfig(epochs=10, workers=1)
    matrix, stats = pretrain_embeddings(texts, tokenizer, 8, config=config, seed=3)

    assert matrix.shape == (tokenizer.vocabulary_size, 8)
    assert matrix.dtype == np.float32
    assert not matrix[0].any()  # padding
    # Every word of the corpus has a learned vector; only the OOV id never occurs.
    assert stats["coverage"] == pytest.approx(1 - 1 / (tokenizer.vocabulary_size - 1), abs=1e-4)
    good, great, awful = (matrix[tokenizer.word_index[w]] for w in ("good", "great", "awful"))
    assert _cosine(good, great) > _cosine(good, awful) + 0.2


def test_rare_ids_get_random_vectors_not_zeros() -> None:
    texts = ["alpha beta gamma", "alpha beta delta"] * 5 + ["rare words once"]
    tokenizer = Tokenizer.fit(texts, num_words=50)
    config = PretrainConfig(epochs=1, min_count=2, workers=1)
    matrix, stats = pretrain_embeddings(texts, tokenizer, 4, config=config)
    assert stats["coverage"] < 1.0
    assert np.abs(matrix[tokenizer.word_index["rare"]]).sum() > 0


def test_nothing_to_learn_from_is_a_clear_error() -> None:
    tokenizer = Tokenizer.fit(["one two"], num_words=10)
    with pytest.raises(ConfigError, match="no unlabelled text"):
        pretrain_embeddings(["one", ""], tokenizer, 4)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ConfigError):
        PretrainConfig(epochs=0)
