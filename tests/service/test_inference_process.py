"""The model process's server: serving batches on its socket, its bounds, failures and stop."""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from service import wire
from service.config import Settings
from service.inference_process import InferenceServer
from service.metrics import Metrics
from tests.fixtures import FakePredictor, wait_until
from tests.service.conftest import ServerFactory

# Every read on a client socket is bounded: one that would hang fails with TimeoutError.
CLIENT_TIMEOUT_S = 5.0


def connect(path: Path) -> socket.socket:
    """Connect a client (an HTTP worker's end) to the model process's socket."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(CLIENT_TIMEOUT_S)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        raise
    return client


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    """Collect client sockets to close after the test."""
    opened: list[socket.socket] = []
    yield opened
    for client in opened:
        client.close()


def test_serves_a_batch_with_the_models_outputs(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """A ragged batch (an empty text included) comes back as the model's own outputs."""
    server = make_server()
    clients.append(client := connect(socket_path))
    encoded = [[2, 3, 6], [4], [], [1, 1, 2]]

    wire.send_request(client, encoded)
    outputs = wire.recv_reply(client, expected_rows=len(encoded))

    np.testing.assert_array_equal(outputs, FakePredictor().predict_encoded(encoded))
    assert server.listening.is_set()


def test_one_connection_serves_batch_after_batch(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """The connection stays open between batches, a batch of no rows included."""
    make_server()
    clients.append(client := connect(socket_path))
    for encoded in ([[2]], [], [[4, 5], [3]]):
        wire.send_request(client, encoded)
        outputs = wire.recv_reply(client, expected_rows=len(encoded))
        assert len(outputs) == len(encoded)
        if encoded:
            np.testing.assert_array_equal(outputs, FakePredictor().predict_encoded(encoded))


def test_batches_of_concurrent_connections_each_get_their_own_rows(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """Several workers at once: each reply holds the rows of that worker's batch only."""
    make_server()
    batches = [[[2] * (n + 1), [4] * n] for n in range(1, 6)]
    clients.extend(connect(socket_path) for _ in batches)
    results: dict[int, np.ndarray] = {}

    def ask(index: int) -> None:
        wire.send_request(clients[index], batches[index])
        results[index] = wire.recv_reply(clients[index], expected_rows=2)

    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT_S)
    assert sorted(results) == list(range(len(batches)))
    for index, encoded in enumerate(batches):
        np.testing.assert_array_equal(results[index], FakePredictor().predict_encoded(encoded))


def test_socket_is_private_to_its_user(make_server: ServerFactory, socket_path: Path) -> None:
    """The socket is mode 0600 in a directory of mode 0700; no staging file is left behind."""
    make_server()
    mode = os.stat(socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(socket_path.parent).st_mode) == 0o700
    assert [p.name for p in socket_path.parent.iterdir()] == [socket_path.name]


def test_takes_over_the_socket_path_a_dead_process_left(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """A stale socket file (its process died without removing it) is replaced, then served."""
    socket_path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path))
    stale.close()  # the file stays, nobody listens on it
    with pytest.raises(ConnectionRefusedError):
        connect(socket_path).close()

    make_server()
    clients.append(client := connect(socket_path))
    wire.send_request(client, [[2]])
    np.testing.assert_array_equal(wire.recv_reply(client, expected_rows=1), [[1.0]])


@pytest.mark.parametrize(
    "header",
    [
        struct.pack("<I", wire.MAX_ROWS + 1),
        struct.pack("<III", 2, wire.MAX_IDS, 1),
    ],
    ids=["rows", "ids"],
)
def test_client_past_the_bounds_is_dropped_and_others_are_still_served(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket], header: bytes
) -> None:
    """A frame announcing too much closes that connection only; the others keep being served."""
    server = make_server()
    clients.append(good := connect(socket_path))
    clients.append(bad := connect(socket_path))
    wait_until(lambda: server.connections == 2)

    bad.sendall(header)  # the header only: the server must not wait for a body
    assert bad.recv(1) == b""  # hung up on (TimeoutError if the server waited instead)
    wait_until(lambda: server.connections == 1)

    wire.send_request(good, [[3, 4]])
    np.testing.assert_array_equal(wire.recv_reply(good, expected_rows=1), [[0.5]])
    clients.append(late := connect(socket_path))
    wire.send_request(late, [[2]])
    np.testing.assert_array_equal(wire.recv_reply(late, expected_rows=1), [[1.0]])


