"""gunicorn configuration: ``gunicorn -c python:service.gunicorn_conf "service.app:create_app()"``.

Threaded workers (gthread) give each worker the concurrency its batcher coalesces. The model
is loaded in each worker after fork (no ``preload_app``: TensorFlow is not fork-safe). The
master validates the bundle before forking, so a broken one stops start-up with one clear
message instead of a crash loop, and prepares the Prometheus multiprocess directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
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
# Compiled XLA programs persist here: a restarted worker loads them instead of compiling.
_xla_cache = _settings.xla_cache_dir or Path(tempfile.gettempdir()) / "sentiment-xla-cache"
if _settings.xla and "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", ""):
    os.environ["TF_XLA_FLAGS"] = (
        os.environ.get("TF_XLA_FLAGS", "") + f" --tf_xla_persistent_cache_directory={_xla_cache}"
    ).strip()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
preload_app = False
graceful_timeout = _settings.graceful_timeout_s
timeout = 120  # a worker silent this long is killed; loading a model is not silence (threaded)
keepalive = 5
accesslog = None  # the app writes JSON access logs with request ids itself
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


def post_worker_init(worker: Any) -> None:
    """Make SIGTERM turn readiness off at once, then let gunicorn drain as usual."""
    from service.state import EXTENSION

    runtime = worker.wsgi.extensions[EXTENSION]
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        runtime.begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def worker_exit(server: Any, worker: Any) -> None:
    """Finish queued batches before the worker process ends."""
    from service.state import EXTENSION

    app = getattr(worker, "wsgi", None)
    if app is not None and EXTENSION in getattr(app, "extensions", {}):
        app.extensions[EXTENSION].stop()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the metrics."""
    from service.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)
