"""``POST /predict``: the service's own prediction API."""

from __future__ import annotations

from flask import Blueprint, Response

from service.http import json_response, parse_body
from service.runtime import Runtime
from service.schemas import PredictRequest
from service.state import limits, runtime

blueprint = Blueprint("predict", __name__)


@blueprint.post("/predict")
def predict() -> Response:
    """Classify one text or a list of texts."""
    body = parse_body(PredictRequest, limits())
    service: Runtime = runtime()
    result = service.predict(body.all_texts())
    metadata = service.predictor.metadata
    labels = metadata.labels
    predictions = []
    for row in result.probabilities.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "label": labels[best],
                "score": row[best],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
        )
    return json_response(
        {"model": {"name": metadata.name, "version": metadata.version}, "predictions": predictions}
    )
