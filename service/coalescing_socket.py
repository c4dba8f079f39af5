"""A response socket that sends gunicorn's status line and headers with the first body bytes.

gunicorn writes a response's head and its body with two ``sendall`` calls. On a small JSON
answer that is two TCP segments, two system calls and two wake-ups of the client where one
does (loopback sends run the receiver's half of TCP too: ~7% of a worker's time on one-text
requests, py-spy). This wrapper holds the first write (the head) and sends it joined to the
next; every later write goes straight through, so a streamed body streams as before.
"""

from __future__ import annotations

import socket
from typing import Any


class CoalescingSocket:
    """Wraps the socket of one response; ``flush()`` when the response is done."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._held: bytes | None = None
        self._joined = False  # the head went out: write through from now on

    def sendall(self, data: bytes) -> None:
        """Hold the head; send it with the first body write, then write through."""
        if self._joined:
            self._sock.sendall(data)
        elif self._held is None:
            self._held = bytes(data)
        else:
            held, self._held = self._held, None
            self._joined = True
            self._sock.sendall(held + data)

    def flush(self) -> None:
        """Send a head still held (a response with no body)."""
        held, self._held = self._held, None
        self._joined = True
        if held:
            self._sock.sendall(held)

    def __getattr__(self, name: str) -> Any:
        # Anything else (sendfile, shutdown, close, fileno...) acts on the real socket, after
        # what is held, so bytes never go out of order.
        self.flush()
        return getattr(self._sock, name)
