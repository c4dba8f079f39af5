"""The WSGI entry point gunicorn loads in each worker, after fork."""

from __future__ import annotations

import logging
import os

from flask import Flask

from service.app import create_app
from service.logs import flush_logging

# gunicorn's master halts (instead of respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = 3


def _stop_worker(error: Exception) -> None:
    logging.getLogger(__name__).critical("model failed to load, stopping: %s", error)
    flush_logging()
    os._exit(WORKER_BOOT_ERROR)


def app() -> Flask:
    """Return the app for gunicorn; a model that fails to load stops the whole server."""
    return create_app(on_load_failure=_stop_worker)
