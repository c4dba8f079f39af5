"""Labelled corpora shipped with the package, for ``sentiment-train --extra-train NAME``.

A corpus is a CSV file (``text,label,domain``) in this folder, named by its stem
(``written-short-reviews``); ``README.md`` here says where each came from and what it is for.
Any other value of ``--extra-train`` is a path to the user's own labelled file.
"""

from __future__ import annotations

from pathlib import Path

CORPORA_DIR = Path(__file__).resolve().parent


def shipped_corpora() -> list[str]:
    """Return the names of the corpora shipped in this folder."""
    return sorted(path.stem for path in CORPORA_DIR.glob("*.csv"))


def corpus_path(corpus: str) -> Path:
    """Return the file of ``corpus``: a shipped corpus' name, or else a path as given."""
    shipped = CORPORA_DIR / f"{corpus}.csv"
    if "/" not in corpus and shipped.is_file():
        return shipped
    return Path(corpus)
