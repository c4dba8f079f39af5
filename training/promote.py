"""`sentiment-promote`: make a new bundle the serving one only if it is at least as good.

    sentiment-promote --candidate /models/runs/20270101T000000Z --current /models/current \\
        --data /data/holdout.jsonl.gz [--min-accuracy 0.85] [--tolerance 0.0]

Both bundles are scored on the same held-out file with `sentiment-evaluate`'s code. The
candidate is promoted when its accuracy reaches ``--min-accuracy`` and is at least the current
bundle's minus ``--tolerance`` (with no current bundle yet, the floor alone decides). Promoting
points the ``--current`` symlink at the candidate (relative, as ``runs/<name>``) with an atomic
rename, so readers see the old or the new bundle, never neither. Every decision is written as
a JSON report (default: ``promotion.json`` in the candidate).

Exit status: 0 promoted; 1 refused (``--current`` unchanged); 2 an error, such as a bundle
that does not load or unreadable data (``--current`` unchanged too).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import TrainingError

if TYPE_CHECKING:
    from training.data import Dataset

log = logging.getLogger("training.promote")
PROMOTED, REFUSED, ERROR = 0, 1, 2
EPSILON = 1e-9  # accuracies are ratios of counts: equal ones may differ in the last bit


class PromotionError(TrainingError):
    """The gate cannot decide: a bundle does not load, or ``--current`` is not a symlink."""


@dataclass(frozen=True)
class Gate:
    """The promotion rule: a floor, and how much worse than the current bundle is tolerated."""

    min_accuracy: float = 0.0
    tolerance: float = 0.0

    def decide(self, candidate: float, current: float | None) -> tuple[bool, str]:
        """Return whether a candidate with this accuracy replaces ``current``, and why."""
        if candidate + EPSILON < self.min_accuracy:
            return False, f"accuracy {candidate:.4f} is below the floor {self.min_accuracy:.4f}"
        if current is None:
            return True, f"no current bundle; accuracy {candidate:.4f} meets the floor"
        if candidate + EPSILON < current - self.tolerance:
            return False, (
                f"accuracy {candidate:.4f} < current {current:.4f}"
                + (f" - tolerance {self.tolerance:.4f}" if self.tolerance else "")
            )
        return True, f"accuracy {candidate:.4f} >= current {current:.4f}" + (
            f" - tolerance {self.tolerance:.4f}" if self.tolerance else ""
        )


def evaluate(directory: Path, data: Dataset, batch_size: int) -> dict[str, Any]:
    """Load the bundle in ``directory`` and return the figures of its report on ``data``."""
    from training.bundle import load_bundle
    from training.evaluate import evaluate_bundle, with_bundle_labels

    bundle = load_bundle(directory)
    report = evaluate_bundle(
        bundle, with_bundle_labels(data, bundle.metadata), batch_size=batch_size
    )
    return {
        "path": str(directory),
        "resolved": str(directory.resolve()),
        "model": report["model"],
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "count": report["count"],
    }


def point_link(link: Path, target: Path) -> str:
    """Atomically point the symlink ``link`` at ``target`` (relative); return the link text."""
    text = os.path.relpath(os.path.abspath(target), os.path.abspath(link.parent))
    temporary = link.with_name(f".{link.name}.promote-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    os.symlink(text, temporary)
    try:
        os.replace(temporary, link)  # rename(2): atomic, and replaces the link, not its target
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    descriptor = os.open(link.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename survives a crash
    finally:
        os.close(descriptor)
    return text


def promote(
    candidate: Path,
    current: Path,
    data_path: str,
    gate: Gate,
    *,
    report_path: Path,
    batch_size: int = 256,
    read_options: dict[str, Any] | None = None,
) -> bool:
    """Evaluate, decide, write the report, and switch ``current`` if the gate passes."""
    from training.data import read_labelled

    if current.exists() and not current.is_symlink():
        raise PromotionError(
            f"{current} is not a symlink; move it aside (promotion only ever swaps a symlink)"
        )
    if not candidate.is_dir():
        raise PromotionError(f"candidate {candidate} is not a directory")
    data = read_labelled(data_path, **(read_options or {}))
    scores: dict[str, Any] = {"candidate": evaluate(candidate, data, batch_size), "current": None}
    if current.is_symlink():
        try:
            scores["current"] = evaluate(current, data, batch_size)
        except TrainingError as exc:
            raise PromotionError(
                f"the current bundle {current} -> {os.readlink(current)} cannot be scored, so the "
                f"candidate cannot be compared with it: {exc}. Fix it, or remove the link to "
                "promote on the floor (--min-accuracy) alone"
            ) from exc
    now_current = scores["current"]
    promoted, reason = gate.decide(
        scores["candidate"]["accuracy"], now_current["accuracy"] if now_current else None
    )
    report = {
        "decision": "promoted" if promoted else "refused",
        "reason": reason,
        "data": data.source,
        "min_accuracy": gate.min_accuracy,
        "tolerance": gate.tolerance,
        "link": str(current),
        "previous_target": os.readlink(current) if current.is_symlink() else None,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **scores,
    }
    _write_report(report_path, report)
    if promoted:
        try:
            target = point_link(current, candidate)
        except OSError as exc:
            _write_report(report_path, {**report, "decision": "error", "error": str(exc)})
            raise
        log.info("PROMOTED %s: %s; %s -> %s", candidate, reason, current, target)
    else:
        log.error(
            "REFUSED %s: %s on %s (%d texts); %s unchanged%s",
            candidate,
            reason,
            data.source,
            scores["candidate"]["count"],
            current,
            f" -> {report['previous_target']}" if report["previous_target"] else " (absent)",
        )
    log.info("report: %s", report_path)
    return promoted


def _write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    """Return the `sentiment-promote` argument parser."""
    from training.cli import _data_arguments

    parser = argparse.ArgumentParser(
        prog="sentiment-promote",
        description="Score a candidate bundle and the current one on the same held-out file; "
        "point the current symlink at the candidate only if it is at least as good. Exit 0 "
        "promoted, 1 refused, 2 error (the link is unchanged unless promoted).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--candidate", required=True, type=Path, help="the new bundle directory")
    parser.add_argument(
        "--current", required=True, type=Path, help="the symlink serving reads (may not exist)"
    )
    parser.add_argument(
        "--data", required=True, help="held-out labelled data, used by neither bundle's training"
    )
    parser.add_argument(
        "--min-accuracy", type=_fraction, default=0.0, help="floor the candidate must reach"
    )
    parser.add_argument(
        "--tolerance",
        type=_fraction,
        default=0.0,
        help="how much lower than the current bundle's accuracy the candidate may be",
    )
    parser.add_argument(
        "--report", type=Path, help="JSON report (default: CANDIDATE/promotion.json)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    _data_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `sentiment-promote`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        promoted = promote(
            args.candidate,
            args.current,
            args.data,
            Gate(args.min_accuracy, args.tolerance),
            report_path=args.report or args.candidate / "promotion.json",
            batch_size=args.batch_size,
            read_options={
                "text_column": args.text_column,
                "label_column": args.label_column,
                "label_names": args.label_names,
            },
        )
    except (TrainingError, OSError) as exc:
        print(f"sentiment-promote: error: {exc}; {args.current} unchanged", file=sys.stderr)
        return ERROR
    return PROMOTED if promoted else REFUSED


if __name__ == "__main__":
    sys.exit(main())
