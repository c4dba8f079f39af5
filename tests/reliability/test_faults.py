"""Faults: a worker SIGKILLed under load, SIGTERM under load, broken bundles at start.

The server tests here are ``slow`` (each starts its own server and runs load for seconds;
``make test-slow``); the broken-bundle tests run with the default suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.server import (
    SERVE,
    Server,
    free_port,
    metric_sum,
    running_server,
    start_server,
    wait_workers_ready,
)
from tests.reliability.harness import (
    LOAD_TEXTS,
    checked_load,
    client_books,
    connect,
    env_seconds,
    model_holders,
    post_head,
    read_response,
    report,
    rewrite_tokenizer,
    wait_for_workers,
    wait_for_workers_changed,
)
from training.bundle import file_sha256

pytestmark = pytest.mark.integration

# -- SIGKILL ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_worker_sigkilled_under_load_is_replaced(tiny_bundle: Path, tmp_path: Path) -> None:
    before_s = env_seconds("RELIABILITY_FAULT_LOAD_S", 3)
    clients = 6
    with running_server(tiny_bundle, tmp_path, workers="2", threads="8", xla="false") as server:
        wait_workers_ready(server, 2)
        master = server.process.pid
        old = wait_for_workers(master, server.worker_processes)
        # An HTTP worker, never the model process (test_model_process kills that one).
        victim = next(pid for pid in old if pid not in model_holders(server))
        # Half the clients keep their connection, half connect anew for every request (as
        # behind a load balancer): those reach the replacement worker while it loads.
        load = checked_load(server, clients, new_connection_every=2).start()
        time.sleep(before_s)
        killed_at = load.elapsed_s
        os.kill(victim, signal.SIGKILL)
        new = wait_for_workers_changed(master, old)
        wait_workers_ready(server, 2, timeout=120)
        replaced_s = load.elapsed_s - killed_at
        time.sleep(before_s)  # and the new worker serves too
        load.stop()
        scrape = requests.get(f"{server.url}/metrics", timeout=10)
        ready = metric_sum(server, "sentiment_worker_ready")
    statuses = load.statuses()
    errors = load.errors()
    late = [e for e in errors if e.started > killed_at + 1.0]
    report(
        "sigkill",
        requests=len(load.samples),
        statuses=dict(statuses),
        errors=len(errors),
        replaced_in_s=round(replaced_s, 1),
        new_worker=new,
    )
    assert not load.mismatches, load.mismatches[:3]
    assert scrape.status_code == 200
    assert "sentiment_requests_total" in scrape.text
    assert ready == 2
    # Only requests that were on the killed worker's connections may fail: at most one per
    # client, all at the moment of the kill, none with an HTTP error status.
    assert len(errors) <= clients, statuses
    assert all(e.status is None for e in errors), statuses
    assert not late, late[:3]
    assert statuses["200"] > 0


# -- SIGTERM ----------------------------------------------------------------------------------


def _start_partial(server: Server, head: str, body: bytes, split: int) -> socket.socket:
    """Send a request up to ``split`` bytes of its body (a head without its blank line if
    ``split`` is -1): it is in a worker thread, in flight, when the signal comes."""
    sock = connect(server, timeout=30)
    if split < 0:
        sock.sendall(head.encode())
    else:
        sock.sendall(head.encode() + b"\r\n\r\n" + body[:split])
    return sock


@pytest.mark.slow
def test_sigterm_under_load_drains(tiny_bundle: Path, tmp_path: Path) -> None:
    load_s = env_seconds("RELIABILITY_FAULT_LOAD_S", 3)
    grace = 10
    clients = 6
    with running_server(
        tiny_bundle, tmp_path, workers="2", threads="8", xla="false", graceful_timeout_s=str(grace)
    ) as server:
        wait_workers_ready(server, 2)
        load = checked_load(server, clients).start()
        body = json.dumps({"texts": LOAD_TEXTS[:8]}).encode()
        predict_head = post_head("/predict", length=len(body))
        ready_head = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        partial = [_start_partial(server, predict_head, body, len(body) // 2) for _ in range(4)]
        probes = [_start_partial(server, ready_head, b"", -1) for _ in range(4)]
        time.sleep(load_s)
        term_at = load.elapsed_s
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the workers have the signal: readiness is off, draining begins
        for sock in partial:
            sock.sendall(body[len(body) // 2 :])
        for sock in probes:
            sock.sendall(b"\r\n")
        answers = [read_response(sock) for sock in partial]
        probe_answers = [read_response(sock) for sock in probes]
        code = server.process.wait(timeout=grace + 20)
        exited_s = time.monotonic() - started
        load.stop()
        log = server.log()
    for sock in partial + probes:
        sock.close()
    statuses = load.statuses()
    # A request the server read is in its access log (request id): every one of those must
    # have reached its client. A connection error without a log line is a request the server
    # never read: refused after the listener closed, or sent on a kept-alive connection in
    # the instant gunicorn stopped reading it (the keep-alive race: safe to retry, since a
    # prediction changes nothing).
    dropped = [s for s in load.samples if s.status != 200 and f'"{s.request_id}"' in log]
    unread_before = [s for s in load.samples if s.status is None and s.started < term_at]
    after = [s for s in load.samples if s.started >= term_at]
    report(
        "sigterm",
        requests=len(load.samples),
        statuses=dict(statuses),
        in_flight_completed=sum(a.status == 200 for a in answers),
        readyz_after_term=[a.status for a in probe_answers],
        accepted_but_dropped=len(dropped),
        unread_before_term=len(unread_before),
        answered_after_term=sum(s.status == 200 for s in after),
        exit=code,
        exited_in_s=round(exited_s, 1),
    )
    assert code == 0, log[-3000:]
    assert exited_s < grace
    # Requests in flight when SIGTERM came complete, with the right predictions.
    assert [a.status for a in answers] == [200] * len(answers)
    for answer in answers:
        assert len(json.loads(answer.body)["predictions"]) == 8
    # Readiness is off at once: a probe read after the signal says draining.
    assert all(a.status == 503 for a in probe_answers)
    assert all(json.loads(a.body)["status"] == "draining" for a in probe_answers)
    assert log.count("draining: readiness off") == 2  # each worker says so in the log
    assert not load.mismatches
    # Nothing started before the signal is lost, and nothing gets an HTTP error: after it,
    # new requests are either served or never connected (the listener is closed).
    assert not dropped, dropped[:3]
    assert len(unread_before) <= clients  # at most the one request each client had on the wire
    assert all(s.status in (200, None) for s in load.samples)
    assert all(s.error in ("", "ConnectionError") for s in after)


# -- broken bundles ---------------------------------------------------------------------------


def _edit_metadata(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = bundle / "metadata.json"
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


def _garbage_tokenizer(bundle: Path) -> None:
    (bundle / "tokenizer.json").write_text('{"format": "sentiment-tokenizer", "word_index": 3}')
    _edit_metadata(
        bundle,
        lambda m: m["checksums"].update({"tokenizer.json": file_sha256(bundle / "tokenizer.json")}),
    )


def _unreadable_metadata(bundle: Path) -> None:
    (bundle / "metadata.json").write_text("{not json")


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "format-version": (
        lambda b: _edit_metadata(b, lambda m: m.update(format_version=99)),
        "format version 99",
    ),
    "metadata-not-json": (_unreadable_metadata, "cannot read"),
    "tokenizer-garbage": (_garbage_tokenizer, "tokenizer"),
}


@pytest.mark.parametrize("damage", sorted(BREAKAGES))
def test_broken_bundle_is_refused_before_gunicorn(
    tiny_bundle: Path, tmp_path: Path, damage: str
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    breakage, message = BREAKAGES[damage]
    breakage(bundle)
    result = subprocess.run(
        [SERVE, "--model-dir", str(bundle), "--port", str(free_port()), "--host", "127.0.0.1"],
        capture_output=True,
        timeout=60,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot start" in result.stderr
    assert message in result.stderr
    assert str(bundle) in result.stderr


def test_vocabulary_beyond_the_embedding_never_serves(tiny_bundle: Path, tmp_path: Path) -> None:
    """Only loading the model can catch this one: the workers do, and the master stops.

    Judged from the client's side: clients keep sending while a worker answers 503 and its
    load fails, and every request one of them wrote gets a whole answer (the worker drains
    as on SIGTERM instead of exiting mid-response); only connection attempts may fail.
    """
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    rewrite_tokenizer(bundle, extra_words=50)
    server = start_server(bundle, tmp_path, {"workers": "2", "xla": "false", "drain_s": "1"})
    process = server.process
    port = int(server.url.rsplit(":", 1)[1])
    body = json.dumps({"text": "fun"}).encode()
    request = post_head("/predict", length=len(body)).encode() + b"\r\n\r\n" + body
    books = client_books(
        port, request, clients=6, until=lambda: process.poll() is not None, after_refusal="retry"
    )
    with books as outcomes:
        try:
            code = process.wait(timeout=120)
        finally:  # the clients stop once the server is gone
            if process.poll() is None:
                process.kill()
                process.wait()
    output = server.log()
    kinds = Counter(o.kind for o in outcomes)
    statuses = Counter(o.status for o in outcomes if o.status is not None)
    report("vocabulary-beyond-embedding", exit=code, kinds=dict(kinds), statuses=dict(statuses))
    # 3 ("Worker failed to boot") or, when both workers fail at once, 1: gunicorn's halt is
    # itself interrupted by the second worker's boot error (a gunicorn limitation).
    assert code in (1, 3), output[-3000:]
    assert "Worker failed to boot" in output
    assert "inconsistent" in output
    assert "'embedding' has only" in output
    assert kinds["unanswered"] == 0, f"{kinds['unanswered']} written requests got no whole answer"
    assert kinds["answered"] > 0  # the clients did reach the worker while it was failing
    assert set(statuses) <= {503}  # while loading: not ready, never a prediction
