"""gunicorn configuration: ``gunicorn -c python:service.gunicorn_conf "service.wsgi:app()"``.

Threaded workers (``service.worker``: gthread that drains on SIGTERM) give each worker the
concurrency its batcher coalesces; with one model process per pod the HTTP workers hold no
TensorFlow and run gevent instead (``service.gevent_worker``), draining the same way. The
model is loaded after fork (no ``preload_app``: TensorFlow is not fork-safe). The master
reads the settings once (the model directory resolved through any symlink, the token file
read) and every worker it forks, first or replacement, serves with those: one pod, one model.
It validates the bundle before forking, so a broken one stops start-up with one clear message
instead of a crash loop, and prepares the Prometheus multiprocess directory.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from service.config import Settings

_settings = Settings()
_metrics_dir = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    or _settings.metrics_dir
    or Path(tempfile.gettempdir()) / f"sentiment-metrics-{_settings.port}"
)
# Set in the master, before any worker imports prometheus-client.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

# Imported now (after the variable above, so in multiprocess mode), not inside child_exit:
# that runs in the master's SIGCHLD handler, and when two workers exit together (SIGTERM) the
# second handler interrupted the first one's import and crashed the master on a partially
# initialized module ("cannot import name 'mark_worker_dead'"), exit status 1.
from service import wsgi  # noqa: E402
from service.metrics import mark_worker_dead  # noqa: E402

# Workers inherit these settings at fork instead of reading the environment again: after the
# training Job switches `/models/current`, a respawned worker still serves what its siblings do.
wsgi.use_settings(_settings)

# Compiled XLA programs persist here: a restarted worker loads them instead of compiling.
_xla_cache = _settings.xla_cache_dir or Path(tempfile.gettempdir()) / "sentiment-xla-cache"
if _settings.xla and "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", ""):
    os.environ["TF_XLA_FLAGS"] = (
        os.environ.get("TF_XLA_FLAGS", "") + f" --tf_xla_persistent_cache_directory={_xla_cache}"
    ).strip()

bind = f"{_settings.host}:{_settings.port}"
# With SENTIMENT_INFERENCE=process, one more worker: the pod's model process (pre_fork).
_model_process = _settings.inference == "process"
workers = _settings.workers + (1 if _model_process else 0)
# HTTP workers without TensorFlow (process mode) serve on an event loop: measured faster than
# gthread in front of the same model process at every bench point (docs/performance.md).
worker_class = (
    "service.gevent_worker.DrainingGeventWorker"
    if _model_process
    else "service.worker.DrainingThreadWorker"
)
threads = _settings.threads
preload_app = False
graceful_timeout = _settings.graceful_timeout_s
timeout = 120  # a worker silent this long is killed; loading a model is not silence (threaded)
keepalive = 5
accesslog = None  # the app writes JSON access logs with request ids itself
logger_class = "service.gunicorn_logging.NoAccessLogger"  # so gunicorn formats none either
errorlog = "-"
loglevel = _settings.log_level
# Bound what a client can make the server parse before our code runs.
limit_request_line = 8190
limit_request_fields = 64
limit_request_field_size = 8190
worker_tmp_dir = os.environ.get("SENTIMENT_WORKER_TMP_DIR") or None
# gunicorn's own messages as JSON too, one format for the log pipeline.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": _settings.log_level.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
    },
}


def on_starting(server: Any) -> None:
    """Wipe the metrics directory and refuse a broken bundle before any worker starts."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    from training.bundle import check_bundle_files
    from training.errors import BundleError

    try:
        check_bundle_files(_settings.model_dir)
    except BundleError as exc:
        server.log.error("refusing to start: %s", exc)
        sys.exit(4)


def pre_fork(server: Any, worker: Any) -> None:
    """Give a worker its role, and decide whether it accepts before its model is loaded.

    Runs in the master. With a model process, the first worker forked while none is alive
    (at boot, or after it died) takes that role; gunicorn supervises it like any worker.
    """
    from service.worker import HTTP_ROLE, MODEL_ROLE

    alive = {getattr(w, "role", HTTP_ROLE) for w in server.WORKERS.values()}
    worker.role = MODEL_ROLE if _model_process and MODEL_ROLE not in alive else HTTP_ROLE
    if worker.role == HTTP_ROLE:
        # Only the first HTTP worker accepts while it loads, so probes answer from the start
        # (liveness 200, readiness 503). Every other one, its siblings at boot and any
        # replacement later, joins the accept loop only once its model is loaded: a worker
        # that accepts can always serve, so one worker's /readyz 200 speaks for every worker
        # that takes connections.
        worker.hold_until_loaded = next(_http_forks) > 1
    worker.drain_s = _settings.drain_s


def post_fork(server: Any, worker: Any) -> None:
    """Tell the app factory which role this (just forked) worker has."""
    wsgi.use_role(worker.role)


_http_forks = itertools.count(1)  # numbers the HTTP workers this master forks
# Longest a held worker stays out of the accept loop before accepting anyway (readiness then
# says why).
HOLD_MAX_S = 600.0


def post_worker_init(worker: Any) -> None:
    """Make SIGTERM turn readiness off at once; hold the worker back until loaded if told to."""
    from service.state import EXTENSION
    from service.worker import MODEL_ROLE

    if worker.role == MODEL_ROLE:
        return
    runtime = worker.wsgi.extensions[EXTENSION]
    worker.on_drain = runtime.begin_shutdown
    if worker.hold_until_loaded:
        _wait_until_loaded(worker, runtime)


def _wait_until_loaded(worker: Any, runtime: Any) -> None:
    """Hold a worker out of the accept loop until its model is loaded.

    Otherwise it accepts its share of new connections while loading and answers them 503
    (hundreds in the SIGKILL test, and at boot a Ready pod whose other worker was still
    compiling) although a loaded worker could serve them. Heartbeats keep the arbiter from
    taking the wait for a hang; SIGTERM ends it, and a failed load ends the process from the
    loader thread.
    """
    deadline = time.monotonic() + HOLD_MAX_S
    # ``shutting_down`` is our worker class's; any other (a prototype's) has ``alive``.
    while (
        worker.alive and not getattr(worker, "shutting_down", False) and runtime.load_error is None
    ):
        if time.monotonic() >= deadline:
            return
        worker.notify()
        if runtime.wait_loaded(1.0):
            return


def worker_exit(server: Any, worker: Any) -> None:
    """Finish queued batches before the worker process ends; a failed load exits 3."""
    app = getattr(worker, "wsgi", None)
    if app is None:
        # The master calls this too, for a worker already gone, from its SIGCHLD handling:
        # importing Flask there could be interrupted by the next SIGCHLD and crash the master
        # mid-import (a clean "Worker failed to boot", exit 3, became a traceback and exit 1).
        return
    status = wsgi.finish(app)
    if status:
        # Raised from gunicorn's ``finally``, it replaces the worker's plain exit (status 0).
        sys.exit(status)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the metrics."""
    mark_worker_dead(worker.pid)
