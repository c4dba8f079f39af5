"""The SYN filter stops new handshakes on a listener and keeps the ones already queued."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from service.listen_gate import refuse_new_connections

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_ATTACH_FILTER is Linux's")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server
    server.close()


def test_queued_connections_survive_and_new_ones_never_complete(listener: socket.socket) -> None:
    address = listener.getsockname()
    queued = socket.create_connection(address)
    queued.sendall(b"request")

    assert refuse_new_connections(listener)

    late = socket.socket()
    late.settimeout(0.3)
    with pytest.raises(TimeoutError):
        late.connect(address)  # its SYN is dropped: no handshake, nothing to reset later
    accepted, _ = listener.accept()
    assert accepted.recv(16) == b"request"
    accepted.close()
    queued.close()
    late.close()


def test_unfiltered_listener_accepts_as_usual(listener: socket.socket) -> None:
    client = socket.socket()
    client.settimeout(0.3)
    client.connect(listener.getsockname())
    client.close()


def test_a_socket_it_cannot_filter_reports_false_instead_of_raising() -> None:
    closed = socket.socket()
    closed.close()
    assert refuse_new_connections(closed) is False
