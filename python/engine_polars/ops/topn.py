"""The ``topn`` plan: per-group event count and metric moments, for an exact top-N.

Plan (``src/kinds/topn.ts``)::

    {"kind": "topn", "filter": {...}, "group_by": "<dimension>", "metric": "value" | null,
     "agg": "sum" | "count" | "mean" | "max", "n": 1..10000, "order": "desc" | "asc",
     "shard_top": true | false, "max_cells": int >= 1 (optional)}

Partial (one row per group; the key column is named like the dimension)::

    <group_by> LargeUtf8   count Int64 (events)
    with a metric: <m>__count Int64 (non-null values), <m>__sum, <m>__min, <m>__max,
                   <m>__mean, <m>__m2 Float64 (null when <m>__count is 0)

Events whose key is null (no such metadata key, no enrichment row) are left out. With
``shard_top`` (ranking by the shard key ``user_id``: every group lives on this shard only) the
partial holds only this shard's top ``n`` groups by score, ties broken by key ascending, and groups
without a score (sum/mean/max over no non-null value) are dropped first. Without it the partial
holds every group, so the merge can add up keys spread over many shards exactly; then, before
grouping, more than ``max_cells`` estimated groups (``engine_polars.result_size``) answers
``RESULT_TOO_LARGE`` (a ``shard_top`` partial holds at most ``n`` rows, so it is not checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import max_cells, reject_unknown_keys, require_key
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars.dimensions import check_dimension, with_dimensions
from engine_polars.errors import BadPlan, unknown_name
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.limits import TOPN_MAX_N
from engine_polars.ops.aggregate import MOMENTS, metric_columns
from engine_polars.result_size import check_result_size
from engine_polars.store import MEASURES

__all__ = ["KIND", "TopNPlan", "parse", "partial_schema", "run"]

KIND = "topn"
AGGS = ("sum", "count", "mean", "max")
ORDERS = ("desc", "asc")


@dataclass(frozen=True)
class TopNPlan:
    kind: ClassVar[str] = KIND
    group_by: str
    metric: str | None
    agg: str
    n: int
    order: str = "desc"
    shard_top: bool = False
    filter: Filter = field(default_factory=Filter)
    #: Most groups this shard may produce without ``shard_top``; ``None``: unbounded.
    max_cells: int | None = None


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> TopNPlan:
    reject_unknown_keys(
        obj, ("kind", "filter", "group_by", "metric", "agg", "n", "order", "shard_top", "max_cells"), path
    )
    group_by = check_dimension(require_key(obj, "group_by", path), f"{path}.group_by")
    agg = require_key(obj, "agg", path)
    if agg not in AGGS:
        raise BadPlan(unknown_name("aggregation", str(agg), AGGS) + f" (at `{path}.agg`)")
    metric = obj.get("metric")
    if metric is not None and metric not in MEASURES:
        raise BadPlan(unknown_name("metric", str(metric), MEASURES) + f" (at `{path}.metric`)")
    if metric is None and agg != "count":
        raise BadPlan(f"`{path}.metric` is required for `{agg}`")
    n = require_key(obj, "n", path)
    if not is_integer(n) or not 1 <= n <= TOPN_MAX_N:
        got = repr(n) if is_integer(n) else json_type(n)
        raise BadPlan(f"`{path}.n` must be an integer in 1..{TOPN_MAX_N}; got {got}")
    order = obj.get("order", "desc")
    if order not in ORDERS:
        raise BadPlan(unknown_name("order", str(order), ORDERS) + f" (at `{path}.order`)")
    shard_top = obj.get("shard_top", False)
    if not isinstance(shard_top, bool):
        raise BadPlan(f"`{path}.shard_top` must be a boolean; got {json_type(shard_top)}")
    return TopNPlan(
        group_by=group_by,
        metric=metric,
        agg=agg,
        n=n,
        order=order,
        shard_top=shard_top,
        filter=parse_filter(obj.get("filter"), f"{path}.filter"),
        max_cells=max_cells(obj, path),
    )


def partial_schema(plan: TopNPlan) -> pl.Schema:
    cols: dict[str, pl.DataType] = {plan.group_by: pl.String(), "count": pl.Int64()}
    if plan.metric is not None:
        cols[f"{plan.metric}__count"] = pl.Int64()
        for moment in MOMENTS:
            cols[f"{plan.metric}__{moment}"] = pl.Float64()
    return pl.Schema(cols)


def score_expr(plan: TopNPlan) -> pl.Expr:
    """The ranking score of a partial row: events for count, else the metric's moment (null when
    the group has no non-null value)."""
    if plan.agg == "count":
        return pl.col("count")
    return pl.col(f"{plan.metric}__{plan.agg}")


def _score_columns(plan: TopNPlan) -> list[pl.Expr]:
    """The aggregations a group's score needs, named as in the partial: ``count`` and, with a
    metric, the scored moment, written as :func:`metric_columns` writes it (null without values)."""
    aggs = [pl.len().alias("count")]
    if plan.agg != "count":
        assert plan.metric is not None
        name = f"{plan.metric}__{plan.agg}"
        aggs.extend(c for c in metric_columns(plan.metric) if c.meta.output_name() == name)
    return aggs


def _shard_top(plan: TopNPlan, rows: pl.LazyFrame) -> pl.LazyFrame:
    """This shard's top ``n`` groups with every partial column, grouping all rows only once.

    The ranking needs only the score, so the groups are first ranked on ``count`` and the score
    alone (one cheap grouping pass), and the moments, whose second pass (``m2``) costs as much
    again, are computed only for the ``n`` groups kept. The score and ``count`` of the answer are
    the ranking pass's own, so the partial ranks exactly as the shard ranked it.
    """
    key = plan.group_by
    score = score_expr(plan)
    top = (
        rows.group_by(key)
        .agg(_score_columns(plan))
        .filter(score.is_not_null())
        .sort([score, pl.col(key)], descending=[plan.order == "desc", False])
        .head(plan.n)
        .collect()
    )
    if plan.metric is None:
        return top.lazy()
    ranked = top.columns
    # `is_in` with the column's own values (its own dtype): a Categorical compares codes and
    # inserts nothing
    moments = (
        rows.filter(pl.col(key).is_in(top[key].implode()))
        .group_by(key)
        .agg(c for c in metric_columns(plan.metric) if c.meta.output_name() not in ranked)
    )
    # a left join keeps the ranking pass's order
    return top.lazy().join(moments, on=key, how="left", nulls_equal=True)


def run(plan: TopNPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    key = plan.group_by
    rows = with_dimensions(apply_filter(frame, plan.filter), (key,)).filter(pl.col(key).is_not_null())
    if plan.shard_top:
        out = _shard_top(plan, rows)
    else:
        aggs = [pl.len().alias("count")]
        if plan.metric is not None:
            aggs.extend(metric_columns(plan.metric))
        check_result_size(rows, [key], max_cells=plan.max_cells)
        out = rows.group_by(key).agg(aggs).sort(key)
    schema = partial_schema(plan)
    return out.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).collect()
