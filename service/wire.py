"""The framing between HTTP workers and the model process, over a Unix socket.

Request: uint32 row count, uint32 length per row, then every row's int32 ids. Reply: uint32
status (0 ok), uint32 rows, uint32 columns, then float32 outputs; or a non-zero status, the
message's length and a UTF-8 message. Plain arrays, no pickle: nothing that arrives can run
code, and sizes are checked before anything is allocated for them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

import numpy as np

_U32 = struct.Struct("<I")
_REPLY = struct.Struct("<III")
OK = 0
FAILED = 1  # the model failed on this batch
UNAVAILABLE = 2  # the model process cannot take it now (its queue is full, or it is stopping)
# Bounds on what one request may announce (a batch is at most max_batch_size rows of at most
# maxlen ids; these are far above any real one and far below what could exhaust memory).
MAX_ROWS = 1 << 16
MAX_IDS = 1 << 26
MAX_MESSAGE_BYTES = 1 << 16


class WireError(Exception):
    """The peer sent something this framing does not allow."""


class RemoteFailure(Exception):
    """The model process did not serve this batch (the connection is still good)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes; ``EOFError`` if the peer closed first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    while view:
        received = sock.recv_into(view)
        if not received:
            raise EOFError("peer closed the connection")
        view = view[received:]
    return bytes(buffer)


def send_request(sock: socket.socket, encoded: Sequence[Sequence[int]]) -> None:
    """Send one batch of encoded texts."""
    lengths = np.fromiter((len(ids) for ids in encoded), dtype="<u4", count=len(encoded))
    flat = np.fromiter((i for ids in encoded for i in ids), dtype="<i4", count=int(lengths.sum()))
    sock.sendall(_U32.pack(len(encoded)) + lengths.tobytes() + flat.tobytes())


def recv_request(sock: socket.socket) -> list[list[int]]:
    """Receive one batch of encoded texts; ``WireError`` for sizes past the bounds."""
    (rows,) = _U32.unpack(recv_exact(sock, 4))
    if rows > MAX_ROWS:
        raise WireError(f"{rows} rows announced, at most {MAX_ROWS}")
    lengths = np.frombuffer(recv_exact(sock, 4 * rows), dtype="<u4")
    total = int(lengths.sum(dtype=np.int64))
    if total > MAX_IDS:
        raise WireError(f"{total} ids announced, at most {MAX_IDS}")
    flat = np.frombuffer(recv_exact(sock, 4 * total), dtype="<i4")
    ends = np.cumsum(lengths, dtype=np.int64).tolist()
    return [
        flat[end - int(length) : end].tolist() for end, length in zip(ends, lengths, strict=True)
    ]


def send_reply(sock: socket.socket, outputs: np.ndarray) -> None:
    """Send the model's outputs for a batch."""
    data = np.ascontiguousarray(outputs, dtype="<f4")
    rows, columns = data.shape
    sock.sendall(_REPLY.pack(OK, rows, columns) + data.tobytes())


def send_failure(sock: socket.socket, message: str, status: int = FAILED) -> None:
    """Tell the worker its batch was not served, and why (``FAILED`` or ``UNAVAILABLE``)."""
    text = message.encode()[:MAX_MESSAGE_BYTES]
    sock.sendall(_REPLY.pack(status, len(text), 0) + text)


def recv_reply(sock: socket.socket, *, expected_rows: int) -> np.ndarray:
    """Receive the outputs of one batch; ``RemoteFailure`` if the model failed on it."""
    status, rows, columns = _REPLY.unpack(recv_exact(sock, _REPLY.size))
    if status != OK:
        if rows > MAX_MESSAGE_BYTES:
            raise WireError(f"a failure message of {rows} bytes")
        raise RemoteFailure(recv_exact(sock, rows).decode(errors="replace"), status)
    if rows != expected_rows or columns > MAX_ROWS:
        raise WireError(f"a reply of {rows} x {columns} for {expected_rows} rows")
    data = recv_exact(sock, 4 * rows * columns)
    return np.frombuffer(data, dtype="<f4").reshape(rows, columns)
