"""The app factory: ``gunicorn "service.app:create_app()"``. Nothing loads at import time."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.auth import PUBLIC_BLUEPRINTS, install_auth
from service.config import Settings
from service.errors import ServiceError
from service.http import json_response
from service.logs import configure_logging
from service.metrics import Metrics
from service.model import ServableModel
from service.predictor import Predictor
from service.routes import explain, ops, predict, tfserving, v2
from service.runtime import Runtime
from service.state import EXTENSION

log = logging.getLogger("service.access")

# Client-chosen request ids are echoed and logged: keep them short and printable.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# (name, lower-case name, value): a route may set its own (the explain page's CSP) and keeps it.
_SECURITY_HEADERS = tuple(
    (name, name.lower(), value)
    for name, value in {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
    }.items()
)
_CONVERTER = re.compile(r"<[A-Za-z_]\w*:")
# Metric labels come from fixed sets only: gunicorn passes any token as a method, and every new
# label value would be a new series in the multiprocess files until restart.
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
# TF Serving's and the V2 protocol's paths answer errors as {"error": "..."}, routing errors
# (404, 405) under them too, so they are known by path as well as by blueprint.
_PLAIN_ERROR_BLUEPRINTS = frozenset({"tfserving", v2.blueprint.name, v2.health.name})
_PLAIN_ERROR_PREFIXES = (f"{tfserving.blueprint.url_prefix}/", "/v2/")
_PLAIN_ERROR_PATHS = frozenset({"/v2"})
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
}


def create_app(
    settings: Settings | None = None,
    predictor: ServableModel | None = None,
    *,
    metrics: Metrics | None = None,
    load_in_background: bool = True,
    on_load_failure: Callable[[Exception], None] | None = None,
    on_broken: Callable[[], None] | None = None,
) -> Flask:
    """Build the app; the model loads in a background thread unless told otherwise.

    ``on_load_failure`` runs when the bundle cannot be loaded (gunicorn: stop the server, a
    restart cannot help); ``on_broken`` when the worker can no longer serve (gunicorn: end this
    worker so the master replaces it).
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    # Never debug mode, whatever FLASK_DEBUG says: it exists for `flask run`, not for serving.
    app.debug = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    predictor = predictor or Predictor.from_settings(settings)
    runtime = Runtime(settings, predictor, metrics or Metrics(), on_broken=on_broken)
    app.extensions[EXTENSION] = runtime
    for blueprint in (
        predict.blueprint,
        explain.blueprint,
        tfserving.blueprint,
        v2.blueprint,
        v2.health,
        ops.blueprint,
    ):
        app.register_blueprint(blueprint)
    _install_hooks(app, runtime)
    install_auth(app, settings.bearer_tokens)  # after the hooks: a 401 has a request id too
    _install_error_handlers(app)
    runtime.start(background=load_in_background, on_failure=on_load_failure)
    return app


def _install_hooks(app: Flask, runtime: Runtime) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        # 128 random bits as 32 hex digits, as uuid4().hex but without building a UUID.
        g.request_id = incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()

    @app.after_request
    def finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        headers = response.headers
        headers["X-Request-ID"] = g.get("request_id", "")
        # One pass over the headers, not a setdefault each: werkzeug's lookup of a missing
        # header raises and catches an exception, 5 per request (~2% of a short request).
        present = {name.lower() for name, _ in headers.items()}
        headers.extend(
            [(name, value) for name, lower, value in _SECURITY_HEADERS if lower not in present]
        )
        rule = request.url_rule
        route = route_label(rule.rule) if rule is not None else UNMATCHED_ROUTE
        if request.blueprint not in PUBLIC_BLUEPRINTS:  # probes and scrapes are not traffic
            method = request.method if request.method in METRIC_METHODS else OTHER_METHOD
            runtime.metrics.request_done(route, method, response.status_code, elapsed)
            log.info(
                "request",
                extra={
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": request.path[:256],
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "bytes_in": request.content_length,
                    "remote": request.remote_addr,
                },
            )
        return response


def route_label(rule: str) -> str:
    """Return the rule without converter names (``<segment:name>`` -> ``<name>``): stable labels."""
    return _CONVERTER.sub("<", rule)


def _plain_errors() -> bool:
    """Return whether this request's errors take the ``{"error": "<message>"}`` shape."""
    path = request.path
    return (
        request.blueprint in _PLAIN_ERROR_BLUEPRINTS
        or path.startswith(_PLAIN_ERROR_PREFIXES)
        or path in _PLAIN_ERROR_PATHS
    )


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError) -> Response:
        headers = dict(error.headers)
        if error.status == 503:
            headers.setdefault("Retry-After", "1")
        if _plain_errors():
            return json_response({"error": error.message}, error.status, headers)
        return json_response(error.to_body(), error.status, headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        wrapped = ServiceError(
            error.description or error.name,
            status=status,
            code=_HTTP_CODES.get(status, "http_error"),
        )
        response = service_error(wrapped)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # Log the trace for operators; the client gets no internals.
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return service_error(ServiceError("internal error"))
