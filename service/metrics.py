"""Prometheus metrics, correct under several gunicorn workers.

In gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set (and wiped) by the master before the workers
import prometheus-client, so every worker writes its values to files there and a scrape of
any worker aggregates all of them. Without it (tests, a single process) a private registry
is used. Multiprocess mode allows no Info or callback metrics, so model info is a gauge.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()  # the *_created series double the output and nobody graphs them

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# An explanation is one model row per token: up to seconds for a long review on CPU.
EXPLAIN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATIO_BUCKETS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def multiprocess_mode() -> bool:
    """Return whether metrics are shared between worker processes through files."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """The service's metric families, and their exposition."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sentiment_requests",
            "HTTP requests served (probes and metrics excluded).",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "sentiment_request_duration_seconds",
            "Request latency, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "sentiment_batch_size",
            "Texts per model call.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            "sentiment_inference_duration_seconds",
            "Duration of one model call.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "sentiment_queue_wait_seconds",
            "Time a request waited for its batch to start.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "sentiment_queue_depth",
            "Texts waiting for the model.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.explain_duration = Histogram(
            "sentiment_explain_duration_seconds",
            "Time to explain one /explain request (queue wait included), apart from /predict.",
            buckets=EXPLAIN_BUCKETS,
            registry=r,
        )
        self.explained_tokens = Histogram(
            "sentiment_explained_tokens",
            "Tokens per /explain request: each one costs a model row.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.texts = Counter("sentiment_texts", "Texts predicted.", registry=r)
        self.predictions = Counter(
            "sentiment_predictions",
            "Predictions, by predicted label.",
            ["label"],
            registry=r,
        )
        self.oov_ratio = Histogram(
            "sentiment_oov_ratio",
            "Share of a text's tokens outside the vocabulary: a data-drift signal.",
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "sentiment_model_info",
            "The model being served (value 1), and the runtime serving it (xla or graph).",
            ["name", "version", "runtime"],
            multiprocess_mode="livemax",  # a dead worker's series goes with it
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._prediction_children: dict[str, Counter] = {}
        self.ready = Gauge(
            "sentiment_worker_ready",
            "Workers whose model is loaded and warm.",
            multiprocess_mode="livesum",
            registry=r,
        )

    # -- per request --------------------------------------------------------------------

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one served request and observe its latency.

        The labelled children are kept: ``labels()`` validates and locks on every call, which
        showed in a short request's profile. The label sets are bounded (routes and methods
        are fixed sets, status codes few), and so is this cache.
        """
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.request_duration.labels(route),
            )
            self._request_children[key] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def predicted(self, label: str, count: int) -> None:
        """Count ``count`` predictions of ``label``."""
        child = self._prediction_children.get(label)
        if child is None:
            child = self._prediction_children[label] = self.predictions.labels(label)
        child.inc(count)

    # -- exposition ------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text of all workers (multiprocess) or of this process."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn ``child_exit``)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)


class BatchMetrics:
    """A batcher's ``BatchObserver``: which series its batches feed depends on what they are.

    ``model_calls``: each batch is a call of the model, so its size and duration are recorded
    (a worker with its own model; the model process, whose batcher merges every HTTP worker's
    batches). ``request_waits``: requests queue at this batcher, so their waits are recorded
    (the HTTP workers; in the model process a worker's batch, not a request, waits, and each
    request's wait is already counted once, in its worker).
    """

    def __init__(self, metrics: Metrics, *, model_calls: bool, request_waits: bool) -> None:
        self.metrics = metrics
        self.model_calls = model_calls
        self.request_waits = request_waits

    def batch_done(self, size: int, inference_s: float, queue_waits_s: Sequence[float]) -> None:
        """Record one batch: as a model call and/or as its requests' waits."""
        metrics = self.metrics
        if self.model_calls:
            metrics.batch_size.observe(size)
            metrics.inference_duration.observe(inference_s)
        if self.request_waits:
            for wait in queue_waits_s:
                metrics.queue_wait.observe(wait)

    def queue_depth_changed(self, items: int) -> None:
        """Record the texts still waiting at this batcher (the gauge sums every process)."""
        self.metrics.queue_depth.set(items)
