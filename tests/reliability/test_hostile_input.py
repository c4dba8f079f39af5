"""Hostile input, over raw sockets, against the real gunicorn server with default settings.

Each test throws something at the server and then checks it still answers the reference
texts exactly as before, with the same worker processes (a crashed worker would be replaced
by gunicorn and show up as a new pid).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.server import Server
from tests.reliability.conftest import assert_same_predictions, assert_still_serving
from tests.reliability.harness import (
    LOOPBACK,
    chunked,
    connect,
    post_head,
    raw_request,
    read_response,
    report,
    send_while_reading,
    wait_for_workers,
)

pytestmark = pytest.mark.integration

DEFAULT_BODY_LIMIT = 8 * 1024 * 1024  # SENTIMENT_MAX_BODY_BYTES's default
FAST_S = 2.0  # a refusal is "fast" within this, on a loaded 2-core machine


@pytest.fixture(autouse=True)
def _unharmed(server: Server, reference: dict[str, Any]) -> Iterator[None]:
    workers = wait_for_workers(server.process.pid, server.worker_processes)
    yield
    assert_still_serving(server, reference)
    assert wait_for_workers(server.process.pid, server.worker_processes) == workers, "a worker died"


def post(server: Server, body: bytes, content_type: str | None = "application/json") -> Any:
    """POST raw bytes to /predict with Content-Length; return the parsed response."""
    return raw_request(
        server, post_head("/predict", length=len(body), content_type=content_type), body
    )


def error_code(response: Any) -> str:
    """Return the service's error code of a raw response (and check the error shape)."""
    assert response.headers["content-type"] == "application/json", response.body[:200]
    error = json.loads(response.body)["error"]
    assert set(error) == {"code", "message", "details"}
    code: str = error["code"]
    return code


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "\xff\xfe"}',  # not UTF-8
        b'{"text": "\xed\xa0\x80"}',  # a UTF-8 encoded surrogate
        b'{"text": "\\ud800"}',  # an escaped lone surrogate
        b'\xef\xbb\xbf{"text": "a"}',  # a byte order mark
        b'{"text": "a\x00b"}',  # a raw NUL inside a string
        b'{"text": "a\x1fb"}',  # a raw control character inside a string
        b'{"text": 1e400}',  # infinity
        b'{"text": NaN}',
        b'{"text": "a"',  # truncated
        b"",  # empty
    ],
)
def test_malformed_bodies_are_400(server: Server, body: bytes) -> None:
    response = post(server, body)
    assert response.status == 400, response.body
    assert error_code(response) == "malformed_json"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"texts": ' + b"[" * 100_000 + b'"a"' + b"]" * 100_000 + b"}",
    ],
    ids=["arrays", "objects", "inside-texts"],
)
def test_json_bomb_is_refused_fast(server: Server, body: bytes) -> None:
    response = post(server, body)
    assert response.status == 400
    assert error_code(response) == "malformed_json"
    assert response.elapsed_s < FAST_S


