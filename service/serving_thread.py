"""The lifecycle the batcher and the explain queue share: one daemon thread behind a condition."""

from __future__ import annotations

import threading


class ServingThread:
    """Serves a queue guarded by ``_lock`` on one daemon thread, running ``_loop``.

    ``_running`` turns false at ``stop()``: the loop refuses new work, finishes what is
    queued, then returns.
    """

    thread_name = "serving"

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        # Created and started under the lock: a stop() racing this one then finds no thread or
        # a started one, never one it cannot join yet (seen in CI: "cannot join thread before
        # it is started").
        with self._lock:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new work, finish everything already queued, then stop the thread."""
        with self._lock:
            self._running = False
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        raise NotImplementedError
