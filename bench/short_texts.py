"""Short-text accuracy of bundles, side by side: the sets docs/model-quality.md reports.

python -m bench.short_texts --model-dir models/default --model-dir models/trained \
    [--val ../shared/data/imdb/val.jsonl.gz] [--human-rated]

* ``proxy``: ``bench/data/short_reviews.csv`` (1,199 short reviews written for this project;
  movie, product, restaurant, service), overall and per domain;
* ``val last sentences``: the last sentence of 5-30 words of each movie-disjoint val review,
  labelled as its review (in domain, human-written, noisy labels: compare models only);
* ``--human-rated``: two sets of short human-written texts rated by 10-20 people each (Hutto &
  Gilbert 2014, shipped in the vaderSentiment sdist, fetched from PyPI with pip): Amazon
  product-review snippets and tweets, those rated at least 1 point from neutral (-4..4), the
  sign as the label. Its movie snippets are left out: they are Rotten Tomatoes sentences, the
  source of SST, and may overlap a hidden test set.

Prints one Markdown table and writes the figures as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from training.augment import sentences
from training.batches import predict_probabilities
from training.bundle import load_bundle

PROXY = Path(__file__).resolve().parent / "data" / "short_reviews.csv"
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
HUMAN_RATED = {"amazon snippets": "amazonReviewSnippets", "tweets": "tweets"}
MIN_RATING = 1.0  # mean rating at least this far from neutral (0) to count as polar


def proxy_sets() -> dict[str, tuple[list[str], np.ndarray]]:
    """Return the proxy, overall and per domain, as (texts, positive?) pairs."""
    with PROXY.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    sets = {"proxy": rows}
    for domain in sorted({row["domain"] for row in rows}):
        sets[f"proxy {domain}"] = [row for row in rows if row["domain"] == domain]
    return {
        name: (
            [row["text"] for row in chosen],
            np.array([row["label"] == "positive" for row in chosen]),
        )
        for name, chosen in sets.items()
    }


def last_sentences(val_path: Path) -> tuple[list[str], np.ndarray]:
    """Return the last 5-30-word sentence of each review in ``val_path`` and its label."""
    texts, labels = [], []
    with gzip.open(val_path, "rt", encoding="utf-8") as handle:
        for line in handle:
            review = json.loads(line)
            fitting = [s for s in sentences(review["text"]) if 5 <= len(s.split()) <= 30]
            if fitting:
                texts.append(fitting[-1])
                labels.append(str(review["label"]) in ("1", "positive"))
    return texts, np.array(labels)


def human_rated(cache: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """Return the polar human-rated sets from the vaderSentiment sdist (fetched once)."""
    sdist = cache / VADER_SDIST
    if not sdist.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(cache),
                "vaderSentiment==3.3.2",
            ],
            check=True,
        )
    files = _ground_truth_files(sdist)
    sets = {}
    for name, stem in HUMAN_RATED.items():
        texts, labels = [], []
        for line in files[stem].decode("utf-8", "replace").splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and abs(rating := float(fields[1])) >= MIN_RATING:
                texts.append(fields[2])
                labels.append(rating > 0)
        sets[name] = (texts, np.array(labels))
    return sets


def _ground_truth_files(sdist: Path) -> dict[str, bytes]:
    """Return {stem: content} of the sets' ``*_GroundTruth.txt``, the inner archive read once."""
    with tarfile.open(sdist) as outer:
        inner_member = next(
            m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz")
        )
        inner_bytes = outer.extractfile(inner_member).read()  # type: ignore[union-attr]
    files = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for stem in HUMAN_RATED.values():
            member = next(
                m for m in inner.getmembers() if m.name.endswith(f"{stem}_GroundTruth.txt")
            )
            files[stem] = inner.extractfile(member).read()  # type: ignore[union-attr]
    return files


def accuracy(model_dir: Path, sets: dict[str, tuple[list[str], np.ndarray]]) -> dict[str, float]:
    """Return each set's accuracy for the bundle in ``model_dir`` (threshold 0.5).

    Every distinct text is scored once: the proxy's domains are subsets of the proxy.
    """
    bundle = load_bundle(model_dir)
    names = bundle.metadata.labels
    positive = names.index("positive") if "positive" in names else len(names) - 1
    texts = list(dict.fromkeys(text for set_texts, _ in sets.values() for text in set_texts))
    scores = predict_probabilities(bundle.model, bundle.preprocessor, texts)[:, positive]
    score_of = dict(zip(texts, scores, strict=True))
    results = {}
    for name, (set_texts, labels) in sets.items():
        predicted = np.array([score_of[text] >= 0.5 for text in set_texts])
        results[name] = float(np.mean(predicted == labels))
    return results


def main(argv: list[str] | None = None) -> None:
    """Print a Markdown table of short-text accuracies, one column per bundle."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", action="append", type=Path, required=True)
    parser.add_argument(
        "--val", type=Path, help="movie-disjoint val.jsonl.gz for its last sentences"
    )
    parser.add_argument("--human-rated", action="store_true", help="add the human-rated sets")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sentiment-bench")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    sets = proxy_sets()
    if args.val:
        sets["val last sentences"] = last_sentences(args.val)
    if args.human_rated:
        sets.update(human_rated(args.cache))
    results = {str(model_dir): accuracy(model_dir, sets) for model_dir in args.model_dir}
    print("| set | texts | " + " | ".join(results) + " |")
    print("| --- | ---: |" + " ---: |" * len(results))
    for name, (texts, _) in sets.items():
        cells = " | ".join(f"{figures[name]:.4f}" for figures in results.values())
        print(f"| {name} | {len(texts):,} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
