"""The worker <-> model process framing: round trips, failures, bounds checked before reading."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from service import wire

# Every read in these tests is bounded: a read that would block fails with TimeoutError.
READ_TIMEOUT_S = 2.0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Return two connected Unix stream sockets (sender, receiver); reads time out."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender.settimeout(READ_TIMEOUT_S)
    receiver.settimeout(READ_TIMEOUT_S)
    yield sender, receiver
    sender.close()
    receiver.close()


# -- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        [[1, 2, 3], [], [7], [-5, 2**31 - 1, 0]],  # ragged, with an empty row, int32 extremes
        [[]],  # one empty text
        [],  # a batch of no rows
    ],
    ids=["ragged", "one-empty-row", "no-rows"],
)
def test_request_round_trip_keeps_every_row(
    pair: tuple[socket.socket, socket.socket], encoded: list[list[int]]
) -> None:
    """What ``send_request`` writes, ``recv_request`` reads back row for row, empty rows too."""
    sender, receiver = pair
    wire.send_request(sender, encoded)
    assert wire.recv_request(receiver) == encoded


def test_requests_on_one_connection_stay_apart(pair: tuple[socket.socket, socket.socket]) -> None:
    """Frames sent back to back are read one at a time, none bleeding into the next."""
    sender, receiver = pair
    batches = [[[1, 2]], [], [[3], [4, 5, 6]]]
    for batch in batches:
        wire.send_request(sender, batch)
    assert [wire.recv_request(receiver) for _ in batches] == batches


def test_request_layout_is_little_endian_counts_then_ids(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The documented layout: uint32 rows, a uint32 length per row, then all the int32 ids."""
    sender, receiver = pair
    wire.send_request(sender, [[1], [2, -3]])
    expected = struct.pack("<III", 2, 1, 2) + struct.pack("<iii", 1, 2, -3)
    assert receiver.recv(64) == expected


def test_the_largest_allowed_row_count_is_accepted(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Exactly MAX_ROWS rows is within the bound (the check is ``>``, not ``>=``)."""
    sender, receiver = pair
    encoded: list[list[int]] = [[]] * wire.MAX_ROWS
    # Larger than the socket buffer: sent from a thread while this one reads.
    thread = threading.Thread(target=wire.send_request, args=(sender, encoded), daemon=True)
    thread.start()
    received = wire.recv_request(receiver)
    thread.join(READ_TIMEOUT_S)
    assert len(received) == wire.MAX_ROWS
    assert not any(received)


def test_too_many_rows_are_refused_from_the_header_alone(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Only the row count is sent: the error comes without waiting for lengths that never come."""
    sender, receiver = pair
    sender.sendall(struct.pack("<I", wire.MAX_ROWS + 1))
    with pytest.raises(wire.WireError, match="rows announced"):
        wire.recv_request(receiver)  # reading on would raise TimeoutError instead


@pytest.mark.parametrize(
    "lengths",
    [
        [wire.MAX_IDS + 1],
        [wire.MAX_IDS, 1],  # each within the bound, their sum past it
        [2**32 - 1, 2**32 - 1],  # a sum that would wrap around in uint32
    ],
    ids=["one-row", "sum", "uint32-overflow"],
)
def test_too_many_ids_are_refused_before_the_ids_are_read(
    pair: tuple[socket.socket, socket.socket], lengths: list[int]
) -> None:
    """Only the counts are sent: the error comes before anything is allocated for the ids."""
    sender, receiver = pair
    sender.sendall(struct.pack(f"<I{len(lengths)}I", len(lengths), *lengths))
    with pytest.raises(wire.WireError, match="ids announced"):
        wire.recv_request(receiver)


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # closed between frames
        b"\x02\x00",  # inside the row count
        struct.pack("<II", 2, 1),  # inside the lengths
        struct.pack("<III", 2, 1, 2) + struct.pack("<i", 5),  # inside the ids
    ],
    ids=["nothing", "count", "lengths", "ids"],
)
def test_peer_closing_mid_request_is_eof(
    pair: tuple[socket.socket, socket.socket], partial: bytes
) -> None:
    """A peer that hangs up part way through a frame gives ``EOFError``, never a short batch."""
    sender, receiver = pair
    sender.sendall(partial)
    sender.close()
    with pytest.raises(EOFError):
        wire.recv_request(receiver)


# -- replies ---------------------------------------------------------------------------------


