"""What every peer serves: the bundle behind the service's own tokenizer and compiled call.

Peers differ from the service only in the framework around the model (HTTP, batching,
processes), so the comparison measures that and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.decoding import Predictions
from service.predictor import Predictor

WORKERS = 2  # as the service's default; each peer runs this many model processes
COMPILE_TIMEOUT_S = 900


class BundleScorer:
    """Loads the bundle once per process; scores a list of texts in one model call."""

    def __init__(self, model_dir: str | None = None, workers: int = WORKERS) -> None:
        path = Path(model_dir or os.environ.get("SENTIMENT_MODEL_DIR", "models/default"))
        threads = max(1, (os.cpu_count() or 1) // workers)
        self.predictor = Predictor(
            path, intra_op_threads=threads, xla="auto", compile_in_background=True
        )
        self.predictor.load(warmup=True)
        # Measured only once every XLA program is compiled, as the service is.
        self.predictor.all_compiled.wait(COMPILE_TIMEOUT_S)

    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Return one ``{"label", "score", "probabilities"}`` per text."""
        outputs = self.predictor.predict_encoded(self.predictor.encode(texts))
        return Predictions.decode(outputs, self.predictor.metadata.labels).as_dicts()
