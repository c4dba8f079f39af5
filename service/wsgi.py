"""The WSGI entry point gunicorn loads in each worker, after fork."""

from __future__ import annotations

import logging
import os
import signal

from flask import Flask

from service.app import create_app
from service.config import Settings
from service.runtime import Runtime

# gunicorn's master halts (instead of respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = 3


def _stop_worker(error: Exception) -> None:
    # Drain as on SIGTERM, so every connection this worker holds gets its (503) answer: exiting
    # here cut a response off mid-body. ``exit_status`` then ends the process with
    # WORKER_BOOT_ERROR, and the master halts instead of respawning a worker that would fail
    # the same way.
    logging.getLogger(__name__).critical("model failed to load, stopping: %s", error)
    os.kill(os.getpid(), signal.SIGTERM)


def exit_status(runtime: Runtime) -> int:
    """Return the status a worker exits with once drained: a failed load halts the server."""
    return WORKER_BOOT_ERROR if runtime.load_error is not None else 0


def _replace_worker() -> None:
    # SIGTERM to this worker only: it drains what it holds and exits 0, and the master forks a
    # fresh one (unlike a load failure, which would fail again, this may be transient).
    logging.getLogger(__name__).critical("worker cannot serve any more; asking to be replaced")
    os.kill(os.getpid(), signal.SIGTERM)


_inherited: Settings | None = None


def use_settings(settings: Settings) -> None:
    """Make every worker forked after this call serve with ``settings`` (the master's)."""
    global _inherited  # noqa: PLW0603  # set once in the gunicorn master, read after fork
    _inherited = settings


def app() -> Flask:
    """Return the app for gunicorn; a model that fails to load stops the whole server."""
    return create_app(_inherited, on_load_failure=_stop_worker, on_broken=_replace_worker)
