"""Read labelled and unlabelled texts from csv, tsv, jsonl or the aclImdb release."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training import aclimdb
from training.aclimdb import ACLIMDB_URL, download_aclimdb
from training.errors import ConfigError, DataError

__all__ = [
    "ACLIMDB_URL",
    "Dataset",
    "concatenate",
    "download_aclimdb",
    "fingerprint",
    "read_labelled",
    "read_texts",
    "split_dataset",
    "summarize",
]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}
_DIALECTS = {"csv": csv.excel, "tsv": csv.excel_tab}
# Bump when the digest layout changes, so old and new fingerprints can never collide.
_FINGERPRINT_VERSION = b"training.data.fingerprint/v1\n"

# (file the row came from, 1-based line or None, raw text value, raw label value, raw group)
_Row = tuple[str, int | None, object, object, object]


@dataclass(frozen=True)
class Dataset:
    """Texts with one label each, in file order, and the path they were read from.

    ``groups``, when read with a group column, holds each text's group (e.g. the movie a review
    is about); ``split_dataset`` then keeps every group on one side of the split.
    """

    texts: list[str]
    labels: list[str]
    source: str
    groups: list[str] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        """Reject texts, labels and groups that do not pair up."""
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.groups is not None and len(self.groups) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.groups)} groups")

    def __len__(self) -> int:
        """Return the number of examples."""
        return len(self.texts)


def read_labelled(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split: str = "train",
    label_names: Mapping[str, str] | None = None,
    group_column: str | None = None,
) -> Dataset:
    """Read texts and labels from a csv/tsv/jsonl file (maybe gzipped) or the aclImdb release.

    With ``group_column``, each row's value of that column (or JSON key) becomes its group in
    ``Dataset.groups``; every row must have one.
    """
    source = _existing(path)
    rows: Iterable[_Row]
    if source.is_dir() or aclimdb.is_archive(source):
        if group_column is not None:
            raise DataError(source, f"group column {group_column!r} needs a csv/tsv/jsonl file")
        # split only means something for aclImdb; the other formats hold a single split per file.
        rows = (
            (review.name, None, _decode(review.raw, review.name), review.label, None)
            for review in aclimdb.read_reviews(source, split)
        )
    else:
        hint = ", each optionally gzipped, an aclImdb folder or aclImdb_v1.tar.gz"
        kind = _format(source, ("csv", "tsv", "jsonl"), hint)
        columns = [text_column, label_column] + ([] if group_column is None else [group_column])
        rows = (
            (str(source), line, values[0], values[1], values[2] if len(values) > 2 else None)
            for line, values in _table_rows(source, kind, columns)
        )
    texts, labels, groups = [], [], []
    for where, line, text, label, group in rows:
        texts.append(_text(text, where, line))
        labels.append(_label(label, where, line, label_names))
        if group_column is not None:
            groups.append(_value(group, where, line, f"group {group_column!r}"))
    if not texts:
        raise DataError(source, "no rows (empty dataset)")
    return Dataset(texts, labels, str(source), groups=None if group_column is None else groups)


def read_texts(path: str | Path, *, text_column: str = "text") -> list[str]:
    """Read unlabelled texts from a csv/tsv/jsonl file or a .txt file with one text per line."""
    source = _existing(path)
    kind = _format(source, ("csv", "tsv", "jsonl", "txt"), ", each optionally gzipped")
    if kind == "txt":
        # One text per line leaves no way to write an empty text, so blank lines are just spacing.
        lines = _read_content(source).split("\n")
        texts = [line.removesuffix("\r") for line in lines if line.strip()]
    else:
        rows = _table_rows(source, kind, (text_column,))
        texts = [_text(text, str(source), line) for line, (text,) in rows]
    if not texts:
        raise DataError(source, "no rows (empty dataset)")
    return texts


def fingerprint(dataset: Dataset) -> str:
    """Return a sha256 hex digest of the texts and labels, in order, ignoring the source."""
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    for text, label in zip(dataset.texts, dataset.labels, strict=True):
        for value in (text, label):
            # JSON may smuggle in lone surrogates; hash them rather than crash on them.
            data = value.encode("utf-8", "surrogatepass")
            # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


def split_dataset(dataset: Dataset, fraction: float, *, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Hold out about fraction of the examples; return (rest, held out).

    Without groups, the split is stratified: about fraction of each label's examples. With
    ``dataset.groups``, whole groups are held out (no group on both sides), chosen at random
    until the held-out part is as close as they allow to fraction of each label's examples.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"validation fraction must be between 0 and 1, got {fraction}")
    rng = random.Random(seed)
    if dataset.groups is None:
        held = _stratified_held(dataset.labels, fraction, rng)
        too_few = f"too few rows ({len(dataset)})"
    else:
        held = _grouped_held(dataset.labels, dataset.groups, fraction, rng)
        too_few = f"too few groups ({len(set(dataset.groups))})"
    if not held or len(held) == len(dataset):
        raise DataError(dataset.source, f"{too_few} to hold out {fraction:.0%}")

    if dataset.groups is None:
        how = "a stratified sample of rows"
    else:
        how = f"{len({dataset.groups[i] for i in held})} whole groups, none on both sides"
    # The held-out part says how it was made: reports name their validation split by it.
    held_source = f"{dataset.source} [held out: {len(held)} rows, {how}, seed {seed}]"

    def part(keep: bool) -> Dataset:
        # Both parts keep file order; shuffling for training is the trainer's business.
        chosen = [i for i in range(len(dataset)) if (i in held) == keep]
        groups = dataset.groups
        return Dataset(
            [dataset.texts[i] for i in chosen],
            [dataset.labels[i] for i in chosen],
            held_source if keep else dataset.source,
            groups=None if groups is None else [groups[i] for i in chosen],
        )

    return part(False), part(True)


def _stratified_held(labels: Sequence[str], fraction: float, rng: random.Random) -> set[int]:
    """Return the indexes of about fraction of each label's examples."""
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    held: set[int] = set()
    # Per label, so a skewed dataset keeps its class balance in both parts.
    for label in sorted(by_label):
        indexes = by_label[label]
        rng.shuffle(indexes)
        held.update(indexes[: round(len(indexes) * fraction)])
    return held


