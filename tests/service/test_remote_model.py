"""RemoteModel: an HTTP worker's model that encodes locally and predicts in the model process."""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from service import remote_model
from service.errors import NotReady, Overloaded
from service.remote_model import RemoteModel
from tests.fixtures import FakePredictor, wait_until
from tests.service.conftest import ServerFactory
from training.bundle import MODEL_FILE, TOKENIZER_FILE, file_sha256
from training.preprocessing import SequenceSpec, TextPreprocessor
from training.tokenizer import Tokenizer

BUNDLE_TEXTS = ["good film", "the plot was bad", "a great great film", "awful actors"]
BUNDLE_MAXLEN = 4

RemoteFactory = Callable[..., RemoteModel]


def select_with_poll(poll: type) -> SimpleNamespace:
    """Return the ``select`` module with ``poll`` in place of its poll object."""
    return SimpleNamespace(**{**vars(select), "poll": poll})


@pytest.fixture(scope="module")
def bundle_tokenizer() -> Tokenizer:
    """Return the tokenizer of ``bundle``."""
    return Tokenizer.fit(BUNDLE_TEXTS)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, bundle_tokenizer: Tokenizer) -> Path:
    """A bundle as far as an HTTP worker reads it: tokenizer, metadata and checksums.

    The worker never loads ``model.keras`` (the model process does), only checks its digest,
    so a placeholder stands in for it and no TensorFlow is needed.
    """
    directory = tmp_path_factory.mktemp("remote") / "bundle"
    directory.mkdir()
    bundle_tokenizer.save(directory / TOKENIZER_FILE)
    (directory / MODEL_FILE).write_bytes(b"placeholder: only the model process loads it")
    metadata = {
        "format_version": 1,
        "name": "remote",
        "version": "5",
        "created_at": "2024-01-01T00:00:00+00:00",
        "labels": ["negative", "positive"],
        "maxlen": BUNDLE_MAXLEN,
        "padding": "post",
        "truncating": "pre",
        "vocabulary_size": bundle_tokenizer.vocabulary_size,
        "checksums": {name: file_sha256(directory / name) for name in (MODEL_FILE, TOKENIZER_FILE)},
    }
    (directory / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return directory


@pytest.fixture(autouse=True)
def _fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Try the socket every 10 ms, so reconnecting takes milliseconds in these tests."""
    monkeypatch.setattr(remote_model, "CONNECT_INTERVAL_S", 0.01)


@pytest.fixture
def make_remote(bundle: Path, socket_path: Path) -> Iterator[RemoteFactory]:
    """Return a factory of (not yet loaded) RemoteModels on the socket; all are closed after."""
    made: list[RemoteModel] = []

    def make(load_timeout_s: float = 5.0) -> RemoteModel:
        model = RemoteModel(bundle, socket_path, load_timeout_s=load_timeout_s)
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


def test_load_connects_and_predictions_are_the_servers(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """Once loaded it is ready, and a ragged batch gets exactly the model's outputs."""
    server = make_server()
    model = make_remote()
    assert not model.ready
    model.load()
    assert model.ready
    wait_until(lambda: server.connections == 1)

    encoded = [[2, 3], [], [4, 4, 6, 7], [1]]
    outputs = model.predict_encoded(encoded)
    np.testing.assert_array_equal(outputs, FakePredictor().predict_encoded(encoded))
    assert model.predict_encoded([]).shape[0] == 0
    assert model.runtime_name == "process"


def test_load_waits_for_a_model_process_that_starts_later(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """Workers boot beside a model process still loading: ``load`` waits for it to listen."""
    model = make_remote(load_timeout_s=10.0)
    loaded = threading.Event()
    errors: list[Exception] = []

    def load() -> None:
        try:
            model.load()
        except Exception as exc:  # reported by the assertions below
            errors.append(exc)
        loaded.set()

    threading.Thread(target=load, daemon=True).start()
    time.sleep(0.1)
    assert not loaded.is_set()
    make_server()
    assert loaded.wait(5.0)
    assert errors == []
    assert model.predict_encoded([[2]]).tolist() == [[1.0]]


def test_encode_is_the_bundles_preprocessing(
    make_server: ServerFactory, make_remote: RemoteFactory, bundle_tokenizer: Tokenizer
) -> None:
    """Texts are tokenized with the bundle's tokenizer and cut as its metadata says, locally."""
    make_server()
    model = make_remote()
    with pytest.raises(RuntimeError, match="load"):
        model.encode(["good film"])
    model.load()
    texts = ["good film", "a great great film was good", "unknown words", ""]
    expected = TextPreprocessor(
        bundle_tokenizer, SequenceSpec(BUNDLE_MAXLEN, "post", "pre")
    ).encode(texts)

    assert model.encode(texts) == expected
    assert len(expected[1]) == BUNDLE_MAXLEN  # truncated, its ending kept
    assert expected[1] == bundle_tokenizer.encode(texts[1])[-BUNDLE_MAXLEN:]
    assert [span.id for span in model.encode_spans(texts[0])] == expected[0]
    assert bundle_tokenizer.oov_index is not None
    assert model.oov_index == bundle_tokenizer.oov_index
    assert expected[2] == [bundle_tokenizer.oov_index] * 2
    assert (model.metadata.name, model.metadata.version) == ("remote", "5")


def test_load_times_out_when_nothing_listens(make_remote: RemoteFactory, socket_path: Path) -> None:
    """No model process: ``load`` fails after its timeout, naming the socket it waited on."""
    model = make_remote(load_timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no model process on .*model\.sock after 0\.2 s"):
        model.load()
    assert time.monotonic() - started < 3.0
    assert not model.ready
    assert not socket_path.exists()


def test_model_process_going_away_turns_readiness_off_without_a_batch(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """The watcher notices the hang-up itself: not ready within seconds, no batch needed."""
    fake = FakePredictor()
    server = make_server(fake)
    model = make_remote()
    model.load()

    server.stop(timeout=5)
    wait_until(lambda: not model.ready)
    assert fake.batch_sizes == []  # nothing was sent: the watcher saw the hang-up
    with pytest.raises(NotReady, match="restarting"):
        model.predict_encoded([[2]])


def test_hang_up_is_seen_where_poll_reports_only_readability(
    make_server: ServerFactory, make_remote: RemoteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gevent's poll (the HTTP workers of process mode) drops POLLRDHUP and POLLHUP and reports
    a hang-up only as a readable socket: the watcher must see it all the same."""

    class ReadabilityPoll:
        """A poller that, like gevent's, watches only for reading and writing."""

        def __init__(self) -> None:
            self._poller = select.poll()
            self._mask = 0

        def register(self, sock: socket.socket, mask: int) -> None:
            self._mask = mask & (select.POLLIN | select.POLLOUT)
            if self._mask:
                self._poller.register(sock, self._mask)

        def poll(self, timeout: float) -> list[tuple[int, int]]:
            if not self._mask:  # nothing to watch: only the timeout ends the wait
                time.sleep(timeout / 1000)
                return []
            return [(fd, self._mask) for fd, _ in self._poller.poll(timeout)]

    monkeypatch.setattr(remote_model, "select", select_with_poll(ReadabilityPoll))
    server = make_server()
    model = make_remote()
    model.load()

    server.stop(timeout=5)
    wait_until(lambda: not model.ready)


def test_replies_to_batches_are_never_taken_for_a_hang_up(
    make_server: ServerFactory, make_remote: RemoteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher wakes on each reply too (it polls for readability): it must go back to
    watching, and the connection must stay the one it was."""
    server = make_server()
    model = make_remote()
    model.load()
    changes: list[bool] = []
    model.watch_readiness(lambda: changes.append(model.ready))

    for row in range(200):
        assert model.predict_encoded([[2, row % 5]]).shape[0] == 1

    assert model.ready
    assert changes == []
    assert server.connections == 1
    assert "hung up" not in caplog.text


def test_reconnects_to_the_replacement_model_process(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """A new model process on the same path: ready again, and its outputs are served."""
    model = make_remote()
    first = make_server()
    model.load()
    first.stop(timeout=5)
    wait_until(lambda: not model.ready)

    replacement_model = FakePredictor()
    replacement = make_server(replacement_model)
    wait_until(lambda: model.ready)
    wait_until(lambda: replacement.connections == 1)
    assert model.predict_encoded([[2, 4]]).tolist() == [[0.5]]
    assert replacement_model.batch_sizes == [1]


def test_readiness_watchers_hear_of_the_loss_and_the_return(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """The runtime's ready gauge follows the model process through ``watch_readiness``."""
    model = make_remote()
    first = make_server()
    model.load()
    heard: list[bool] = []
    model.watch_readiness(lambda: heard.append(model.ready))
    first.stop(timeout=5)
    wait_until(lambda: heard == [False])
    make_server(FakePredictor())
    wait_until(lambda: heard == [False, True])


def test_batch_in_flight_when_the_process_dies_is_not_ready(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """The batch waiting on a model process that goes away gets NotReady, not a hang."""
    gate = threading.Event()
    fake = FakePredictor(gate=gate)
    server = make_server(fake)
    model = make_remote()
    model.load()
    errors: list[Exception] = []
    done = threading.Event()

    def predict() -> None:
        try:
            model.predict_encoded([[2]])
        except Exception as exc:  # reported by the assertions below
            errors.append(exc)
        done.set()

    threading.Thread(target=predict, daemon=True).start()
    assert fake.entered.wait(5.0)
    server.stop(timeout=0.1)  # the model is stuck on the batch: stop does not wait for it
    assert done.wait(5.0)
    gate.set()
    assert len(errors) == 1
    assert isinstance(errors[0], NotReady)
    assert not model.ready


def test_unavailable_reply_is_overloaded_and_the_connection_goes_on(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """The model process's queue is full: Overloaded (retry later); still ready, still served."""
    make_server(workers=1, max_queue_texts=5, max_texts_per_request=5)
    model = make_remote()
    model.load()

    with pytest.raises(Overloaded, match="busy"):
        model.predict_encoded([[2]] * 6)
    assert model.ready
    assert model.predict_encoded([[2]] * 5).shape == (5, 1)


def test_model_failure_on_a_batch_is_a_runtime_error_and_the_connection_goes_on(
    make_server: ServerFactory, make_remote: RemoteFactory
) -> None:
    """The model raising on a batch fails that batch only (500), not the connection (503)."""
    fake = FakePredictor(fail_with=ValueError("bad shapes"))
    make_server(fake)
    model = make_remote()
    model.load()

    with pytest.raises(RuntimeError, match="failed on this batch: ValueError: bad shapes"):
        model.predict_encoded([[2]])
    assert model.ready
    fake.fail_with = None
    assert model.predict_encoded([[2]]).tolist() == [[1.0]]


def test_close_stops_reconnecting(make_server: ServerFactory, make_remote: RemoteFactory) -> None:
    """Closed while its model process restarts: it never connects to the replacement."""
    first = make_server()
    model = make_remote()
    model.load()
    first.stop(timeout=5)
    wait_until(lambda: not model.ready)  # reconnecting in the background now

    model.close()
    replacement = make_server()
    time.sleep(0.3)  # 30 reconnect intervals
    assert replacement.connections == 0
    assert not model.ready
    with pytest.raises(NotReady):
        model.predict_encoded([[2]])


def test_watcher_of_a_connection_dropped_before_it_ran_ends_quietly(
    make_server: ServerFactory, make_remote: RemoteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection is gone before its watcher thread registers it: the watcher just ends.

    (A batch failing, or ``close``, right after a connect: the watcher must not crash on the
    closed socket.)
    """
    make_server()
    registering, proceed = threading.Event(), threading.Event()
    watchers: list[threading.Thread] = []

    class LatePoll:
        """A poller that registers only when the test lets it."""

        def __init__(self) -> None:
            self._poller = select.poll()

        def register(self, sock: socket.socket, mask: int) -> None:
            watchers.append(threading.current_thread())
            registering.set()
            assert proceed.wait(5.0)
            self._poller.register(sock, mask)

        def poll(self, timeout: float) -> list[tuple[int, int]]:
            return self._poller.poll(timeout)

    fake_select = select_with_poll(LatePoll)
    monkeypatch.setattr(remote_model, "select", fake_select)
    crashes: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    model = make_remote()
    model.load()
    assert registering.wait(5.0)

    model.close()
    proceed.set()
    watchers[0].join(5.0)
    assert not watchers[0].is_alive()
    assert [repr(crash.exc_value) for crash in crashes] == []


def test_hang_up_right_after_reconnecting_is_reconnected_too(
    make_server: ServerFactory, make_remote: RemoteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model process that hangs up just as the worker reconnected to it is not the last one.

    The reconnect thread is held right after it connected (at its log line) while that model
    process goes away: the worker must still reconnect to the next one, not stay unready.
    """
    held, release = threading.Event(), threading.Event()

    class HoldingLog:
        """The module's logger, holding the reconnect thread once it has connected."""

        def __init__(self, real: logging.Logger) -> None:
            self._real = real

        def info(self, message: str, *args: Any) -> None:
            if message == "model process connected again":
                held.set()
                release.wait(5.0)
            self._real.info(message, *args)

        def error(self, message: str, *args: Any) -> None:
            self._real.error(message, *args)

    first = make_server()
    model = make_remote()
    model.load()
    monkeypatch.setattr(remote_model, "log", HoldingLog(remote_model.log))
    first.stop(timeout=5)
    wait_until(lambda: not model.ready)

    second = make_server()
    assert held.wait(5.0)  # connected to the second, not yet done reconnecting
    assert model.ready
    second.stop(timeout=5)  # ... and the second goes away at once
    wait_until(lambda: not model.ready)
    release.set()

    third = make_server()
    wait_until(lambda: model.ready)
    wait_until(lambda: third.connections == 1)
    assert model.predict_encoded([[2]]).tolist() == [[1.0]]


def test_close_hangs_up_at_once_while_the_watcher_polls(
    make_server: ServerFactory, make_remote: RemoteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``close`` hangs up at once (the model process's wait for its workers ends), not when
    the watcher's poll, which holds the socket open, returns.

    The watcher is made to poll for 30 s at a time: the model process must still see the
    hang-up within seconds.
    """

    class LongPoll:
        """A poller whose every wait lasts 30 s unless the socket has news."""

        def __init__(self) -> None:
            self._poller = select.poll()

        def register(self, sock: socket.socket, mask: int) -> None:
            self._poller.register(sock, mask)

        def poll(self, timeout: float) -> list[tuple[int, int]]:
            return self._poller.poll(30_000)

    fake_select = select_with_poll(LongPoll)
    monkeypatch.setattr(remote_model, "select", fake_select)
    server = make_server()
    model = make_remote()
    model.load()
    wait_until(lambda: server.connections == 1)
    time.sleep(0.05)  # the watcher is in its poll now

    model.close()
    assert not model.ready
    assert server.wait_for_hang_up(3.0, heartbeat=lambda: None)