def test_model_exception_is_a_failed_reply_and_the_connection_goes_on(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """The model raising fails that batch (FAILED, with the error); the next one is served."""
    fake = FakePredictor(fail_with=ValueError("bad shapes"))
    make_server(fake)
    clients.append(client := connect(socket_path))

    wire.send_request(client, [[2], [4]])
    with pytest.raises(wire.RemoteFailure, match="ValueError: bad shapes") as caught:
        wire.recv_reply(client, expected_rows=2)
    assert caught.value.status == wire.FAILED

    fake.fail_with = None
    wire.send_request(client, [[2], [4]])
    np.testing.assert_array_equal(wire.recv_reply(client, expected_rows=2), [[1.0], [0.0]])


def test_full_queue_is_an_unavailable_reply_and_the_connection_goes_on(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """More texts than the queue holds: UNAVAILABLE (the worker may retry), nothing dropped."""
    make_server(workers=1, max_queue_texts=5, max_texts_per_request=5)
    clients.append(client := connect(socket_path))

    wire.send_request(client, [[2]] * 6)
    with pytest.raises(wire.RemoteFailure) as caught:
        wire.recv_reply(client, expected_rows=6)
    assert caught.value.status == wire.UNAVAILABLE

    wire.send_request(client, [[2]] * 5)
    assert wire.recv_reply(client, expected_rows=5).shape == (5, 1)


def test_wait_for_hang_up_returns_once_every_client_has_closed(
    make_server: ServerFactory, socket_path: Path
) -> None:
    """Returns True as soon as the last worker hangs up, well before its timeout."""
    server = make_server()
    assert server.wait_for_hang_up(5.0, heartbeat=lambda: None)  # nobody connected
    client = connect(socket_path)
    wait_until(lambda: server.connections == 1)
    beats: list[float] = []
    closer = threading.Timer(0.2, client.close)
    closer.start()

    started = time.monotonic()
    assert server.wait_for_hang_up(10.0, heartbeat=lambda: beats.append(time.monotonic()))
    assert time.monotonic() - started < 5.0
    assert beats  # the master heard from the worker while it waited
    assert server.connections == 0
    closer.join(CLIENT_TIMEOUT_S)


def test_wait_for_hang_up_gives_up_on_timeout_while_a_client_stays(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """Returns False after its timeout while a worker is still connected (and still served)."""
    server = make_server()
    clients.append(client := connect(socket_path))
    wait_until(lambda: server.connections == 1)

    started = time.monotonic()
    assert not server.wait_for_hang_up(0.3, heartbeat=lambda: None)
    assert 0.3 <= time.monotonic() - started < 5.0
    wire.send_request(client, [[2]])
    assert wire.recv_reply(client, expected_rows=1).shape == (1, 1)


def test_stop_removes_its_socket_file(make_server: ServerFactory, socket_path: Path) -> None:
    """After stop, the path is gone: a worker's connect fails and it keeps trying."""
    server = make_server()
    server.stop()
    assert not socket_path.exists()
    with pytest.raises(FileNotFoundError):
        connect(socket_path).close()


def test_stop_leaves_a_file_that_replaced_its_socket(
    make_server: ServerFactory, socket_path: Path
) -> None:
    """A successor's socket took the path: the stopping server must not remove it."""
    server = make_server()
    successor = socket_path.with_name("successor")
    successor.write_text("not ours")
    os.replace(successor, socket_path)

    server.stop()
    assert socket_path.read_text() == "not ours"


def test_stop_hangs_up_on_connected_workers(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """Connections still open at stop are closed, as the process exiting would close them.

    Without it a worker stays connected to a server that no longer serves: its readiness never
    turns off, and its batches get "overloaded" instead of "not ready".
    """
    server = make_server()
    clients.append(client := connect(socket_path))
    wire.send_request(client, [[2]])
    wire.recv_reply(client, expected_rows=1)
    wait_until(lambda: server.connections == 1)

    server.stop(timeout=5)
    assert client.recv(1) == b""  # TimeoutError if the connection were left open
    wait_until(lambda: server.connections == 0)


def test_failed_load_records_the_error_and_calls_on_failure(
    make_settings: Callable[..., Settings], socket_path: Path
) -> None:
    """A model that cannot load: ``load_error`` says why, ``on_failure`` runs, nothing listens."""
    error = RuntimeError("bundle is broken")
    server = InferenceServer(
        make_settings(inference_socket=socket_path), FakePredictor(load_error=error)
    )
    failures: list[Exception] = []
    called = threading.Event()

    def on_failure(exc: Exception) -> None:
        failures.append(exc)
        called.set()

    server.start(on_failure=on_failure)  # in the background, as in the worker
    assert called.wait(5.0)
    assert failures == [error]
    assert server.load_error == "bundle is broken"
    assert not server.listening.is_set()
    assert not socket_path.exists()
    server.stop(timeout=5)


def test_wsgi_call_answers_503(make_settings: Callable[..., Settings], socket_path: Path) -> None:
    """The model process is gunicorn's app too, but refuses HTTP with a 503."""
    server = InferenceServer(make_settings(inference_socket=socket_path), FakePredictor())
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        statuses.append(status)

    body = server({}, start_response)
    assert statuses == ["503 Service Unavailable"]
    assert b"no HTTP" in b"".join(body)


def test_the_model_process_records_its_model_calls(
    make_server: ServerFactory, socket_path: Path, clients: list[socket.socket]
) -> None:
    """Its batches are the model calls: sizes and durations, one observation per call."""
    metrics = Metrics()
    fake = FakePredictor()
    server = make_server(fake, metrics=metrics)
    clients.append(client := connect(socket_path))
    for encoded in ([[2]], [[4, 5], [3]], [[1], [2], [3], [4]]):
        wire.send_request(client, encoded)
        wire.recv_reply(client, expected_rows=len(encoded))
    calls = metrics.registry.get_sample_value("sentiment_batch_size_count")
    assert calls == len(fake.batch_sizes) == 3
    assert metrics.registry.get_sample_value("sentiment_batch_size_sum") == 7
    assert metrics.registry.get_sample_value("sentiment_inference_duration_seconds_count") == 3
    # Requests' waits are the HTTP workers' to record.
    assert metrics.registry.get_sample_value("sentiment_queue_wait_seconds_count") == 0
    assert server.listening.is_set()
