"""`sentiment-predict`: score a file of any size with a model bundle, locally or on Ray."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from training.errors import TrainingError
from training.scoring.formats import FORMATS
from training.scoring.local import DEFAULT_CHUNK_ROWS, ScoringOptions, Summary
from training.scoring.ray_engine import RAY_CHUNK_ROWS  # imports Ray only when it runs


def build_parser() -> argparse.ArgumentParser:
    """Return the `sentiment-predict` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sentiment-predict",
        description="Score every row of a CSV/TSV, JSON Lines (.gz too) or Parquet file: each "
        "input column is carried through, plus label, score and prob_<label> per class. "
        "Prints a JSON summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model-dir", required=True, type=Path, help="model bundle directory")
    parser.add_argument("--data", required=True, type=Path, help="input file (Ray: also a dir)")
    parser.add_argument("--out", required=True, type=Path, help="output file (Ray: a directory)")
    parser.add_argument("--format", choices=FORMATS, help="input format (default: by extension)")
    parser.add_argument("--output-format", choices=FORMATS, help="default: by extension")
    parser.add_argument("--text-column", default="text", help="column/key holding the text")
    parser.add_argument(
        "--chunk-rows",
        type=_positive,
        help=f"rows read, scored and committed together (default: {DEFAULT_CHUNK_ROWS}; Ray: "
        f"rows per block given to an actor, default {RAY_CHUNK_ROWS})",
    )
    parser.add_argument("--batch-size", type=_positive, default=256, help="texts per model call")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run into the same --out"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on the first bad row instead of listing it in the rejects file",
    )
    parser.add_argument("--rejects", type=Path, help="rejects file (default: OUT.rejects.jsonl)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    ray = parser.add_argument_group("Ray engine")
    ray.add_argument("--engine", choices=("local", "ray"), default="local")
    ray.add_argument("--address", help="Ray cluster to join (default: start a local Ray)")
    ray.add_argument("--actors", type=_positive, default=2, help="model actors (one bundle each)")
    ray.add_argument("--cpus-per-actor", type=_positive, default=1)
    ray.add_argument(
        "--local-cpus",
        type=_positive,
        help="CPUs of the local Ray started without --address (default: all)",
    )
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def run(args: argparse.Namespace) -> Summary:
    """Score as the parsed arguments say; return the summary."""
    options = ScoringOptions(
        data=args.data,
        out=args.out,
        input_format=args.format,
        output_format=args.output_format,
        text_column=args.text_column,
        chunk_rows=args.chunk_rows
        or (RAY_CHUNK_ROWS if args.engine == "ray" else DEFAULT_CHUNK_ROWS),
        batch_size=args.batch_size,
        resume=args.resume,
        strict=args.strict,
        rejects=args.rejects,
    )
    if args.engine == "ray":
        from training.scoring.ray_engine import score_with_ray

        return score_with_ray(
            args.model_dir,
            options,
            address=args.address,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            local_cpus=args.local_cpus,
        )
    from training.bundle import load_bundle
    from training.scoring.local import score_file
    from training.scoring.predict import Scorer
    from training.scoring.progress import ProgressBar

    scorer = Scorer(load_bundle(args.model_dir), batch_size=args.batch_size)
    return score_file(scorer, options, progress=ProgressBar(enabled=False if args.quiet else None))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `sentiment-predict`: 0 done, 2 bad input, options or bundle."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TF's C++ info banners
    try:
        summary = run(args)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.engine == "local" and not args.strict:
            print("(completed chunks are kept: rerun with --resume to continue)", file=sys.stderr)
        return 2
    print(json.dumps(asdict(summary), indent=2))
    return 0
