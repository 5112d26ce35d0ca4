"""The ``aggregate`` plan: event count and per-metric moments per group.

Partial (one row per group, sorted by the group keys; exactly one row when there are none,
with ``count`` 0 on an empty or fully filtered shard)::

    <each group key> Utf8   count Int64   <m>__count Int64 (non-null values)
    <m>__sum, <m>__min, <m>__max, <m>__mean, <m>__m2 Float64

All five floats are null when ``<m>__count`` is 0, ``sum`` included (polars' sum of nothing is
0.0; null says "no values" the same way for every moment). ``m2`` is the sum of squared
deviations from the group mean, computed in two passes (mean, then deviations) so it does not
cancel the way sum-of-squares minus square-of-sum does; shards merge it with Chan's formula.
"""

from __future__ import annotations

import polars as pl

from engine_polars.plan import AggregatePlan, filter_expr

__all__ = ["metric_columns", "partial_schema", "run_aggregate"]

MOMENTS = ("sum", "min", "max", "mean", "m2")


def partial_schema(plan: AggregatePlan) -> pl.Schema:
    """The exact schema of the partial for ``plan``."""
    cols: dict[str, pl.DataType] = {k: pl.String() for k in plan.group_by}
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
        keys = list(plan.group_by)
        out = rows.group_by(keys).agg(aggs).sort(keys)
    else:
        # `select` of aggregations yields exactly one row, even over no rows.
        out = rows.select(aggs)
    schema = partial_schema(plan)
    return out.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).collect()
