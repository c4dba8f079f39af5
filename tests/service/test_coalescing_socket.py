"""The response socket joins gunicorn's head to the first body write, and keeps byte order."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from service.coalescing_socket import CoalescingSocket


class RecordingSocket:
    """Records each ``sendall`` as one segment, and the other calls in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes | None]] = []

    def sendall(self, data: bytes) -> None:
        self.calls.append(("sendall", bytes(data)))

    def shutdown(self, how: int) -> None:
        self.calls.append(("shutdown", None))


@pytest.fixture
def recorded() -> RecordingSocket:
    return RecordingSocket()


def test_head_and_first_body_write_go_out_as_one(recorded: RecordingSocket) -> None:
    sock = CoalescingSocket(recorded)  # type: ignore[arg-type]
    sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recorded.calls == []  # the head waits for the body
    sock.sendall(b'{"a": 1}')
    sock.flush()
    assert recorded.calls == [("sendall", b'HTTP/1.1 200 OK\r\n\r\n{"a": 1}')]


def test_later_writes_stream_through(recorded: RecordingSocket) -> None:
    sock = CoalescingSocket(recorded)  # type: ignore[arg-type]
    for chunk in (b"head", b"one", b"two", b"three"):
        sock.sendall(chunk)
    assert recorded.calls == [("sendall", b"headone"), ("sendall", b"two"), ("sendall", b"three")]


def test_a_head_without_body_goes_out_at_flush(recorded: RecordingSocket) -> None:
    sock = CoalescingSocket(recorded)  # type: ignore[arg-type]
    sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    sock.flush()
    sock.flush()  # idempotent
    assert recorded.calls == [("sendall", b"HTTP/1.1 204 No Content\r\n\r\n")]


def test_any_other_use_of_the_socket_sends_what_is_held_first(recorded: RecordingSocket) -> None:
    sock = CoalescingSocket(recorded)  # type: ignore[arg-type]
    sock.sendall(b"head")
    sock.shutdown(socket.SHUT_RDWR)  # gunicorn's path when the app fails after the head
    assert recorded.calls == [("sendall", b"head"), ("shutdown", None)]


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_a_real_socket_receives_every_byte_in_order(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = socket_pair
    sock = CoalescingSocket(left)
    sent = [b"head|", b"body-1|", b"body-2|", b"end"]
    for chunk in sent:
        sock.sendall(chunk)
    sock.flush()
    left.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := right.recv(4096):
        received += chunk
    assert received == b"".join(sent)
