"""The OpenAPI paths of the explain routes and the page (``service.openapi`` merges them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from service.explain_schemas import (
    ExplainRequest,
    ExplainResponse,
    KServeExplainRequest,
    KServeExplainResponse,
)
from service.schemas import ErrorResponse, TFServingError

EXPLAIN_MODELS: tuple[type[BaseModel], ...] = (
    ExplainRequest,
    ExplainResponse,
    KServeExplainRequest,
    KServeExplainResponse,
)
EXPLAIN_PATHS = ("/explain", "/v1/models/{name}:explain", "/")
JsonFn = Callable[[type[BaseModel], str], dict[str, Any]]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def limit_explain(schemas: dict[str, Any], max_texts: int, max_chars: int) -> None:
    """Write /explain's own limits into its request schemas (as /predict's are)."""
    request = schemas["ExplainRequest"]
    texts = next(s for s in request["properties"]["texts"]["anyOf"] if s.get("type") == "array")
    texts["maxItems"] = max_texts
    texts["items"]["maxLength"] = max_chars
    text = request["properties"]["text"]
    next(s for s in text["anyOf"] if s.get("type") == "string")["maxLength"] = max_chars
    # Exactly one of text or texts, as PredictRequest (pydantic cannot say it in JSON Schema).
    request["oneOf"] = [
        {"required": [field], "properties": {field: {"type": kind}}}
        for field, kind in (("text", "string"), ("texts", "array"))
    ]
    instances = schemas["KServeExplainRequest"]["properties"]["instances"]
    instances["maxItems"] = max_texts
    instances["items"]["maxLength"] = max_chars


def explain_paths(
    json: JsonFn, errors: dict[str, Any], plain_errors: dict[str, Any]
) -> dict[str, Any]:
    """Return the paths of ``POST /explain``, ``POST /v1/models/{name}:explain`` and ``GET /``."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/explain": {
            "post": {
                "operationId": "explain",
                "summary": "Explain one text or a few: prediction and per-token attributions.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(ExplainRequest)}},
                },
                "responses": {
                    "200": json(ExplainResponse, "One explanation per text, in order."),
                    **errors,
                    "500": json(ErrorResponse, "The model failed."),
                },
            }
        },
        "/v1/models/{name}:explain": {
            "post": {
                "operationId": "kserveExplain",
                "summary": "KServe V1 explain verb: per-token attributions for each instance.",
                "parameters": [name],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(KServeExplainRequest)}},
                },
                "responses": {
                    "200": json(KServeExplainResponse, "One explanation per instance."),
                    "404": json(TFServingError, "No model of that name."),
                    **plain_errors,
                    "500": json(TFServingError, "The model failed."),
                },
            }
        },
        "/": {
            "get": {
                "operationId": "explainPage",
                "summary": "A page that explains a typed text, each word shaded by attribution.",
                "responses": {
                    "200": {"description": "The page.", "content": {"text/html": {}}},
                },
            }
        },
    }
