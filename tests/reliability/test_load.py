"""Load: a soak at sustained concurrency, and overload past the queue. Both ``slow``.

Durations come from the environment so CI runs them short and a person long:
``RELIABILITY_SOAK_S`` (default 30), ``RELIABILITY_SOAK_CLIENTS`` (8),
``RELIABILITY_OVERLOAD_S`` (5). Traffic goes to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from tests.integration.server import running_server, wait_workers_ready
from tests.reliability.harness import (
    LoadRun,
    checked_load,
    env_seconds,
    percentile,
    report,
    rss_mb,
    slope_per_minute,
    wait_for_workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_soak(tiny_bundle: Path, tmp_path: Path) -> None:
    """Sustained load: no errors, no wrong answers, p99 stable, worker memory flat."""
    duration = env_seconds("RELIABILITY_SOAK_S", 30)
    clients = int(os.environ.get("RELIABILITY_SOAK_CLIENTS", "8"))
    # Default settings (XLA on) but the batch size: see tests/reliability/conftest.py.
    with running_server(tiny_bundle, tmp_path, workers="2", max_batch_size="16") as server:
        wait_workers_ready(server, 2)
        workers = wait_for_workers(server.process.pid, server.worker_processes)
        rss: dict[int, list[tuple[float, float]]] = {pid: [] for pid in workers}
        load = checked_load(server, clients, texts_per_request=4, name="soak").start()
        try:
            while load.elapsed_s < duration:
                for pid in workers:
                    rss[pid].append((load.elapsed_s, rss_mb(pid)))
                time.sleep(min(1.0, duration / 60))
        finally:
            load.stop()
        # None died and came back.
        assert wait_for_workers(server.process.pid, server.worker_processes) == workers
    ok = [s for s in load.samples if s.status == 200]
    third = duration / 3
    first = [s.latency_s for s in ok if s.started < third]
    last = [s.latency_s for s in ok if s.started >= 2 * third]
    p99_first, p99_last = percentile(first, 0.99), percentile(last, 0.99)
    # Memory after warm-up (the first third: XLA programs, allocator pools) must stay flat.
    slopes = {
        pid: slope_per_minute([p for p in points if p[0] >= third]) for pid, points in rss.items()
    }
    growth = {pid: points[-1][1] - points[len(points) // 3][1] for pid, points in rss.items()}
    report(
        "soak",
        seconds=duration,
        clients=clients,
        requests=len(load.samples),
        rps=round(len(load.samples) / load.elapsed_s),
        errors=len(load.errors()),
        wrong_answers=len(load.mismatches),
        p50_ms=round(percentile([s.latency_s for s in ok], 0.5) * 1000, 1),
        p99_first_ms=round(p99_first * 1000, 1),
        p99_last_ms=round(p99_last * 1000, 1),
        rss_mb={pid: round(points[-1][1]) for pid, points in rss.items()},
        rss_slope_mb_per_min={pid: round(value, 2) for pid, value in slopes.items()},
        rss_growth_mb={pid: round(value, 1) for pid, value in growth.items()},
    )
    assert not load.errors(), load.statuses()
    assert not load.mismatches, load.mismatches[:3]
    assert len(ok) > duration  # it did serve, well over one request a second
    # p99 stable: the last third no worse than 3x the first (plus 50 ms of scheduling noise
    # on a shared 2-core machine).
    assert p99_last <= 3 * p99_first + 0.05
    for pid in workers:
        assert slopes[pid] < 30, f"worker {pid} RSS grows {slopes[pid]:.1f} MB/min"
        assert growth[pid] < 50


def test_overload_sheds_fast_and_recovers(tiny_bundle: Path, tmp_path: Path) -> None:
    """Past the queue: a fast 503 with Retry-After, never a timeout; then 200s again."""
    duration = env_seconds("RELIABILITY_OVERLOAD_S", 5)
    with running_server(
        tiny_bundle,
        tmp_path,
        workers="1",
        threads="32",
        xla="false",
        max_batch_size="8",
        max_queue_texts="64",
        max_texts_per_request="64",
        request_timeout_s="10",
    ) as server:
        # 32 clients x 64 texts against a queue of 64 texts: most must be turned away.
        overload = checked_load(server, 32, texts_per_request=64, timeout_s=15, name="over")
        overload.run_for(duration)
        calm = checked_load(server, 2, texts_per_request=4, name="calm").run_for(duration / 2)
        metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    shed = [s for s in overload.samples if s.status == 503]
    served = [s for s in overload.samples if s.status == 200]
    report(
        "overload",
        seconds=duration,
        requests=len(overload.samples),
        statuses=dict(overload.statuses()),
        shed_p99_ms=round(percentile([s.latency_s for s in shed], 0.99) * 1000, 1),
        served_p99_ms=round(percentile([s.latency_s for s in served], 0.99) * 1000, 1),
        recovery_statuses=dict(calm.statuses()),
    )
    assert shed, overload.statuses()
    assert served, overload.statuses()
    assert set(overload.statuses()) <= {"200", "503"}  # no timeouts, resets or 500s
    assert {s.code for s in shed} == {"overloaded"}
    assert {s.retry_after for s in shed} == {"1"}
    # Shed without queueing: a queued request would wait up to request_timeout_s (10 s). The
    # bound leaves room for a busy 2-core CI machine (shed p99 92 ms quiet, 461-577 ms busy).
    shed_p99 = percentile([s.latency_s for s in shed], 0.99)
    assert shed_p99 < 2.0, shed_p99
    assert not overload.mismatches
    assert calm.samples
    assert set(calm.statuses()) == {"200"}
    assert not calm.mismatches
    assert 'status="503"' in metrics


def test_load_run_stops_by_itself() -> None:
    """The generator's own bounds: a request cap ends a run even without a server."""
    run = LoadRun("http://127.0.0.1:9/predict", 2, lambda n: {"text": "x"}, max_requests=5)
    run.start()
    deadline = time.monotonic() + 10
    while len(run.samples) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.stop()
    assert 5 <= len(run.samples) <= 6
    assert all(s.status is None for s in run.samples)
