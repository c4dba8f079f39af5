"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.config import Settings
from service.explain_openapi import EXPLAIN_MODELS, EXPLAIN_PATHS, explain_paths, limit_explain
from service.schemas import (
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    TFServingError,
    TFServingPredictRequest,
    TFServingPredictResponse,
)
from service.v2_openapi import MODEL_PATHS, limit_input, v2_paths
from service.v2_openapi import MODELS as V2_MODELS
from service.v2_schemas import V2Error

_MODELS: tuple[type[BaseModel], ...] = (
    PredictRequest,
    PredictResponse,
    ErrorResponse,
    HealthResponse,
    TFServingPredictRequest,
    TFServingPredictResponse,
    TFServingError,
    *V2_MODELS,
    *EXPLAIN_MODELS,
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
def _document(
    max_texts: int, max_chars: int, max_bytes: int, auth: bool, explain_max_texts: int
) -> dict[str, Any]:
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
    # The model's "exactly one of text or texts" (a null one counts as absent), which pydantic
    # cannot express in JSON Schema: without it `{}` and `{"text": "a", "texts": ["b"]}` are
    # documented as valid and answered 422 (found by schemathesis).
    schemas["PredictRequest"]["oneOf"] = [
        {"required": [field], "properties": {field: {"type": kind}}}
        for field, kind in (("text", "string"), ("texts", "array"))
    ]
    limit_input(schemas, max_texts, max_chars)
    limit_explain(schemas, explain_max_texts, max_chars)
    probe = {"200": _json(HealthResponse, "OK"), "503": _json(HealthResponse, "Not ready.")}
    document: dict[str, Any] = {
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
    document["paths"].update(v2_paths())
    document["paths"].update(explain_paths(_json, _errors(ErrorResponse), _errors(TFServingError)))
    if auth:  # SENTIMENT_AUTH_TOKENS(_FILE): the prediction routes need a bearer token
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path in ("/predict", "/v1/models/{name}:predict", *EXPLAIN_PATHS):
            operation = next(iter(document["paths"][path].values()))
            operation["security"] = [{"bearer": []}]
            shape = TFServingError if path.startswith("/v1/") else ErrorResponse
            operation["responses"]["401"] = _json(shape, "Missing or invalid bearer token.")
        for path in MODEL_PATHS:
            for operation in document["paths"][path].values():
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = _json(V2Error, "Missing or invalid bearer token.")
    return document


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Return the document for these settings' limits."""
    return _document(
        settings.max_texts_per_request,
        settings.max_text_chars,
        settings.max_body_bytes,
        bool(settings.bearer_tokens),
        settings.explain_max_texts_per_request,
    )
