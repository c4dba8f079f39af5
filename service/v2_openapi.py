"""The OpenAPI paths of the V2 routes (their JSON form; binary bodies are not expressible)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.v2_schemas import (
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadataResponse,
    ReadyResponse,
    ServerMetadataResponse,
    V2Error,
)

MODELS: tuple[type[BaseModel], ...] = (
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ReadyResponse,
    ServerMetadataResponse,
    ModelMetadataResponse,
    V2Error,
)
# Model routes: bearer auth when it is on (the probes under /v2/health never need a token).
INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
MODEL_PATHS = (
    "/v2",
    "/v2/models/{name}",
    "/v2/models/{name}/versions/{version}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/versions/{version}/ready",
    *INFER_PATHS,
)
_ERRORS = {
    "400": "Bad tensors, shapes, parameters or binary data; body not valid JSON.",
    "404": "No model of that name or version.",
    "413": "Body larger than the configured limit.",
    "415": "A compressed body (Content-Encoding).",
    "503": "Model not ready, shutting down, overloaded (see Retry-After) or timed out.",
}
# A segment clients cannot rewrite: "." and ".." are removed from URLs before sending.
_SEGMENT = {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _parameters(path: str) -> list[dict[str, Any]]:
    names = [name for name in ("name", "version") if f"{{{name}}}" in path]
    return [{"name": name, "in": "path", "required": True, "schema": _SEGMENT} for name in names]


def _get(operation_id: str, summary: str, ok: dict[str, Any], path: str) -> dict[str, Any]:
    responses = {"200": ok, "404": _json(V2Error, _ERRORS["404"])}
    if "{name}" in path:
        responses["503"] = _json(V2Error, _ERRORS["503"])
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": _parameters(path),
            "responses": responses,
        }
    }


def v2_paths() -> dict[str, Any]:
    """Return the V2 paths (the limits are in the input tensor's schema: ``limit_input``)."""
    ready = {"200": _json(ReadyResponse, "Ready."), "503": _json(ReadyResponse, "Not ready.")}
    paths: dict[str, Any] = {
        "/v2/health/live": {
            "get": {
                "operationId": "v2ServerLive",
                "summary": "V2 server liveness.",
                "responses": {"200": _json(LiveResponse, "Alive.")},
            }
        },
        "/v2/health/ready": {
            "get": {"operationId": "v2ServerReady", "summary": "V2 readiness.", "responses": ready}
        },
        "/v2": {
            "get": {
                "operationId": "v2ServerMetadata",
                "summary": "V2 server metadata and extensions.",
                "responses": {"200": _json(ServerMetadataResponse, "Server metadata.")},
            }
        },
    }
    for suffix, versioned in (("", ""), ("Version", "/versions/{version}")):
        path = f"/v2/models/{{name}}{versioned}"
        metadata = _json(ModelMetadataResponse, "Model metadata.")
        paths[path] = _get(f"v2ModelMetadata{suffix}", "V2 model metadata.", metadata, path)
        ready_path = f"{path}/ready"
        ready_get = _get(f"v2ModelReady{suffix}", "V2 model readiness.", ready["200"], ready_path)
        ready_get["get"]["responses"]["503"] = ready["503"]
        paths[ready_path] = ready_get
        paths[f"{path}/infer"] = {
            "post": {
                "operationId": f"v2Infer{suffix}",
                "summary": "Classify the texts of a V2 BYTES tensor (JSON form shown; Triton's "
                "binary tensor data is accepted too).",
                "parameters": _parameters(path),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/InferenceRequest"}
                        }
                    },
                },
                "responses": {
                    "200": _json(InferenceResponse, "The requested outputs."),
                    **{status: _json(V2Error, text) for status, text in _ERRORS.items()},
                },
            }
        }
    return paths


def limit_input(schemas: dict[str, Any], max_texts: int, max_chars: int) -> None:
    """Make the configured limits part of the input tensor's schema."""
    tensor = schemas["RequestInput"]["properties"]
    tensor["shape"]["prefixItems"] = [
        {"type": "integer", "minimum": 1, "maximum": max_texts},
        {"const": 1},
    ]
    for option in tensor["data"]["anyOf"]:
        if option.get("type") != "array":
            continue
        option["maxItems"] = max_texts
        items = option["items"]
        if items.get("type") == "string":
            items["maxLength"] = max_chars
        else:
            items["items"]["maxLength"] = max_chars
