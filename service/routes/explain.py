"""``POST /explain`` (which words drove a prediction) and ``GET /``, a page that shows it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from flask import Blueprint, Response

from service.explain_schemas import ExplainRequest
from service.http import json_response, parse_body
from service.runtime import Runtime
from service.schemas import Limits
from service.state import runtime, settings
from training.occlusion import METHOD, METHOD_PARAMETERS, Attribution
from training.spans import TokenSpan

blueprint = Blueprint("explain", __name__)
# The page's own CSP: its script, its stylesheet and fetches to this origin, nothing else (no
# inline code, no other origin). Every other response keeps the app's `default-src 'none'`.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def explain_limits() -> Limits:
    """Return /explain's limits: fewer texts than /predict, the same characters per text."""
    current = settings()
    return Limits(max_texts=current.explain_max_texts_per_request, max_chars=current.max_text_chars)


def explanation_dicts(
    results: Sequence[tuple[list[TokenSpan], Attribution]], labels: Sequence[str]
) -> list[dict[str, Any]]:
    """Shape each text's tokens and attributions for JSON (shared with the KServe route)."""
    multiclass = len(labels) > 2
    shaped = []
    for spans, attribution in results:
        best = attribution.best
        probabilities = attribution.probabilities.tolist()
        rows = attribution.attributions.tolist()
        tokens = []
        for span, row in zip(spans, rows, strict=True):
            token: dict[str, Any] = {
                "token": span.token,
                "start": span.start,
                "end": span.end,
                "attribution": row[best],
            }
            if multiclass:
                token["attributions"] = dict(zip(labels, row, strict=True))
            tokens.append(token)
        shaped.append(
            {
                "label": labels[best],
                "score": probabilities[best],
                "probabilities": dict(zip(labels, probabilities, strict=True)),
                "tokens": tokens,
            }
        )
    return shaped


def method_dict() -> dict[str, Any]:
    """Return the method and its parameters, as every explain response names them."""
    return {"name": METHOD, "parameters": METHOD_PARAMETERS}


@blueprint.post("/explain")
def explain() -> Response:
    """Explain one text or a few: the prediction and each token's attribution."""
    body = parse_body(ExplainRequest, explain_limits())
    service: Runtime = runtime()
    results = service.explain(body.all_texts())
    metadata = service.predictor.metadata
    return json_response(
        {
            "model": {"name": metadata.name, "version": metadata.version},
            "method": method_dict(),
            "explanations": explanation_dicts(results, metadata.labels),
        }
    )


@cache
def _page() -> bytes:
    return files("service").joinpath("static/explain.html").read_bytes()


@blueprint.get("/")
def page() -> Response:
    """Serve the page: a text box, the prediction, and the text shaded by attribution."""
    response = Response(_page(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
