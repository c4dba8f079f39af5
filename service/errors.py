"""One error hierarchy for the service; ``app.py`` renders every one as the same JSON shape."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error a client sees: HTTP status, a stable machine-readable code and a message."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.status = status or type(self).status
        self.code = code or type(self).code
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class MalformedRequest(ServiceError):
    """The body is not valid JSON (or not UTF-8)."""

    status, code = 400, "malformed_json"


class UnsupportedMediaType(ServiceError):
    """The request is not ``application/json``."""

    status, code = 415, "unsupported_media_type"


class PayloadTooLarge(ServiceError):
    """The body exceeds ``max_body_bytes``."""

    status, code = 413, "payload_too_large"


class ValidationFailed(ServiceError):
    """The JSON does not match the schema or exceeds a limit; details list field paths."""

    status, code = 422, "validation_error"


class NotReady(ServiceError):
    """The model is still loading or warming up, or the worker is shutting down."""

    status, code = 503, "not_ready"


class Overloaded(ServiceError):
    """The batch queue is full: retry shortly (``Retry-After``) rather than pile up timeouts."""

    status, code = 503, "overloaded"


class InferenceTimeout(ServiceError):
    """Predictions did not arrive within ``request_timeout_s``."""

    status, code = 503, "timeout"


class InferenceFailed(ServiceError):
    """The model call raised; every caller of that batch gets this error."""

    status, code = 500, "inference_failed"


class Unauthorized(ServiceError):
    """No valid bearer token (401 with ``WWW-Authenticate: Bearer``)."""

    status, code = 401, "unauthorized"


class ModelNotFound(ServiceError):
    """The request names a model or version this server does not serve."""

    status, code = 404, "not_found"


class InvalidInferenceRequest(ServiceError):
    """A V2 inference request with bad tensors, shapes, parameters or binary data."""

    status, code = 400, "bad_request"
