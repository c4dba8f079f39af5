"""gunicorn's logger, without its access log: the app writes one JSON access line per request.

gunicorn formats its access-log atoms for every request whenever a logging config is set (ours
is, to make its own messages JSON), then hands them to a logger with no handler: 5% of a
worker's interpreter time under short-text load (py-spy --gil). Skipping it changes no output.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class NoAccessLogger(Logger):
    """gunicorn's Logger with ``access`` turned off; error and lifecycle messages unchanged."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Do nothing: ``service.app`` logs each request, with its request id."""
