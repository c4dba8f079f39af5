"""Committed chunks on disk: what makes a run resumable and its output atomic.

Next to ``OUT`` a run keeps ``OUT.parts/``: a manifest saying which input, model and options
the parts belong to, and for chunk ``k`` (input rows ``k*chunk .. (k+1)*chunk-1``) its output
part, its rejects and last a marker ``k.json`` with its counts. The marker is written after
both files, each by rename, so a chunk either counts as done whole or is redone whole: a
resumed run skips the rows of every marked chunk and scores the rest, never a row twice or
none. ``finish`` merges the parts into a temporary file beside ``OUT`` and renames it, so
``OUT`` never exists half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.errors import ScoringError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PartCounts:
    """What one committed chunk held."""

    rows: int
    scored: int
    rejected: int
    columns: list[str]


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary path beside ``path``, then rename it into place."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class PartStore:
    """The ``OUT.parts/`` directory of one run."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], suffix: str) -> None:
        self.out = out
        self.directory = out.with_name(out.name + ".parts")
        self.fingerprint = fingerprint
        self.suffix = suffix

    def open(self, *, resume: bool) -> dict[int, PartCounts]:
        """Prepare the directory; return the chunks already done (none unless ``resume``)."""
        manifest = self.directory / MANIFEST
        if resume and manifest.is_file():
            found = json.loads(manifest.read_text(encoding="utf-8"))
            if found != self.fingerprint:
                changed = sorted(
                    key
                    for key in found.keys() | self.fingerprint.keys()
                    if found.get(key) != self.fingerprint.get(key)
                )
                raise ScoringError(
                    f"cannot resume into {self.out}: {', '.join(changed)} changed since the "
                    f"interrupted run; run again without --resume to start over"
                )
            return self._done()
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        write_atomically(manifest, lambda path: _write_json(path, self.fingerprint))
        return {}

    def part(self, index: int) -> Path:
        """Return the output part of chunk ``index``."""
        return self.directory / f"{index:08d}{self.suffix}"

    def rejects(self, index: int) -> Path:
        """Return the rejects part of chunk ``index``."""
        return self.directory / f"{index:08d}.rejects.jsonl"

    def commit(self, index: int, counts: PartCounts) -> None:
        """Mark chunk ``index`` done (after its part and rejects are in place)."""
        marker = self.directory / f"{index:08d}.json"
        write_atomically(marker, lambda path: _write_json(path, asdict(counts)))

    def _done(self) -> dict[int, PartCounts]:
        done: dict[int, PartCounts] = {}
        for marker in self.directory.glob("*.json"):
            if marker.name == MANIFEST or not marker.stem.isdigit():
                continue
            done[int(marker.stem)] = PartCounts(**json.loads(marker.read_text(encoding="utf-8")))
        return done

    def remove(self) -> None:
        """Delete the parts (after the output is in place)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, sort_keys=True) + "\n", encoding="utf-8")
