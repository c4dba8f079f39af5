"""Streaming: the CLI's peak memory does not grow with the size of its input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.training.scoring.files import make_rows, write_rows

ROWS = 2_000
GROWTH = 8
# Each row carries this many bytes besides its text: the 8x input is ~130 MB, so a run that
# held its input (or output) whole would peak that much higher; a streaming one only by noise.
PADDING = 8_000
TOLERANCE_MB = 48


def _peak_rss_mb(bundle: Path, data: Path, out: Path) -> float:
    """Run `sentiment-predict` in a child process; return the child's peak RSS in MiB."""
    command = [
        *(sys.executable, "-m", "training.scoring"),
        *("--model-dir", str(bundle), "--data", str(data), "--out", str(out)),
        *("--chunk-rows", "256", "--quiet"),
    ]
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ}
    )
    _, status, usage = os.wait4(child.pid, 0)
    assert child.stderr is not None
    error = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, error[-2000:]
    return usage.ru_maxrss / 1024  # Linux reports KiB


def test_peak_memory_does_not_grow_with_the_input(tiny_bundle: Path, tmp_path: Path) -> None:
    small = write_rows(tmp_path / "small.jsonl", make_rows(ROWS, padding=PADDING))
    large = write_rows(tmp_path / "large.jsonl", make_rows(ROWS * GROWTH, padding=PADDING))
    small_mb = _peak_rss_mb(tiny_bundle, small, tmp_path / "small-out.jsonl")
    large_mb = _peak_rss_mb(tiny_bundle, large, tmp_path / "large-out.jsonl")
    input_mb = large.stat().st_size / 2**20
    print(
        f"peak RSS: {small_mb:.0f} MiB ({ROWS} rows), {large_mb:.0f} MiB ({input_mb:.0f} MiB input)"
    )
    assert large_mb - small_mb < TOLERANCE_MB, (
        f"peak RSS {small_mb:.0f} MiB on {ROWS} rows, {large_mb:.0f} MiB on {ROWS * GROWTH} rows "
        f"({input_mb:.0f} MiB of input)"
    )
    with (tmp_path / "large-out.jsonl").open("rb") as handle:
        assert sum(1 for _ in handle) == ROWS * GROWTH
