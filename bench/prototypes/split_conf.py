"""gunicorn config of the inference-process prototype.

    gunicorn -c python:bench.prototypes.split_conf "bench.prototypes.split_wsgi:app()"

The service's own configuration, plus the service's model process (``service.inference_process``)
run as a plain subprocess that the master starts before it forks the (TensorFlow-free) workers and
stops when it exits: how the gevent prototype gets one model per pod. Unsupervised (nothing
restarts it), which is why the service runs it as a gunicorn worker instead
(``SENTIMENT_INFERENCE=process``).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from service import gunicorn_conf as base

# The service's settings and hooks, unchanged; only on_starting and on_exit differ.
from service.gunicorn_conf import (  # noqa: F401
    accesslog,
    bind,
    child_exit,
    errorlog,
    graceful_timeout,
    keepalive,
    limit_request_field_size,
    limit_request_fields,
    limit_request_line,
    logconfig_dict,
    logger_class,
    loglevel,
    post_worker_init,
    pre_fork,
    preload_app,
    threads,
    timeout,
    worker_class,
    worker_exit,
    worker_tmp_dir,
    workers,
)

SETTINGS = base._settings
SOCKET = SETTINGS.inference_socket_path()
_process: subprocess.Popen[bytes] | None = None


def on_starting(server: Any) -> None:
    """Check the bundle as the service does, then start the inference process."""
    global _process  # noqa: PLW0603  # the master's one child outside gunicorn's workers
    base.on_starting(server)
    _process = subprocess.Popen([sys.executable, "-m", "service.inference_process"])


def on_exit(server: Any) -> None:
    """Stop the inference process after the workers have drained."""
    if _process is not None:
        _process.terminate()
        _process.wait(timeout=30)
