"""The WSGI entry point gunicorn loads in each worker, after fork."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from flask import Flask

from service.app import create_app
from service.config import Settings
from service.state import EXTENSION
from service.worker import HTTP_ROLE, MODEL_ROLE

# gunicorn's master halts (instead of respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = 3
# Longest an HTTP worker waits for the model process to listen (it loads, then listens).
MODEL_PROCESS_WAIT_S = 600.0


def _stop_worker(error: Exception) -> None:
    # Drain as on SIGTERM, so every connection this worker holds gets its (503) answer: exiting
    # here cut a response off mid-body. ``finish`` then ends the process with
    # WORKER_BOOT_ERROR, and the master halts instead of respawning a worker that would fail
    # the same way.
    logging.getLogger(__name__).critical("model failed to load, stopping: %s", error)
    os.kill(os.getpid(), signal.SIGTERM)


def _replace_worker() -> None:
    # SIGTERM to this worker only: it drains what it holds and exits 0, and the master forks a
    # fresh one (unlike a load failure, which would fail again, this may be transient).
    logging.getLogger(__name__).critical("worker cannot serve any more; asking to be replaced")
    os.kill(os.getpid(), signal.SIGTERM)


_inherited: Settings | None = None
_role = HTTP_ROLE


def use_settings(settings: Settings) -> None:
    """Make every worker forked after this call serve with ``settings`` (the master's)."""
    global _inherited  # noqa: PLW0603  # set once in the gunicorn master, read after fork
    _inherited = settings


def use_role(role: str) -> None:
    """Set this worker's role (gunicorn's post_fork, in the child, before ``app()``)."""
    global _role  # noqa: PLW0603  # one role per worker process, set once after fork
    _role = role


def app() -> Any:
    """Return what this worker serves: the Flask app, or the pod's model server.

    A model that fails to load stops the whole server.
    """
    settings = _inherited or Settings()
    if _role == MODEL_ROLE:
        from service.inference_process import InferenceServer

        server = InferenceServer(settings)
        server.start(on_failure=_stop_worker)
        return server
    predictor = None
    if settings.inference == "process":
        from service.remote_model import RemoteModel

        predictor = RemoteModel(
            settings.model_dir,
            settings.inference_socket_path(),
            load_timeout_s=MODEL_PROCESS_WAIT_S,
        )
    return create_app(settings, predictor, on_load_failure=_stop_worker, on_broken=_replace_worker)


def finish(served: Any) -> int:
    """Stop what this worker served (queued batches finish); return its exit status.

    A failed load exits with WORKER_BOOT_ERROR, so the master halts.
    """
    if isinstance(served, Flask):
        runtime = served.extensions.get(EXTENSION)
        if runtime is None:
            return 0
        runtime.stop()
        failed = runtime.load_error is not None
    else:  # the model process
        served.stop(timeout=(_inherited or Settings()).graceful_timeout_s)
        failed = served.load_error is not None
    return WORKER_BOOT_ERROR if failed else 0