def _grouped_held(
    labels: Sequence[str], groups: Sequence[str], fraction: float, rng: random.Random
) -> set[int]:
    """Return the indexes of whole groups making up about fraction of each label's examples."""
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    counts = {group: Counter(labels[i] for i in indexes) for group, indexes in members.items()}
    # Targets per label keep the class balance; their sum is the requested size.
    wanted = {label: count * fraction for label, count in Counter(labels).items()}
    have = dict.fromkeys(wanted, 0)
    order = sorted(members)  # sorted first: the same seed gives the same split in any row order
    rng.shuffle(order)
    held: set[str] = set()
    # Local search: move a group across whenever that brings the held-out label counts closer to
    # their targets (squared error), until no single move helps. A first pass alone overshoots
    # once early groups have filled the targets. Every move lowers the error by more than float
    # noise (a neutral move could otherwise flip back and forth), so this ends.
    moved = True
    while moved:
        moved = False
        for group in order:
            sign = -1 if group in held else 1
            change = sum(
                (have[label] + sign * count - wanted[label]) ** 2
                - (have[label] - wanted[label]) ** 2
                for label, count in counts[group].items()
            )
            if change < -1e-9:
                moved = True
                held.symmetric_difference_update({group})
                for label, count in counts[group].items():
                    have[label] += sign * count
    return {index for group in held for index in members[group]}


def concatenate(first: Dataset, second: Dataset) -> Dataset:
    """Return ``first``'s examples followed by ``second``'s; groups only if both have them."""
    groups = None
    if first.groups is not None and second.groups is not None:
        groups = [*first.groups, *second.groups]
    return Dataset(
        [*first.texts, *second.texts],
        [*first.labels, *second.labels],
        f"{first.source} + {second.source}",
        groups=groups,
    )


def summarize(dataset: Dataset) -> dict[str, int]:
    """Count the examples per label, ordered by label, for logs."""
    return dict(sorted(Counter(dataset.labels).items()))


def _existing(path: str | Path) -> Path:
    """Return the path, or raise if nothing is there."""
    source = Path(path)
    if not source.exists():
        raise DataError(source, "file not found")
    return source


def _format(path: Path, allowed: Sequence[str], hint: str) -> str:
    """Return the file's format from its extension, looking through a trailing .gz."""
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    kind = _FORMATS.get(suffix, "")
    if kind not in allowed:
        expected = ", ".join(sorted(ext for ext, fmt in _FORMATS.items() if fmt in allowed))
        message = f"unsupported file type {suffix or path.name!r} (expected {expected}{hint})"
        raise DataError(path, message)
    return kind


