"""DynamicBatcher: coalescing, waiting only for announced arrivals, splitting, errors, limits."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

from service.batching import DynamicBatcher
from service.errors import NotReady, Overloaded


class Model:
    """A fake predict_fn: row ``i`` of the output is ``[item_i, 2 * item_i]``.

    Records every call; ``gate`` (when given) holds each call until set, and ``entered`` is
    set once a call is waiting on it; ``fail_with`` makes calls raise.
    """

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[list[int]] = []
        self.gate = gate
        self.entered = threading.Event()
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self, items: list[Any]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(items))
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(10), "gate never opened"
        if self.fail_with is not None:
            raise self.fail_with
        column = np.asarray(items, dtype=np.float32).reshape(-1, 1)
        return np.concatenate([column, 2 * column], axis=1)

    @property
    def sizes(self) -> list[int]:
        """Return the batch size of every call so far."""
        with self._lock:
            return [len(call) for call in self.calls]


class Observer:
    """Records what the batcher reports (the BatchObserver protocol)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, float, list[float]]] = []
        self.depths: list[int] = []

    def batch_done(self, size: int, inference_s: float, queue_waits_s: Sequence[float]) -> None:
        self.batches.append((size, inference_s, list(queue_waits_s)))

    def queue_depth_changed(self, items: int) -> None:
        self.depths.append(items)


def rows(values: Sequence[int]) -> np.ndarray:
    """Return the fake model's expected output for ``values``."""
    column = np.asarray(values, dtype=np.float32).reshape(-1, 1)
    return np.concatenate([column, 2 * column], axis=1)


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def started() -> Iterator[list[DynamicBatcher]]:
    """Collect batchers to stop after the test."""
    batchers: list[DynamicBatcher] = []
    yield batchers
    for batcher in batchers:
        batcher.stop(timeout=5)


def make_batcher(
    started: list[DynamicBatcher], predict_fn: Callable[[list[Any]], np.ndarray], **options: Any
) -> DynamicBatcher:
    batcher = DynamicBatcher(predict_fn, **options)
    batcher.start()
    started.append(batcher)
    return batcher


def test_full_batch_is_one_call(started: list[DynamicBatcher], model: Model) -> None:
    batcher = make_batcher(started, model, max_batch_size=4, max_wait_s=5.0)
    arrivals = [batcher.announce() for _ in range(4)]
    began = time.perf_counter()
    futures = [arrival.submit([10 + i]) for i, arrival in enumerate(arrivals)]
    results = [future.result(timeout=5) for future in futures]
    # The batch filled: it left at once, not after max_wait_s.
    assert time.perf_counter() - began < 2.0
    assert model.calls == [[10, 11, 12, 13]]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, rows([10 + i]))


def test_several_items_per_request_fill_one_call(
    started: list[DynamicBatcher], model: Model
) -> None:
    batcher = make_batcher(started, model, max_batch_size=6, max_wait_s=5.0)
    first, second = batcher.announce(), batcher.announce()
    a = first.submit([1, 2, 3])
    b = second.submit([4, 5, 6])
    np.testing.assert_array_equal(a.result(5), rows([1, 2, 3]))
    np.testing.assert_array_equal(b.result(5), rows([4, 5, 6]))
    assert model.calls == [[1, 2, 3, 4, 5, 6]]


def test_partial_batch_leaves_after_max_wait(started: list[DynamicBatcher], model: Model) -> None:
    batcher = make_batcher(started, model, max_batch_size=8, max_wait_s=0.15)
    with batcher.announce():  # announced, but never submits
        began = time.perf_counter()
        with batcher.announce() as arrival:
            future = arrival.submit([1, 2])
        result = future.result(timeout=5)
        waited = time.perf_counter() - began
    assert 0.1 <= waited < 2.0
    np.testing.assert_array_equal(result, rows([1, 2]))
    assert model.sizes == [2]


