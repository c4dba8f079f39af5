"""The WSGI entry point gunicorn loads in each worker, after fork."""

from __future__ import annotations

import logging
import os
import signal

from flask import Flask

from service.app import create_app
from service.config import Settings
from service.logs import flush_logging

# gunicorn's master halts (instead of respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = 3


def _stop_worker(error: Exception) -> None:
    logging.getLogger(__name__).critical("model failed to load, stopping: %s", error)
    flush_logging()
    os._exit(WORKER_BOOT_ERROR)


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