def test_reply_round_trip_returns_float32_outputs(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Outputs arrive as the same float32 matrix, whatever the sender's dtype and layout."""
    sender, receiver = pair
    outputs = np.arange(6, dtype=np.float64).reshape(2, 3).T / 7  # float64, not contiguous
    wire.send_reply(sender, outputs)
    received = wire.recv_reply(receiver, expected_rows=3)
    assert received.dtype == np.float32
    np.testing.assert_array_equal(received, outputs.astype(np.float32))


def test_reply_to_a_batch_of_no_rows(pair: tuple[socket.socket, socket.socket]) -> None:
    """A 0-row batch gets a 0-row reply (what the batcher returns for no items)."""
    sender, receiver = pair
    wire.send_reply(sender, np.zeros((0, 0), dtype=np.float32))
    assert wire.recv_reply(receiver, expected_rows=0).shape == (0, 0)


def test_reply_with_the_wrong_row_count_is_refused(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Rows that do not match the batch sent are a framing error, not outputs misassigned."""
    sender, receiver = pair
    wire.send_reply(sender, np.ones((2, 1), dtype=np.float32))
    with pytest.raises(wire.WireError, match="2 x 1 for 3 rows"):
        wire.recv_reply(receiver, expected_rows=3)


def test_reply_with_too_many_columns_is_refused_from_the_header_alone(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Only the header is sent: the column bound is checked before the body is read."""
    sender, receiver = pair
    sender.sendall(struct.pack("<III", wire.OK, 1, wire.MAX_ROWS + 1))
    with pytest.raises(wire.WireError):
        wire.recv_reply(receiver, expected_rows=1)


def test_peer_closing_mid_reply_is_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    """A model process that dies part way through a reply gives ``EOFError``."""
    sender, receiver = pair
    sender.sendall(struct.pack("<III", wire.OK, 1, 2) + struct.pack("<f", 0.5))
    sender.close()
    with pytest.raises(EOFError):
        wire.recv_reply(receiver, expected_rows=1)


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [wire.FAILED, wire.UNAVAILABLE])
def test_failure_status_and_message_reach_the_worker(
    pair: tuple[socket.socket, socket.socket], status: int
) -> None:
    """``send_failure``'s status and (UTF-8) message come out as ``RemoteFailure``."""
    sender, receiver = pair
    wire.send_failure(sender, "modèle en échec", status)
    with pytest.raises(wire.RemoteFailure, match="modèle en échec") as caught:
        wire.recv_reply(receiver, expected_rows=4)
    assert caught.value.status == status


def test_failure_defaults_to_failed(pair: tuple[socket.socket, socket.socket]) -> None:
    """Without a status, a failure says the model failed on the batch."""
    sender, receiver = pair
    wire.send_failure(sender, "boom")
    with pytest.raises(wire.RemoteFailure) as caught:
        wire.recv_reply(receiver, expected_rows=1)
    assert caught.value.status == wire.FAILED


def test_failure_leaves_the_connection_in_step(pair: tuple[socket.socket, socket.socket]) -> None:
    """The whole failure frame is consumed: the next reply on the connection reads cleanly."""
    sender, receiver = pair
    wire.send_failure(sender, "busy", wire.UNAVAILABLE)
    wire.send_reply(sender, np.full((1, 2), 0.25, dtype=np.float32))
    with pytest.raises(wire.RemoteFailure):
        wire.recv_reply(receiver, expected_rows=1)
    np.testing.assert_array_equal(wire.recv_reply(receiver, expected_rows=1), [[0.25, 0.25]])


def test_long_failure_message_is_cut_to_the_bound_and_still_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A message past MAX_MESSAGE_BYTES is truncated by the sender, so the reader accepts it."""
    sender, receiver = pair
    message = "x" + "é" * wire.MAX_MESSAGE_BYTES  # 2 bytes each after "x": cut inside one
    thread = threading.Thread(target=wire.send_failure, args=(sender, message), daemon=True)
    thread.start()
    with pytest.raises(wire.RemoteFailure) as caught:
        wire.recv_reply(receiver, expected_rows=1)
    thread.join(READ_TIMEOUT_S)
    text = str(caught.value)
    assert text == "x" + "é" * (wire.MAX_MESSAGE_BYTES // 2 - 1) + "\ufffd"  # half an é left


def test_failure_message_past_the_bound_is_refused_from_the_header_alone(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Only the header is sent: an oversized message length is refused before it is read."""
    sender, receiver = pair
    sender.sendall(struct.pack("<III", wire.FAILED, wire.MAX_MESSAGE_BYTES + 1, 0))
    with pytest.raises(wire.WireError, match="failure message"):
        wire.recv_reply(receiver, expected_rows=1)