def test_lone_request_is_not_delayed(started: list[DynamicBatcher], model: Model) -> None:
    batcher = make_batcher(started, model, max_batch_size=128, max_wait_s=1.0)
    for _ in range(3):
        began = time.perf_counter()
        with batcher.announce() as arrival:
            future = arrival.submit([7])
        np.testing.assert_array_equal(future.result(timeout=5), rows([7]))
        assert time.perf_counter() - began < 0.3
    began = time.perf_counter()
    np.testing.assert_array_equal(batcher.submit([8, 9]).result(timeout=5), rows([8, 9]))
    assert time.perf_counter() - began < 0.3
    assert model.sizes == [1, 1, 1, 2]


def test_arrival_that_leaves_without_submitting_stops_the_wait(
    started: list[DynamicBatcher], model: Model
) -> None:
    batcher = make_batcher(started, model, max_batch_size=128, max_wait_s=5.0)
    with batcher.announce():  # an arrival that will leave without submitting (e.g. a 422)
        with batcher.announce() as arrival:
            future = arrival.submit([3])
        time.sleep(0.05)
        assert not future.done()  # waiting for the announced arrival
        began = time.perf_counter()
    np.testing.assert_array_equal(future.result(timeout=5), rows([3]))
    assert time.perf_counter() - began < 2.0
    # The ghost no longer counts: the next lone request does not wait either.
    began = time.perf_counter()
    batcher.submit([4]).result(timeout=5)
    assert time.perf_counter() - began < 0.3


def test_large_request_is_split_and_reassembled(
    started: list[DynamicBatcher], model: Model
) -> None:
    batcher = make_batcher(started, model, max_batch_size=3, max_wait_s=0.0)
    values = list(range(100, 108))
    result = batcher.submit(values).result(timeout=5)
    np.testing.assert_array_equal(result, rows(values))
    assert model.sizes == [3, 3, 2]
    assert [item for call in model.calls for item in call] == values


def test_split_request_shares_batches_with_others(
    started: list[DynamicBatcher], model: Model
) -> None:
    batcher = make_batcher(started, model, max_batch_size=4, max_wait_s=5.0)
    first, second = batcher.announce(), batcher.announce()
    a = first.submit([0, 1, 2])
    b = second.submit([10, 11, 12, 13, 14])
    np.testing.assert_array_equal(a.result(5), rows([0, 1, 2]))
    np.testing.assert_array_equal(b.result(5), rows([10, 11, 12, 13, 14]))
    assert model.calls == [[0, 1, 2, 10], [11, 12, 13, 14]]


def test_error_reaches_every_caller_of_the_batch(
    started: list[DynamicBatcher], model: Model
) -> None:
    batcher = make_batcher(started, model, max_batch_size=8, max_wait_s=5.0)
    problem = RuntimeError("model exploded")
    model.fail_with = problem
    arrivals = [batcher.announce() for _ in range(3)]
    futures = [arrival.submit([i, i]) for i, arrival in enumerate(arrivals)]
    for future in futures:
        assert future.exception(timeout=5) is problem
    assert model.sizes == [6]
    # The batcher survives and serves the next batch.
    model.fail_with = None
    np.testing.assert_array_equal(batcher.submit([5]).result(timeout=5), rows([5]))


def test_error_in_one_part_of_a_split_request_fails_it(started: list[DynamicBatcher]) -> None:
    calls: list[list[int]] = []

    def second_call_fails(items: list[Any]) -> np.ndarray:
        calls.append(list(items))
        if len(calls) == 2:
            raise ValueError("second call fails")
        return rows(items)

    batcher = DynamicBatcher(second_call_fails, max_batch_size=2, max_wait_s=0.0)
    batcher.start()
    started.append(batcher)
    with pytest.raises(ValueError, match="second call fails"):
        batcher.submit([1, 2, 3, 4, 5]).result(timeout=5)
    # The parts after the failed one are skipped quietly; the batcher goes on.
    np.testing.assert_array_equal(batcher.submit([6]).result(timeout=5), rows([6]))
    assert [item for call in calls for item in call][-1] == 6


