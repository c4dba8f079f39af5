"""A loaded bundle behind one compiled call: encoded texts -> class probabilities.

Preprocessing is the training package's own ``TextPreprocessor``, read from the bundle, so
serving encodes exactly as training did. Batches are padded only to the bucket of their
longest text; ``load()`` checks that this gives the same scores as padding to ``maxlen`` and
falls back to ``maxlen`` for a bundle where it would not (a model without masking, say).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.batches import to_class_probabilities
from training.bundle import Bundle, BundleMetadata, load_bundle
from training.preprocessing import bucket_for, length_buckets

log = logging.getLogger(__name__)

# Bucket padding must reproduce maxlen padding to this tolerance, else it is switched off.
BUCKET_TOLERANCE = 1e-5


class Predictor:
    """Holds one model per worker; ``load()`` it after fork, then call ``predict_encoded``."""

    def __init__(
        self,
        model_dir: Path,
        *,
        bucketing: bool = True,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        warmup_batch_sizes: Sequence[int] = (1, 128),
    ) -> None:
        self.model_dir = model_dir
        self.bucketing = bucketing
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.warmup_batch_sizes = tuple(warmup_batch_sizes)
        self._ready = threading.Event()
        self._bundle: Bundle | None = None
        self._call: Any = None
        self.buckets: tuple[int, ...] = ()

    # -- loading ---------------------------------------------------------------------------

    def load(self, *, warmup: bool = True) -> None:
        """Configure TensorFlow, load and check the bundle, compile, warm up, then turn ready."""
        started = time.perf_counter()
        tf = _configure_tensorflow(self.intra_op_threads, self.inter_op_threads)
        bundle = load_bundle(self.model_dir)
        model = bundle.model
        self._call = tf.function(
            lambda ids: model(ids, training=False),
            input_signature=[tf.TensorSpec(shape=(None, None), dtype=tf.int32)],
        )
        self._bundle = bundle
        maxlen = bundle.metadata.maxlen
        self.buckets = length_buckets(maxlen)
        if self.bucketing and not self._bucketing_is_exact():
            log.warning("bucket padding changes this model's scores; padding to maxlen instead")
            self.bucketing = False
        if not self.bucketing:
            self.buckets = (maxlen,)
        if warmup:
            self._warm_up()
        self._ready.set()
        log.info(
            "model loaded",
            extra={
                "model": bundle.metadata.name,
                "version": bundle.metadata.version,
                "buckets": list(self.buckets),
                "seconds": round(time.perf_counter() - started, 2),
            },
        )

    def _bucketing_is_exact(self) -> bool:
        probe = [list(range(1, 8)), [2, 3]]
        preprocessor = self.bundle.preprocessor
        short = self._outputs(preprocessor.pad(probe, bucket_for(7, self.buckets)))
        full = self._outputs(preprocessor.pad(probe))
        return bool(np.max(np.abs(short - full)) <= BUCKET_TOLERANCE)

    def _warm_up(self) -> None:
        # The first call of each shape is 10-50x slower (graph specialization, allocations);
        # pay that here, before /readyz says 200, not on a client's request.
        for length in self.buckets:
            for size in self.warmup_batch_sizes:
                self._outputs(np.ones((size, length), dtype=np.int32))

    @property
    def ready(self) -> bool:
        """Return whether the model is loaded and warmed up."""
        return self._ready.is_set()

    @property
    def bundle(self) -> Bundle:
        """Return the loaded bundle."""
        if self._bundle is None:
            raise RuntimeError("Predictor.load() has not run")
        return self._bundle

    @property
    def metadata(self) -> BundleMetadata:
        """Return the bundle's metadata."""
        return self.bundle.metadata

    @property
    def oov_index(self) -> int | None:
        """Return the tokenizer's out-of-vocabulary id (for the drift metric)."""
        return self.bundle.preprocessor.tokenizer.oov_index

    # -- inference -------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenize and truncate, exactly as training did."""
        return self.bundle.preprocessor.encode(texts)

    def pad(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Pad a batch to the bucket of its longest text."""
        longest = max((len(ids) for ids in encoded), default=1)
        return self.bundle.preprocessor.pad(encoded, bucket_for(max(longest, 1), self.buckets))

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Return the model's raw outputs, one row per text (sigmoid: one column)."""
        return self._outputs(self.pad(encoded))

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Turn raw outputs into per-label probabilities (an empty text gets a uniform row)."""
        probabilities = to_class_probabilities(outputs)
        return np.nan_to_num(probabilities, nan=1.0 / probabilities.shape[1])

    def _outputs(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(ids), dtype=np.float32)


def _configure_tensorflow(intra_op_threads: int, inter_op_threads: int) -> Any:
    """Size TF's thread pools and enable GPU memory growth; must run before the first op."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    except RuntimeError:  # already initialized in this process (tests load several models)
        log.debug("TensorFlow thread pools already configured")
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            # Several workers share one GPU: take memory as needed, not all of it up front.
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            log.debug("GPU memory growth already fixed for %s", gpu.name)
    return tf
