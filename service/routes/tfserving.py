"""TensorFlow Serving compatible REST routes, so existing TF Serving clients work unchanged.

Errors here keep TF Serving's shape, ``{"error": "..."}`` (rendered by the app's handler).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from service.errors import ModelNotFound, NotReady
from service.explain_schemas import KServeExplainRequest
from service.http import json_response, parse_body
from service.routes.explain import explain_limits, explanation_dicts, method_dict
from service.schemas import TFServingPredictRequest
from service.state import limits, runtime

blueprint = Blueprint("tfserving", __name__, url_prefix="/v1/models")


class SegmentConverter(BaseConverter):
    """A model name or version: one path segment without ``:``.

    With the default converter ``GET /v1/models/m:predict`` matched the status route with the
    name ``m:predict``, so the predict URL advertised ``Allow: GET`` (found by schemathesis).
    """

    regex = "[^/:]+"


@blueprint.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    # Runs at registration, before the rules below are added to the app's URL map.
    state.app.url_map.converters.setdefault("segment", SegmentConverter)


def _check_model(name: str, version: str | None = None) -> None:
    metadata = runtime().predictor.metadata
    if name != metadata.name or (version is not None and version != metadata.version):
        servable = f"Specific({name}, {version})" if version else f"Latest({name})"
        raise ModelNotFound(f"Servable not found for request: {servable}")


@blueprint.post("/<segment:name>:predict")
@blueprint.post("/<segment:name>/versions/<segment:version>:predict")
def predict(name: str, version: str | None = None) -> Response:
    """Return the model's output vector for each instance."""
    service = runtime()
    if service.ready:
        _check_model(name, version)
    body = parse_body(TFServingPredictRequest, limits())
    result = service.predict(body.instances)
    return json_response({"predictions": result.outputs.tolist()})


@blueprint.post("/<segment:name>:explain")
@blueprint.post("/<segment:name>/versions/<segment:version>:explain")
def explain(name: str, version: str | None = None) -> Response:
    """Explain each instance (KServe's V1 explain verb): tokens, spans, attributions."""
    service = runtime()
    if service.ready:
        _check_model(name, version)
    body = parse_body(KServeExplainRequest, explain_limits())
    results = service.explain(body.instances)
    return json_response(
        {
            "method": method_dict(),
            "explanations": explanation_dicts(results, service.predictor.metadata.labels),
        }
    )


@blueprint.get("/<segment:name>")
@blueprint.get("/<segment:name>/versions/<segment:version>")
def status(name: str, version: str | None = None) -> Response:
    """Report the model version's state, as TF Serving's GetModelStatus."""
    service = runtime()
    if not service.ready:
        state: dict[str, Any] = {
            "version": "0",
            "state": "LOADING",
            "status": {"error_code": "UNAVAILABLE", "error_message": ""},
        }
        return json_response({"model_version_status": [state]}, status=503)
    _check_model(name, version)
    metadata = service.predictor.metadata
    state = {
        "version": metadata.version,
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    return json_response({"model_version_status": [state]})


@blueprint.get("/<segment:name>/metadata")
@blueprint.get("/<segment:name>/versions/<segment:version>/metadata")
def metadata(name: str, version: str | None = None) -> Response:
    """Return the bundle metadata: labels, maxlen, version, metrics."""
    service = runtime()
    if not service.ready:
        raise NotReady("model is not loaded yet")
    _check_model(name, version)
    data = service.predictor.metadata.model_dump(
        mode="json",
        include={
            "name",
            "version",
            "created_at",
            "labels",
            "maxlen",
            "padding",
            "truncating",
            "vocabulary_size",
            "metrics",
            "architecture",
            "versions",
        },
    )
    data["architecture"] = {k: v for k, v in data["architecture"].items() if k != "summary"}
    return json_response(
        {"model_spec": {"name": data["name"], "version": data["version"]}, "metadata": data}
    )
