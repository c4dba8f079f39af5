"""Measure the shared tokenizer's speed on IMDB reviews: texts/s for encode and encode + pad.

    python -m bench.tokenizer_throughput --data ../shared/data/imdb/val.jsonl.gz \
        --model-dir models/default
"""

from __future__ import annotations

import argparse
import time

from training.bundle import check_bundle_files, read_metadata
from training.data import read_texts
from training.preprocessing import TextPreprocessor


def main() -> None:
    """Print texts/s of the bundle's preprocessing over the given texts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="JSONL/CSV/TXT file of texts")
    parser.add_argument("--model-dir", default="models/default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    texts = read_texts(args.data)
    preprocessor = TextPreprocessor(
        check_bundle_files(args.model_dir), read_metadata(args.model_dir).sequence_spec
    )
    words = sum(len(text.split()) for text in texts)
    print(f"{len(texts)} texts, {words / len(texts):.0f} words on average")
    for name, step in (
        ("encode", preprocessor.encode),
        ("encode + pad to maxlen", preprocessor.transform),
    ):
        best = min(_timed(step, texts) for _ in range(args.repeats))
        print(
            f"{name:>24}: {len(texts) / best:,.0f} texts/s ({best * 1e6 / len(texts):.0f} us/text)"
        )


def _timed(step: object, texts: list[str]) -> float:
    started = time.perf_counter()
    step(texts)  # type: ignore[operator]
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
