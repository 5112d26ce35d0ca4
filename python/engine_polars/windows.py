"""Tumbling panes on event time: the one window implementation of the polars side.

A pane is ``pane_ms`` long and aligned to the epoch: pane start = floor(timestamp / pane_ms) ·
pane_ms (floor, also for timestamps before 1970). The ``window`` plan groups by pane and the
merge layer (``src/merge/window.ts``) assembles windows of ``per_window`` panes (hopping windows;
tumbling when ``per_window`` is 1); aggregate's ``window`` group key is a pane with
``per_window`` 1, i.e. a tumbling window.

A plan whose rows span more windows than allowed is refused before grouping, from one min/max
scan, so a tiny window over a long range costs one pass, not millions of groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine_polars.errors import BadPlan

__all__ = ["Panes", "check_window_count", "pane_start", "span_exprs", "windows_spanned"]

_FIRST = "__first_pane"
_LAST = "__last_pane"


@dataclass(frozen=True)
class Panes:
    """``pane_ms``-long epoch-aligned panes, ``per_window`` of them to a window."""

    pane_ms: int
    per_window: int = 1

    def start(self) -> pl.Expr:
        """The Int64 start of each row's pane."""
        return pane_start(self.pane_ms)


def pane_start(pane_ms: int) -> pl.Expr:
    """floor(timestamp / pane_ms) · pane_ms (polars' ``//`` floors, as the TypeScript side does)."""
    return (pl.col("timestamp") // pane_ms) * pane_ms


def span_exprs(pane_ms: int) -> list[pl.Expr]:
    """Aggregations giving the first and last pane index of the rows (null over no rows);
    :func:`windows_spanned` reads them from the collected row."""
    return [
        (pl.col("timestamp").min() // pane_ms).alias(_FIRST),
        (pl.col("timestamp").max() // pane_ms).alias(_LAST),
    ]


def windows_spanned(row: dict[str, object], panes: Panes) -> int:
    """Windows that overlap the rows' time range, from a row holding :func:`span_exprs`; 0 over
    no rows. A hopping window of ``per_window`` panes starts at every pane, so the range from
    pane ``first`` to ``last`` is touched by ``last - first + per_window`` windows."""
    first, last = row[_FIRST], row[_LAST]
    if first is None or last is None:
        return 0
    assert isinstance(first, int) and isinstance(last, int)
    return last - first + panes.per_window


def check_window_count(windows: int, max_windows: int) -> None:
    """Raises :class:`BadPlan` naming ``windowSize`` when ``windows`` is over ``max_windows``."""
    if windows > max_windows:
        raise BadPlan(
            f"`windowSize`: {windows} windows over this shard's data range; at most {max_windows}: "
            "use a larger windowSize or slide, or a narrower filter"
        )