def test_overloaded_when_the_queue_is_full(started: list[DynamicBatcher]) -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    batcher = make_batcher(started, model, max_batch_size=4, max_queue_items=4, max_wait_s=0.0)
    in_flight = batcher.submit([1])
    assert model.entered.wait(5)  # taken off the queue, held in the model
    queued = batcher.submit([2, 3, 4, 5])
    assert batcher.queued_items == 4
    with pytest.raises(Overloaded) as caught:
        batcher.submit([6])
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": "1"}
    with batcher.announce() as arrival, pytest.raises(Overloaded):
        arrival.submit([7])
    gate.set()
    np.testing.assert_array_equal(in_flight.result(5), rows([1]))
    np.testing.assert_array_equal(queued.result(5), rows([2, 3, 4, 5]))
    # Room again once the queue drained.
    np.testing.assert_array_equal(batcher.submit([6]).result(5), rows([6]))


def test_stop_drains_the_queue_then_refuses(started: list[DynamicBatcher]) -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    batcher = make_batcher(started, model, max_batch_size=2, max_wait_s=0.0)
    in_flight = batcher.submit([1])
    assert model.entered.wait(5)
    queued = [batcher.submit([2, 3]), batcher.submit([4])]
    batcher.stop(timeout=0)  # refuse new work, but do not wait here
    with pytest.raises(NotReady):
        batcher.submit([9])
    with batcher.announce() as arrival, pytest.raises(NotReady):
        arrival.submit([9])
    gate.set()
    batcher.stop(timeout=5)  # returns once everything queued is done
    assert all(future.done() for future in [in_flight, *queued])
    np.testing.assert_array_equal(in_flight.result(0), rows([1]))
    np.testing.assert_array_equal(queued[0].result(0), rows([2, 3]))
    np.testing.assert_array_equal(queued[1].result(0), rows([4]))
    assert [item for call in model.calls for item in call] == [1, 2, 3, 4]
    with pytest.raises(NotReady):
        batcher.submit([10])


def test_not_started_refuses(model: Model) -> None:
    with pytest.raises(NotReady):
        DynamicBatcher(model).submit([1])


def test_empty_submission(started: list[DynamicBatcher], model: Model) -> None:
    batcher = make_batcher(started, model)
    assert batcher.submit([]).result(timeout=1).shape[0] == 0
    assert model.calls == []


def test_observer_sees_batches_and_depth(started: list[DynamicBatcher], model: Model) -> None:
    observer = Observer()
    batcher = make_batcher(started, model, max_batch_size=3, max_wait_s=0.0, observer=observer)
    batcher.submit([1, 2, 3, 4, 5]).result(timeout=5)
    assert [size for size, _, _ in observer.batches] == [3, 2]
    assert all(duration >= 0 for _, duration, _ in observer.batches)
    assert len(observer.batches[0][2]) == 1  # the request's wait is counted once
    assert observer.batches[1][2] == []
    assert observer.depths == [2, 0]


def test_each_caller_gets_its_own_rows(started: list[DynamicBatcher], model: Model) -> None:
    batcher = make_batcher(started, model, max_batch_size=8, max_wait_s=0.005)
    threads_count, rounds = 12, 15
    barrier = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            barrier.wait(5)
            for round_ in range(rounds):
                values = [index * 10_000 + round_ * 100 + k for k in range(rng.randint(1, 11))]
                with batcher.announce() as arrival:
                    future: Future[np.ndarray] = arrival.submit(values)
                np.testing.assert_array_equal(future.result(timeout=5), rows(values))
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not failures, failures
    assert all(size <= 8 for size in model.sizes)
    items = [item for call in model.calls for item in call]
    assert len(items) == len(set(items))  # every item went to the model exactly once


# -- supervision: a fault outside the model call never leaves callers waiting -----------------


