"""Call planning: a partition of the batch, never costlier than one call or one per bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.planning import CallCosts, plan_calls

ROWS = (1, 2, 4, 8, 16)
LENGTHS = (16, 32, 64, 128)


def _table(overhead: float) -> CallCosts:
    seconds = {(r, n): overhead + r * n * 1e-6 for r in ROWS for n in LENGTHS}
    return CallCosts(ROWS, LENGTHS, seconds)


def _total(groups: list[list[int]], lengths: list[int], costs: CallCosts) -> float:
    return sum(costs.cost(len(g), max([1, *(lengths[i] for i in g)])) for g in groups)


def test_large_overhead_means_one_call() -> None:
    lengths = [3, 120, 40, 10]
    assert plan_calls(lengths, _table(overhead=1.0)) == [[0, 3, 2, 1]]


def test_no_overhead_means_one_call_per_bucket() -> None:
    lengths = [3, 120, 40, 10, 100]
    groups = plan_calls(lengths, _table(overhead=0.0))
    assert groups == [[0, 3], [2], [4, 1]]


@given(st.lists(st.integers(0, 128), min_size=1, max_size=16), st.floats(0, 1e-3))
def test_plan_partitions_and_is_never_worse(lengths: list[int], overhead: float) -> None:
    costs = _table(overhead)
    groups = plan_calls(lengths, costs)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    single = costs.cost(len(lengths), max([1, *lengths]))
    assert _total(groups, lengths, costs) <= single + 1e-12
