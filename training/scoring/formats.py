"""Streaming readers of CSV/TSV, JSON Lines (maybe gzipped) and Parquet: rows, never whole files.

Each reader yields ``SourceRow``s in file order: the row's 1-based line (the row number for
Parquet) and either its values or why it cannot be read. A bad row is reported, never raised,
so one undecodable line does not stop a run of millions; ``rows.py`` decides what to do with it.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from training.errors import DataError, ScoringError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_DIALECTS = {"csv": csv.excel, "tsv": csv.excel_tab}
# Bytes that are not UTF-8 survive decoding as lone surrogates (errors="surrogateescape"), so a
# CSV record with one is found after parsing and rejected alone, with its line.
_UNDECODED = re.compile("[\udc80-\udcff]")
# csv refuses fields over 128 KiB by default; a long review must not become a reject.
csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class SourceRow:
    """One input row: its values, or the reason it could not be read."""

    line: int
    values: dict[str, Any] | None
    problem: str | None = None


def detect_format(path: str | Path, override: str | None = None) -> str:
    """Return the format of ``path``: ``override`` if given, else from its extension (.gz too)."""
    if override is not None:
        if override not in FORMATS:
            raise ScoringError(f"unknown format {override!r} (expected one of {FORMATS})")
        return override
    name = Path(path).name.lower().removesuffix(".gz")
    kind = _SUFFIXES.get(Path(name).suffix)
    if kind is None:
        known = ", ".join(sorted(_SUFFIXES))
        raise ScoringError(f"{path}: cannot tell the format from the name ({known}, or --format)")
    return kind


def is_gzip(path: str | Path) -> bool:
    """Return whether ``path`` is (to be) gzip-compressed, by its name."""
    return str(path).lower().endswith(".gz")


class Source:
    """An input file opened for streaming; ``fraction_read`` drives the progress bar's ETA."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._raw: IO[bytes] | None = None
        self._parquet_rows = 0
        self._parquet_read = 0

    def rows(self) -> Iterator[SourceRow]:
        """Yield every row of the file in order."""
        if not self.path.is_file():
            raise DataError(self.path, "file not found")
        if self.kind == "parquet":
            yield from self._parquet()
            return
        with self.path.open("rb") as raw, _maybe_gunzip(raw, is_gzip(self.path)) as stream:
            self._raw = raw
            try:
                if self.kind == "jsonl":
                    yield from _jsonl_rows(stream)
                else:
                    yield from _csv_rows(stream, self.kind, str(self.path))
            except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
                raise DataError(self.path, f"unreadable file ({exc})") from exc

    def fraction_read(self) -> float:
        """Return how much of the file has been read, 0..1 (compressed bytes for .gz)."""
        if self.kind == "parquet":
            return self._parquet_read / max(self._parquet_rows, 1)
        if self._raw is None or self._raw.closed:
            return 0.0
        return self._raw.tell() / max(self.path.stat().st_size, 1)

    def _parquet(self) -> Iterator[SourceRow]:
        parquet = require_pyarrow_parquet()
        handle = parquet.ParquetFile(self.path)
        self._parquet_rows = handle.metadata.num_rows
        line = 0
        for batch in handle.iter_batches(batch_size=4096):
            for values in batch.to_pylist():
                line += 1
                yield SourceRow(line, values)
            self._parquet_read = line


def _maybe_gunzip(raw: IO[bytes], compressed: bool) -> AbstractContextManager[IO[bytes]]:
    return cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if compressed else nullcontext(raw)


def require_pyarrow_parquet() -> Any:
    """Return ``pyarrow.parquet``, or say which extra installs it."""
    try:
        import pyarrow.parquet
    except ImportError as exc:
        raise ScoringError(
            "Parquet needs pyarrow: pip install 'sentiment-service[parquet]' "
            "(CSV, TSV and JSON Lines work without it)"
        ) from exc
    return pyarrow.parquet


def _jsonl_rows(stream: IO[bytes]) -> Iterator[SourceRow]:
    # Lines split on b"\n" only: JSON strings may hold U+2028 and friends raw.
    for line, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            values = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield SourceRow(line, None, _undecodable(raw) or f"invalid JSON ({exc})")
            continue
        if not isinstance(values, dict):
            yield SourceRow(line, None, f"expected a JSON object, found {type(values).__name__}")
            continue
        yield SourceRow(line, values)


def _undecodable(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    return None


def _csv_rows(stream: IO[bytes], kind: str, where: str) -> Iterator[SourceRow]:
    # Closing the wrapper (at the end or when the consumer stops early) closes the stream too.
    with io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="") as text:
        yield from _csv_records(csv.reader(text, _DIALECTS[kind], strict=True), kind, where)


def _csv_records(reader: Any, kind: str, where: str) -> Iterator[SourceRow]:
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise DataError(where, f"malformed {kind} header ({exc})", 1) from exc
    if header:
        # Spreadsheet exports often start with a byte order mark that glues onto the first name.
        header[0] = header[0].removeprefix("\ufeff")
    if not header or any(_UNDECODED.search(name) for name in header):
        raise DataError(where, f"no readable {kind} header", 1)
    previous = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader resumes at the next line; the bad record alone is lost.
            line, previous = previous + 1, reader.line_num
            yield SourceRow(line, None, f"malformed {kind} ({exc})")
            continue
        # A quoted field may span lines: report where the record starts, as an editor shows it.
        line, previous = previous + 1, reader.line_num
        if not record:
            continue
        if len(record) != len(header):
            problem = f"expected {len(header)} fields as in the header, found {len(record)}"
            yield SourceRow(line, None, problem)
        elif any(_UNDECODED.search(value) for value in record):
            yield SourceRow(line, None, "not valid UTF-8")
        else:
            yield SourceRow(line, dict(zip(header, record, strict=True)))
