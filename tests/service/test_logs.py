"""JSON logs: one object per line with the ``extra`` fields, formatted off the caller's thread."""

from __future__ import annotations

import json
import logging
import queue
import sys

from service.logs import JsonFormatter, RecordQueueHandler


def record(message: str = "request", **extra: object) -> logging.LogRecord:
    entry = logging.getLogger("service.access").makeRecord(
        "service.access", logging.INFO, "app.py", 1, message, (), None, extra=extra
    )
    return entry


def test_a_record_becomes_one_json_object_with_its_extra_fields() -> None:
    line = JsonFormatter().format(record(status=200, route="/predict", duration_ms=1.25))
    entry = json.loads(line)
    assert entry["message"] == "request"
    assert entry["level"] == "info"
    assert entry["logger"] == "service.access"
    assert (entry["status"], entry["route"], entry["duration_ms"]) == (200, "/predict", 1.25)
    assert entry["ts"].endswith("Z")
    assert "\n" not in line


def test_text_orjson_refuses_is_still_logged() -> None:
    # A lone surrogate (a hostile client's "\ud800") and an int past 64 bits: orjson raises
    # on both; the line is still written, by the json module.
    line = JsonFormatter().format(record(texts=["bad \ud800 text"], big=2**70))
    entry = json.loads(line)
    assert entry["big"] == 2**70
    assert entry["texts"][0].startswith("bad ")


def test_unknown_types_are_written_as_text() -> None:
    entry = json.loads(JsonFormatter().format(record(path=object)))
    assert entry["path"] == str(object)


def test_an_exception_is_logged_with_its_trace() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, "f.py", 1, "failed", (), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(failed))
    assert "ValueError: boom" in entry["exception"]


def test_the_queue_gets_the_record_itself_unformatted() -> None:
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = RecordQueueHandler(records)
    sent = record("scored %d texts", status=200)
    sent.args = (3,)
    handler.handle(sent)
    queued = records.get_nowait()
    assert queued is sent  # no copy, no formatting on the request's thread
    assert json.loads(JsonFormatter().format(queued))["message"] == "scored 3 texts"
