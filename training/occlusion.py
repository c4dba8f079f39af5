"""Occlusion attributions: how much each token adds to each class's probability.

A token's attribution is ``p(text) - p(text without that token)``, per class. The variants
are fed through the same model call as ``/predict``, so the whole model is explained: the
RNN, its pooling and the NB-SVM n-gram branch (removing a word also removes its n-grams). A
text reduced to nothing is scored as the tokenizer scores an empty text (one OOV id).
``docs/explain.md`` says why occlusion rather than integrated gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from training.batches import to_class_probabilities

METHOD = "occlusion"
METHOD_PARAMETERS = {"removal": "delete", "unit": "token"}
# Raw model outputs for a batch of encoded rows (the predictor's ``predict_encoded``).
RunFn = Callable[[Sequence[Sequence[int]]], np.ndarray]


@dataclass(frozen=True)
class Attribution:
    """One text's class probabilities and its tokens' attributions."""

    probabilities: np.ndarray  # (labels,)
    attributions: np.ndarray  # (tokens, labels): p(text) - p(text without the token)

    @property
    def best(self) -> int:
        """Return the index of the predicted label."""
        return int(self.probabilities.argmax())


def variants(ids: Sequence[int], empty: Sequence[int]) -> list[list[int]]:
    """Return the text itself, then the text without each token in turn."""
    rows = [list(ids) or list(empty)]  # no tokens: scored as /predict scores it
    rows += [list(ids[:i]) + list(ids[i + 1 :]) or list(empty) for i in range(len(ids))]
    return rows


def chunks(rows: list[list[int]], size: int) -> Iterator[list[list[int]]]:
    """Cut ``rows`` into model calls of at most ``size`` rows."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def attribute(outputs: np.ndarray) -> Attribution:
    """Turn the raw outputs of ``variants`` (text first) into an ``Attribution``."""
    probabilities = to_class_probabilities(np.asarray(outputs, dtype=np.float64))
    # A row without a defined output (NaN) says "no idea": uniform, as /predict decodes it.
    probabilities = np.nan_to_num(probabilities, nan=1.0 / probabilities.shape[1])
    return Attribution(probabilities[0], probabilities[0] - probabilities[1:])


def explain_ids(
    ids: Sequence[int], run: RunFn, *, empty: Sequence[int], chunk_rows: int = 64
) -> Attribution:
    """Attribute one encoded text in one go (offline use: the evaluate report, the benchmark)."""
    rows = variants(ids, empty)
    outputs = np.concatenate([run(chunk) for chunk in chunks(rows, chunk_rows)])
    return attribute(outputs)
