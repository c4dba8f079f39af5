"""Where the app keeps its per-worker objects, and typed accessors for the routes."""

from __future__ import annotations

from flask import current_app

from service.config import Settings
from service.runtime import Runtime
from service.schemas import Limits

EXTENSION = "sentiment"


def runtime() -> Runtime:
    """Return this app's Runtime."""
    return current_app.extensions[EXTENSION]


def settings() -> Settings:
    """Return this app's Settings."""
    return runtime().settings


def limits() -> Limits:
    """Return the request limits from Settings."""
    current = settings()
    return Limits(max_texts=current.max_texts_per_request, max_chars=current.max_text_chars)
