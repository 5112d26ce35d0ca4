"""The ``summary`` plan: one row of counts, moments, distinct users and the time range.

Plan (``src/kinds/summary.ts``)::

    {"kind": "summary", "filter": {...}, "columns": ["value", ...]}  (1+ distinct measures)

GET /query/summary sends this plan together with a ``percentiles`` plan per column (the
quartiles' digests) and an ``aggregate`` plan grouped by ``event_type`` (the shard's set of event
types) in one ``query_many`` round trip; this partial carries the rest.

Partial (exactly one row, also on an empty or fully filtered shard)::

    count Int64             events matching the filter
    rows_held Int64         events held by the shard (unfiltered)
    distinct_users Int64    distinct user_id among the matching events (exact: a user lives on one shard)
    first_timestamp Int64   last_timestamp Int64 (null when no event matches)
    <c>__count Int64        non-null values of column c      <c>__null_count Int64
    <c>__sum, <c>__min, <c>__max, <c>__mean, <c>__m2 Float64 (null when <c>__count is 0)

The moments are ``ops.aggregate.metric_columns`` (m2 in two passes, merged with Chan's formula).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import distinct_names, reject_unknown_keys, require_key
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.ops.aggregate import MOMENTS, metric_columns
from engine_polars.store import MEASURES

__all__ = ["KIND", "SummaryPlan", "parse", "partial_schema", "run"]

KIND = "summary"


@dataclass(frozen=True)
class SummaryPlan:
    kind: ClassVar[str] = KIND
    columns: tuple[str, ...]
    filter: Filter = field(default_factory=Filter)


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> SummaryPlan:
    reject_unknown_keys(obj, ("kind", "filter", "columns"), path)
    columns = distinct_names(require_key(obj, "columns", path), f"{path}.columns", "column", MEASURES)
    if not columns:
        raise BadPlan(f"`{path}.columns` must name at least one column")
    return SummaryPlan(columns=columns, filter=parse_filter(obj.get("filter"), f"{path}.filter"))


def partial_schema(plan: SummaryPlan) -> pl.Schema:
    cols: dict[str, pl.DataType] = {
        "count": pl.Int64(),
        "rows_held": pl.Int64(),
        "distinct_users": pl.Int64(),
        "first_timestamp": pl.Int64(),
        "last_timestamp": pl.Int64(),
    }
    for c in plan.columns:
        cols[f"{c}__count"] = pl.Int64()
        cols[f"{c}__null_count"] = pl.Int64()
        for moment in MOMENTS:
            cols[f"{c}__{moment}"] = pl.Float64()
    return pl.Schema(cols)


def _distinct_codes(rows: pl.LazyFrame, column: str) -> int | None:
    """Distinct values of a dictionary-coded ``column`` (never null in the store), counted as the
    codes seen in a byte per code: a scatter, where ``n_unique`` hashes every row (500,000 rows
    of 17,000 users: 2.2 against 5.1 ms). ``None`` for a column held as text."""
    if not isinstance(rows.collect_schema().get(column), pl.Categorical):
        return None
    codes = rows.select(pl.col(column).to_physical()).collect().to_series().drop_nulls()
    if codes.len() == 0:
        return 0
    seen = pl.zeros(int(codes.max()) + 1, dtype=pl.UInt8, eager=True)  # type: ignore[arg-type]
    return int(seen.scatter(codes, 1).sum())


def run(plan: SummaryPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    held = frame.select(pl.len().alias("rows_held"))
    rows = apply_filter(frame, plan.filter)
    users = _distinct_codes(rows, "user_id")
    aggs: list[pl.Expr] = [
        pl.len().alias("count"),
        pl.col("user_id").n_unique().alias("distinct_users") if users is None else pl.lit(users, dtype=pl.Int64).alias("distinct_users"),
        pl.col("timestamp").min().alias("first_timestamp"),
        pl.col("timestamp").max().alias("last_timestamp"),
    ]
    for c in plan.columns:
        aggs.extend(metric_columns(c))
        aggs.append(pl.col(c).null_count().alias(f"{c}__null_count"))
    # `select` of aggregations yields exactly one row, even over no rows.
    stats = rows.select(aggs)
    out = stats.join(held, how="cross")  # one row × one row
    schema = partial_schema(plan)
    return out.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).collect()
