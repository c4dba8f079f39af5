"""Split a batch into model calls by length, using the call costs measured at warm-up.

Under XLA a call costs roughly ``overhead + rows x length``: one call for a mixed batch pads
every short text to the longest, while one call per length bucket pays the overhead many
times. ``plan_calls`` sorts the texts by length and picks the cheapest split at bucket
boundaries (dynamic programming over at most ``len(buckets)`` segments), pricing each call
from the table of warm-up timings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from training.preprocessing import bucket_for


@dataclass
class CallCosts:
    """Measured seconds of one model call per (rows bucket, length bucket) shape."""

    row_buckets: tuple[int, ...]
    length_buckets: tuple[int, ...]
    seconds: dict[tuple[int, int], float] = field(default_factory=dict)

    def cost(self, rows: int, length: int) -> float:
        """Return the time of a call on ``rows`` texts of at most ``length`` tokens."""
        shape = (bucket_for(rows, self.row_buckets), bucket_for(length, self.length_buckets))
        if shape in self.seconds:
            return self.seconds[shape]
        return float(shape[0] * shape[1])  # unmeasured: proportional to padded tokens


def plan_calls(lengths: Sequence[int], costs: CallCosts) -> list[list[int]]:
    """Return groups of row indices, one model call each, minimizing the total cost."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    # Segments: runs of rows (in length order) that fall in the same length bucket.
    segments: list[tuple[int, int]] = []  # (end position in order, bucket)
    for position, row in enumerate(order):
        bucket = bucket_for(max(lengths[row], 1), costs.length_buckets)
        if segments and segments[-1][1] == bucket:
            segments[-1] = (position + 1, bucket)
        else:
            segments.append((position + 1, bucket))
    # best[j]: cheapest cost of calls covering segments[:j]; cut[j]: where its last call starts.
    best = [0.0] + [float("inf")] * len(segments)
    cut = [0] * (len(segments) + 1)
    for j in range(1, len(segments) + 1):
        end, bucket = segments[j - 1]
        for i in range(j):
            start = segments[i - 1][0] if i else 0
            total = best[i] + costs.cost(end - start, bucket)
            if total < best[j]:
                best[j], cut[j] = total, i
    groups: list[list[int]] = []
    j = len(segments)
    while j > 0:
        i = cut[j]
        start = segments[i - 1][0] if i else 0
        groups.append(order[start : segments[j - 1][0]])
        j = i
    return groups[::-1]
