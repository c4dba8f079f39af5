"""Streaming: the CLI's peak memory does not grow with the size of its input."""

from __future__ import annotations

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


# The child reports its own VmHWM: ru_maxrss (getrusage, wait4) would count the pytest parent
# too, since Linux carries the high-water mark of the process image replaced by exec over.
_RUN_AND_REPORT_PEAK = """
import sys
from training.scoring.cli import main
code = main(sys.argv[1:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
sys.stderr.write("peak-kib " + peak.split()[1] + "\\n")
sys.exit(code)
"""


def _peak_rss_mb(bundle: Path, data: Path, out: Path) -> float:
    """Run `sentiment-predict` in a child process; return the child's peak RSS in MiB."""
    command = [
        *(sys.executable, "-c", _RUN_AND_REPORT_PEAK),
        *("--model-dir", str(bundle), "--data", str(data), "--out", str(out)),
        *("--chunk-rows", "256", "--quiet"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (peak,) = [line for line in done.stderr.splitlines() if line.startswith("peak-kib ")]
    return int(peak.split()[1]) / 1024


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
