"""Decoding model outputs once: probabilities, winners, counts and response rows."""

from __future__ import annotations

import numpy as np
import pytest

from service.decoding import Predictions


def test_sigmoid_column_becomes_two_labels() -> None:
    decoded = Predictions.decode(np.array([[0.9], [0.2]], dtype=np.float32), ["neg", "pos"])
    np.testing.assert_allclose(decoded.probabilities, [[0.1, 0.9], [0.8, 0.2]], atol=1e-6)
    assert decoded.best.tolist() == [1, 0]
    assert decoded.label_counts() == {"pos": 1, "neg": 1}
    rows = decoded.as_dicts()
    assert [row["label"] for row in rows] == ["pos", "neg"]
    assert rows[0]["score"] == pytest.approx(0.9)
    assert rows[1]["probabilities"] == pytest.approx({"neg": 0.8, "pos": 0.2})


def test_softmax_rows_keep_their_order() -> None:
    outputs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], dtype=np.float32)
    decoded = Predictions.decode(outputs, ["a", "b", "c"])
    assert [row["label"] for row in decoded.as_dicts()] == ["b", "a"]
    assert decoded.outputs is outputs  # the raw outputs stay available (TF Serving's API)


def test_undefined_output_is_uniform() -> None:
    decoded = Predictions.decode(np.array([[np.nan]], dtype=np.float32), ["neg", "pos"])
    np.testing.assert_allclose(decoded.probabilities, [[0.5, 0.5]])
