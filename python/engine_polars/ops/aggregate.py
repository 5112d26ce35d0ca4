"""The ``aggregate`` plan: event count and per-metric moments per group.

Partial (one row per group, sorted by the group keys; exactly one row when there are none,
with ``count`` 0 on an empty or fully filtered shard)::

    <each group key> Utf8 (``window``: Int64 ``window_start``)   count Int64
    <m>__count Int64 (non-null values)
    <m>__sum, <m>__min, <m>__max, <m>__mean, <m>__m2 Float64

All five floats are null when ``<m>__count`` is 0, ``sum`` included (polars' sum of nothing is
0.0; null says "no values" the same way for every moment). ``m2`` is the sum of squared
deviations from the group mean, computed in two passes (mean, then deviations) so it does not
cancel the way sum-of-squares minus square-of-sum does; shards merge it with Chan's formula.

Group keys are dimensions (``engine_polars.dimensions``: event columns, ``metadata.<key>``,
``<table>.<column>``; missing → null group) or ``window``: the tumbling window of ``window_ms``
aligned to the epoch, as the Int64 column ``window_start`` = floor(timestamp / window_ms) ·
window_ms. A shard whose filtered data spans more than :data:`MAX_WINDOWS` windows answers
``BAD_PLAN`` naming ``windowSize``.
"""

from __future__ import annotations

import polars as pl

from engine_polars.dimensions import with_dimensions
from engine_polars.errors import BadPlan
from engine_polars.plan import AggregatePlan, filter_expr

__all__ = ["MAX_WINDOWS", "check_window_count", "key_column", "metric_columns", "partial_schema", "run_aggregate"]

MOMENTS = ("sum", "min", "max", "mean", "m2")
#: Most windows a shard computes for one plan (the TypeScript side checks the union of shards).
MAX_WINDOWS = 100_000


def key_column(key: str) -> str:
    """The partial column of a group key: ``window`` → ``window_start``, a dimension → itself."""
    return "window_start" if key == "window" else key


def check_window_count(rows: pl.LazyFrame, pane_ms: int, panes_per_window: int, max_windows: int) -> None:
    """Raises BadPlan naming `windowSize` when the rows' time range spans more than ``max_windows``
    windows (checked before grouping, so a tiny window over a long range costs one min/max scan)."""
    span = rows.select(
        (pl.col("timestamp").min() // pane_ms).alias("first"),
        (pl.col("timestamp").max() // pane_ms).alias("last"),
    ).collect()
    first, last = span["first"][0], span["last"][0]
    if first is None or last is None:
        return
    windows = int(last) - int(first) + panes_per_window
    if windows > max_windows:
        raise BadPlan(
            f"`windowSize`: {windows} windows over this shard's data range; at most {max_windows}: "
            "use a larger windowSize or slide, or a narrower filter"
        )


def partial_schema(plan: AggregatePlan) -> pl.Schema:
    """The exact schema of the partial for ``plan``."""
    cols: dict[str, pl.DataType] = {
        key_column(k): pl.Int64() if k == "window" else pl.String() for k in plan.group_by
    }
    cols["count"] = pl.Int64()
    for m in plan.metrics:
        cols[f"{m}__count"] = pl.Int64()
        for moment in MOMENTS:
            cols[f"{m}__{moment}"] = pl.Float64()
    return pl.Schema(cols)


def metric_columns(m: str) -> list[pl.Expr]:
    """Aggregations for one metric column, valid in ``select`` and in ``group_by().agg``."""
    x = pl.col(m)
    n = x.count()
    mean = x.mean()

    def when_any(e: pl.Expr) -> pl.Expr:
        return pl.when(n > 0).then(e)

    return [
        n.alias(f"{m}__count"),
        when_any(x.sum()).alias(f"{m}__sum"),
        x.min().alias(f"{m}__min"),
        x.max().alias(f"{m}__max"),
        mean.alias(f"{m}__mean"),
        when_any(((x - mean) ** 2).sum()).alias(f"{m}__m2"),
    ]


def run_aggregate(plan: AggregatePlan, frame: pl.LazyFrame) -> pl.DataFrame:
    """The aggregate partial of ``frame`` (the store's events) for ``plan``."""
    aggs = [pl.len().alias("count")]
    for m in plan.metrics:
        aggs.extend(metric_columns(m))
    rows = frame.filter(filter_expr(plan.filter))
    if plan.group_by:
        dims = [k for k in plan.group_by if k != "window"]
        if dims:
            rows = with_dimensions(rows, dims)
        if "window" in plan.group_by:
            size = plan.window_ms
            if size is None:
                raise BadPlan("a `window` group key needs `window_ms`")
            check_window_count(rows, size, 1, MAX_WINDOWS)
            rows = rows.with_columns(((pl.col("timestamp") // size) * size).alias("window_start"))
        keys = [key_column(k) for k in plan.group_by]
        out = rows.group_by(keys).agg(aggs).sort(keys, nulls_last=True)
    else:
        # `select` of aggregations yields exactly one row, even over no rows.
        out = rows.select(aggs)
    schema = partial_schema(plan)
    return out.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).collect()
