"""Model builder: every cell type builds, trains a step, and ignores padding length."""

from __future__ import annotations

import numpy as np
import pytest

from training.errors import ConfigError
from training.model import CELLS, POOLINGS, ModelConfig, build_model

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
    ],
)
def test_invalid_config_is_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        _tiny(**overrides)
