"""The Unix-socket framing between HTTP workers and the inference process.

Request: uint32 row count, uint32 length per row, then every row's int32 ids. Reply: uint32
status (0 ok), uint32 rows, uint32 columns, then float32 outputs; or a non-zero status and a
UTF-8 message. Plain arrays, no pickle: nothing that arrives can run code.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

import numpy as np

_U32 = struct.Struct("<I")
_REPLY = struct.Struct("<III")
OK = 0
FAILED = 1


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes; ``EOFError`` if the peer closed first."""
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def send_request(sock: socket.socket, encoded: Sequence[Sequence[int]]) -> None:
    """Send one batch of encoded texts."""
    lengths = np.fromiter((len(ids) for ids in encoded), dtype="<u4", count=len(encoded))
    flat = np.fromiter((i for ids in encoded for i in ids), dtype="<i4", count=int(lengths.sum()))
    sock.sendall(_U32.pack(len(encoded)) + lengths.tobytes() + flat.tobytes())


def recv_request(sock: socket.socket) -> list[list[int]]:
    """Receive one batch of encoded texts."""
    (rows,) = _U32.unpack(recv_exact(sock, 4))
    lengths = np.frombuffer(recv_exact(sock, 4 * rows), dtype="<u4")
    flat = np.frombuffer(recv_exact(sock, 4 * int(lengths.sum())), dtype="<i4")
    ends = np.cumsum(lengths, dtype=np.int64).tolist()
    return [
        flat[end - int(length) : end].tolist() for end, length in zip(ends, lengths, strict=True)
    ]


def send_reply(sock: socket.socket, outputs: np.ndarray) -> None:
    """Send the model's outputs for a batch."""
    data = np.ascontiguousarray(outputs, dtype="<f4")
    sock.sendall(_REPLY.pack(OK, *data.shape) + data.tobytes())


def send_failure(sock: socket.socket, message: str) -> None:
    """Tell the worker its batch failed."""
    text = message.encode()
    sock.sendall(_REPLY.pack(FAILED, len(text), 0) + text)


def recv_reply(sock: socket.socket) -> np.ndarray:
    """Receive the outputs of one batch; ``RuntimeError`` if the model failed on it."""
    status, rows, columns = _REPLY.unpack(recv_exact(sock, _REPLY.size))
    if status != OK:
        raise RuntimeError(recv_exact(sock, rows).decode(errors="replace"))
    data = recv_exact(sock, 4 * rows * columns)
    return np.frombuffer(data, dtype="<f4").reshape(rows, columns)
