"""Bounds on what a grouping plan would produce, checked before the grouping runs.

Plans of kinds ``aggregate``, ``window``, ``topn`` and ``percentiles`` may carry ``max_cells``
(the router's ``maxResultCells``). Before grouping, the op estimates this shard's result cells
from cheap counts over the filtered rows, all taken in one lazy select:

* groups = the product of each group key's distinct values (polars ``n_unique``, null counting
  as one value), capped at the row count (there is at most one group per row);
* with windows (aggregate's ``window`` key, or a ``window`` plan): cells = windows spanned
  (:func:`engine_polars.windows.windows_spanned`) × groups, capped at rows × panes per window
  (a row lands in at most that many windows); without: cells = groups.

Keys the store holds as dictionary codes of UInt8 or UInt16 have at most 257 or 65,537 values
(null included): when that bound (× windows) is within ``max_cells``, no distinct count is taken.

Over ``max_cells`` is :class:`ResultTooLarge` (``RESULT_TOO_LARGE``) naming the request field to
change: ``groupBy`` when the groups alone are over the bound, else ``windowSize``. The same select
gives the window count checked against ``max_windows`` (``BAD_PLAN`` naming ``windowSize``).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from engine_polars.errors import ResultTooLarge
from engine_polars.windows import Panes, check_window_count, span_exprs, windows_spanned

__all__ = ["check_result_size", "estimate_cells"]

_ROWS = "__rows"


def _distinct(i: int) -> str:
    return f"__distinct_{i}"


def check_result_size(
    rows: pl.LazyFrame,
    keys: Sequence[str],
    *,
    panes: Panes | None = None,
    max_windows: int | None = None,
    max_cells: int | None = None,
) -> None:
    """Checks the window count (with ``panes`` and ``max_windows``) and the estimated result
    cells (with ``max_cells``) of grouping ``rows`` by ``keys`` (columns of ``rows``, named as
    the request names them) and, with ``panes``, by window. One lazy select; none when there is
    nothing to check, or when the keys' dictionary widths already bound the cells (then only the
    span, with windows)."""
    count_cells = max_cells is not None and (keys or panes is not None)
    # Keys held as dictionary codes have at most as many values as their code width can number:
    # when that bound keeps the cells within `max_cells`, the distinct counts (a hash of every
    # row) are not taken.
    most_groups = _groups_bound(rows, keys) if count_cells else None
    if most_groups is not None:
        assert max_cells is not None
        if panes is None:
            if most_groups <= max_cells:
                return
        else:
            # the span first (the window count needs it anyway): it may make the counts unneeded
            span = rows.select(span_exprs(panes.pane_ms)).collect().row(0, named=True)
            windows = windows_spanned(span, panes)
            if max_windows is not None:
                check_window_count(windows, max_windows)
            if windows * most_groups <= max_cells:
                return
    exprs: list[pl.Expr] = []
    if panes is not None and (max_windows is not None or max_cells is not None):
        exprs.extend(span_exprs(panes.pane_ms))
    if count_cells:
        exprs.append(pl.len().alias(_ROWS))
        exprs.extend(pl.col(k).n_unique().alias(_distinct(i)) for i, k in enumerate(keys))
    if not exprs:
        return
    row = rows.select(exprs).collect().row(0, named=True)
    windows = windows_spanned(row, panes) if panes is not None else None
    if windows is not None and max_windows is not None:
        check_window_count(windows, max_windows)
    if not count_cells:
        return
    assert max_cells is not None
    distinct = [int(row[_distinct(i)]) for i in range(len(keys))]
    n_rows = int(row[_ROWS])
    per_window = panes.per_window if panes is not None else 1
    groups, cells = estimate_cells(n_rows, distinct, windows, per_window)
    if cells <= max_cells:
        return
    bound = f"on this shard; at most `maxResultCells` {max_cells}"
    if windows is None or groups > max_cells:
        parts = " × ".join(f"{n} {k}" for n, k in zip(distinct, keys))
        if windows is not None:
            parts = f"{windows} windows × {parts}"
        raise ResultTooLarge(
            f"`groupBy`: about {cells} result cells ({parts}) {bound}: narrow the filter or group by fewer keys"
        )
    parts = f"{windows} windows × {groups} groups" if keys else f"{windows} windows"
    raise ResultTooLarge(
        f"`windowSize`: about {cells} result cells ({parts}) {bound}: "
        "use a larger windowSize or slide, narrow the filter or group by fewer keys"
    )


#: Most distinct values a dictionary column of each physical width can hold (with null).
_CODE_WIDTHS: dict[pl.DataType, int] = {pl.UInt8(): 2**8 + 1, pl.UInt16(): 2**16 + 1}


def _groups_bound(rows: pl.LazyFrame, keys: Sequence[str]) -> int | None:
    """An upper bound on the groups of ``keys`` known from their dtypes alone (dictionary columns
    with UInt8 or UInt16 codes), or ``None``."""
    schema = rows.collect_schema()
    bound = 1
    for k in keys:
        dtype = schema.get(k)
        if not isinstance(dtype, pl.Categorical):
            return None
        most = _CODE_WIDTHS.get(dtype.categories.physical())
        if most is None:
            return None
        bound *= most
    return bound


def estimate_cells(rows: int, distinct: Sequence[int], windows: int | None, per_window: int = 1) -> tuple[int, int]:
    """(groups, cells) for ``rows`` rows whose keys have ``distinct`` values each, over
    ``windows`` windows (``None``: no window key).

    >>> estimate_cells(1_000, [8, 300], None)
    (1000, 1000)
    >>> estimate_cells(1_000, [8], 50, per_window=2)
    (8, 400)
    """
    groups = 1
    for n in distinct:
        groups *= n
    groups = min(groups, rows)
    if windows is None:
        return groups, groups
    return groups, min(windows * groups, rows * per_window)
