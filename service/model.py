"""What the runtime needs of a model: the interface ``Predictor`` and the test fakes implement.

As MLServer's ``MLModel``: load it (after fork), ask whether it is ready, and predict. The
runtime, the batcher and the views depend on this Protocol only, so a fake (``tests/fixtures``)
stands in without TensorFlow and without subclassing the real predictor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from training.bundle import BundleMetadata
from training.spans import TokenSpan


class ServableModel(Protocol):
    """A loaded model behind the service: texts -> ids -> raw outputs."""

    @property
    def ready(self) -> bool:
        """Whether ``load`` finished (model loaded and warm)."""
        ...

    @property
    def metadata(self) -> BundleMetadata:
        """The bundle's metadata: name, version, labels (after ``load``)."""
        ...

    @property
    def oov_index(self) -> int | None:
        """The out-of-vocabulary id, for the drift metric."""
        ...

    @property
    def runs_model_here(self) -> bool:
        """Whether model calls run in this process (false: in the pod's model process)."""
        ...

    @property
    def runtime_name(self) -> str:
        """Which runtime serves ("xla", "graph", or a fake's own name)."""
        ...

    def load(self, *, warmup: bool = True) -> None:
        """Load (and warm up) the model; raise if it cannot serve."""

    def watch_readiness(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` whenever ``ready`` changes after ``load`` (or never, if it cannot)."""

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenize and truncate texts exactly as training did."""
        ...

    def encode_spans(self, text: str) -> list[TokenSpan]:
        """Return the ids ``encode`` gives ``text``, with each token's span in the text."""
        ...

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Return the raw outputs, one row per encoded text."""
        ...
