"""The one tumbling-pane implementation, shared by the ``window`` plan and aggregate's ``window``
group key: both assign the same panes and refuse the same window counts."""

from __future__ import annotations

import random

import polars as pl
import pytest

from engine_polars.errors import BadPlan
from engine_polars.ops import aggregate, window
from engine_polars.store import EVENT_SCHEMA
from engine_polars.windows import Panes, check_window_count, pane_start, span_exprs, windows_spanned


def frame_of(timestamps: list[int]) -> pl.LazyFrame:
    n = len(timestamps)
    return pl.LazyFrame(
        {"timestamp": timestamps, "event_type": ["a"] * n, "user_id": ["u"] * n, "value": [1.0] * n, "metadata": [None] * n},
        schema=EVENT_SCHEMA,
    )


@pytest.mark.parametrize("pane_ms", [1, 7, 1_000, 60_000])
def test_pane_start_is_the_floor_multiple_of_the_pane_also_before_1970(pane_ms: int) -> None:
    rng = random.Random(pane_ms)
    ts = [rng.randint(-10**12, 10**12) for _ in range(500)] + [0, -1, pane_ms, -pane_ms, pane_ms - 1]
    got = frame_of(ts).select(pane_start(pane_ms)).collect().to_series().to_list()
    assert got == [(t // pane_ms) * pane_ms for t in ts]  # Python's // floors


def test_aggregate_window_key_and_window_plan_assign_the_same_panes() -> None:
    rng = random.Random(4)
    frame = frame_of([rng.randint(-200_000, 200_000) for _ in range(2_000)])
    by_key = aggregate.run(aggregate.AggregatePlan(group_by=("window",), window_ms=3_000), frame)
    by_plan = window.run(window.WindowPlan(pane_ms=3_000), frame)
    assert by_key.select("window_start", "count").rows() == by_plan.select("pane_start", "count").rows()


@pytest.mark.parametrize(
    ("timestamps", "panes", "windows"),
    [
        ([], Panes(10), 0),
        ([5], Panes(10), 1),
        ([0, 9], Panes(10), 1),
        ([0, 10], Panes(10), 2),
        ([-1, 0], Panes(10), 2),
        ([0, 95], Panes(10, per_window=3), 12),
    ],
)
def test_windows_spanned_counts_every_window_touching_the_range(timestamps: list[int], panes: Panes, windows: int) -> None:
    row = frame_of(timestamps).select(span_exprs(panes.pane_ms)).collect().row(0, named=True)
    assert windows_spanned(row, panes) == windows


def test_window_count_check_names_window_size() -> None:
    check_window_count(100, 100)
    with pytest.raises(BadPlan, match=r"^`windowSize`: 101 windows over this shard's data range; at most 100"):
        check_window_count(101, 100)


@pytest.mark.parametrize(
    "run",
    [
        lambda f: aggregate.run(aggregate.AggregatePlan(group_by=("window",), window_ms=1), f),
        lambda f: window.run(window.WindowPlan(pane_ms=1, max_windows=100_000), f),
    ],
)
def test_both_users_refuse_the_same_window_count(run: object) -> None:
    assert callable(run)
    with pytest.raises(BadPlan, match="^`windowSize`: 100001 windows"):
        run(frame_of([0, 100_000]))
    assert run(frame_of([0, 99_999])).height == 2