class FailingObserver(Observer):
    """An observer whose reports raise ``fail_times`` times (a bug in the metrics path)."""

    def __init__(self, where: str, fail_times: int = 1) -> None:
        super().__init__()
        self.where = where
        self.fail_times = fail_times

    def _maybe_fail(self, where: str) -> None:
        if self.where == where and self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError(f"injected fault in {where}")

    def batch_done(self, size: int, inference_s: float, queue_waits_s: Sequence[float]) -> None:
        self._maybe_fail("batch_done")
        super().batch_done(size, inference_s, queue_waits_s)

    def queue_depth_changed(self, items: int) -> None:
        self._maybe_fail("queue_depth_changed")
        super().queue_depth_changed(items)


@pytest.mark.parametrize("where", ["queue_depth_changed", "batch_done"])
def test_fault_in_the_observer_keeps_the_batcher_serving(
    started: list[DynamicBatcher], model: Model, where: str
) -> None:
    batcher = make_batcher(started, model, observer=FailingObserver(where))
    first = batcher.submit([1, 2])
    with contextlib.suppress(RuntimeError):  # may fail, but promptly: not by its timeout
        first.result(timeout=2)
    assert batcher.submit([3]).result(timeout=2).tolist() == [[3.0, 6.0]]
    assert batcher.healthy
    assert batcher.failures == 1


def test_wrong_number_of_rows_fails_the_batch_not_the_thread(
    started: list[DynamicBatcher],
) -> None:
    calls = []

    def short_model(items: list[Any]) -> np.ndarray:
        calls.append(items)
        rows = len(items) - 1 if len(calls) == 1 else len(items)  # first call drops a row
        return np.ones((rows, 2), dtype=np.float32)

    batcher = make_batcher(started, short_model)
    with pytest.raises(ValueError, match="rows"):
        batcher.submit([1, 2, 3]).result(timeout=2)
    assert batcher.submit([4]).result(timeout=2).shape == (1, 2)
    assert batcher.healthy


class Fatal(BaseException):
    """Something no ``except Exception`` may swallow."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_crashed_thread_fails_the_queue_and_reports(model: Model) -> None:
    crashes: list[bool] = []
    batcher = DynamicBatcher(
        model, max_batch_size=4, max_wait_s=0, on_crash=lambda: crashes.append(True)
    )
    gate = threading.Event()
    model.gate = gate
    batcher.start()
    running = batcher.submit([1])
    assert model.entered.wait(2)
    queued = batcher.submit([2])
    behind = batcher.submit([3, 4, 5, 6, 7])  # more than one batch: some stays queued

    def crash(batch: object) -> None:
        raise Fatal("injected")

    batcher._run = crash  # type: ignore[method-assign]  # the next batch ends the thread
    gate.set()
    for future in (queued, behind):
        with pytest.raises(NotReady):
            future.result(timeout=2)
    assert running.result(timeout=2).tolist() == [[1.0, 2.0]]
    assert batcher._thread is not None
    batcher._thread.join(2)  # the thread's exception surfaces here, inside this test
    assert not batcher.healthy
    assert batcher.crashed
    assert crashes == [True]
    with pytest.raises(NotReady):
        batcher.submit([3])


def test_cancelled_jobs_spend_no_model_time(started: list[DynamicBatcher]) -> None:
    gate = threading.Event()
    model = Model(gate)
    batcher = make_batcher(started, model, max_batch_size=4)
    first = batcher.submit([1])
    assert model.entered.wait(2)
    abandoned = batcher.submit([2, 3, 4, 5, 6, 7])  # spans two batches
    kept = batcher.submit([8])
    assert abandoned.cancel()  # what a request does when it times out
    gate.set()
    assert first.result(timeout=2).tolist() == [[1.0, 2.0]]
    assert kept.result(timeout=2).tolist() == [[8.0, 16.0]]
    assert model.calls == [[1], [8]]
    assert batcher.queued_items == 0
