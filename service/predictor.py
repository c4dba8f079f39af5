"""A loaded bundle behind one compiled call: encoded texts -> class probabilities.

Preprocessing is the training package's own ``TextPreprocessor``, read from the bundle, so
serving encodes exactly as training did. Batches are padded only to the bucket of their
longest text; ``load()`` checks that this gives the same scores as padding to ``maxlen`` and
falls back to ``maxlen`` for a bundle where it would not (a model without masking, say).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from service.config import Settings
from service.planning import CallCosts, plan_calls
from training.batches import model_function
from training.bundle import Bundle, BundleMetadata, load_bundle
from training.preprocessing import bucket_for, length_buckets
from training.spans import TokenSpan, encode_spans

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
        xla: bool | Literal["auto"] = False,
        max_batch_size: int = 128,
        compile_in_background: bool = False,
    ) -> None:
        self.model_dir = model_dir
        self.bucketing = bucketing
        self.requested_xla = xla
        self.xla = xla is True  # decided at load: "auto" and a failed compile may turn it off
        self.max_batch_size = max_batch_size
        self.batch_buckets: tuple[int, ...] = (max_batch_size,)
        self.xla_failure: str | None = None  # why XLA was asked for but not used
        self.compile_in_background = compile_in_background
        self._graph_call: Any = None
        self._xla_call: Any = None
        self._compiled: set[tuple[int, int]] = set()  # shapes the XLA call serves (compiled)
        self._xla_on_demand = True  # without warm-up, the first call of a shape compiles it
        self.all_compiled = threading.Event()
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.warmup_batch_sizes = tuple(warmup_batch_sizes)
        self._ready = threading.Event()
        self._bundle: Bundle | None = None
        self.buckets: tuple[int, ...] = ()
        self.call_costs = CallCosts(self.batch_buckets, ())

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings) -> Predictor:
        """Return the predictor the service's settings describe (not loaded yet)."""
        return cls(
            settings.model_dir,
            bucketing=settings.bucketing,
            intra_op_threads=settings.intra_op_threads(),
            inter_op_threads=settings.tf_inter_op_threads,
            warmup_batch_sizes=sorted({1, settings.max_batch_size}),
            xla=settings.xla,
            max_batch_size=settings.max_batch_size,
            compile_in_background=settings.compile_in_background,
        )

    def load(self, *, warmup: bool = True) -> None:
        """Configure TensorFlow, load and check the bundle, compile, warm up, then turn ready."""
        started = time.perf_counter()
        tf = _configure_tensorflow(self.intra_op_threads, self.inter_op_threads)
        bundle = load_bundle(self.model_dir)
        self._bundle = bundle
        self._choose_runtime(tf, bundle.model)
        maxlen = bundle.metadata.maxlen
        self.buckets = length_buckets(maxlen)
        if self.bucketing and not self._bucketing_is_exact():
            log.warning("bucket padding changes this model's scores; padding to maxlen instead")
            self.bucketing = False
        if not self.bucketing:
            self.buckets = (maxlen,)
        self.call_costs = CallCosts(self.batch_buckets, self.buckets)
        if warmup:
            self._warm_up()
        self._ready.set()
        log.info(
            "model loaded",
            extra={
                "model": bundle.metadata.name,
                "version": bundle.metadata.version,
                "buckets": list(self.buckets),
                "runtime": self.runtime_name,
                "seconds": round(time.perf_counter() - started, 2),
            },
        )

    def watch_readiness(self, on_change: Callable[[], None]) -> None:
        """Nothing to watch: once loaded, an in-process model stays ready."""

    def _choose_runtime(self, tf: Any, model: Any) -> None:
        """Compile with XLA where asked (or, for "auto", where it pays: on CPU) and where it works.

        On a GPU Keras runs GRU/LSTM on the cuDNN kernel, which has no XLA kernel, and cuDNN is
        fast without XLA: "auto" picks the plain graph there. Any compile failure at the probe
        call falls back to the plain graph, logged, instead of failing every request.
        """
        wanted = self.requested_xla
        if wanted == "auto":
            wanted = not gpu_present(tf)
        self.xla = False
        self._graph_call = model_function(model)
        if wanted:
            try:
                call = model_function(model, jit=True)
                call(np.ones((1, 2), dtype=np.int32))  # compiles now, not on a request
            except Exception as exc:  # XLA raises many types; any of them means "not here"
                self.xla_failure = (str(exc).splitlines() or [repr(exc)])[0][:300]
                log.warning(
                    "XLA cannot compile this model here; serving the plain TensorFlow graph",
                    extra={"reason": self.xla_failure},
                )
            else:
                self.xla = True
                self._xla_call = call
        # XLA compiles one program per input shape, so under XLA the batch dimension is padded
        # to a power of two as well: few shapes, at most 2x padded rows.
        self.batch_buckets = (
            _powers_of_two_up_to(self.max_batch_size) if self.xla else (self.max_batch_size,)
        )

    runs_model_here = True

    @property
    def runtime_name(self) -> str:
        """Return which runtime serves: "xla" or "graph" (plain TensorFlow graph)."""
        return "xla" if self.xla else "graph"

    def _bucketing_is_exact(self) -> bool:
        probe = [list(range(1, 8)), [2, 3]]
        preprocessor = self.bundle.preprocessor
        short = np.asarray(self._graph_call(preprocessor.pad(probe, bucket_for(7, self.buckets))))
        full = np.asarray(self._graph_call(preprocessor.pad(probe)))
        return bool(np.max(np.abs(short - full)) <= BUCKET_TOLERANCE)

    def _warm_up(self) -> None:
        # The first call of each shape is 10-50x slower (graph specialization, allocations);
        # pay that here, before /readyz says 200, not on a request. The plain graph takes any
        # shape after one trace; XLA compiles each (rows, length) shape anew, ~1 s apiece.
        self._xla_on_demand = False
        for length in self.buckets:
            for size in self.warmup_batch_sizes:
                self._graph_call(np.ones((size, length), dtype=np.int32))
        release_free_heap()
        if not self.xla:
            return
        # Single texts first (the most common call), then growing batches.
        shapes = [(size, length) for size in self.batch_buckets for length in self.buckets]
        if self.compile_in_background:
            # Serve at once on the graph; each shape moves to XLA as soon as it is compiled.
            threading.Thread(
                target=self._compile, args=(shapes,), name="xla-compile", daemon=True
            ).start()
        else:
            self._compile(shapes)

    def _compile(self, shapes: Sequence[tuple[int, int]]) -> None:
        """Compile and time each XLA shape, then let ``run`` use it."""
        started = time.perf_counter()
        for shape in shapes:
            ids = np.ones(shape, dtype=np.int32)
            self._xla_call(ids)  # compiles (or loads from the persistent cache)
            timer = time.perf_counter()
            self._xla_call(ids)  # the steady-state cost, for planning calls
            self.call_costs.seconds[shape] = time.perf_counter() - timer
            self._compiled.add(shape)
        self.all_compiled.set()
        release_free_heap()
        log.info(
            "XLA programs ready",
            extra={"shapes": len(shapes), "seconds": round(time.perf_counter() - started, 2)},
        )

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

    def encode_spans(self, text: str) -> list[TokenSpan]:
        """Return the ids ``encode`` gives ``text``, with each token's span (for explanations)."""
        return encode_spans(self.bundle.preprocessor, text)

    def pad(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Pad a batch to the bucket of its longest text (and, under XLA, of its size)."""
        longest = max((len(ids) for ids in encoded), default=1)
        rows = list(encoded)
        if self.xla:  # filler rows hold one OOV id: an all-padding row has no defined output
            filler = [self.oov_index or 1]
            rows += [filler] * (bucket_for(len(rows), self.batch_buckets) - len(rows))
        return self.bundle.preprocessor.pad(rows, bucket_for(max(longest, 1), self.buckets))

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Return the model's raw outputs, one row per text (sigmoid: one column).

        Under XLA a call costs about overhead + rows x length, so a mixed batch is split where
        the measured costs say it pays (``service.planning``); without XLA the per-step
        overhead dominates and one call for the whole batch is cheaper.
        """
        if not self.xla or len(self.buckets) == 1:
            return self.run(self.pad(encoded))[: len(encoded)]
        outputs: np.ndarray | None = None
        for rows in plan_calls([len(ids) for ids in encoded], self.call_costs):
            scores = self.run(self.pad([encoded[row] for row in rows]))[: len(rows)]
            if outputs is None:
                outputs = np.empty((len(encoded), scores.shape[1]), dtype=np.float32)
            outputs[rows] = scores
        assert outputs is not None  # encoded is never empty here (the batcher skips empties)
        return outputs

    def run(self, ids: np.ndarray) -> np.ndarray:
        """Call the model on a padded int32 batch (XLA where that shape is compiled)."""
        use_xla = self.xla and (self._xla_on_demand or ids.shape in self._compiled)
        call = self._xla_call if use_xla else self._graph_call
        return np.asarray(call(ids), dtype=np.float32)


def release_free_heap() -> bool:
    """Give the heap's free pages back to the system (glibc ``malloc_trim``); return whether.

    Warm-up and compiling allocate and free hundreds of MB; glibc keeps most of the freed
    memory in its arenas, resident, unless asked. Measured on the default model after load
    and every XLA program: 1,343 -> 1,310 MB resident. A no-op where the C library has no
    ``malloc_trim`` (musl, macOS).
    """
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def gpu_present(tf: Any) -> bool:
    """Return whether TensorFlow sees a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def _powers_of_two_up_to(limit: int) -> tuple[int, ...]:
    sizes = [1]
    while sizes[-1] * 2 < limit:
        sizes.append(sizes[-1] * 2)
    return (*sizes, limit) if limit > 1 else (1,)


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
