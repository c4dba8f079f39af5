"""The gunicorn worker classes: a shutdown that answers every request a client sent.

``DrainingWorker`` holds what every class shares (roles, the drain, the model process's loop);
``DrainingThreadWorker`` is gthread with it (``service.gevent_worker`` is gevent with it).

Stock gthread, on SIGTERM, stops its loop at once: it closes its listener while the kernel
still holds connections that finished the TCP handshake (their clients have written a request
and get a reset), and it drops connections it accepted but had not read yet (EOF). Measured
from the client side under load, 16 written requests got no status line.

This worker instead, on SIGTERM:

1. turns readiness off (``on_drain``) and keeps serving for ``drain_s`` seconds, every response
   with ``Connection: close``, while load balancers notice and stop sending;
2. drops new connection attempts (a SYN filter on the listener), takes every connection still
   waiting in the listen backlog and only then closes its listener, so no client that
   completed a handshake is reset; later attempts are refused;
3. serves every connection it holds until each is answered (or, for a client that connected
   but never sent a byte, until ``keepalive`` seconds have passed), within the graceful timeout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import time
from collections.abc import Callable
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import TConn, ThreadWorker

from service.listen_gate import refuse_new_connections

# How long one turn of the final loop waits for socket events.
FINAL_POLL_S = 0.05
# After new connection attempts are dropped, how long handshakes already under way get to
# complete (one round trip: microseconds on loopback, well under this inside a cluster).
HANDSHAKE_GRACE_S = 0.05
# How often the model process's main thread tells the master it is alive.
MODEL_HEARTBEAT_S = 0.5

HTTP_ROLE = "http"
MODEL_ROLE = "model"


class DrainingWorker(Worker):
    """What both worker classes share: the roles, the drain on SIGTERM, the model role's loop.

    A mixin before gunicorn's worker class (``class W(DrainingWorker, ThreadWorker)``).
    """

    drain_s: float = 0.0
    """Seconds to keep accepting after SIGTERM (set per worker by the gunicorn config)."""

    on_drain: Callable[[], None] | None = None
    """Called once when SIGTERM arrives (the app turns readiness off)."""

    hold_until_loaded: bool = False
    """Stay out of the accept loop until the model is loaded (see the gunicorn config)."""

    role: str = HTTP_ROLE
    """``http``, or ``model`` for the pod's model process (``SENTIMENT_INFERENCE=process``):
    it never accepts HTTP and serves the other workers' batches instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alive: bool = True
        self.drain_started: float | None = None

    @property
    def shutting_down(self) -> bool:
        """Return whether SIGTERM has arrived (or the loop was told to stop)."""
        return self.drain_started is not None or not self.alive

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: start draining; the loop ends after ``drain_s`` (not at once, as gunicorn's)."""
        self._begin_drain()

    def _begin_drain(self) -> None:
        if self.drain_started is None:
            self.drain_started = time.monotonic()
            if self.on_drain is not None:
                self.on_drain()

    def _drain_left(self) -> float:
        """Return the seconds of draining left (``drain_s`` until SIGTERM arrives)."""
        started = self.drain_started
        if started is None:
            return self.drain_s
        return max(0.0, self.drain_s - (time.monotonic() - started))

    def _drain_over(self) -> bool:
        return self.drain_started is not None and self._drain_left() == 0.0

    def _close_after_this_request(self, req: Any) -> None:
        """While draining, make ``req``'s response close its connection (``Connection: close``).

        Every answered request then ends its connection, so a client reconnects, and its load
        balancer (readiness is off) sends it to another pod instead of reusing this one.
        """
        if self.drain_started is not None:
            req.must_close = True

    def _stop_new_handshakes(self) -> None:
        """Drop new connection attempts on every listener; let those under way complete.

        Then the listen backlog can only shrink: a worker that accepts until it is empty and
        then closes resets no client that completed a handshake (``service.listen_gate``).
        """
        # A list, not a generator: every listener is filtered, not only up to the first.
        if any([refuse_new_connections(listener) for listener in self.sockets]):
            time.sleep(HANDSHAKE_GRACE_S)

    def _run_model_process(self) -> None:
        """Serve the HTTP workers' batches (``self.wsgi`` is the model server, not an app).

        On SIGTERM every worker drains at once, and the HTTP workers still send batches while
        they do: the model process serves on until they have all hung up, within the grace.
        """
        for listener in self.sockets:
            listener.close()  # never accepts HTTP; the master keeps the listener
        while self.alive and self.drain_started is None and os.getppid() == self.ppid:
            self.notify()
            time.sleep(MODEL_HEARTBEAT_S)
        self.alive = False
        self.wsgi.wait_for_hang_up(self.cfg.graceful_timeout - 1, heartbeat=self.notify)


class DrainingThreadWorker(DrainingWorker, ThreadWorker):
    """gthread worker that drains on SIGTERM without dropping a request a client sent."""

    def handle_request(self, req: Any, conn: TConn) -> bool:
        """Serve one request; while draining, tell the client to close (no further reuse)."""
        self._close_after_this_request(req)
        keepalive: bool = super().handle_request(req, conn)
        return keepalive

    def run(self) -> None:
        """Serve until told to stop, then drain the backlog and answer every held connection."""
        if self.role == MODEL_ROLE:
            self._run_model_process()
            return
        for listener in self.sockets:
            listener.setblocking(False)
            acceptor = partial(self.accept, listener.getsockname())
            self.poller.register(listener, selectors.EVENT_READ, acceptor)

        while self.alive and not self._drain_over():
            self.notify()
            if self.nr_conns < self.worker_connections:
                self._poll(1.0)
            else:
                self._reap(timeout=1.0)
            if not self.is_parent_alive():
                break
            self.murder_keepalived()

        self.alive = False  # from here every response closes its connection
        self._take_backlog_and_close_listeners()
        self._answer_held_connections()
        self.tpool.shutdown(False)
        self.poller.close()

    # -- the loop ----------------------------------------------------------------------------

    def _poll(self, timeout: float) -> None:
        """Run the callbacks of ready sockets, then collect finished requests."""
        for key, _ in self.poller.select(timeout):
            key.data(key.fileobj)
        self._reap(timeout=0)

    def _reap(self, timeout: float) -> None:
        done = futures.wait(self.futures, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        for future in done.done:
            self.futures.remove(future)

    # -- shutdown ----------------------------------------------------------------------------

    def _take_backlog_and_close_listeners(self) -> None:
        """Stop new handshakes, accept what the kernel already queued, then close.

        Without the first step a client could complete a handshake between the last accept
        and the close, and get a reset after writing its request (``service.listen_gate``).
        """
        self._stop_new_handshakes()
        for listener in self.sockets:
            with contextlib.suppress(KeyError, ValueError):
                self.poller.unregister(listener)
            server = listener.getsockname()
            while True:
                try:
                    sock, client = listener.accept()
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    if exc.errno == errno.ECONNABORTED:
                        continue
                    raise
                self._hold(TConn(self.cfg, sock, client, server))
            listener.close()

    def _hold(self, conn: TConn) -> None:
        self.nr_conns += 1
        with self._lock:
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
            )

    def _answer_held_connections(self) -> None:
        """Serve every connection still held; give silent ones ``keepalive`` seconds."""
        now = time.monotonic()
        deadline = now + self.cfg.graceful_timeout
        silent_deadline = now + max(self.cfg.keepalive, 1)
        while (self.nr_conns > 0 or self.futures) and time.monotonic() < deadline:
            self.notify()
            self._poll(FINAL_POLL_S)
            self.murder_keepalived()
            if time.monotonic() >= silent_deadline:
                self._close_silent_connections()

    def _close_silent_connections(self) -> None:
        """Close connections that never sent a request (nothing of theirs goes unanswered)."""
        with self._lock:
            waiting = [key.data.args[0] for key in self.poller.get_map().values()]
            for conn in waiting:
                self.poller.unregister(conn.sock)
                if conn in self._keep:
                    self._keep.remove(conn)
        for conn in waiting:
            self.nr_conns -= 1
            conn.close()
