"""Tools for the reliability tests: raw HTTP over sockets, gunicorn's workers, a load generator.

Every connection goes to 127.0.0.1 (the servers these tests start); every loop is bounded in
time and count and stops by itself.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal
from urllib.parse import urlsplit

import requests

from bench.process_stats import children
from tests.fixtures import make_reviews
from tests.integration.server import Server
from training.bundle import file_sha256

LOOPBACK = "127.0.0.1"


def env_seconds(name: str, default: float) -> float:
    """Return a duration from the environment (the slow tests' knobs), else ``default``."""
    return float(os.environ.get(name, default))


def address(server: Server) -> tuple[str, int]:
    """Return (host, port) of ``server``, refusing anything but loopback."""
    parts = urlsplit(server.url)
    assert parts.hostname == LOOPBACK, server.url
    assert parts.port is not None, server.url
    return LOOPBACK, parts.port


# -- raw HTTP ---------------------------------------------------------------------------------


@dataclass
class RawResponse:
    """A parsed HTTP/1.1 response."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_s: float


def connect(server: Server, timeout: float = 10.0) -> socket.socket:
    """Return a TCP connection to ``server``."""
    return socket.create_connection(address(server), timeout=timeout)


def read_response(sock: socket.socket | BinaryIO, started: float | None = None) -> RawResponse:
    """Read one response (Content-Length framed, or up to EOF) from a socket or its file.

    Pass the same ``sock.makefile("rb")`` to read pipelined responses one after the other.
    """
    started = time.perf_counter() if started is None else started
    stream = sock.makefile("rb") if isinstance(sock, socket.socket) else sock
    status_line = stream.readline(65536)
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while (line := stream.readline(65536)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = stream.read(int(headers["content-length"]))
    else:  # no length: the server closes after the body
        body = stream.read()
    return RawResponse(status, headers, body, time.perf_counter() - started)


def raw_request(
    server: Server,
    head: str,
    body: bytes = b"",
    *,
    timeout: float = 10.0,
) -> RawResponse:
    """Send ``head`` (request line and headers, no blank line) and ``body`` as they are."""
    with connect(server, timeout) as sock:
        started = time.perf_counter()
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        return read_response(sock, started)


def post_head(
    path: str, *, length: int | None, content_type: str | None = "application/json"
) -> str:
    """Return the head of a POST with the given Content-Length (None: chunked)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return "\r\n".join(lines)


def chunked(body: bytes, size: int = 65536) -> Iterable[bytes]:
    """Yield ``body`` in HTTP/1.1 chunked encoding, then the last chunk."""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def send_while_reading(sock: socket.socket, pieces: Iterable[bytes]) -> tuple[RawResponse, int]:
    """Send ``pieces`` from a thread while reading the response; return it and bytes sent.

    A server that answers early (413) and closes may reset the connection under a sender that
    is still writing: reading in parallel gets the answer anyway.
    """
    sent = 0
    stop = threading.Event()

    def send() -> None:
        nonlocal sent
        try:
            for piece in pieces:
                if stop.is_set():
                    return
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the server closed: it answered already, or will not read the rest

    sender = threading.Thread(target=send, daemon=True)
    started = time.perf_counter()
    sender.start()
    try:
        return read_response(sock, started), sent
    finally:
        stop.set()
        sender.join(timeout=10)


# -- gunicorn's processes ---------------------------------------------------------------------


def wait_for_workers(master: int, count: int, timeout: float = 60.0) -> list[int]:
    """Wait until ``master`` has ``count`` workers and return their pids."""
    deadline = time.monotonic() + timeout
    while True:
        pids = children(master)
        if len(pids) == count:
            return pids
        assert time.monotonic() < deadline, f"master {master} has workers {pids}, want {count}"
        time.sleep(0.1)


def model_holders(server: Server) -> list[int]:
    """Return the pids of the workers that hold TensorFlow (a model)."""
    return [
        pid
        for pid in children(server.process.pid)
        if "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()
    ]


def model_process_pid(server: Server) -> int:
    """Return the pid of the worker that holds TensorFlow: the model process (exactly one must)."""
    holders = model_holders(server)
    assert len(holders) == 1, f"workers mapping TensorFlow: {holders}"
    return holders[0]


def wait_for_workers_changed(master: int, old: list[int], timeout: float = 30.0) -> list[int]:
    """Wait until gunicorn replaced a worker of ``old``; return the new pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pids = wait_for_workers(master, len(old), timeout=1)
        except AssertionError:
            continue
        if pids != old:
            return [pid for pid in pids if pid not in old]
        time.sleep(0.05)
    raise AssertionError("the killed worker was not replaced")


def rss_mb(pid: int) -> float:
    """Return the resident set size of ``pid`` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    return statistics.linear_regression(xs, ys).slope * 60


# -- bundles ----------------------------------------------------------------------------------


def rewrite_tokenizer(bundle: Path, extra_words: int) -> None:
    """Add words to the tokenizer and make metadata and checksums agree with it, so only the
    model's embedding size can tell."""
    tokenizer_path = bundle / "tokenizer.json"
    tokenizer = json.loads(tokenizer_path.read_text())
    words = tokenizer["word_index"]
    top = max(words.values())
    for offset in range(1, extra_words + 1):
        words[f"extra{offset}"] = top + offset
    tokenizer["num_words"] = None
    tokenizer_path.write_text(json.dumps(tokenizer))
    metadata_path = bundle / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["vocabulary_size"] = top + extra_words + 1
    metadata["checksums"]["tokenizer.json"] = file_sha256(tokenizer_path)
    metadata_path.write_text(json.dumps(metadata))


# -- one request, judged by the client ----------------------------------------------------


@dataclass
class Outcome:
    """What one client saw of one request."""

    kind: str  # "answered", "refused" (connect failed), "unanswered" (written, no whole answer)
    status: int | None
    connected_at: float
    retry_after: str | None = None


def one_request(port: int, request: bytes) -> Outcome:
    """Open a connection, write one request, read its whole answer (status line and body)."""
    at = time.monotonic()
    try:
        sock = socket.create_connection((LOOPBACK, port), timeout=15)
    except OSError:
        return Outcome("refused", None, at)
    with sock:
        try:
            sock.sendall(request)
            stream = sock.makefile("rb")
            status_line = stream.readline(65536)
            if not status_line:
                return Outcome("unanswered", None, at)
            headers = {}
            while (line := stream.readline(65536)) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(stream.read(length)) < length:  # cut off mid-body: no whole answer
                return Outcome("unanswered", None, at)
        except OSError:  # reset while writing or before the whole answer
            return Outcome("unanswered", None, at)
    status = int(status_line.split(b" ", 2)[1])
    return Outcome("answered", status, at, headers.get("retry-after"))


@contextmanager
def client_books(
    port: int,
    request: bytes,
    *,
    clients: int,
    until: Callable[[], bool],
    after_refusal: Literal["stop", "retry"] = "stop",
    max_s: float = 90.0,
) -> Iterator[list[Outcome]]:
    """Run ``clients`` threads that each send ``request`` on a new connection, again and again,
    until ``until()`` (or ``max_s``); yield the list their outcomes go to, join them on exit.

    A refused connection ends that client (``after_refusal="stop"``: the listener is closed,
    the server is going away) or is tried again 50 ms later (``"retry"``: not listening yet).
    """
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def client() -> None:
        deadline = time.monotonic() + max_s  # bounded whatever happens
        while not until() and time.monotonic() < deadline:
            outcome = one_request(port, request)
            with lock:
                outcomes.append(outcome)
            if outcome.kind == "refused":
                if after_refusal == "stop":
                    return
                time.sleep(0.05)  # do not spin

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield outcomes
    finally:
        for thread in threads:
            thread.join(30)


# -- load -------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One request of a load run."""

    started: float  # seconds since the run began
    latency_s: float
    status: int | None  # None: no HTTP answer (connection error, timeout)
    error: str = ""
    retry_after: str | None = None
    request_id: str = ""
    code: str = ""  # the service's error code of a non-200 answer


@dataclass
class LoadRun:
    """Closed-loop load: ``clients`` threads, each with its own keep-alive session."""

    url: str
    clients: int
    make_body: Callable[[int], dict[str, Any]]
    timeout_s: float = 30.0
    check: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    max_requests: int = 1_000_000  # a hard cap on top of the duration
    new_connection_every: int = 0  # clients with index % n == 0 reconnect for every request
    name: str = "load"
    samples: list[Sample] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _origin: float = 0.0

    def start(self) -> LoadRun:
        """Start the clients (they run until ``stop`` or the request cap)."""
        self._origin = time.perf_counter()
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> LoadRun:
        """Stop the clients and wait for their last requests."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)
        return self

    def run_for(self, seconds: float) -> LoadRun:
        """Start, wait ``seconds``, stop."""
        self.start()
        self._stop.wait(seconds)
        return self.stop()

    @property
    def elapsed_s(self) -> float:
        """Return seconds since the run started."""
        return time.perf_counter() - self._origin

    def _client(self, index: int) -> None:
        count = 0
        reconnect = self.new_connection_every and index % self.new_connection_every == 0
        headers = {"Connection": "close"} if reconnect else {}
        with requests.Session() as session:
            while not self._stop.is_set():
                with self._lock:
                    if len(self.samples) >= self.max_requests:
                        return
                body = self.make_body(index * 100_000 + count)
                request_id = f"{self.name}-{index}-{count}"
                count += 1
                started = time.perf_counter()
                sample = Sample(started - self._origin, 0.0, None, request_id=request_id)
                try:
                    reply = session.post(
                        self.url,
                        json=body,
                        timeout=self.timeout_s,
                        headers={**headers, "X-Request-ID": request_id},
                    )
                    sample.status = reply.status_code
                    sample.retry_after = reply.headers.get("Retry-After")
                    if reply.status_code != 200:
                        sample.code = _error_code(reply)
                    if reply.status_code == 200 and self.check is not None:
                        try:
                            self.check(body, reply.json())
                        except AssertionError as exc:
                            with self._lock:
                                self.mismatches.append(str(exc))
                except requests.RequestException as exc:
                    sample.error = type(exc).__name__
                sample.latency_s = time.perf_counter() - started
                with self._lock:
                    self.samples.append(sample)
                if sample.status is None:
                    self._stop.wait(0.05)  # no server there: do not spin

    # -- summaries ------------------------------------------------------------------------

    def statuses(self) -> Counter[str]:
        """Return counts by status (``error:<Type>`` for no answer)."""
        return Counter(
            str(s.status) if s.status is not None else f"error:{s.error}" for s in self.samples
        )

    def errors(self) -> list[Sample]:
        """Return samples that are not a 200."""
        return [s for s in self.samples if s.status != 200]


def _error_code(reply: requests.Response) -> str:
    try:
        return str(reply.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


def checked_load(
    server: Server, clients: int, texts_per_request: int = 4, **options: Any
) -> LoadRun:
    """Return a load run on /predict whose every 200 is checked against the scores the
    server gave for the same texts before the run (one request, nothing else running)."""
    reply = requests.post(f"{server.url}/predict", json={"texts": LOAD_TEXTS}, timeout=30)
    assert reply.status_code == 200, reply.text
    expected = {
        text: prediction["probabilities"]["positive"]
        for text, prediction in zip(LOAD_TEXTS, reply.json()["predictions"], strict=True)
    }

    def body(n: int) -> dict[str, Any]:
        return {"texts": [LOAD_TEXTS[(n + i) % len(LOAD_TEXTS)] for i in range(texts_per_request)]}

    def check(sent: dict[str, Any], got: dict[str, Any]) -> None:
        for text, prediction in zip(sent["texts"], got["predictions"], strict=True):
            assert abs(prediction["probabilities"]["positive"] - expected[text]) < 1e-4, text

    return LoadRun(f"{server.url}/predict", clients, body, check=check, **options)


# Varied synthetic reviews (3-25 words): several length buckets, so batches mix shapes.
LOAD_TEXTS = [text for text, _ in make_reviews(40, seed=11)]


def percentile(values: list[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def report(name: str, **figures: object) -> None:
    """Print one line of figures (``pytest -rP`` shows it); also append it to the file named by
    ``RELIABILITY_REPORT``, if set (``make test-slow`` does: docs/reliability.md quotes it)."""
    line = f"[{name}] " + " ".join(f"{key}={value}" for key, value in figures.items())
    print("\n" + line)
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


# -- fuzzing ----------------------------------------------------------------------------------

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


_V2_INFER = "/infer$"
# JSON Schema cannot tie a V2 input's shape to the length of its data, so a schema-valid V2
# inference request may still be refused (400, as the protocol says): the V2 inference
# operations run without the positive-data check, every other check on. The V2 model metadata
# operations and /readyz run with them, so the stateful phase learns the model's real name from
# their responses and inference gets past the 404 of unknown models.
FUZZ_RUNS = (
    ("schemathesis", ("--exclude-path-regex", _V2_INFER)),
    (
        "schemathesis V2 infer",
        (
            "--include-path-regex",
            "^/v2/models/|^/readyz$",
            "--exclude-checks",
            "positive_data_acceptance",
        ),
    ),
)


def run_schemathesis(
    server: Server, workdir: Path, *extra: str, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Fuzz ``server`` from its own /openapi.json with every schemathesis check.

    ``RELIABILITY_FUZZ_EXAMPLES`` (default 40) bounds the cases per operation and phase,
    ``RELIABILITY_FUZZ_SEED`` (default 1) makes a CI run reproducible; another seed explores
    other inputs. Runs in ``workdir`` so its caches stay out of the checkout.
    """
    command = [
        SCHEMATHESIS,
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "40"),
        "--seed",
        os.environ.get("RELIABILITY_FUZZ_SEED", "1"),
        "--request-timeout",
        "10",
        "--no-color",
        *extra,
    ]
    return subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
