"""The HTTP workers of ``SENTIMENT_INFERENCE=process``: gevent, draining as ``service.worker``.

Without TensorFlow in them, the HTTP workers only parse, tokenize and wait on the model
process: work an event loop does with less Python per request than gthread's threads and
their wake-ups (docs/performance.md measures both). Stock gevent has gthread's shutdown flaw:
on SIGTERM it closes its listeners at once, resetting connections still in the kernel's listen
backlog. This worker drains as ``DrainingThreadWorker`` does: readiness off and ``drain_s`` of
service, new handshakes dropped, the backlog taken, then every held connection answered.

The pod's model process runs under this class too (gunicorn has one worker class): it skips
gevent's monkey-patching, so TensorFlow and its threads run as in the default mode.
"""

from __future__ import annotations

import errno
import time
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.workers.base import Worker
from gunicorn.workers.ggevent import GeventWorker

from service.coalescing_socket import CoalescingSocket
from service.worker import FINAL_POLL_S, MODEL_ROLE, DrainingWorker

# How often the serving loop tells the master it is alive.
HEARTBEAT_S = 1.0


class DrainingGeventWorker(DrainingWorker, GeventWorker):
    """gevent worker (gunicorn's HTTP parser, one greenlet per connection) that drains."""

    _drain_begun: Event
    """Set when draining begins: wakes the serving loop at once."""

    def init_process(self) -> None:
        """Patch the standard library for gevent, except in the model process."""
        if self.role == MODEL_ROLE:
            Worker.init_process(self)  # gunicorn's plain start: no monkey-patching
        else:
            self._drain_begun = Event()
            super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: drain, from a greenlet (the app's readiness hook may block on a lock)."""
        if self.role == MODEL_ROLE:
            super().handle_exit(sig, frame)
            return
        gevent.spawn(self._drain_and_wake)

    def _drain_and_wake(self) -> None:
        self._begin_drain()
        self._drain_begun.set()

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Serve one request; while draining, tell the client to close (no further reuse)."""
        self._close_after_this_request(req)
        response_sock = CoalescingSocket(sock)
        try:
            keepalive: bool = super().handle_request(listener_name, req, response_sock, addr)
        finally:
            response_sock.flush()
        return keepalive

    def run(self) -> None:
        """Serve until told to stop, then take the backlog and answer every held connection."""
        if self.role == MODEL_ROLE:
            self._run_model_process()
            return
        servers = [self._start_server(listener) for listener in self.sockets]
        while self.alive and not self._drain_over():
            self.notify()
            if self.drain_started is None:
                self._drain_begun.wait(HEARTBEAT_S)
            else:
                gevent.sleep(min(HEARTBEAT_S, self._drain_left()))
        self.alive = False  # from here every response closes its connection
        self._stop_new_handshakes()
        for server in servers:
            self._take_backlog(server)
            server.close()
        self._answer_held_connections(servers)

    def _start_server(self, listener: Any) -> Any:
        """Start gevent's server on ``listener``, as gunicorn's gevent worker does."""
        listener.setblocking(1)
        server = StreamServer(
            listener,
            handle=lambda client, addr: self.handle(listener, client, addr),
            spawn=Pool(self.worker_connections),
        )
        if self.cfg.workers > 1:
            server.max_accept = 1  # share new connections with the sibling workers
        server.start()
        return server

    def _take_backlog(self, server: Any) -> None:
        """Accept every connection the kernel already queued on ``server``'s listener."""
        server.stop_accepting()
        while True:
            try:
                accepted = server.do_read()  # None once the backlog is empty
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                raise
            if not accepted:
                return
            server.do_handle(*accepted)  # waits for a free slot if the pool is full

    def _answer_held_connections(self, servers: list[Any]) -> None:
        """Serve every connection still held, within the graceful timeout.

        A connection that sends nothing more ends after ``keepalive`` seconds (gunicorn's
        keep-alive timeout around every read of a request).
        """
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while any(server.pool.free_count() != server.pool.size for server in servers):
            if time.monotonic() >= deadline:
                self.log.warning("graceful timeout with connections still open (pid %s)", self.pid)
                for server in servers:
                    server.pool.kill(block=True, timeout=1)
                return
            self.notify()
            gevent.sleep(FINAL_POLL_S)
