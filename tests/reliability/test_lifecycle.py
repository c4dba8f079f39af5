"""Start, restart and stop, judged from the client's side against the real server.

A test that counts what the app logged cannot see a request the client wrote and never got an
answer to, so these clients keep their own books: every request fully written must get a
status line; only connection attempts after the listener closed may be refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.server import (
    Server,
    running_server,
    start_server,
    stop_server,
    wait_alive,
    wait_ready,
    wait_workers_ready,
)
from tests.reliability.harness import (
    LOAD_TEXTS,
    client_books,
    connect,
    model_process_pid,
    post_head,
    read_response,
    report,
    wait_for_workers,
    wait_for_workers_changed,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("inference", ["worker", "process"])
def test_sigterm_under_load_answers_every_written_request(
    inference: str, tiny_bundle: Path, tmp_path: Path
) -> None:
    """gthread workers (each with its model) and gevent ones (before one model process) alike."""
    body = json.dumps({"texts": LOAD_TEXTS[:4]}).encode()
    request = post_head("/predict", length=len(body)).encode() + b"\r\n\r\n" + body
    with running_server(
        tiny_bundle,
        tmp_path,
        workers="2",
        threads="8",
        xla="false",
        drain_s="1",
        inference=inference,
    ) as server:
        port = int(server.url.rsplit(":", 1)[1])
        stop = threading.Event()
        with client_books(port, request, clients=16, until=stop.is_set) as outcomes:
            time.sleep(1.5)
            term_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(timeout=30)
            exited_at = time.monotonic()
            stop.set()
        log = server.log()
    kinds = Counter(o.kind for o in outcomes)
    statuses = Counter(o.status for o in outcomes if o.status is not None)
    unanswered = [o for o in outcomes if o.kind == "unanswered"]
    report(
        f"sigterm-client-side-{inference}",
        requests=len(outcomes),
        kinds=dict(kinds),
        statuses=dict(statuses),
        answered_after_term=sum(
            o.kind == "answered" and o.connected_at >= term_at for o in outcomes
        ),
        exited_in_s=round(exited_at - term_at, 1),
    )
    assert code == 0, log[-3000:]
    assert not unanswered, f"{len(unanswered)} written requests got no status line"
    assert set(statuses) <= {200, 503}, statuses
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert all(o.connected_at >= term_at for o in outcomes if o.kind == "refused")
    # The drain period really served: requests sent after SIGTERM got answers.
    assert any(o.kind == "answered" and o.connected_at >= term_at + 0.2 for o in outcomes)
    # A model process serves until the HTTP workers hang up: no batch lost its model.
    assert "lost the model process" not in log


SLOW_SECOND_LOAD = """
import os, time
import service.predictor as predictor

_load = predictor.Predictor.load

def load(self, **options):
    # The first worker to get here loads at once; every other one takes 6 s longer.
    try:
        os.close(os.open(os.environ["SLOW_LOAD_FLAG"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(6)
    return _load(self, **options)

predictor.Predictor.load = load
"""


def test_ready_pod_serves_from_every_accepting_worker(tiny_bundle: Path, tmp_path: Path) -> None:
    """A 200 from /readyz must not hide a sibling that accepts while still loading."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SLOW_SECOND_LOAD)
    server = start_server(
        tiny_bundle,
        tmp_path,
        {"workers": "2", "xla": "false"},
        extra_env={
            "PYTHONPATH": f"{inject}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "SLOW_LOAD_FLAG": str(tmp_path / "first-loaded"),
        },
    )
    try:
        wait_ready(server, 60)
        # Ready: from now on every request must be served, whichever worker takes it.
        statuses: Counter[int] = Counter()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            with requests.Session() as session:  # a new connection each: spread over workers
                reply = session.post(f"{server.url}/predict", json={"text": "great fun"})
            statuses[reply.status_code] += 1
        assert statuses == {200: sum(statuses.values())}, statuses
    finally:
        stop_server(server)


FAIL_LOAD_ON_FLAG = """
import os, time
import service.predictor as predictor

def load(self, **options):
    # Fail to load, but only once the test has a request in flight (bounded wait).
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["FAIL_LOAD_FLAG"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    raise RuntimeError("injected load failure")

predictor.Predictor.load = load
"""


def test_failed_load_answers_the_request_in_flight(tiny_bundle: Path, tmp_path: Path) -> None:
    """A worker whose model fails to load finishes what it is serving before it exits.

    A request is half written when the load fails: the worker must still read the rest and
    answer it (503), then exit with gunicorn's boot-error status so the master halts.
    """
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(FAIL_LOAD_ON_FLAG)
    flag = tmp_path / "fail-now"
    server = start_server(
        tiny_bundle,
        tmp_path,
        {"workers": "1", "xla": "false", "drain_s": "1"},
        extra_env={
            "PYTHONPATH": f"{inject}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "FAIL_LOAD_FLAG": str(flag),
        },
    )
    try:
        wait_alive(server, 60)
        body = json.dumps({"text": "great fun"}).encode()
        with connect(server, timeout=30) as sock:
            sock.sendall(post_head("/predict", length=len(body)).encode() + b"\r\n\r\n")
            sock.sendall(body[:5])
            time.sleep(0.3)  # the worker is now reading this request's body
            flag.touch()
            time.sleep(1.0)  # the load has failed meanwhile
            sock.sendall(body[5:])
            answer = read_response(sock)
        code = server.process.wait(timeout=60)
    finally:
        stop_server(server)
    log = server.log()
    assert answer.status == 503, answer
    assert json.loads(answer.body)["error"]["code"] == "not_ready"
    assert code == 3, log[-3000:]
    assert "Worker failed to boot" in log
    assert "injected load failure" in log


def _model_versions(server: Server) -> set[str]:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    return {
        sample.labels["version"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sentiment_model_info" and sample.value > 0
    }


@pytest.mark.parametrize("inference", ["worker", "process"])
def test_respawned_worker_serves_the_bundle_of_its_siblings(
    inference: str, tiny_bundle: Path, tmp_path: Path
) -> None:
    """Switching the model link under a running pod changes nothing until it restarts.

    ``worker``: a killed worker's replacement loads its own model; ``process``: the killed
    model process's replacement loads the pod's one model.
    """
    runs = tmp_path / "models"
    (runs / "runs").mkdir(parents=True)
    first, second = runs / "runs" / "a", runs / "runs" / "b"
    shutil.copytree(tiny_bundle, first)
    shutil.copytree(tiny_bundle, second)
    metadata = json.loads((second / "metadata.json").read_text())
    metadata["version"] = "8"
    (second / "metadata.json").write_text(json.dumps(metadata))
    current = runs / "current"
    current.symlink_to(first)
    with running_server(current, tmp_path, workers="2", xla="false", inference=inference) as server:
        assert _model_versions(server) == {"7"}
        # What the training Job does: point `current` at the new run, atomically.
        (runs / "current.new").symlink_to(second)
        os.replace(runs / "current.new", current)
        workers = wait_for_workers(server.process.pid, server.worker_processes)
        holder = model_process_pid(server) if inference == "process" else workers[0]
        os.kill(holder, signal.SIGKILL)
        wait_for_workers_changed(server.process.pid, workers)
        wait_workers_ready(server, 2)  # the replacement has loaded
        versions = set()
        for _ in range(40):
            with requests.Session() as session:
                reply = session.post(f"{server.url}/predict", json={"text": "fun"})
            assert reply.status_code == 200
            versions.add(reply.json()["model"]["version"])
        assert versions == {"7"}
        assert _model_versions(server) == {"7"}
