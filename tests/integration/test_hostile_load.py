"""One client sends the most expensive request allowed; another must still be served quickly.

One worker, so the hostile request and the probes share a process and its GIL. The hostile
body holds the most texts allowed (256), each as expensive to tokenize as 20k characters get:

* ``"<br"`` + 19,997 spaces: the old ``<\\s*br\\s*/?\\s*>`` backtracked quadratically on it,
  ~1.1 s per text inside one ``re.sub`` call, which never releases the GIL. 128 of them were
  ~2.5 minutes during which every other request thread of the worker waited up to 1.1 s for
  each GIL hand-over (and a request needs many): the probes below took seconds each and the
  hostile request itself ran past any timeout. Now ~2 ms per text.
* ``"İ"`` x 20,000: the most tokens 20k characters can make (lowercasing turns each into
  ``i`` + U+0307, two tokens), ~10-20 ms per text, linear.

Alternating them keeps the body under 8 MiB (20 kB + 40 kB of UTF-8 per pair): JSON-escaping
the ``İ`` as ``\\u0130`` would triple it, so the body is sent as raw UTF-8.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import requests

from service.config import Settings
from tests.integration.server import Server, running_server

pytestmark = pytest.mark.integration

MAX_TEXTS = int(Settings.model_fields["max_texts_per_request"].default)
MAX_CHARS = int(Settings.model_fields["max_text_chars"].default)
MAX_BODY = int(Settings.model_fields["max_body_bytes"].default)
PROBES = 20
MAX_PROBE_P50_S = 1.0

QUADRATIC_BEFORE = "<br" + " " * (MAX_CHARS - 3)
MOST_TOKENS = "İ" * MAX_CHARS


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile")
    with running_server(tiny_bundle, tmp, workers="1", threads="4") as started:
        yield started


def hostile_body() -> bytes:
    texts = [QUADRATIC_BEFORE if i % 2 == 0 else MOST_TOKENS for i in range(MAX_TEXTS)]
    assert all(len(text) == MAX_CHARS for text in texts)
    body = orjson.dumps({"texts": texts})
    assert len(body) < MAX_BODY, len(body)
    return body


@dataclass
class Outcome:
    """What the hostile client saw."""

    status: int | None = None
    error: str | None = None
    seconds: float = 0.0


def test_worker_stays_responsive_during_the_most_expensive_request(server: Server) -> None:
    body = hostile_body()
    outcome = Outcome()

    def send_hostile() -> None:
        started = time.monotonic()
        try:
            reply = requests.post(
                f"{server.url}/predict",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            outcome.status = reply.status_code
        except requests.RequestException as exc:  # reported by the assertions below
            outcome.error = repr(exc)
        outcome.seconds = time.monotonic() - started

    thread = threading.Thread(target=send_hostile, daemon=True)
    thread.start()
    time.sleep(0.2)  # the body is uploaded (loopback) and being parsed and encoded

    latencies: list[float] = []
    overlapping = 0
    with requests.Session() as probe:
        for index in range(PROBES):
            overlapping += thread.is_alive()
            started = time.monotonic()
            reply = probe.post(
                f"{server.url}/predict", json={"text": f"a wonderful film {index}"}, timeout=60
            )
            latencies.append(time.monotonic() - started)
            assert reply.status_code == 200, reply.text
    thread.join(timeout=150)

    assert not thread.is_alive(), "the hostile request did not finish"
    assert outcome.error is None, outcome.error
    assert outcome.status is not None
    assert outcome.status == 200 or 400 <= outcome.status < 500, outcome
    assert overlapping > 0, f"the hostile request was over before the probes began: {outcome}"
    p50 = statistics.median(latencies)
    assert p50 < MAX_PROBE_P50_S, (
        f"probe p50 {p50:.3f} s while the hostile request ran ({outcome}); "
        f"{overlapping} probes overlapped it; latencies {[round(x, 3) for x in latencies]}"
    )
