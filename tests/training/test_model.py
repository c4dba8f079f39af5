"""Model builder: every cell type builds, trains a step, and ignores padding length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.errors import ConfigError
from training.model import CELLS, POOLINGS, ModelConfig, build_model
from training.nbsvm import BIGRAM_HASH_MULTIPLIER

keras = pytest.importorskip("keras")

SHORT = np.array([[5, 6, 7]], dtype=np.int32)
PADDED = np.array([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0]], dtype=np.int32)


def _tiny(**overrides: object) -> ModelConfig:
    fields: dict[str, object] = {
        "vocabulary_size": 20,
        "num_classes": 2,
        "units": 3,
        "embedding_dim": 4,
    }
    return ModelConfig(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_each_cell_builds_and_fits(cell: str, bidirectional: bool) -> None:
    model = build_model(_tiny(cell=cell, bidirectional=bidirectional, layers=2))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(PADDED.repeat(4, axis=0), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.output_shape == (None, 1)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", CELLS)
def test_scores_do_not_depend_on_pad_length(cell: str, pooling: str) -> None:
    model = build_model(_tiny(cell=cell, pooling=pooling))
    short = np.asarray(model(SHORT, training=False))
    padded = np.asarray(model(PADDED, training=False))
    np.testing.assert_allclose(short, padded, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_ngram_branch_ignores_pad_length(cell: str) -> None:
    model = build_model(_tiny(cell=cell, ngram_buckets=32, ngram_dim=3))
    short = np.asarray(model(SHORT, training=False))
    padded = np.asarray(model(PADDED, training=False))
    np.testing.assert_allclose(short, padded, atol=1e-6)


def test_ngram_bag_is_the_mean_of_word_and_bigram_rows() -> None:
    from training.layers import HashedNgramBag

    bag = HashedNgramBag(vocabulary_size=20, buckets=7, output_dim=2)
    bag.build((None, None))
    table = np.arange(27 * 2, dtype="float32").reshape(27, 2)
    bag.set_weights([table])
    ids = np.array([[5, 6, 7, 0, 0]], dtype=np.int32)
    bigram_rows = [20 + (a * BIGRAM_HASH_MULTIPLIER + b) % 7 for a, b in ((5, 6), (6, 7))]
    expected = table[[5, 6, 7, *bigram_rows]].mean(axis=0)
    np.testing.assert_allclose(np.asarray(bag(ids))[0], expected, rtol=1e-6)


def test_ngram_branch_survives_save_and_load(tmp_path: Path) -> None:
    model = build_model(_tiny(ngram_buckets=32, ngram_dim=3))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded(PADDED), model(PADDED), atol=1e-7)


def test_embedding_weights_initialize_the_embedding() -> None:
    matrix = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    model = build_model(_tiny(), embedding_weights=matrix)
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], matrix)
    with pytest.raises(ConfigError, match="shape"):
        build_model(_tiny(), embedding_weights=matrix[:, :3])


def test_multiclass_uses_softmax() -> None:
    model = build_model(_tiny(num_classes=4))
    scores = np.asarray(model(PADDED, training=False))
    assert scores.shape == (1, 4)
    assert scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_l2_adds_regularization_losses() -> None:
    model = build_model(_tiny(l2=1e-3))
    model(PADDED, training=False)
    assert len(model.losses) > 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"cell": "transformer"},
        {"pooling": "attention"},
        {"num_classes": 1},
        {"units": 0},
        {"dropout": 1.0},
        {"l2": -1.0},
        {"ngram_buckets": -1},
        {"ngram_dim": 0},
        {"learned_vocabulary_size": 21},
        {"word_vectors_dim": -1},
        {"word_dropout": 1.0},
    ],
)
def test_invalid_config_is_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        _tiny(**overrides)


# -- general-domain word vectors beside the learned embedding --------------------------------

# ids 0..19: 0 padding, 1 OOV, 2..11 learned, 12..19 known by their frozen vector only.
LEARNED = 12


def _with_vectors(**overrides: object) -> tuple[ModelConfig, np.ndarray]:
    config = _tiny(
        learned_vocabulary_size=LEARNED, word_vectors_dim=3, word_vectors_projection=2, **overrides
    )
    table = np.random.default_rng(1).normal(size=(20, 3)).astype("float32")
    table[:2] = 0.0
    return config, table


def test_word_vectors_ignore_pad_length_and_survive_save_and_load(tmp_path: Path) -> None:
    config, table = _with_vectors(ngram_buckets=16, ngram_dim=2, word_dropout=0.3)
    model = build_model(config, word_vectors=table)
    ids = np.array([[5, 14, 7]], dtype=np.int32)
    padded = np.pad(ids, ((0, 0), (0, 7)))
    np.testing.assert_allclose(model(ids, training=False), model(padded, training=False), atol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded(padded), model(padded), atol=1e-7)


def test_ids_past_the_learned_vocabulary_differ_only_by_their_vectors() -> None:
    from training.word_vectors import quantize

    config, table = _with_vectors()
    model = build_model(config, word_vectors=table)
    a, b = np.array([[5, 14]], dtype=np.int32), np.array([[5, 15]], dtype=np.int32)
    assert not np.allclose(model(a), model(b))  # the frozen vectors tell 14 and 15 apart
    table[15] = table[14]
    model.get_layer("word_vectors").set_weights(list(quantize(table)))
    np.testing.assert_allclose(model(a), model(b), atol=1e-6)  # and nothing else does


def test_frozen_vectors_are_the_quantized_table_and_never_train() -> None:
    config, table = _with_vectors(word_dropout=0.5)
    model = build_model(config, word_vectors=table)
    layer = model.get_layer("word_vectors")
    ids = np.array([[2, 13, 19, 0]], dtype=np.int32)
    np.testing.assert_allclose(np.asarray(layer(ids))[0], table[ids[0]], atol=0.02)
    before = [np.array(w) for w in layer.get_weights()]
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(np.tile(ids, (8, 1)), np.array([0, 1] * 4), epochs=2, verbose=0)
    for old, new in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_word_dropout_only_while_training() -> None:
    from training.layers import LearnedVocabulary

    layer = LearnedVocabulary(LEARNED, dropout=0.5, seed=3)
    ids = np.array([[0, 2, 5, 11, 12, 19]] * 200, dtype=np.int32)
    served = np.asarray(layer(ids, training=False))
    np.testing.assert_array_equal(served[0], [0, 2, 5, 11, 1, 1])  # past the vocabulary: OOV
    trained = np.asarray(layer(ids, training=True))
    assert np.all(trained[:, 0] == 0)  # padding is never dropped
    dropped = np.mean(trained[:, 1:4] == 1)
    assert 0.4 < dropped < 0.6


def test_missing_word_vector_table_is_a_config_error() -> None:
    config, table = _with_vectors()
    with pytest.raises(ConfigError, match="no word vector table"):
        build_model(config)
    with pytest.raises(ConfigError, match="shape"):
        build_model(config, word_vectors=table[:, :2])


def test_folding_the_projection_keeps_the_scores(tmp_path: Path) -> None:
    from training.model import fold_word_vectors, folded_config

    config, table = _with_vectors(ngram_buckets=16, ngram_dim=2)
    model = build_model(config, word_vectors=table)
    ids = np.random.default_rng(2).integers(0, 20, size=(16, 9)).astype("int32")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(ids, np.arange(16) % 2, epochs=2, verbose=0)  # weights away from their init
    folded = fold_word_vectors(model, config)
    served = folded_config(config)
    assert (served.word_vectors_dim, served.word_vectors_projection) == (2, 0)
    assert "word_vectors_projection" not in [layer.name for layer in folded.layers]
    assert folded.get_layer("word_vectors").output_dim == 2
    np.testing.assert_allclose(folded(ids), model(ids), atol=2e-3)
    folded.save(tmp_path / "folded.keras")
    loaded = keras.saving.load_model(tmp_path / "folded.keras")
    np.testing.assert_allclose(loaded(ids), folded(ids), atol=1e-7)
    plain = build_model(_tiny())
    assert fold_word_vectors(plain, _tiny()) is plain  # nothing to fold