def _read_content(path: Path) -> str:
    """Return the whole file as text, gunzipped when its name ends in .gz."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(path, "file not found") from err
    except OSError as err:
        raise DataError(path, f"unreadable file ({err.strerror or err})") from err
    if path.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(path, f"unreadable gzip file ({err})") from err
    return _decode(raw, str(path))


def _decode(raw: bytes, where: str) -> str:
    """Decode UTF-8, reporting the line of the first bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(where, f"not valid UTF-8 (byte 0x{raw[err.start]:02x})", line) from err
    # Spreadsheet exports often start with a byte order mark that would glue onto the first column.
    return text.removeprefix("\ufeff")


def _table_rows(
    path: Path, kind: str, columns: Sequence[str]
) -> Iterator[tuple[int, list[object]]]:
    """Yield (line, values of the columns) for each row of a csv, tsv or jsonl file."""
    content = _read_content(path)
    if kind == "jsonl":
        return _jsonl_rows(str(path), content, columns)
    return _csv_rows(str(path), content, kind, columns)


def _csv_rows(
    where: str, content: str, kind: str, columns: Sequence[str]
) -> Iterator[tuple[int, list[object]]]:
    """Yield (line a record starts on, values of the columns) for each csv or tsv record."""
    # strict turns stray quotes into errors instead of silently merging fields.
    reader = csv.reader(io.StringIO(content, newline=""), _DIALECTS[kind], strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
        for column in columns:
            if column not in header:
                found = ", ".join(repr(name) for name in header) or "nothing"
                raise DataError(where, f"missing column {column!r} (header has {found})", 1)
        indexes = [header.index(column) for column in columns]
        previous = reader.line_num
        for record in reader:
            # A quoted field may span lines; report where the record starts, as an editor shows it.
            line, previous = previous + 1, reader.line_num
            if not record:
                continue
            if len(record) != len(header):
                message = f"expected {len(header)} fields as in the header, found {len(record)}"
                raise DataError(where, message, line)
            yield line, [record[index] for index in indexes]
    except csv.Error as err:
        raise DataError(where, f"malformed {kind} ({err})", reader.line_num) from err


def _jsonl_rows(
    where: str, content: str, columns: Sequence[str]
) -> Iterator[tuple[int, list[object]]]:
    """Yield (line, values of the keys) for each JSON object line, skipping blank lines."""
    # Not splitlines(): it also splits on U+2028 and friends, which JSON strings may hold raw.
    for line, text in enumerate(content.split("\n"), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(where, f"invalid JSON ({err.msg} at column {err.colno})", line) from err
        if not isinstance(record, dict):
            raise DataError(where, f"expected a JSON object, found {_json_type(record)}", line)
        for column in columns:
            if column not in record:
                raise DataError(where, f"missing column {column!r}", line)
        yield line, [record[column] for column in columns]


def _text(value: object, where: str, line: int | None) -> str:
    """Return the text unchanged, or raise if it is not a non-blank string."""
    if not isinstance(value, str):
        raise DataError(where, f"text must be a string, found {_json_type(value)}", line)
    if not value.strip():
        raise DataError(where, "empty text", line)
    return value


def _label(value: object, where: str, line: int | None, names: Mapping[str, str] | None) -> str:
    """Normalize a raw label to a string, then map it through names when given.

    A label that already is one of the names' display values is kept, so a file labelled
    ``negative`` reads the same as one labelled ``0`` under ``0=negative``.
    """
    label = _value(value, where, line, "label")
    if names is None:
        return label
    if label in names:
        return names[label]
    if label in names.values():  # already the display name ("negative" for 0=negative)
        return label
    expected = ", ".join(repr(name) for name in [*names, *names.values()])
    raise DataError(where, f"unknown label {label!r} (expected one of {expected})", line)


def _value(value: object, where: str, line: int | None, what: str) -> str:
    """Normalize a raw label or group (a string or integer) to a non-empty string."""
    if value is None:
        raise DataError(where, f"missing {what} (null)", line)
    # bool is an int subclass, but true/false as a class label is almost surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DataError(
            where, f"{what} must be a string or integer, found {_json_type(value)}", line
        )
    if isinstance(value, float) and not value.is_integer():
        raise DataError(where, f"{what} must be a string or integer, found {value!r}", line)
    text = value.strip() if isinstance(value, str) else str(int(value))
    if not text:
        raise DataError(where, f"empty {what}", line)
    return text


def _json_type(value: object) -> str:
    """Name a decoded JSON value's type the way JSON does."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
