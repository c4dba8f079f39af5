"""The HTTP ceiling: a trivial Flask JSON endpoint on gunicorn, no model, nothing to compute.

    gunicorn -w 2 -b 127.0.0.1:8200 "bench.ceiling_app:create_app()"

It parses the same request body and answers a small JSON object, so its requests/s is what
HTTP, gunicorn and Flask alone allow on this machine: the ceiling a service can approach on
one-short-text requests.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    """Return the trivial app."""
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> ResponseReturnValue:
        body = request.get_json()
        return jsonify({"label": "positive", "score": 0.5, "chars": len(body.get("text", ""))})

    return app