def test_50mb_body_is_413_before_it_is_read(server: Server) -> None:
    size = 50 * 1024 * 1024
    piece = b" " * (1024 * 1024)
    with connect(server) as sock:
        sock.sendall(post_head("/predict", length=size).encode() + b"\r\n\r\n")
        response, sent = send_while_reading(sock, (piece for _ in range(size // len(piece))))
    report(
        "50mb-body",
        status=response.status,
        seconds=round(response.elapsed_s, 3),
        sent_mb=sent >> 20,
    )
    assert response.status == 413
    assert error_code(response) == "payload_too_large"
    assert response.elapsed_s < FAST_S
    assert sent < size  # the server answered and closed without reading it all


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {"texts": ["a"] * 100_000}),
        ("/predict", {"text": "a" * 1_000_000}),
        ("/predict", {"texts": ["good", "é" * 1_000_000]}),  # 2 MB of UTF-8
        ("/v1/models/tiny:predict", {"instances": ["a"] * 100_000}),
        ("/v1/models/tiny:predict", {"instances": ["a" * 1_000_000]}),
    ],
    ids=["100k-texts", "1mb-text", "1mb-text-in-list", "100k-instances", "1mb-instance"],
)
def test_huge_but_legal_json_is_422_fast(server: Server, path: str, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    assert len(data) < DEFAULT_BODY_LIMIT
    response = raw_request(server, post_head(path, length=len(data)), data)
    assert response.status == 422, response.body[:300]
    assert response.elapsed_s < FAST_S
    message = json.loads(response.body)["error"]
    if path == "/predict":
        assert error_code(response) == "validation_error"
    else:
        assert isinstance(message, str)  # TF Serving's shape
    assert b"a" * 1000 not in response.body  # the input is not echoed back


def test_control_characters_and_nul_are_just_text(server: Server) -> None:
    texts = ["\x00", "good\x00film", "".join(map(chr, range(32))) + "\x7f", "\u2028\u2029\ufeff"]
    reply = requests.post(f"{server.url}/predict", json={"texts": texts}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["predictions"]) == len(texts)


@pytest.mark.parametrize(
    "body",
    [
        {"text": 5},
        {"text": 1.5},
        {"text": True},
        {"text": None},
        {"text": ["a"]},
        {"text": {"a": "b"}},
        {"texts": [1, 2]},
        {"texts": "a wonderful film"},
        {"texts": [None]},
        {"texts": []},
        {"text": "a", "texts": ["b"]},
        {"text": "a", "extra": 1},
        {},
        [],
        "a wonderful film",
        12,
        None,
    ],
)
def test_wrong_types_are_422(server: Server, body: Any) -> None:
    response = post(server, json.dumps(body).encode())
    assert response.status == 422, response.body
    assert error_code(response) == "validation_error"


def test_duplicate_keys_take_the_last_value(server: Server, reference: dict[str, Any]) -> None:
    response = post(server, b'{"texts": ["awful"], "texts": ["a wonderful film"]}')
    assert response.status == 200
    first = {"model": reference["model"], "predictions": reference["predictions"][:1]}
    assert_same_predictions(json.loads(response.body), first)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/jsonx", 415),
        ("application/json-seq", 415),
        ("", 415),
        ("application/json; charset=utf-8", 200),
        ("APPLICATION/JSON", 200),
    ],
)
def test_content_types(server: Server, content_type: str | None, status: int) -> None:
    response = post(server, b'{"text": "a wonderful film"}', content_type=content_type)
    assert response.status == status, response.body
    if status == 415:
        assert error_code(response) == "unsupported_media_type"


def test_chunked_body_within_the_limit_is_read(server: Server) -> None:
    body = json.dumps({"texts": ["a wonderful film"] * 200}).encode()
    with connect(server) as sock:
        sock.sendall(post_head("/predict", length=None).encode() + b"\r\n\r\n")
        response, _ = send_while_reading(sock, chunked(body, 1000))
    assert response.status == 200, response.body[:300]
    assert len(json.loads(response.body)["predictions"]) == 200


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    body = b'{"texts": ["' + b"a" * (DEFAULT_BODY_LIMIT + 1024) + b'"]}'
    with connect(server) as sock:
        sock.sendall(post_head("/predict", length=None).encode() + b"\r\n\r\n")
        response, _ = send_while_reading(sock, chunked(body))
    assert response.status == 413
    assert error_code(response) == "payload_too_large"
    assert response.elapsed_s < FAST_S * 2


@pytest.mark.parametrize(
    "head",
    [
        # Request smuggling: both framings, or a malformed one, are refused by gunicorn.
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5",
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1",
        "POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Null: a\x00b",
        "GET /healthz HTTP/9.9\r\nHost: x",
        "GET /\x01 HTTP/1.1\r\nHost: x",
    ],
    ids=[
        "cl-and-te",
        "two-cl",
        "negative-cl",
        "te-not-chunked-last",
        "nul-header",
        "version",
        "ctl-path",
    ],
)
def test_ambiguous_or_malformed_framing_is_400(server: Server, head: str) -> None:
    response = raw_request(server, head, b"null")
    assert 400 <= response.status < 500, response.body


