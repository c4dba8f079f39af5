"""The pod's one model, in a process of its own: every HTTP worker sends it batches.

With ``SENTIMENT_INFERENCE=process`` gunicorn runs one extra worker in this role
(``service.gunicorn_conf``), supervised like the others: replaced if it dies, stopped on
SIGTERM only once the HTTP workers have drained and hung up. It loads the model once (one copy
of TensorFlow, the weights and the XLA programs per pod), merges the batches that arrive
together in one ``DynamicBatcher`` and answers each on its connection (``service.wire``). The
HTTP workers (``service.remote_model``) import no TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

from service import wire
from service.batching import DynamicBatcher
from service.config import Settings
from service.errors import ServiceError
from service.loading import start_loading
from service.metrics import BatchMetrics, Metrics
from service.model import ServableModel

log = logging.getLogger(__name__)


class InferenceServer:
    """Loads the model, then serves batches on a Unix socket until stopped."""

    def __init__(
        self,
        settings: Settings,
        predictor: ServableModel | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        if predictor is None:
            from service.predictor import Predictor  # TensorFlow: only in this process

            predictor = Predictor.from_settings(settings)
        self.settings = settings
        self.socket_path = settings.inference_socket_path()
        self.predictor = predictor
        self.batcher = DynamicBatcher(
            predictor.predict_encoded,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1000,
            max_queue_items=settings.max_queue_texts * settings.workers,
            # Its batches are the model calls (the HTTP workers record their requests' waits).
            observer=BatchMetrics(metrics or Metrics(), model_calls=True, request_waits=False),
        )
        self.load_error: str | None = None
        self.listening = threading.Event()
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._socket_inode = -1
        self._connections = 0
        self._open: set[socket.socket] = set()  # the connections being served, for stop()
        self._lock = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """Answer 503: gunicorn needs a WSGI callable, but this worker accepts no HTTP."""
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"the model process serves no HTTP\n"]

    # -- start ------------------------------------------------------------------------------

    def start(
        self, *, background: bool = True, on_failure: Callable[[Exception], None] | None = None
    ) -> None:
        """Load the model, then listen (in a thread, so the worker's heartbeat goes on)."""

        def load() -> None:
            self.predictor.load(warmup=self.settings.warmup)
            self.batcher.start()
            self._listen()

        def failed(exc: Exception) -> None:
            self.load_error = str(exc)
            if on_failure is not None:
                on_failure(exc)

        start_loading(load, on_error=failed, background=background)

    def _listen(self) -> None:
        # Bound under a private name, then renamed into place: a worker never connects to a
        # half-set-up socket, and a replacement takes over the path of one that died.
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = self.socket_path.with_name(f".{self.socket_path.name}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        server = socketserver.ThreadingUnixStreamServer(str(staging), self._handler())
        server.daemon_threads = True
        server.block_on_close = False  # stop() waits for the connections itself, bounded
        os.chmod(staging, 0o600)
        self._socket_inode = os.stat(staging).st_ino
        os.replace(staging, self.socket_path)
        self._server = server
        threading.Thread(target=server.serve_forever, name="model-socket", daemon=True).start()
        self.listening.set()
        log.info("model process serving on %s", self.socket_path)

    # -- serve ------------------------------------------------------------------------------

    def _handler(self) -> type[socketserver.BaseRequestHandler]:
        owner = self

        class Connection(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve_connection(self.request)

        return Connection

    def _serve_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._open.add(sock)
        try:
            while True:
                try:
                    encoded = wire.recv_request(sock)
                except (EOFError, ConnectionError):
                    return
                except wire.WireError as exc:
                    log.warning("dropping a connection that broke the framing: %s", exc)
                    return
                try:
                    outputs = self.batcher.submit(encoded).result()
                except ServiceError as exc:  # full queue or stopping: the worker may retry
                    wire.send_failure(sock, exc.message, wire.UNAVAILABLE)
                    continue
                except Exception as exc:  # the model failed on this batch only
                    log.exception("model call failed")
                    wire.send_failure(sock, f"{type(exc).__name__}: {exc}")
                    continue
                wire.send_reply(sock, outputs)
        except OSError:  # the worker went away mid-reply
            return
        finally:
            with self._lock:
                self._connections -= 1
                self._open.discard(sock)
                self._lock.notify_all()

    @property
    def connections(self) -> int:
        """Return how many HTTP workers are connected now."""
        return self._connections

    # -- stop -------------------------------------------------------------------------------

    def wait_for_hang_up(self, timeout: float, heartbeat: Callable[[], None]) -> bool:
        """Keep serving until every connected worker has hung up; return whether they did.

        On SIGTERM the HTTP workers drain first (and still send batches while they do), so the
        model must outlive them.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._connections and time.monotonic() < deadline:
                heartbeat()
                self._lock.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            return self._connections == 0

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, finish what is queued, remove the socket if it is still ours, and
        hang up on the workers still connected (as this process exiting would)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.socket_path).st_ino == self._socket_inode:
                    self.socket_path.unlink()
        self.batcher.stop(timeout)
        # Hang up as exiting would: each worker's watcher notices (readiness off, reconnect),
        # and a batch still waiting on a stuck model gets a 503 instead of waiting forever.
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def serve_forever(settings: Settings) -> None:
    """Run the model process on its own, outside gunicorn (the bench's gevent prototype)."""
    server = InferenceServer(settings)
    server.start(background=False)
    if server.load_error is not None:
        raise SystemExit(f"cannot serve the model: {server.load_error}")
    threading.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve_forever(Settings())
