"""The image starts the server with the command the integration tests use, and that works.

No Docker engine is needed: the Dockerfile is read, and its entrypoint script is run here,
from the checkout, the way the image runs it (settings from the environment only).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import stat
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.integration.server import SERVE, Server, free_port, wait_ready

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SERVE_COMMAND = Path(SERVE).name  # what tests/integration/server.py starts


def _load_dockerfile_stages() -> ModuleType:
    """Load .ci/dockerfile_stages.py: the Dockerfile reader the deploy checks use too."""
    path = ROOT / ".ci" / "dockerfile_stages.py"
    spec = importlib.util.spec_from_file_location("dockerfile_stages", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOCKERFILE_STAGES = _load_dockerfile_stages()


def _runtime_stage() -> list[tuple[str, str]]:
    """Return the instructions of the Dockerfile's last stage: the image that runs."""
    return DOCKERFILE_STAGES.final_stage(DOCKERFILE_STAGES.dockerfile_instructions(DOCKERFILE))


def _script_command(path: Path) -> list[str]:
    """Return the last command of a shell script, split as the shell would."""
    lines = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return shlex.split(lines[-1])


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """Return this environment without SENTIMENT_* and metrics settings, plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SENTIMENT_") and name != "PROMETHEUS_MULTIPROC_DIR"
    }
    return {**env, "TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2", **variables}


def test_image_runs_the_entrypoint_script_which_execs_sentiment_serve() -> None:
    stage = _runtime_stage()
    last = {keyword: arguments for keyword, arguments in stage}
    entrypoint = json.loads(last["ENTRYPOINT"])  # exec form: the script is PID 1, then gunicorn
    assert json.loads(last.get("CMD", "[]")) == []  # `docker run IMAGE ARGS` -> sentiment-serve
    copies = {
        words[-1]: words[-2]
        for keyword, arguments in stage
        if keyword == "COPY"
        for words in [[word for word in shlex.split(arguments) if not word.startswith("--")]]
    }
    copied_script = [dest for dest, src in copies.items() if src == "docker/entrypoint.sh"]
    assert entrypoint == copied_script
    assert SERVE_COMMAND == "sentiment-serve"
    assert _script_command(ENTRYPOINT) == ["exec", SERVE_COMMAND, "$@"]
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR  # runnable as copied, and from the checkout


def test_entrypoint_prepares_the_metrics_dir_and_passes_arguments(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_serve = fake_bin / SERVE_COMMAND
    fake_serve.write_text('#!/bin/sh\nprintf "%s\\n" "$PROMETHEUS_MULTIPROC_DIR" "$@"\n')
    fake_serve.chmod(0o755)
    path = f"{fake_bin}{os.pathsep}{os.environ['PATH']}"

    default = subprocess.run(
        [str(ENTRYPOINT), "--workers", "3"],
        env=_environment(tmp_path, PATH=path, SENTIMENT_PORT="9123"),
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    metrics = tmp_path / "sentiment-metrics-9123"  # one per port, like gunicorn_conf's default
    assert default.stdout.splitlines() == [str(metrics), "--workers", "3"]
    assert metrics.is_dir()

    configured = tmp_path / "configured" / "metrics"
    chosen = subprocess.run(
        [str(ENTRYPOINT)],
        env=_environment(tmp_path, PATH=path, SENTIMENT_METRICS_DIR=str(configured)),
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert chosen.stdout.splitlines() == [str(configured)]
    assert configured.is_dir()


def test_entrypoint_serves_the_bundle_and_stops_on_sigterm(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    port = free_port()
    metrics = tmp_path / "metrics"
    env = _environment(
        tmp_path,
        PATH=f"{Path(SERVE).parent}{os.pathsep}{os.environ['PATH']}",
        SENTIMENT_MODEL_DIR=str(tiny_bundle),
        SENTIMENT_HOST="127.0.0.1",
        SENTIMENT_PORT=str(port),
        SENTIMENT_WORKERS="1",
        SENTIMENT_THREADS="4",
        SENTIMENT_MAX_BATCH_SIZE="4",  # few shapes to compile and warm up: a quick start
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    log_path = tmp_path / "entrypoint.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ENTRYPOINT)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(server, 60)
        reply = requests.post(
            f"{server.url}/predict", json={"texts": ["a wonderful film", "dull"]}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["predictions"]) == 2
        # exec all the way down: the process started is gunicorn's master, which gets SIGTERM.
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"gunicorn" in command, command
        assert any(metrics.glob("*.db"))  # the workers write where the entrypoint said

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, server.log()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}/healthz", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
