"""``POST /predict``: the service's own prediction API."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g

from service.http import json_response, parse_body
from service.runtime import Runtime
from service.schemas import PredictRequest
from service.state import limits, runtime

blueprint = Blueprint("predict", __name__)
log = logging.getLogger(__name__)
# With SENTIMENT_LOG_TEXTS on, each logged text is cut to this many characters.
LOGGED_TEXT_CHARS = 500


@blueprint.post("/predict")
def predict() -> Response:
    """Classify one text or a list of texts."""
    body = parse_body(PredictRequest, limits())
    service: Runtime = runtime()
    texts = body.all_texts()
    log_texts(service, texts)
    predictions = service.predict(texts)
    metadata = service.predictor.metadata
    return json_response(
        {
            "model": {"name": metadata.name, "version": metadata.version},
            "predictions": predictions.as_dicts(),
        }
    )


def log_texts(service: Runtime, texts: list[str]) -> None:
    """Log the request's texts (cut short) when SENTIMENT_LOG_TEXTS is on."""
    if service.settings.log_texts:  # off by default: texts are the users' data
        log.info(
            "texts",
            extra={
                "request_id": g.get("request_id"),
                "texts": [text[:LOGGED_TEXT_CHARS] for text in texts],
            },
        )
