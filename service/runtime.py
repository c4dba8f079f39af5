"""The per-worker runtime: predictor + batcher + metrics, and the worker's readiness."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from service.batching import DynamicBatcher
from service.config import Settings
from service.decoding import Predictions
from service.errors import InferenceFailed, InferenceTimeout, NotReady, ServiceError
from service.explain_queue import ExplainQueue
from service.loading import start_loading
from service.metrics import BatchMetrics, Metrics
from service.model import ServableModel
from training.occlusion import Attribution
from training.spans import TokenSpan

log = logging.getLogger(__name__)


class Runtime:
    """Owns the model lifecycle of one worker: load after fork, serve, drain on shutdown."""

    def __init__(
        self,
        settings: Settings,
        predictor: ServableModel,
        metrics: Metrics,
        *,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.predictor = predictor
        self.metrics = metrics
        self._predicting = 0  # predict batches inside the model now (explanations wait)
        self.batcher = DynamicBatcher(
            self._predict_batch,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1000,
            max_queue_items=settings.max_queue_texts,
            # Where the model runs elsewhere, that process records the model calls.
            observer=BatchMetrics(
                metrics, model_calls=predictor.runs_model_here, request_waits=True
            ),
            on_crash=self._batcher_crashed,
        )
        self.explainer = ExplainQueue(
            predictor.predict_encoded,
            predict_busy=lambda: self._predicting > 0 or self.batcher.queued_items > 0,
            max_queue_texts=settings.explain_max_queue_texts,
            chunk_rows=min(settings.explain_chunk_rows, settings.max_batch_size),
            max_yield_s=settings.explain_max_yield_ms / 1000,
        )
        self._on_broken = on_broken
        self.draining = False
        self.load_error: str | None = None
        self._started = threading.Event()
        self._gauge_lock = threading.Lock()
        self._published_ready = False  # what the ready gauge says for this worker

    def _predict_batch(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        # Counted so that explanations wait while a predict batch runs, not only while one is
        # queued: under load the batcher takes each batch at once, so the queue looks empty.
        self._predicting += 1  # one batcher thread: no race on the counter
        try:
            return self.predictor.predict_encoded(encoded)
        finally:
            self._predicting -= 1

    def start(
        self, *, background: bool = True, on_failure: Callable[[Exception], None] | None = None
    ) -> None:
        """Load the model (in a thread, so probes answer meanwhile) and start the batcher."""

        def load() -> None:
            self.predictor.load(warmup=self.settings.warmup)
            self.batcher.start()
            self.explainer.start()
            metadata = self.predictor.metadata
            self.metrics.model_info.labels(
                metadata.name, metadata.version, self.predictor.runtime_name
            ).set(1)
            self._started.set()
            self._publish_readiness()
            self.predictor.watch_readiness(self._publish_readiness)

        def failed(exc: Exception) -> None:
            self.load_error = str(exc)
            if on_failure is not None:
                on_failure(exc)

        start_loading(load, on_error=failed, background=background)

    def wait_loaded(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the model to be loaded; return whether it is."""
        return self._started.wait(timeout)

    @property
    def ready(self) -> bool:
        """Return whether this worker should receive traffic: loaded, serving, not draining."""
        return (
            self._started.is_set()
            and not self.draining
            and self.batcher.healthy
            and self.predictor.ready  # false while a model process restarts
        )

    @property
    def state(self) -> str:
        """Return the readiness state in one word, for /readyz and logs."""
        if self.ready:
            return "ready"
        if self.draining:
            return "draining"
        if self.load_error is not None or self.batcher.crashed:
            return "failed"
        if self._started.is_set():
            return "reconnecting"  # loaded, but its model process is away (restarting)
        return "loading"

    def _publish_readiness(self) -> None:
        """Make this worker's ready gauge say what ``ready`` says now (after any change)."""
        with self._gauge_lock:
            ready = self.ready
            if ready != self._published_ready:
                if ready:
                    self.metrics.ready.inc()
                else:
                    self.metrics.ready.dec()
                self._published_ready = ready

    def _batcher_crashed(self) -> None:
        # Readiness is already false (the batcher is not healthy); the worker must also go, so
        # gunicorn replaces it with one that can serve.
        self._publish_readiness()
        if self._on_broken is not None:
            self._on_broken()

    def begin_shutdown(self) -> None:
        """Turn readiness off at once; queued work still completes (see ``stop``)."""
        if not self.draining:
            self.draining = True
            self._publish_readiness()
            # The one trace of draining a client cannot see once gunicorn stops accepting.
            log.info("draining: readiness off, finishing in-flight requests")

    def stop(self) -> None:
        """Finish queued batches and stop the batcher thread."""
        self.begin_shutdown()
        self.batcher.stop(timeout=self.settings.graceful_timeout_s)
        self.explainer.stop(timeout=self.settings.graceful_timeout_s)

    def _check_serving(self) -> None:
        if not self._started.is_set():
            raise NotReady(
                "the model is not loaded yet" if self.load_error is None else "model failed to load"
            )
        if not self.batcher.healthy:
            raise NotReady(
                "the worker is shutting down"
                if self.draining
                else "this worker cannot serve; it is being replaced"
            )
        if not self.predictor.ready:
            raise NotReady("the model process is restarting")

    def explain(self, texts: Sequence[str]) -> list[tuple[list[TokenSpan], Attribution]]:
        """Return each text's tokens (with spans) and their occlusion attributions."""
        self._check_serving()
        started = time.perf_counter()
        spans = [self.predictor.encode_spans(text) for text in texts]
        # A text with every token deleted is scored as /predict scores an empty text.
        empty = self.predictor.encode([""])[0]
        job = self.explainer.submit([[span.id for span in row] for row in spans], empty)
        try:
            attributions = job.future.result(timeout=self.settings.request_timeout_s)
        except FutureTimeout as exc:
            job.abandon()
            raise InferenceTimeout(
                f"no explanation within {self.settings.request_timeout_s:g} s"
            ) from exc
        except ServiceError:
            raise
        except Exception as exc:
            raise InferenceFailed("the model failed while explaining") from exc
        self.metrics.explain_duration.observe(time.perf_counter() - started)
        self.metrics.explained_tokens.observe(sum(len(row) for row in spans))
        return list(zip(spans, attributions, strict=True))

    def predict(self, texts: Sequence[str]) -> Predictions:
        """Encode, batch with concurrent requests, and return this request's rows."""
        self._check_serving()
        predictor = self.predictor
        with self.batcher.announce() as arrival:
            encoded = predictor.encode(texts)
            future = arrival.submit(encoded)
        try:
            outputs = future.result(timeout=self.settings.request_timeout_s)
        except FutureTimeout as exc:
            future.cancel()
            raise InferenceTimeout(
                f"no prediction within {self.settings.request_timeout_s:g} s"
            ) from exc
        except ServiceError:
            raise
        except Exception as exc:
            log.exception("model call failed")
            raise InferenceFailed("the model failed on this batch") from exc
        predictions = Predictions.decode(outputs, predictor.metadata.labels)
        self._observe(encoded, predictions)
        return predictions

    def _observe(self, encoded: list[list[int]], predictions: Predictions) -> None:
        metrics = self.metrics
        metrics.texts.inc(len(encoded))
        for label, count in predictions.label_counts().items():
            metrics.predicted(label, count)
        oov = self.predictor.oov_index
        if oov is not None:
            for ids in encoded:
                metrics.oov_ratio.observe(ids.count(oov) / len(ids) if ids else 0.0)
