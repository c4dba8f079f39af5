"""Open Inference Protocol (V2: KServe, Triton) REST routes, with Triton's binary tensor data.

Two blueprints: ``v2_health`` holds the server probes (no token, not traffic, as ``/readyz``),
``v2`` the model routes (bearer auth and request metrics as ``/predict``). Inference goes
through the same runtime and batcher as ``/predict``, so both share batches. Errors are
``{"error": "..."}`` (rendered by the app's handler).
"""

from __future__ import annotations

from functools import cache
from importlib import metadata as package_metadata
from typing import Any

import orjson
from flask import Blueprint, Response, request
from pydantic import ValidationError

from service.errors import (
    InvalidInferenceRequest,
    MalformedRequest,
    ModelNotFound,
    NotReady,
    UnsupportedMediaType,
)
from service.http import json_response, read_body
from service.routes.predict import log_texts
from service.state import limits, runtime
from service.v2_binary import BINARY_CONTENT_TYPE, HEADER_LENGTH, split_body
from service.v2_schemas import InferenceRequest
from service.v2_tensors import input_texts, model_metadata, output_tensors, requested_outputs

health = Blueprint("v2_health", __name__, url_prefix="/v2/health")
blueprint = Blueprint("v2", __name__, url_prefix="/v2")

SERVER_NAME = "sentiment-service"
EXTENSIONS = ["binary_tensor_data"]
# Shown per validation error in the one-string V2 error message; the rest are counted.
_SHOWN_ERRORS = 3


@health.get("/live")
def live() -> Response:
    """Server live: the process answers (the model may still be loading)."""
    return json_response({"live": True})


@health.get("/ready")
def ready() -> Response:
    """Server ready: the same truth as /readyz (503 while loading or draining)."""
    is_ready = runtime().ready
    return json_response({"ready": is_ready}, status=200 if is_ready else 503)


@blueprint.get("")
def server_metadata() -> Response:
    """Server name, version and the protocol extensions it speaks."""
    return json_response({"name": SERVER_NAME, "version": _version(), "extensions": EXTENSIONS})


@blueprint.get("/models/<name>/ready")
@blueprint.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    """Model ready: 200 once loaded and warm, 503 before; 404 for another model."""
    if not runtime().ready:
        return json_response({"ready": False}, status=503)
    _check_model(name, version)
    return json_response({"ready": True})


@blueprint.get("/models/<name>")
@blueprint.get("/models/<name>/versions/<version>")
def model(name: str, version: str | None = None) -> Response:
    """Model metadata: the input and output tensors."""
    service = runtime()
    if not service.ready:
        raise NotReady("the model is not loaded yet")
    _check_model(name, version)
    return json_response(model_metadata(service.predictor.metadata))


@blueprint.post("/models/<name>/infer")
@blueprint.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    """Classify the texts of the input tensor; JSON or binary tensor data, in and out."""
    service = runtime()
    if service.ready:
        _check_model(name, version)
    if request.content_encoding not in (None, "", "identity"):
        raise UnsupportedMediaType(f"Content-Encoding {request.content_encoding} is not supported")
    header, binary = split_body(read_body(), request.headers.get(HEADER_LENGTH))
    body = _parse(header)
    texts = input_texts(body, binary, limits())
    wanted = requested_outputs(body)
    log_texts(service, texts)
    predictions = service.predict(texts)
    tensors, chunks = output_tensors(predictions, wanted)
    bundle = service.predictor.metadata
    reply: dict[str, Any] = {"model_name": bundle.name, "model_version": bundle.version}
    if body.id is not None:
        reply["id"] = body.id
    reply["outputs"] = tensors
    if not chunks:
        return json_response(reply)
    json_header = orjson.dumps(reply)
    return Response(
        b"".join([json_header, *chunks]),
        headers={HEADER_LENGTH: str(len(json_header))},
        mimetype=BINARY_CONTENT_TYPE,
    )


def _check_model(name: str, version: str | None) -> None:
    bundle = runtime().predictor.metadata
    if name != bundle.name:
        raise ModelNotFound(f"unknown model '{name}'; this server serves '{bundle.name}'")
    if version is not None and version != bundle.version:
        raise ModelNotFound(
            f"unknown version '{version}' of model '{name}'; this server serves version "
            f"'{bundle.version}'"
        )


def _parse(header: bytes) -> InferenceRequest:
    """Decode and validate the JSON inference request; every failure is a 400."""
    try:
        data = orjson.loads(header)  # rejects invalid UTF-8, NaN and nesting deeper than 1024
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"inference request is not valid JSON: {exc}") from exc
    try:
        return InferenceRequest.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        shown = [
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in errors[:_SHOWN_ERRORS]
        ]
        more = f" (and {len(errors) - _SHOWN_ERRORS} more)" if len(errors) > _SHOWN_ERRORS else ""
        raise InvalidInferenceRequest(
            f"invalid inference request: {'; '.join(shown)}{more}"
        ) from exc


@cache
def _version() -> str:
    try:
        return package_metadata.version(SERVER_NAME)
    except package_metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"
