"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.config import Settings
from service.schemas import (
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    TFServingError,
    TFServingPredictRequest,
    TFServingPredictResponse,
)

_MODELS: tuple[type[BaseModel], ...] = (
    PredictRequest,
    PredictResponse,
    ErrorResponse,
    HealthResponse,
    TFServingPredictRequest,
    TFServingPredictResponse,
    TFServingError,
)
_ERRORS = {
    "400": "Body is not valid JSON.",
    "413": "Body larger than the configured limit.",
    "415": "Content-Type is not application/json.",
    "422": "Body does not match the schema or exceeds a limit.",
    "503": "Model not ready, shutting down, overloaded (see Retry-After) or timed out.",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(model: type[BaseModel]) -> dict[str, Any]:
    return {status: _json(model, text) for status, text in _ERRORS.items()}


def _schemas() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [
            (model, "validation" if "Request" in model.__name__ else "serialization")
            for model in _MODELS
        ],
        ref_template="#/components/schemas/{model}",
    )
    return dict(definitions.get("$defs", {}))


@cache
def _document(max_texts: int, max_chars: int, max_bytes: int) -> dict[str, Any]:
    schemas = _schemas()
    for name in ("PredictRequest", "TFServingPredictRequest"):
        for field in ("texts", "instances"):
            prop = schemas[name]["properties"].get(field)
            if prop is not None:  # make the configured limits part of the contract
                target = next(s for s in prop.get("anyOf", [prop]) if s.get("type") == "array")
                target["maxItems"] = max_texts
                target["items"]["maxLength"] = max_chars
    text = schemas["PredictRequest"]["properties"]["text"]
    next(s for s in text["anyOf"] if s.get("type") == "string")["maxLength"] = max_chars
    probe = {"200": _json(HealthResponse, "OK"), "503": _json(HealthResponse, "Not ready.")}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sentiment inference service",
            "version": "1",
            "description": f"Classify texts with an Embedding + RNN model. Bodies are capped at "
            f"{max_bytes} bytes.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Classify one text or a list of texts.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(PredictRequest)}},
                    },
                    "responses": {
                        "200": _json(PredictResponse, "One prediction per text, in order."),
                        **_errors(ErrorResponse),
                    },
                }
            },
            "/v1/models/{name}:predict": {
                "post": {
                    "operationId": "tfservingPredict",
                    "summary": "TensorFlow Serving compatible predict (row format).",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(TFServingPredictRequest)}},
                    },
                    "responses": {
                        "200": _json(TFServingPredictResponse, "Output vector per text."),
                        "404": _json(TFServingError, "No model of that name."),
                        **_errors(TFServingError),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness.",
                    "responses": {"200": _json(HealthResponse, "Alive.")},
                }
            },
            "/readyz": {
                "get": {"operationId": "readyz", "summary": "Readiness.", "responses": probe}
            },
        },
        "components": {"schemas": schemas},
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Return the document for these settings' limits."""
    return _document(
        settings.max_texts_per_request, settings.max_text_chars, settings.max_body_bytes
    )
