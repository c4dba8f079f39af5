"""Optional bearer-token authentication of the prediction routes.

Off unless ``SENTIMENT_AUTH_TOKENS`` or ``SENTIMENT_AUTH_TOKENS_FILE`` is set. When on, every
request needs ``Authorization: Bearer <token>`` with one of the configured tokens, except the
operator routes of the ``ops`` blueprint (``/healthz``, ``/readyz``, ``/metrics``,
``/openapi.json``) and the V2 server probes (``/v2/health/live``, ``/v2/health/ready``):
probes must answer kubelets and scrapers that carry no token. Anything
else, unknown paths included, is refused without a valid token (deny by default), so a route
added later is protected without anyone remembering to.

Tokens are compared as bytes with ``hmac.compare_digest`` against *every* configured token
(no early exit), so the time taken does not tell which token, or how much of one, matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from flask import Flask, request

from service.errors import Unauthorized

# Blueprints answered without a token: probes, metrics and the API description (the app
# leaves them out of request metrics too).
PUBLIC_BLUEPRINTS = frozenset({"ops", "v2_health"})
CHALLENGE = 'Bearer realm="sentiment"'


def install_auth(app: Flask, tokens: Sequence[str]) -> None:
    """Require one of ``tokens`` on every non-public route of ``app``; no-op when empty."""
    if not tokens:
        return
    expected = tuple(token.encode("utf-8") for token in tokens)

    @app.before_request
    def require_token() -> None:
        if request.blueprint in PUBLIC_BLUEPRINTS:
            return
        given = _bearer_token(request.headers.get("Authorization", ""))
        if given is None:
            raise _refusal("missing bearer token", error=None)
        if not token_matches(given, expected):
            raise _refusal("invalid bearer token", error="invalid_token")


def token_matches(given: bytes, expected: Sequence[bytes]) -> bool:
    """Return whether ``given`` equals one of ``expected``, in time independent of which."""
    matched = False
    for token in expected:
        # `|` rather than `or`: every token is compared, whatever matched before.
        matched |= hmac.compare_digest(given, token)
    return matched


def _bearer_token(header: str) -> bytes | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    # WSGI headers are latin-1 strings; bytes keep compare_digest away from non-ASCII
    # str, which it refuses with a TypeError (a 500) instead of a mismatch.
    return token.encode("latin-1", errors="replace")


def _refusal(message: str, *, error: str | None) -> Unauthorized:
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return Unauthorized(message, headers={"WWW-Authenticate": challenge})
