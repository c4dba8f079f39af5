"""The shared server of the reliability tests: default settings (XLA on), two workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.server import Server, running_server, wait_workers_ready

WORKERS = 2
# Reference texts whose predictions must never change, whatever was thrown at the server.
REFERENCE_TEXTS = ["a wonderful film", "awful and boring", "the plot was dull but fun", ""]


@pytest.fixture(scope="package", autouse=True)
def _clean_environment() -> Iterator[None]:
    """Keep the developer's SENTIMENT_* settings out of the servers these tests start."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SENTIMENT_") or name == "PROMETHEUS_MULTIPROC_DIR":
                patch.delenv(name)
        yield


@pytest.fixture(scope="package", params=["worker", "process"])
def server(
    request: pytest.FixtureRequest, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the hostile-input, fuzzing and security checks, in each inference mode.

    ``worker``: gthread workers, each with its model; ``process``: gevent HTTP workers in front
    of one model process. Default settings otherwise (XLA on, the default body limit) except
    the batch size: 16 keeps XLA's compile-per-shape warm-up to seconds instead of ~40 s.
    """
    tmp = tmp_path_factory.mktemp(f"reliability-server-{request.param}")
    with running_server(
        tiny_bundle,
        tmp,
        workers=str(WORKERS),
        max_batch_size="16",
        inference=request.param,
    ) as started:
        wait_workers_ready(started, WORKERS)
        yield started


@pytest.fixture(scope="package")
def reference(server: Server) -> dict[str, Any]:
    """Return the server's answer for REFERENCE_TEXTS before any test touched it."""
    reply = requests.post(f"{server.url}/predict", json={"texts": REFERENCE_TEXTS}, timeout=10)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def assert_still_serving(server: Server, reference: dict[str, Any]) -> None:
    """Assert the server is alive, ready and answers exactly as before."""
    assert server.process.poll() is None, server.log()
    assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
    reply = requests.post(f"{server.url}/predict", json={"texts": REFERENCE_TEXTS}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert_same_predictions(reply.json(), reference)


def assert_same_predictions(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Assert equal answers: same model and labels, scores equal to float32 rounding.

    Two workers (and XLA) may round the last bit differently; anything more is a wrong answer.
    """
    assert got["model"] == want["model"]
    assert len(got["predictions"]) == len(want["predictions"])
    for mine, theirs in zip(got["predictions"], want["predictions"], strict=True):
        assert mine["label"] == theirs["label"]
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)