@pytest.mark.parametrize(
    "head",
    [
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 100_000,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n" + "\r\n".join(f"X-{i}: v" for i in range(200)),
        "GET /healthz?" + "a" * 100_000 + " HTTP/1.1\r\nHost: x",
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nX-Request-ID: " + "r" * 8000,
    ],
    ids=["100kb-header", "200-headers", "100kb-url", "8kb-request-id"],
)
def test_oversized_request_heads_are_4xx(server: Server, head: str) -> None:
    response = raw_request(server, head, b"{}")
    report("oversized-head", status=response.status, seconds=round(response.elapsed_s, 3))
    assert response.status in {400, 414, 422, 431}, response.body[:200]
    assert response.elapsed_s < FAST_S


def test_slow_clients_do_not_block_others(server: Server) -> None:
    """Slowloris: sockets trickling their head or body never hold up the others.

    gthread (``worker`` inference) gives each one a thread: fewer than one worker's 16. The
    gevent HTTP workers (``process``, the default) give each a greenlet: far more slow
    sockets than any thread pool here, and the others are still answered at once.
    """
    slow_sockets = 100 if server.model_processes else 10
    stop = threading.Event()
    sockets: list[socket.socket] = []
    head_only = "POST /predict HTTP/1.1\r\nHost: x\r\n"
    with_body = post_head("/predict", length=10_000) + "\r\n\r\n"

    def trickle(sock: socket.socket, start: str, drip: bytes) -> None:
        try:
            sock.sendall(start.encode())
            while not stop.wait(0.2):
                sock.sendall(drip)
        except OSError:
            pass  # the server gave up on us: fine

    threads = []
    for index in range(slow_sockets):
        sock = socket.create_connection((LOOPBACK, int(server.url.rsplit(":", 1)[1])), timeout=10)
        sockets.append(sock)
        start, drip = (head_only, b"X-Slow: 1\r\n") if index % 2 else (with_body, b" ")
        thread = threading.Thread(target=trickle, args=(sock, start, drip), daemon=True)
        thread.start()
        threads.append(thread)
    try:
        time.sleep(1.0)  # every slow socket is now inside a request
        latencies = []
        with requests.Session() as session:
            for _ in range(20):
                started = time.perf_counter()
                reply = session.post(f"{server.url}/predict", json={"text": "fun"}, timeout=10)
                latencies.append(time.perf_counter() - started)
                assert reply.status_code == 200
        for _ in range(10):  # new connections too, not only a kept-alive one
            started = time.perf_counter()
            assert requests.post(f"{server.url}/predict", json={"text": "fun"}, timeout=10).ok
            latencies.append(time.perf_counter() - started)
        report("slowloris", slow_sockets=len(sockets), max_latency_s=round(max(latencies), 3))
        assert max(latencies) < FAST_S
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(5)


def test_pipelined_requests_are_answered_or_the_connection_closed(server: Server) -> None:
    """gthread answers the first of pipelined requests; the rest wait in gunicorn's parser
    buffer, unseen by its poller, until the keep-alive timeout closes the connection (a known
    gunicorn limitation: no client pipelines POSTs). Never a wrong answer, never a hang."""
    body = b'{"text": "a wonderful film"}'
    one = post_head("/predict", length=len(body)).replace(
        "Connection: close", "Connection: keep-alive"
    )
    answers = []
    started = time.perf_counter()
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall((one.encode() + b"\r\n\r\n" + body) * 3)
        for _ in range(3):
            try:
                answers.append(read_response(stream).status)
            except (ConnectionError, TimeoutError):
                break
    report("pipelining", answered=answers, seconds=round(time.perf_counter() - started, 2))
    assert answers[:1] == [200]
    assert set(answers) == {200}
    assert time.perf_counter() - started < 10  # keep-alive (5 s) closed it, at the latest
