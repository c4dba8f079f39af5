"""The real gunicorn server, started as the container starts it, over real HTTP."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures import make_reviews
from tests.integration.server import SERVE, Server, running_server

pytestmark = pytest.mark.integration

WORKERS = 2
REQUESTS = 60


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("server")
    with running_server(tiny_bundle, tmp, workers=str(WORKERS), threads="4") as started:
        yield started


def _metric(server: Server, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    values: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = tuple(sorted(sample.labels.items()))
                values[key] = values.get(key, 0.0) + sample.value
    return values


def test_predict_over_http(server: Server) -> None:
    response = requests.post(f"{server.url}/predict", json={"text": "a wonderful film"}, timeout=10)
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction["label"] in {"negative", "positive"}
    assert prediction["score"] == max(prediction["probabilities"].values())


def test_concurrent_clients_across_workers_and_metrics_add_up(server: Server) -> None:
    texts = [text for text, _ in make_reviews(REQUESTS, seed=9)]
    before = _metric(server, "sentiment_requests_total")
    route = (("method", "POST"), ("route", "/predict"), ("status", "200"))

    def call(text: str) -> dict[str, Any]:
        reply = requests.post(f"{server.url}/predict", json={"texts": [text, text]}, timeout=30)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(call, texts))
    for reply in replies:
        first, second = reply["predictions"]
        assert first == second  # same text, same batch or not: same score
    for _ in range(5):  # probes and scrapes are not traffic
        requests.get(f"{server.url}/readyz", timeout=5)
    after = _metric(server, "sentiment_requests_total")
    assert after.get(route, 0) - before.get(route, 0) == REQUESTS
    assert not any(dict(key).get("route") in {"/readyz", "/metrics"} for key in after)
    assert sum(_metric(server, "sentiment_texts_total").values()) >= 2 * REQUESTS
    assert sum(_metric(server, "sentiment_worker_ready").values()) == WORKERS
    batch_count = _metric(server, "sentiment_batch_size_count")
    assert 0 < sum(batch_count.values()) <= 2 * REQUESTS + 1


def test_errors_over_http(server: Server) -> None:
    bad = requests.post(
        f"{server.url}/predict",
        data=b"\xff\xfe{",
        timeout=5,
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "malformed_json"
    too_big = requests.post(
        f"{server.url}/predict",
        data=b"x" * (9 * 1024 * 1024),
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_tf_serving_route(server: Server) -> None:
    reply = requests.post(
        f"{server.url}/v1/models/tiny:predict", json={"instances": ["great", "awful"]}, timeout=10
    )
    assert reply.status_code == 200
    assert len(reply.json()["predictions"]) == 2
    status = requests.get(f"{server.url}/v1/models/tiny", timeout=5).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


def test_sigterm_exits_cleanly(tiny_bundle: Path, tmp_path: Path) -> None:
    with running_server(tiny_bundle, tmp_path, workers="1", threads="2") as started:
        started.process.send_signal(signal.SIGTERM)
        assert started.process.wait(timeout=40) == 0


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_broken_bundle_refuses_to_start(tiny_bundle: Path, tmp_path: Path, damage: str) -> None:
    bundle = tmp_path / "bundle"
    if damage == "truncated":
        shutil.copytree(tiny_bundle, bundle)
        model = bundle / "model.keras"
        model.write_bytes(model.read_bytes()[:100])
    result = subprocess.run(
        [SERVE, "--model-dir", str(bundle), "--port", "1"],
        capture_output=True,
        timeout=60,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    expected = "does not exist" if damage == "missing" else "checksum"
    assert expected in result.stderr
