"""Find labelled reviews in the aclImdb release, as a folder or as the downloaded archive."""

from __future__ import annotations

import re
import sys
import tarfile
import urllib.request
import zlib
from pathlib import Path
from typing import IO, NamedTuple

from training.errors import DataError

ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
SPLITS = ("train", "test")
# Folder name -> label; 1 means positive, as in the jsonl exports of the same data.
CLASS_LABELS = {"neg": "0", "pos": "1"}
LAYOUT = "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt"

_REVIEW_ID = re.compile(r"(\d+)_\d+\.txt$")
_CHUNK = 1 << 20


class Review(NamedTuple):
    """One review file: where it came from, its label and its still undecoded bytes."""

    name: str
    label: str
    raw: bytes


def is_archive(path: Path) -> bool:
    """Tell whether the path names a gzipped tarball by its file name."""
    return path.name.lower().endswith((".tar.gz", ".tgz"))


def read_reviews(path: Path, split: str) -> list[Review]:
    """Return one split's labelled reviews, negatives first, each class by review id."""
    if split not in SPLITS:
        raise DataError(path, f"unknown split {split!r} (expected 'train' or 'test')")
    reviews = _read_archive(path, split) if path.is_file() else _read_folder(path, split)
    found = {review.label for review in reviews}
    for folder, label in CLASS_LABELS.items():
        if label not in found:
            message = f"no reviews in '{split}/{folder}/' (expected {LAYOUT})"
            raise DataError(path, f"not an aclImdb dataset: {message}")
    return sorted(reviews, key=_order)


def download_aclimdb(dest_dir: Path, url: str = ACLIMDB_URL) -> Path:
    """Download the aclImdb archive into dest_dir unless it is already there; return its path."""
    archive = Path(dest_dir) / ARCHIVE_NAME
    if archive.is_file():
        # Downloads land under a temporary name first, so an existing archive is a complete one.
        return archive
    partial = archive.with_name(ARCHIVE_NAME + ".part")
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            length = response.headers.get("Content-Length", "")
            _copy_with_progress(response, out, int(length) if length.isdigit() else 0)
        partial.replace(archive)
    # URLError, HTTPError and socket timeouts are all OSErrors; a malformed URL is a ValueError.
    except (OSError, ValueError) as err:
        partial.unlink(missing_ok=True)
        raise DataError(url, f"download failed ({err})") from err
    return archive


def _copy_with_progress(source: IO[bytes], out: IO[bytes], total: int) -> None:
    """Copy source to out, showing the bytes done so far on one stderr line."""
    done = 0
    while chunk := source.read(_CHUNK):
        out.write(chunk)
        done += len(chunk)
        percent = f" ({100 * done // total}%)" if total else ""
        print(
            f"\rdownloading {ARCHIVE_NAME}: {done / _CHUNK:.1f} MiB{percent}",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)


def _read_folder(path: Path, split: str) -> list[Review]:
    """Read the reviews of one split from an extracted aclImdb folder or the folder holding it."""
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    reviews = []
    for folder, label in CLASS_LABELS.items():
        for file in (root / split / folder).glob("*.txt"):
            if not file.is_file():
                continue
            try:
                reviews.append(Review(str(file), label, file.read_bytes()))
            except OSError as err:
                raise DataError(file, f"unreadable file ({err.strerror or err})") from err
    return reviews


def _read_archive(path: Path, split: str) -> list[Review]:
    """Read the reviews of one split straight out of the release tarball."""
    reviews = []
    try:
        # Stream mode reads the archive once, front to back, and extracts nothing to disk.
        with tarfile.open(path, mode="r|gz") as archive:
            for member in archive:
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 3 or not parts[-1].endswith(".txt"):
                    continue
                if parts[-3] != split or parts[-2] not in CLASS_LABELS:
                    continue  # the other split, or train/unsup which has no labels
                handle = archive.extractfile(member)
                if handle is not None:
                    name = f"{path}/{member.name}"
                    reviews.append(Review(name, CLASS_LABELS[parts[-2]], handle.read()))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(path, f"unreadable archive ({err})") from err
    return reviews


def _order(review: Review) -> tuple[str, int, str]:
    """Sort by label, then numerically by review id, so folder and archive agree."""
    match = _REVIEW_ID.search(review.name)
    return review.label, int(match.group(1)) if match else -1, review.name
