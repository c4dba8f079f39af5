"""Output parts (one per chunk) in CSV/TSV, JSON Lines (maybe gzipped) or Parquet, and their merge.

A run writes each chunk's rows as a part file of its own (``parts.py`` commits them), then
concatenates the parts into the output. Text formats concatenate byte for byte (a gzip file
may hold many members, so each part is compressed on its own); Parquet parts become row
groups of one file. Columns are fixed by the first part, so every part has the same layout.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from training.errors import ScoringError
from training.scoring.formats import require_pyarrow_parquet

_DIALECTS = {"csv": csv.excel, "tsv": csv.excel_tab}
# Fast over small: the output is rewritten once more by the merge.
GZIP_LEVEL = 3


class PartWriter:
    """Turns a chunk's output rows into a part file, with the same columns in every part."""

    def __init__(self, kind: str, compress: bool, columns: Sequence[str] | None = None) -> None:
        self.kind = kind
        self.compress = compress and kind != "parquet"
        self.columns = list(columns) if columns is not None else None
        self._schema: Any = None

    @property
    def suffix(self) -> str:
        """Return the part files' extension."""
        return ".parquet" if self.kind == "parquet" else f".{self.kind}"

    def write(self, rows: list[dict[str, Any]], path: Path) -> None:
        """Write ``rows`` to ``path`` (columns of the first part; missing values empty)."""
        if self.columns is None:
            self.columns = _columns(rows)
        if self.kind == "parquet":
            self._write_parquet(rows, path)
            return
        data = self._jsonl(rows) if self.kind == "jsonl" else self._delimited(rows)
        path.write_bytes(gzip.compress(data, GZIP_LEVEL, mtime=0) if self.compress else data)

    def _jsonl(self, rows: list[dict[str, Any]]) -> bytes:
        # Every key of every row goes through (the first part's columns only order CSV/Parquet).
        return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)

    def _delimited(self, rows: list[dict[str, Any]]) -> bytes:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(
            buffer, self.columns or [], dialect=_DIALECTS[self.kind], extrasaction="ignore"
        )
        writer.writerows(rows)  # the header is written once, by merge()
        return buffer.getvalue().encode("utf-8")

    def _write_parquet(self, rows: list[dict[str, Any]], path: Path) -> None:
        parquet = require_pyarrow_parquet()
        import pyarrow

        try:
            if self._schema is None:
                table = pyarrow.Table.from_pylist(rows)
                self._schema = table.schema
            else:
                table = pyarrow.Table.from_pylist(rows, schema=self._schema)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError) as exc:
            raise ScoringError(
                f"a chunk's values do not fit the Parquet columns of the first chunk: {exc}"
            ) from exc
        parquet.write_table(table, path)

    def adopt(self, first_part: Path, columns: Sequence[str]) -> None:
        """Take the layout of an already written first part (resuming a run)."""
        self.columns = list(columns)
        if self.kind == "parquet":
            self._schema = require_pyarrow_parquet().read_schema(first_part)

    def merge(self, parts: Sequence[Path], out: Path) -> None:
        """Concatenate ``parts`` (in order) into ``out``."""
        if self.kind == "parquet":
            self._merge_parquet(parts, out)
            return
        with out.open("wb") as target:
            if self.kind != "jsonl":
                header = io.StringIO(newline="")
                csv.writer(header, _DIALECTS[self.kind]).writerow(self.columns or [])
                data = header.getvalue().encode("utf-8")
                target.write(gzip.compress(data, GZIP_LEVEL, mtime=0) if self.compress else data)
            for part in parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, target, 1 << 20)

    def _merge_parquet(self, parts: Sequence[Path], out: Path) -> None:
        parquet = require_pyarrow_parquet()
        if not parts:
            # No scored rows: an empty file with just the columns we know.
            import pyarrow

            fields = [pyarrow.field(name, pyarrow.string()) for name in self.columns or []]
            parquet.write_table(pyarrow.schema(fields).empty_table(), out)
            return
        schema = self._schema or parquet.read_schema(parts[0])
        with parquet.ParquetWriter(out, schema) as writer:
            for part in parts:
                writer.write_table(parquet.read_table(part, schema=schema))


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Return the keys of ``rows`` in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)
