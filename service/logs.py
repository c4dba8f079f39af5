"""JSON logs: one object per line, so log pipelines parse them without regexes."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import time
from typing import Any

import orjson

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what orjson refuses (an int past 64 bits, say) the json module writes
            return json.dumps(entry, default=str, ensure_ascii=False)


class RecordQueueHandler(logging.handlers.QueueHandler):
    """Enqueue the record itself; the listener thread formats it.

    The stock ``prepare`` formats every record on the caller's thread and copies it, so that
    it can cross a process boundary; this queue stays in the process, and the formatting is
    the listener's job (JsonFormatter), off the request's path.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def configure_logging(level: str = "info") -> None:
    """Send the root logger's records to stderr as JSON, written by a background thread.

    Request threads only enqueue their record: with many threads, a synchronous handler
    serializes them on its lock and on stderr (it cost ~10% of a busy worker's time).
    Idempotent.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    # No caller lookup (a stack walk per record): no formatter here prints the file, line or
    # function (the logging HOWTO's "Optimization" section names this switch).
    logging._srcfile = None
    if any(isinstance(h, logging.handlers.QueueHandler) for h in root.handlers):
        return
    stream = logging.StreamHandler()
    stream.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    listener.start()
    _listeners.append(listener)
    root.handlers = [RecordQueueHandler(records)]


def flush_logging() -> None:
    """Write out every queued record (registered with atexit)."""
    while _listeners:
        _listeners.pop().stop()


_listeners: list[logging.handlers.QueueListener] = []
atexit.register(flush_logging)
