"""Model outputs -> labelled predictions, decoded once per request; views only shape them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.batches import to_class_probabilities


@dataclass(frozen=True)
class Predictions:
    """One request's rows: raw outputs, per-label probabilities and each row's winning label."""

    labels: tuple[str, ...]
    outputs: np.ndarray  # what the model returned (TF Serving's API answers these)
    probabilities: np.ndarray  # (rows, labels), each row sums to 1
    best: np.ndarray  # (rows,) index of the most probable label

    @classmethod
    def decode(cls, outputs: np.ndarray, labels: Sequence[str]) -> Predictions:
        """Decode raw outputs (a sigmoid column or softmax rows) for the bundle's labels."""
        probabilities = to_class_probabilities(outputs)
        # A row without a defined output (NaN) says "no idea": uniform, never an error. The
        # check first: nan_to_num on every request cost ~3% of a short-text worker's time.
        if np.isnan(probabilities).any():
            probabilities = np.nan_to_num(probabilities, nan=1.0 / probabilities.shape[1])
        return cls(tuple(labels), outputs, probabilities, probabilities.argmax(axis=1))

    def label_counts(self) -> Counter[str]:
        """Return how many rows each label won (the predictions metric)."""
        return Counter(self.labels[index] for index in self.best.tolist())

    def as_dicts(self) -> list[dict[str, Any]]:
        """Return one ``{"label", "score", "probabilities"}`` per row, in order."""
        labels = self.labels
        return [
            {
                "label": labels[best],
                "score": row[best],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
            for best, row in zip(self.best.tolist(), self.probabilities.tolist(), strict=True)
        ]
