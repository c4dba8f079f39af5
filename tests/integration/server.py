"""Start the real server the way the container does (`sentiment-serve`) on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings

SERVE = str(Path(sys.executable).parent / "sentiment-serve")
DEFAULT_WORKERS = int(Settings.model_fields["workers"].default)
DEFAULT_INFERENCE = str(Settings.model_fields["inference"].default)


def free_port() -> int:
    """Return a TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server process and its base URL."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    http_workers: int = DEFAULT_WORKERS
    """Workers that answer HTTP (``SENTIMENT_WORKERS``)."""
    model_processes: int = 0
    """1 with ``SENTIMENT_INFERENCE=process``: the pod's model process, also a gunicorn worker."""

    @property
    def worker_processes(self) -> int:
        """Return how many worker processes its gunicorn master has when all are up."""
        return self.http_workers + self.model_processes

    def log(self) -> str:
        """Return what the server printed so far."""
        return self.log_path.read_text(errors="replace")


def start_server(
    model_dir: Path,
    tmp_path: Path,
    settings: Mapping[str, str] | None = None,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Server:
    """Start `sentiment-serve` on a free port and return at once (the caller stops it)."""
    port = free_port()
    env = {
        **os.environ,
        "SENTIMENT_MODEL_DIR": str(model_dir),
        "SENTIMENT_HOST": "127.0.0.1",
        "SENTIMENT_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **{f"SENTIMENT_{key.upper()}": value for key, value in (settings or {}).items()},
        **(extra_env or {}),
    }
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([SERVE], env=env, stdout=log, stderr=subprocess.STDOUT)
    settings = settings or {}
    return Server(
        process,
        f"http://127.0.0.1:{port}",
        log_path,
        http_workers=int(settings.get("workers", DEFAULT_WORKERS)),
        model_processes=1 if settings.get("inference", DEFAULT_INFERENCE) == "process" else 0,
    )


def json_log_entries(log: str) -> list[dict[str, Any]]:
    """Return the JSON log entries (a line still being written, at the end, is skipped).

    Split on newlines only, as JSON Lines readers do: logged texts may hold U+2028 or U+0085,
    which ``str.splitlines`` would take for line ends.
    """
    entries = []
    lines = log.split("\n")
    for line in lines:
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                assert line == lines[-1], line
    return entries


def stop_server(server: Server) -> None:
    """SIGTERM the server and wait for it (SIGKILL after 40 s)."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(
    model_dir: Path, tmp_path: Path, *, ready_timeout: float = 120.0, **settings: str
) -> Iterator[Server]:
    """Start `sentiment-serve`, wait until every worker is ready, stop it (SIGTERM) afterwards.

    /readyz answers from whichever worker accepts, so 200 proves one worker warm; the workers
    still loading would answer 503. The ready gauge summed over workers says when all are.
    """
    server = start_server(model_dir, tmp_path, settings)
    try:
        wait_ready(server, ready_timeout)
        wait_workers_ready(server, server.http_workers, ready_timeout)
        yield server
    finally:
        stop_server(server)


def wait_ready(server: Server, timeout: float) -> None:
    """Poll /readyz until 200, failing with the server log if it dies or times out."""
    _wait_for_200(server, "/readyz", "ready", timeout)


def wait_alive(server: Server, timeout: float) -> None:
    """Poll /healthz (liveness: answers while the model still loads) until 200."""
    _wait_for_200(server, "/healthz", "alive", timeout)


def _wait_for_200(server: Server, path: str, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if requests.get(f"{server.url}{path}", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"server not {what} after {timeout} s:\n{server.log()}")


def metric_sum(server: Server, name: str) -> float:
    """Return the sum of a metric's samples over all labels and workers."""
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def wait_workers_ready(server: Server, count: int, timeout: float = 120.0) -> None:
    """Wait until ``count`` workers are loaded and warm (/readyz answers for just one)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if metric_sum(server, "sentiment_worker_ready") == count:
                return
        except requests.RequestException:
            pass
        assert server.process.poll() is None, server.log()
        assert time.monotonic() < deadline, f"not {count} workers ready within {timeout} s"
        time.sleep(0.2)
