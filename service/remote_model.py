"""A ``ServableModel`` whose model runs in the pod's model process (``inference=process``).

The HTTP worker keeps what is per request (tokenizing with the bundle's own tokenizer, its
batcher, the HTTP side) and imports no TensorFlow; each of its batches goes to the model
process over one Unix socket connection (``service.wire``). When that process dies, the batch
in flight and those after it get a 503 (``not_ready``, ``Retry-After``), readiness turns off,
and a background thread reconnects once gunicorn's replacement listens.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from service import wire
from service.errors import NotReady, Overloaded
from training.bundle import BundleMetadata, check_bundle_files, read_metadata
from training.preprocessing import TextPreprocessor
from training.spans import TokenSpan, encode_spans

log = logging.getLogger(__name__)

# How often a worker tries the socket while the model process loads or restarts.
CONNECT_INTERVAL_S = 0.1


class RemoteModel:
    """Encodes here; predicts in the model process listening on ``socket_path``."""

    runtime_name = "process"
    runs_model_here = False  # the model process records the model calls

    def __init__(self, model_dir: Path, socket_path: Path, *, load_timeout_s: float) -> None:
        self.model_dir = model_dir
        self.socket_path = socket_path
        self.load_timeout_s = load_timeout_s
        self._metadata: BundleMetadata | None = None
        self._preprocessor: TextPreprocessor | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # one batch on the connection at a time
        self._reconnecting = False
        self._closed = False
        self._on_ready_change: Callable[[], None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def load(self, *, warmup: bool = True) -> None:
        """Read the tokenizer (no TensorFlow), then wait for the model process to listen."""
        tokenizer = check_bundle_files(self.model_dir)
        self._metadata = read_metadata(self.model_dir)
        self._preprocessor = TextPreprocessor(tokenizer, self._metadata.sequence_spec)
        deadline = time.monotonic() + self.load_timeout_s
        while not self._connect():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no model process on {self.socket_path} after {self.load_timeout_s:g} s"
                )
            time.sleep(CONNECT_INTERVAL_S)

    def close(self) -> None:
        """Hang up (the model process stops once every worker has) and stop reconnecting."""
        with self._lock:
            self._closed = True
            self._drop()

    def watch_readiness(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` whenever the model process goes away or comes back."""
        self._on_ready_change = on_change

    @property
    def ready(self) -> bool:
        """Whether the model process is connected (false while it restarts)."""
        return self._sock is not None

    # -- what the runtime asks --------------------------------------------------------------

    @property
    def metadata(self) -> BundleMetadata:
        """The bundle's metadata (read from the bundle itself, as the model process does)."""
        if self._metadata is None:
            raise RuntimeError("load() first")
        return self._metadata

    @property
    def oov_index(self) -> int | None:
        """The out-of-vocabulary id, for the drift metric."""
        return self._loaded_preprocessor().tokenizer.oov_index

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenize and truncate texts exactly as training did (the one shared path)."""
        return self._loaded_preprocessor().encode(texts)

    def encode_spans(self, text: str) -> list[TokenSpan]:
        """Return the ids ``encode`` gives ``text``, with each token's span."""
        return encode_spans(self._loaded_preprocessor(), text)

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Return the model process's outputs for ``encoded``; 503 errors while it is away."""
        with self._lock:
            sock = self._sock
            if sock is None:
                raise NotReady("the model process is restarting")
            try:
                wire.send_request(sock, encoded)
                return wire.recv_reply(sock, expected_rows=len(encoded))
            except wire.RemoteFailure as exc:
                if exc.status == wire.UNAVAILABLE:
                    raise Overloaded(f"the model process is busy: {exc}") from exc
                raise RuntimeError(f"the model process failed on this batch: {exc}") from exc
            except (OSError, EOFError, wire.WireError) as exc:
                log.error("lost the model process (%s); reconnecting", exc)
                self._drop()
                self._reconnect_in_background()
                raise NotReady("the model process is restarting") from exc

    # -- the connection ---------------------------------------------------------------------

    def _loaded_preprocessor(self) -> TextPreprocessor:
        if self._preprocessor is None:
            raise RuntimeError("load() first")
        return self._preprocessor

    def _connect(self) -> bool:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:  # out of descriptors, say: try again later, as for a refusal
            return False
        try:
            sock.connect(str(self.socket_path))
        except OSError:  # not there yet, or its process is gone: try again later
            sock.close()
            return False
        with self._lock:
            if self._closed:
                sock.close()
                return False
            self._sock = sock
            self._reconnecting = False  # a hang-up from now on needs a reconnect of its own
        threading.Thread(target=self._watch, args=(sock,), name="model-watch", daemon=True).start()
        self._ready_changed()
        return True

    def _watch(self, sock: socket.socket) -> None:
        """Notice at once when the model process hangs up, not at the next batch.

        Readiness then turns off in every worker together, not only in one that happened to
        send a batch. The poll asks for readability too: gevent's poll (the HTTP workers of
        this mode) reports a hang-up only as that. So a reply to a batch wakes it as well; it
        then waits for the batch to finish with the connection and looks again: the model
        process never writes unasked, so a connection readable between batches has hung up.
        """
        poller = select.poll()
        events = select.POLLIN | select.POLLRDHUP | select.POLLHUP | select.POLLERR
        try:
            poller.register(sock, events)
        except ValueError:  # already dropped (closed) before this thread ran: nothing to watch
            return
        while self._sock is sock:
            if not poller.poll(1000):
                continue
            with self._lock:  # after any batch in flight, which sees a hang-up itself
                if self._sock is sock and _readable_now(sock):
                    log.error("the model process hung up; reconnecting")
                    self._drop()
                    self._reconnect_in_background()
                    return

    def _ready_changed(self) -> None:
        callback = self._on_ready_change
        if callback is not None:
            callback()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._ready_changed()
            # shutdown first: close alone frees the descriptor, but the watcher's poll holds
            # the socket open until it returns (up to a second), and the model process would
            # only see the hang-up then.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _reconnect_in_background(self) -> None:
        if self._reconnecting or self._closed:
            return
        self._reconnecting = True

        def reconnect() -> None:
            # ``_connect`` clears ``_reconnecting`` as it connects (under the lock): cleared
            # here, after, a hang-up in between would find it still set and start no reconnect.
            while not self._closed and not self._connect():
                time.sleep(CONNECT_INTERVAL_S)
            if self._sock is not None:
                log.info("model process connected again")

        threading.Thread(target=reconnect, name="model-reconnect", daemon=True).start()


def _readable_now(sock: socket.socket) -> bool:
    """Return whether ``sock`` has data or an end of file waiting, without blocking."""
    try:
        readable, _, failed = select.select([sock], [], [sock], 0)
    except (OSError, ValueError):  # closed under us: as good as hung up
        return True
    return bool(readable or failed)
