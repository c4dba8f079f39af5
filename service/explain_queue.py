"""Explanations on their own thread and queue, so they never hold up ``/predict``.

One explanation costs one model row per token (``training.occlusion``): a long review is a
few hundred rows, as much as a full predict batch. So explanations do not share the predict
batcher: they wait in their own bounded queue (full: 503 + Retry-After), run one at a time
in calls of ``chunk_rows`` rows, and before each call step aside while predict work is
queued or running (up to ``max_yield_s`` per call, so explanations still progress, slowly,
under a flood).
A caller that gave up (timeout) has the rest of its rows skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from service.errors import NotReady, Overloaded
from service.serving_thread import ServingThread
from training.occlusion import Attribution, RunFn, attribute, chunks, variants

log = logging.getLogger(__name__)

# How often the explain thread looks again whether predict work is still queued.
YIELD_POLL_S = 0.001


class ExplainJob:
    """Queued texts; ``future`` gets one ``Attribution`` per text."""

    def __init__(self, texts: Sequence[Sequence[int]], empty: Sequence[int]) -> None:
        self.texts = texts
        self.empty = empty
        self.future: Future[list[Attribution]] = Future()
        self.abandoned = threading.Event()

    def abandon(self) -> None:
        """Tell the explain thread that nobody waits any more: skip what is left."""
        self.abandoned.set()
        self.future.cancel()


class ExplainQueue(ServingThread):
    """A bounded queue of explanations, served by one thread at lower priority than predict."""

    thread_name = "explainer"

    def __init__(
        self,
        run: RunFn,
        *,
        predict_busy: Callable[[], bool],
        max_queue_texts: int = 16,
        chunk_rows: int = 8,
        max_yield_s: float = 0.5,
    ) -> None:
        super().__init__()
        self._run = run
        self._predict_busy = predict_busy
        self.max_queue_texts = max_queue_texts
        self.chunk_rows = chunk_rows
        self.max_yield_s = max_yield_s
        self._queue: deque[ExplainJob] = deque()
        self._queued_texts = 0

    @property
    def queued_texts(self) -> int:
        """Return how many texts wait to be explained."""
        return self._queued_texts

    def submit(self, texts: Sequence[Sequence[int]], empty: Sequence[int] = ()) -> ExplainJob:
        """Queue encoded texts; ``empty``: the encoding of a text without tokens."""
        job = ExplainJob(texts, empty)
        with self._lock:
            if not self._running:
                raise NotReady("the worker is shutting down")
            if self._queued_texts + len(texts) > self.max_queue_texts:
                raise Overloaded(
                    f"too many texts waiting to be explained ({self._queued_texts}); retry shortly",
                    headers={"Retry-After": "1"},
                )
            self._queue.append(job)
            self._queued_texts += len(texts)
            self._lock.notify_all()
        return job

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._running and not self._queue:
                    self._lock.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
            try:
                if job.future.set_running_or_notify_cancel():
                    results = self._explain(job)
                    if not job.abandoned.is_set():
                        job.future.set_result(results)
            except Exception as exc:  # the caller gets the model's failure; the thread lives on
                log.exception("explanation failed")
                if not job.future.done():
                    job.future.set_exception(exc)
            finally:
                with self._lock:
                    self._queued_texts -= len(job.texts)

    def _explain(self, job: ExplainJob) -> list[Attribution]:
        results = []
        for ids in job.texts:
            outputs = []
            for chunk in chunks(variants(ids, job.empty), self.chunk_rows):
                if job.abandoned.is_set():
                    return []
                self._step_aside()
                outputs.append(np.asarray(self._run(chunk)))
            results.append(attribute(np.concatenate(outputs)))
        return results

    def _step_aside(self) -> None:
        """Wait (up to ``max_yield_s``) while predict work is queued or running: it goes first."""
        deadline = time.monotonic() + self.max_yield_s
        while self._predict_busy() and time.monotonic() < deadline:
            time.sleep(YIELD_POLL_S)
