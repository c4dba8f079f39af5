"""WSGI entry of the inference-process prototype: the service's app on a ``RemoteModel``."""

from __future__ import annotations

from flask import Flask

from bench.prototypes.split_conf import SETTINGS, SOCKET
from service.app import create_app
from service.remote_model import RemoteModel


def app() -> Flask:
    """Return the app for one light worker (no TensorFlow in this process)."""
    return create_app(SETTINGS, RemoteModel(SETTINGS.model_dir, SOCKET, load_timeout_s=900))
