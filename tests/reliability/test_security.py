"""Security: bearer-token authentication, no internals in errors, headers, private logs.

Authentication is checked twice: in-process over a fake model (every case, fast) and over
HTTP against the real server (probes open, predictions closed, fuzzing with a token).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from pydantic import ValidationError
from werkzeug.serving import make_server

from service import auth
from service.app import create_app
from service.config import Settings
from service.state import EXTENSION
from tests.fixtures import FakePredictor
from tests.integration.server import Server, json_log_entries, running_server
from tests.reliability.harness import (
    FUZZ_RUNS,
    LOOPBACK,
    raw_request,
    report,
    run_schemathesis,
    wait_for_workers,
)

TOKENS = ("first-token-0123456789", "second-token-abcdef")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


# -- settings ---------------------------------------------------------------------------------


def test_auth_is_off_by_default() -> None:
    assert Settings().bearer_tokens == ()


def test_tokens_from_the_variable_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        "# rotated 2026-11\nfile-token-1\n\n  file-token-2  \nfirst-token-0123456789\n"
    )
    monkeypatch.setenv("SENTIMENT_AUTH_TOKENS", " first-token-0123456789 , env-token ,")
    monkeypatch.setenv("SENTIMENT_AUTH_TOKENS_FILE", str(tokens))
    assert Settings().bearer_tokens == (
        "first-token-0123456789",
        "env-token",
        "file-token-1",
        "file-token-2",
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SENTIMENT_AUTH_TOKENS", "", "no bearer token"),
        ("SENTIMENT_AUTH_TOKENS", " , ,", "no bearer token"),
        ("SENTIMENT_AUTH_TOKENS_FILE", "{empty}", "no bearer token"),
        ("SENTIMENT_AUTH_TOKENS_FILE", "{comments}", "no bearer token"),
        ("SENTIMENT_AUTH_TOKENS_FILE", "{missing}", "cannot read SENTIMENT_AUTH_TOKENS_FILE"),
        ("SENTIMENT_AUTH_TOKENS", "ok-token,has space", "printable ASCII"),
        ("SENTIMENT_AUTH_TOKENS", "tökén-secret", "printable ASCII"),
    ],
)
def test_auth_on_without_usable_tokens_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    (tmp_path / "empty").write_text("")
    (tmp_path / "comments").write_text("# nothing here\n\n")
    value = value.format(
        empty=tmp_path / "empty", comments=tmp_path / "comments", missing=tmp_path / "nope"
    )
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message) as caught:
        Settings()
    assert "secret" not in str(caught.value)  # errors never echo a token


def test_sentiment_serve_refuses_auth_without_tokens(tmp_path: Path) -> None:
    import subprocess

    from tests.integration.server import SERVE

    result = subprocess.run(
        [SERVE, "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "SENTIMENT_AUTH_TOKENS": " "},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no bearer token" in result.stderr


# -- the hook, in-process -----------------------------------------------------------------


@pytest.fixture
def auth_app() -> Iterator[Flask]:
    settings = Settings(auth_tokens=",".join(TOKENS), log_level="warning")
    app = create_app(settings, predictor=FakePredictor(), load_in_background=False)
    yield app
    app.extensions[EXTENSION].stop()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic Zmlyc3Q6dG9rZW4="},
        {"Authorization": TOKENS[0]},
        {"Authorization": f"Token {TOKENS[0]}"},
    ],
)
def test_missing_token_is_401(auth_app: Flask, headers: dict[str, str]) -> None:
    response = auth_app.test_client().post("/predict", json={"text": "good"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json() == {
        "error": {"code": "unauthorized", "message": "missing bearer token", "details": None}
    }
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "token",
    [
        "wrong",
        TOKENS[0][:-1],
        TOKENS[0] + "x",
        TOKENS[0].upper(),
        f"{TOKENS[0]},{TOKENS[1]}",
        "tökén",  # non-ASCII must be a mismatch, not a TypeError (500)
        "\u00ff" * 40,
    ],
)
def test_wrong_token_is_401(auth_app: Flask, token: str) -> None:
    client = auth_app.test_client()
    response = client.post(
        "/predict", json={"text": "good"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_any_configured_token_is_accepted(auth_app: Flask, token: str, scheme: str) -> None:
    client = auth_app.test_client()
    headers = {"Authorization": f"{scheme} {token}"}
    assert client.post("/predict", json={"text": "good"}, headers=headers).status_code == 200
    tf = client.post("/v1/models/fake:predict", json={"instances": ["good"]}, headers=headers)
    assert tf.status_code == 200


def test_tfserving_routes_keep_their_error_shape(auth_app: Flask) -> None:
    client = auth_app.test_client()
    for method, path in [("POST", "/v1/models/fake:predict"), ("GET", "/v1/models/fake")]:
        response = client.open(path, method=method, json={"instances": ["good"]})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json() == {"error": "missing bearer token"}


def test_probes_metrics_and_openapi_need_no_token(auth_app: Flask) -> None:
    client = auth_app.test_client()
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_unknown_routes_are_closed_too(auth_app: Flask) -> None:
    # Deny by default: a route added later is protected, and routes are not enumerable.
    assert auth_app.test_client().get("/nope").status_code == 401
    assert auth_app.test_client().get("/nope", headers=bearer(TOKENS[0])).status_code == 404


def test_every_token_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def counting(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return given == expected

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    expected = [b"a" * 20, b"b" * 20, b"c" * 20]
    assert auth.token_matches(b"a" * 20, expected)  # matches the first, still compares all
    assert len(calls) == 3
    assert not auth.token_matches(b"d" * 20, expected)
    assert all(isinstance(given, bytes) for given, _ in calls)


def test_openapi_documents_the_bearer_scheme(auth_app: Flask) -> None:
    document = auth_app.test_client().get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operation = document["paths"]["/predict"]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert "401" in operation["responses"]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_auth_off_documents_no_scheme() -> None:
    app = create_app(Settings(log_level="warning"), FakePredictor(), load_in_background=False)
    try:
        document = app.test_client().get("/openapi.json").get_json()
        assert "securitySchemes" not in document["components"]
        assert app.test_client().post("/predict", json={"text": "good"}).status_code == 200
    finally:
        app.extensions[EXTENSION].stop()


# -- no internals in errors (a real HTTP server, a forced internal error) ---------------------


class Exploding(FakePredictor):
    """A model whose encoding raises with internals in the message."""

    def encode(self, texts: Any) -> list[list[int]]:
        """Raise an error naming a path and a secret."""
        raise RuntimeError("secret-internal-detail at /srv/models/private.keras")


def test_forced_internal_error_shows_no_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")  # an operator's mistake must not enable debugging
    app = create_app(Settings(log_level="warning"), Exploding(), load_in_background=False)
    http = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://{LOOPBACK}:{http.server_port}"
        response = requests.post(f"{url}/predict", json={"text": "good"}, timeout=10)
        assert response.status_code == 500
        assert response.json() == {
            "error": {"code": "internal_error", "message": "internal error", "details": None}
        }
        for leak in ("secret", "Traceback", "private.keras", "RuntimeError", "werkzeug"):
            assert leak not in response.text
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert app.debug is False
        assert "__debugger__" not in requests.get(f"{url}/nope?__debugger__=yes", timeout=5).text
    finally:
        http.shutdown()
        app.extensions[EXTENSION].stop()
        thread.join(5)


# -- the real server: headers, limits, private logs -------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/healthz", None, 200),
        ("GET", "/readyz", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/openapi.json", None, 200),
        ("POST", "/predict", {"text": "fun"}, 200),
        ("POST", "/predict", {"text": 1}, 422),
        ("GET", "/predict", None, 405),
        ("GET", "/nope", None, 404),
        ("POST", "/v1/models/nope:predict", {"instances": ["a"]}, 404),
    ],
)
def test_security_headers_over_http(
    server: Server, method: str, path: str, body: Any, status: int
) -> None:
    response = requests.request(method, f"{server.url}{path}", json=body, timeout=10)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["server"] == "gunicorn"  # no version advertised


@pytest.mark.integration
def test_texts_are_not_logged_by_default(server: Server) -> None:
    marker = f"private-marker-{uuid.uuid4().hex}"
    ids = _send_marker(server, marker)
    log = _wait_for_log(server, ids)
    assert marker not in log


def _send_marker(server: Server, marker: str) -> list[str]:
    """Send ``marker`` in a valid, an invalid and a TF Serving request; return request ids."""
    ids = [f"log-check-{uuid.uuid4().hex}" for _ in range(4)]
    bodies: list[tuple[str, Any]] = [
        ("/predict", {"text": f"a wonderful {marker}"}),
        ("/predict", {"texts": [marker], "unexpected": marker}),
        ("/predict", {"text": marker * 10_000}),  # over the text limit
        ("/v1/models/tiny:predict", {"instances": [marker]}),
    ]
    headers = bearer(TOKENS[0])
    for request_id, (path, body) in zip(ids, bodies, strict=True):
        requests.post(
            f"{server.url}{path}",
            json=body,
            headers={**headers, "X-Request-ID": request_id},
            timeout=10,
        )
    return ids


def _wait_for_log(server: Server, ids: list[str], timeout: float = 10.0) -> str:
    """Wait until every request id is in the server log (written asynchronously); return it."""
    deadline = time.monotonic() + timeout
    while True:
        log = server.log()
        if all(request_id in log for request_id in ids):
            return log
        assert time.monotonic() < deadline, "access log lines never arrived"
        time.sleep(0.1)


# -- the real server with authentication and text logging on ----------------------------------


@pytest.fixture(scope="module")
def auth_server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("auth-server")
    tokens = tmp / "tokens"
    tokens.write_text("\n".join(TOKENS) + "\n")
    with running_server(
        tiny_bundle,
        tmp,
        auth_tokens_file=str(tokens),
        workers="1",
        threads="8",
        xla="false",
        log_texts="true",
    ) as started:
        yield started


@pytest.mark.integration
def test_real_server_requires_a_token(auth_server: Server) -> None:
    url = auth_server.url
    refused = requests.post(f"{url}/predict", json={"text": "fun"}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "unauthorized"
    wrong = requests.post(f"{url}/predict", json={"text": "fun"}, headers=bearer("x"), timeout=10)
    assert wrong.status_code == 401
    for token in TOKENS:
        ok = requests.post(
            f"{url}/predict", json={"text": "fun"}, headers=bearer(token), timeout=10
        )
        assert ok.status_code == 200
    tf = requests.post(f"{url}/v1/models/tiny:predict", json={"instances": ["fun"]}, timeout=10)
    assert tf.status_code == 401
    assert tf.json() == {"error": "missing bearer token"}
    for probe in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert requests.get(f"{url}{probe}", timeout=10).status_code == 200
    # Refusals are counted like any other response.
    assert 'status="401"' in requests.get(f"{url}/metrics", timeout=10).text


@pytest.mark.integration
def test_real_server_fuzzed_with_a_token(auth_server: Server, tmp_path: Path) -> None:
    workers = wait_for_workers(auth_server.process.pid, auth_server.worker_processes)
    for name, arguments in FUZZ_RUNS:  # the same runs as test_fuzz, with a valid token
        result = run_schemathesis(
            auth_server, tmp_path, "--header", f"Authorization: Bearer {TOKENS[1]}", *arguments
        )
        output = result.stdout + result.stderr
        report(f"{name} (auth)", exit=result.returncode)
        assert result.returncode == 0, output[-6000:]
    assert wait_for_workers(auth_server.process.pid, auth_server.worker_processes) == workers


@pytest.mark.integration
def test_texts_are_logged_only_when_asked_and_tokens_never(auth_server: Server) -> None:
    marker = f"private-marker-{uuid.uuid4().hex}"
    ids = _send_marker(auth_server, marker)
    log = _wait_for_log(auth_server, ids)
    assert f"a wonderful {marker}" in log  # SENTIMENT_LOG_TEXTS=true logs accepted texts
    logged = [e for e in json_log_entries(log) if e.get("message") == "texts"]
    assert logged
    assert all(len(text) <= 500 for entry in logged for text in entry["texts"])
    for token in TOKENS:
        assert token not in log


@pytest.mark.integration
def test_100kb_header_is_refused_before_the_app(auth_server: Server) -> None:
    head = "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + "t" * 100_000
    response = raw_request(auth_server, head)
    assert response.status in {400, 431}
    assert auth_server.process.poll() is None
