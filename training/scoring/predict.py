"""The prediction both engines share: validated texts -> label, score and per-class probabilities.

Texts go through the bundle's own ``TextPreprocessor`` and the compiled, length-bucketed model
call of ``training.batches``; probabilities are decoded as ``service.decoding.Predictions``
decodes them, so a row scores here exactly as it does over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.batches import predict_encoded
from training.bundle import Bundle

PREDICTION_COLUMNS = ("label", "score")
PROBABILITY_PREFIX = "prob_"
# An input column named like a prediction column is kept under this prefix (IMDB's `label`).
INPUT_PREFIX = "input_"


def probability_columns(labels: Sequence[str]) -> list[str]:
    """Return the per-class probability columns, in the bundle's label order."""
    return [f"{PROBABILITY_PREFIX}{label}" for label in labels]


def output_names(labels: Sequence[str]) -> frozenset[str]:
    """Return every column a prediction adds (input columns of these names get renamed)."""
    return frozenset((*PREDICTION_COLUMNS, *probability_columns(labels)))


def text_problem(values: dict[str, Any], column: str) -> str | None:
    """Return why a row has no text to score, or None when it has one."""
    if column not in values or values[column] is None:
        return f"missing text column {column!r}"
    value = values[column]
    if not isinstance(value, str):
        return f"text column {column!r} is a {type(value).__name__}, not a string"
    return None


class Scorer:
    """One loaded bundle: encode texts, score them, decode the outputs."""

    def __init__(self, bundle: Bundle, *, batch_size: int = 256) -> None:
        self.bundle = bundle
        self.batch_size = batch_size
        self.labels = list(bundle.metadata.labels)
        self.probability_columns = probability_columns(self.labels)
        self.reserved = output_names(self.labels)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Return each text's ids (pure Python: the part another thread can run ahead)."""
        return self.bundle.preprocessor.encode(texts)

    def probabilities(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Return ``(len(encoded), labels)`` class probabilities, in order."""
        if not encoded:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        probabilities = predict_encoded(
            self.bundle.model, self.bundle.preprocessor, encoded, batch_size=self.batch_size
        )
        # As service.decoding does: a row without a defined output (NaN) is uniform.
        return np.nan_to_num(probabilities, nan=1.0 / probabilities.shape[1])

    def columns(self, probabilities: np.ndarray) -> dict[str, list[Any]]:
        """Return the prediction columns (label, score, prob_<label>...) for these rows."""
        best = probabilities.argmax(axis=1)
        rows = probabilities.tolist()
        columns: dict[str, list[Any]] = {
            "label": [self.labels[index] for index in best.tolist()],
            "score": [row[index] for row, index in zip(rows, best.tolist(), strict=True)],
        }
        for position, name in enumerate(self.probability_columns):
            columns[name] = [row[position] for row in rows]
        return columns

    def carried_name(self, column: str) -> str:
        """Return the output name of an input column (renamed when a prediction takes it)."""
        return f"{INPUT_PREFIX}{column}" if column in self.reserved else column

    def output_rows(
        self, inputs: Sequence[dict[str, Any]], probabilities: np.ndarray
    ) -> list[dict[str, Any]]:
        """Return each input row with every column carried through plus its predictions."""
        predicted = self.columns(probabilities)
        names = list(predicted)
        out: list[dict[str, Any]] = []
        for index, values in enumerate(inputs):
            row = {self.carried_name(key): value for key, value in values.items()}
            for name in names:
                row[name] = predicted[name][index]
            out.append(row)
        return out
