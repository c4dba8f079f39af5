"""Generated input rows, and files of them in every format `sentiment-predict` reads."""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path
from typing import Any

from tests.fixtures import make_review

DIALECTS = {"csv": csv.excel, "tsv": csv.excel_tab}


def make_rows(count: int, seed: int = 0, *, padding: int = 0) -> list[dict[str, Any]]:
    """Return rows with an id, a text, a label (to be ignored), an extra column."""
    rng = random.Random(seed)
    return [
        {
            "id": index,
            "text": make_review(rng, index % 2),
            "label": index % 2,
            "note": "x" * padding,
        }
        for index in range(count)
    ]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` in the format of ``path``'s extension (.csv .tsv .jsonl .parquet, .gz)."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
        return path
    if name.endswith(".jsonl"):
        data = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        lines: list[str] = []
        handle = _Lines(lines)
        writer = csv.DictWriter(handle, list(rows[0]), dialect=DIALECTS[name[-3:]])
        writer.writeheader()
        writer.writerows(rows)
        data = "".join(lines)
    raw = data.encode("utf-8")
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read an output file (or Ray's directory of them) back as rows."""
    if path.is_dir():
        return [row for part in sorted(path.iterdir()) for row in read_rows(part)]
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        import pyarrow.parquet

        return pyarrow.parquet.read_table(path).to_pylist()
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
    if name.endswith((".jsonl", ".json")):
        return [json.loads(line) for line in text.splitlines() if line]
    dialect = DIALECTS["tsv" if name.endswith(".tsv") else "csv"]
    return list(csv.DictReader(text.splitlines(), dialect=dialect))


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)
