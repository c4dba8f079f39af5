"""A one-line progress bar on stderr: texts scored, texts/s and the time left; silent off a TTY.

The total number of rows of a streamed file is unknown until its end, so the bar and the ETA
follow the share of the file read (compressed bytes for .gz, rows for Parquet).
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

# Redraw at most this often: a terminal redraw per chunk would cost more than it shows.
REDRAW_EVERY_S = 0.25
BAR_WIDTH = 24


class ProgressBar:
    """Redraws ``\\r``-style; writes nothing when its stream is not a terminal."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.perf_counter()
        self._drawn = 0.0

    def update(self, texts: int, fraction: float, *, force: bool = False) -> None:
        """Show ``texts`` scored so far with ``fraction`` (0..1) of the input read."""
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._drawn < REDRAW_EVERY_S):
            return
        self._drawn = now
        elapsed = max(now - self.started, 1e-9)
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * BAR_WIDTH)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        self.stream.write(
            f"\r{fraction:4.0%} |{'#' * filled}{'.' * (BAR_WIDTH - filled)}| "
            f"{texts:,} texts, {texts / elapsed:,.0f} texts/s, ETA {_clock(eta)}  "
        )
        self.stream.flush()

    def close(self) -> None:
        """End the line the bar was drawn on."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    if math.isnan(seconds):  # nothing read yet
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
