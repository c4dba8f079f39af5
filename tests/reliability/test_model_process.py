"""One model process per pod (``SENTIMENT_INFERENCE=process``), judged from the client's side.

The model then lives in one supervised gunicorn worker and the HTTP workers hold no
TensorFlow: these tests check that it answers what the in-worker model answers, that its death
costs clients 503s with ``Retry-After`` (never a 500, never a request without an answer) until
gunicorn's replacement serves, and that SIGTERM still answers every written request.
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
from typing import Any

import numpy as np
import pytest
import requests

from bench.process_stats import children
from tests.integration.server import running_server, start_server, wait_workers_ready
from tests.reliability.harness import (
    LOAD_TEXTS,
    client_books,
    model_process_pid,
    post_head,
    report,
    rewrite_tokenizer,
)

pytestmark = pytest.mark.integration

PROCESS_MODE: dict[str, Any] = {
    "inference": "process",
    "workers": "2",
    "threads": "8",
    "xla": "false",
}


def test_model_process_answers_what_the_bundle_answers(tiny_bundle: Path, tmp_path: Path) -> None:
    """Same scores as the training path, one TensorFlow per pod, HTTP workers without it."""
    from training.batches import predict_probabilities
    from training.bundle import load_bundle

    texts = LOAD_TEXTS[:16]
    with running_server(tiny_bundle, tmp_path, **PROCESS_MODE) as server:
        wait_workers_ready(server, 2)
        reply = requests.post(f"{server.url}/predict", json={"texts": texts}, timeout=30)
        readiness = requests.get(f"{server.url}/readyz", timeout=5).json()
        workers = children(server.process.pid)
        model_process_pid(server)
    assert reply.status_code == 200, reply.text
    assert len(workers) == 3  # two HTTP workers and the model process
    assert readiness["runtime"] == "process"
    bundle = load_bundle(tiny_bundle)
    expected = predict_probabilities(bundle.model, bundle.preprocessor, texts)
    labels = bundle.metadata.labels
    served = np.array(
        [[p["probabilities"][label] for label in labels] for p in reply.json()["predictions"]]
    )
    np.testing.assert_allclose(served, expected, atol=1e-5)


@pytest.mark.slow
def test_model_process_killed_under_load_costs_only_retryable_503s(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    body = json.dumps({"texts": LOAD_TEXTS[:4]}).encode()
    request = post_head("/predict", length=len(body)).encode() + b"\r\n\r\n" + body
    with running_server(tiny_bundle, tmp_path, **PROCESS_MODE) as server:
        wait_workers_ready(server, 2)
        port = int(server.url.rsplit(":", 1)[1])
        stop = threading.Event()
        with client_books(port, request, clients=8, until=stop.is_set) as outcomes:
            time.sleep(1.0)
            victim = model_process_pid(server)
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            readiness: Counter[int] = Counter()
            recovered_in = None
            while time.monotonic() - killed_at < 60:
                status = requests.get(f"{server.url}/readyz", timeout=5).status_code
                readiness[status] += 1
                if status == 200 and readiness[503] and recovered_in is None:  # 200 after a 503
                    recovered_in = time.monotonic() - killed_at
                if recovered_in is not None and time.monotonic() - killed_at > recovered_in + 2:
                    break  # two more seconds of load on the replacement
                time.sleep(0.1)
            stop.set()
        after = requests.post(f"{server.url}/predict", json={"text": "great fun"}, timeout=30)
        model_process_pid(server)  # gunicorn replaced it: again exactly one
    kinds = Counter(o.kind for o in outcomes)
    statuses = Counter(o.status for o in outcomes if o.status is not None)
    report(
        "model-process-sigkill",
        kinds=dict(kinds),
        statuses=dict(statuses),
        readiness=dict(readiness),
        recovered_in_s=None if recovered_in is None else round(recovered_in, 1),
    )
    assert kinds["unanswered"] == 0, f"{kinds['unanswered']} written requests got no answer"
    assert kinds["refused"] == 0
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0  # the outage was seen, and answered
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert readiness[503] > 0, "readiness never turned off while the model process was away"
    assert recovered_in is not None, "readiness did not come back within 60 s"
    assert after.status_code == 200, after.text


def test_model_process_that_cannot_load_stops_the_server(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    rewrite_tokenizer(bundle, extra_words=50)
    server = start_server(bundle, tmp_path, PROCESS_MODE)
    answers: Counter[int] = Counter()
    try:
        deadline = time.monotonic() + 90
        while server.process.poll() is None and time.monotonic() < deadline:
            try:
                reply = requests.post(f"{server.url}/predict", json={"text": "fun"}, timeout=5)
                answers[reply.status_code] += 1
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        code = server.process.wait(timeout=30)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    output = server.log()
    assert code in (1, 3), output[-3000:]
    assert "Worker failed to boot" in output
    assert "'embedding' has only" in output
    assert set(answers) <= {503}, answers
