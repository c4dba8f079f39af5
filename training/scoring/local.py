"""The one-machine engine: stream a file in chunks through the compiled model into parts.

Memory holds two chunks at most, whatever the input's size: one being read and encoded by a
background thread (pure Python, under the GIL) while the other runs through TensorFlow (which
releases the GIL), so on a few cores reading and tokenizing overlap the model instead of
adding to it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from training.errors import DataError
from training.scoring.formats import Source, SourceRow, detect_format, is_gzip
from training.scoring.parts import PartCounts, PartStore, write_atomically
from training.scoring.predict import Scorer, text_problem
from training.scoring.progress import ProgressBar
from training.scoring.writers import PartWriter

# Rows per chunk (and per part file): large enough to sort into well-filled length buckets,
# small enough that two chunks of long reviews stay in tens of MB.
DEFAULT_CHUNK_ROWS = 4096
# Chunks read and encoded ahead of the model: one keeps both cores busy; more only costs memory.
PREFETCH_CHUNKS = 1


@dataclass(frozen=True)
class ScoringOptions:
    """What to score and where to write it (the flags of `sentiment-predict`)."""

    data: Path
    out: Path
    input_format: str | None = None
    output_format: str | None = None
    text_column: str = "text"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    batch_size: int = 256
    resume: bool = False
    strict: bool = False
    rejects: Path | None = None  # default: OUT.rejects.jsonl

    @property
    def rejects_path(self) -> Path:
        """Return where rejected rows are listed."""
        return self.rejects or self.out.with_name(self.out.name + ".rejects.jsonl")


@dataclass
class Summary:
    """What a run did: printed as JSON by the CLI."""

    engine: str
    output: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    rejects: str | None = None
    resumed_chunks: int = 0
    seconds: float = 0.0
    texts_per_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Chunk:
    index: int
    rows: int
    inputs: list[dict[str, Any]]
    encoded: list[list[int]]
    rejects: list[dict[str, Any]]
    fraction: float
    done: bool  # committed by an earlier run: only read past


def score_file(
    scorer: Scorer, options: ScoringOptions, *, progress: ProgressBar | None = None
) -> Summary:
    """Score every row of ``options.data`` into ``options.out``; return the summary."""
    started = time.perf_counter()
    source = Source(options.data, detect_format(options.data, options.input_format))
    kind = detect_format(options.out, options.output_format)
    writer = PartWriter(kind, is_gzip(options.out))
    store = PartStore(options.out, _fingerprint(scorer, options, source, kind), writer.suffix)
    done = store.open(resume=options.resume)
    if done:
        first = min(i for i, counts in done.items() if counts.scored) if _any(done) else None
        if first is not None:
            writer.adopt(store.part(first), done[first].columns)
    summary = Summary(engine="local", output=str(options.out), resumed_chunks=len(done))
    bar = progress or ProgressBar(enabled=False)
    chunks = _chunks(scorer, source, options, set(done))
    for chunk in _prefetch(chunks, PREFETCH_CHUNKS):
        counts = done[chunk.index] if chunk.done else _score_chunk(scorer, writer, store, chunk)
        summary.rows += counts.rows
        summary.scored += counts.scored
        summary.rejected += counts.rejected
        bar.update(summary.scored, chunk.fraction)
    bar.update(summary.scored, 1.0, force=True)
    bar.close()
    _finish(store, writer, options, summary)
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.texts_per_s = round(summary.scored / max(summary.seconds, 1e-9), 1)
    return summary


def _any(done: dict[int, PartCounts]) -> bool:
    return any(counts.scored for counts in done.values())


def _score_chunk(scorer: Scorer, writer: PartWriter, store: PartStore, chunk: _Chunk) -> PartCounts:
    if chunk.inputs:
        probabilities = scorer.probabilities(chunk.encoded)
        rows = scorer.output_rows(chunk.inputs, probabilities)
        write_atomically(store.part(chunk.index), lambda path: writer.write(rows, path))
    rejects = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in chunk.rejects)
    write_atomically(store.rejects(chunk.index), lambda path: path.write_bytes(rejects))
    counts = PartCounts(chunk.rows, len(chunk.inputs), len(chunk.rejects), writer.columns or [])
    store.commit(chunk.index, counts)
    return counts


def _chunks(
    scorer: Scorer, source: Source, options: ScoringOptions, done: set[int]
) -> Iterator[_Chunk]:
    rows = source.rows()
    index = 0
    while batch := list(islice(rows, options.chunk_rows)):
        if index in done:
            yield _Chunk(index, len(batch), [], [], [], source.fraction_read(), done=True)
        else:
            inputs, rejects = _split(batch, options, str(source.path))
            texts = [values[options.text_column] for values in inputs]
            encoded = scorer.encode(texts)
            yield _Chunk(index, len(batch), inputs, encoded, rejects, source.fraction_read(), False)
        index += 1


def _split(
    batch: list[SourceRow], options: ScoringOptions, where: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (rows with a text, reject records); under ``strict`` a bad row is an error."""
    inputs, rejects = [], []
    for row in batch:
        problem = row.problem
        if problem is None and row.values is not None:
            problem = text_problem(row.values, options.text_column)
        if problem is None and row.values is not None:
            inputs.append(row.values)
            continue
        if options.strict:
            raise DataError(where, f"{problem} (without --strict it would be a reject)", row.line)
        rejects.append({"file": where, "line": row.line, "reason": problem})
    return inputs, rejects


def _finish(
    store: PartStore, writer: PartWriter, options: ScoringOptions, summary: Summary
) -> None:
    """Merge the parts into the output and the rejects file, each by rename, then clean up."""
    indexes = sorted(int(p.stem) for p in store.directory.glob("*.json") if p.stem.isdigit())
    parts = [store.part(i) for i in indexes if store.part(i).exists()]
    rejects_path = options.rejects_path
    if summary.rejected:
        rejects = [store.rejects(i) for i in indexes]
        write_atomically(rejects_path, lambda path: _concatenate(rejects, path))
        summary.rejects = str(rejects_path)
    else:
        rejects_path.unlink(missing_ok=True)  # a stale list from an earlier run would mislead
    write_atomically(options.out, lambda path: writer.merge(parts, path))
    store.remove()


def _concatenate(parts: list[Path], out: Path) -> None:
    with out.open("wb") as target:
        for part in parts:
            target.write(part.read_bytes())


def _fingerprint(
    scorer: Scorer, options: ScoringOptions, source: Source, kind: str
) -> dict[str, Any]:
    """Return what must not change between an interrupted run and its --resume."""
    stat = source.path.stat() if source.path.exists() else None
    metadata = scorer.bundle.metadata
    return {
        "input": str(source.path.resolve()),
        "input_size": stat.st_size if stat else None,
        "input_mtime_ns": stat.st_mtime_ns if stat else None,
        "input_format": source.kind,
        "output_format": kind,
        "text_column": options.text_column,
        "chunk_rows": options.chunk_rows,
        "model": f"{metadata.name}:{metadata.version}",
        "model_sha256": metadata.checksums.get("model.keras"),
    }


def _prefetch(items: Iterator[_Chunk], depth: int) -> Iterator[_Chunk]:
    """Yield ``items`` while a thread produces up to ``depth`` of them ahead."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except BaseException as exc:  # re-raised in the consumer, with its traceback
            slots.put(("error", exc))

    thread = threading.Thread(target=produce, name="score-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)
