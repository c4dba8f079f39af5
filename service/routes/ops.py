"""Probes, metrics and the API description: routes for operators, left out of traffic metrics."""

from __future__ import annotations

from flask import Blueprint, Response

from service.http import json_response
from service.openapi import openapi_document
from service.state import runtime, settings

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers (the model may still be loading)."""
    return json_response({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """Readiness: 200 only once the model is loaded and warm, 503 before and while draining."""
    service = runtime()
    if service.ready:
        metadata = service.predictor.metadata
        return json_response(
            {
                "status": "ready",
                "model": {"name": metadata.name, "version": metadata.version},
                "runtime": service.predictor.runtime_name,
            }
        )
    return json_response({"status": service.state}, status=503)


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition of every worker."""
    body, content_type = runtime().metrics.render()
    return Response(body, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of this API, generated from the pydantic models."""
    return json_response(openapi_document(settings()))
