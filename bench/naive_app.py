"""The naive baseline most tutorials ship: Flask + `model.predict` per request, padded to maxlen.

    gunicorn -w 2 -b 127.0.0.1:8100 "bench.naive_app:create_app()"

Same bundle, same tokenizer, same worker count as the service; no batching, no buckets.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from training.bundle import load_bundle


def create_app() -> Flask:
    """Load the bundle (per worker) and serve /predict the tutorial way."""
    bundle = load_bundle(os.environ.get("SENTIMENT_MODEL_DIR", "models/default"))
    labels = bundle.metadata.labels
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> ResponseReturnValue:
        body = request.get_json()
        texts = body["texts"] if "texts" in body else [body["text"]]
        scores = bundle.model.predict(bundle.preprocessor.transform(texts), verbose=0)
        return jsonify([{"label": labels[int(s[0] > 0.5)], "score": float(s[0])} for s in scores])

    return app
