"""The ``anomalies`` plan (phase 2 of GET /query/anomalies): events with |z| > threshold.

Phase 1 is an ordinary ``aggregate`` plan whose merged moments give each group's mean and
standard deviation; the router sends them here. Plan (``src/query/anomalies-request.ts``)::

    {"kind": "anomalies", "filter": {...}, "column": "value", "group_by": "<dimension>" | null,
     "threshold": > 0, "limit": 1..10000,
     "groups": [{"key": "<group>" | null, "mean": float, "stddev": float > 0}, ...]}

Without ``group_by``, ``groups`` holds one entry (its key is ignored). Events of a group not in
``groups`` (fewer than two values, or a standard deviation of 0) are never anomalies. The null
group (the key is missing) is a group like any other, as in ``aggregate``.

``z = (value - mean) / stddev`` (as polars evaluates it: within 1 ulp of the textbook quotient);
an event is an anomaly when ``|z| > threshold`` (strict).

Partial (this shard's top ``limit`` anomalies, sorted by |z| descending, then timestamp, user_id,
event_type, z, metadata ascending, nulls last)::

    timestamp Int64   event_type Utf8   user_id Utf8   value Float64   metadata Utf8
    z_score Float64   group_key Utf8 (the group's key, only with ``group_by``)
    total Int64       anomalies on this shard (every row carries it; it can exceed the rows)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import reject_unknown_keys, require_key
from engine_polars._utils.json_types import is_finite_number, is_integer, json_type
from engine_polars.dimensions import check_dimension, with_dimensions
from engine_polars.errors import BadPlan, unknown_name
from engine_polars.plan import Filter, filter_expr, parse_filter
from engine_polars.store import MEASURES

__all__ = ["KIND", "AnomaliesPlan", "GroupMoments", "parse", "partial_schema", "run"]

KIND = "anomalies"
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class GroupMoments:
    key: str | None
    mean: float
    stddev: float


@dataclass(frozen=True)
class AnomaliesPlan:
    kind: ClassVar[str] = KIND
    column: str
    threshold: float
    limit: int
    groups: tuple[GroupMoments, ...]
    group_by: str | None = None
    filter: Filter = field(default_factory=Filter)


def _number(raw: object, path: str) -> float:
    if not is_finite_number(raw):
        raise BadPlan(f"`{path}` must be a finite number; got {json_type(raw)}")
    assert isinstance(raw, (int, float))
    return float(raw)


def _groups(raw: object, path: str) -> tuple[GroupMoments, ...]:
    if not isinstance(raw, list):
        raise BadPlan(f"`{path}` must be an array; got {json_type(raw)}")
    out: list[GroupMoments] = []
    seen: set[str | None] = set()
    for i, item in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise BadPlan(f"`{p}` must be an object; got {json_type(item)}")
        reject_unknown_keys(item, ("key", "mean", "stddev"), p)
        key = item.get("key")
        if key is not None and not isinstance(key, str):
            raise BadPlan(f"`{p}.key` must be a string or null; got {json_type(key)}")
        if key in seen:
            raise BadPlan(f"duplicate group key in `{p}.key`")
        seen.add(key)
        stddev = _number(require_key(item, "stddev", p), f"{p}.stddev")
        if stddev <= 0:
            raise BadPlan(f"`{p}.stddev` must be > 0; got {stddev!r}")
        out.append(GroupMoments(key, _number(require_key(item, "mean", p), f"{p}.mean"), stddev))
    return tuple(out)


def parse(obj: Mapping[str, Any], path: str) -> AnomaliesPlan:
    reject_unknown_keys(obj, ("kind", "filter", "column", "group_by", "threshold", "limit", "groups"), path)
    column = require_key(obj, "column", path)
    if column not in MEASURES:
        raise BadPlan(unknown_name("column", str(column), MEASURES) + f" (at `{path}.column`)")
    group_by = obj.get("group_by")
    if group_by is not None:
        group_by = check_dimension(group_by, f"{path}.group_by")
    threshold = _number(require_key(obj, "threshold", path), f"{path}.threshold")
    if threshold <= 0:
        raise BadPlan(f"`{path}.threshold` must be > 0; got {threshold!r}")
    limit = require_key(obj, "limit", path)
    if not is_integer(limit) or not 1 <= limit <= MAX_LIMIT:
        got = repr(limit) if is_integer(limit) else json_type(limit)
        raise BadPlan(f"`{path}.limit` must be an integer in 1..{MAX_LIMIT}; got {got}")
    groups = _groups(require_key(obj, "groups", path), f"{path}.groups")
    if group_by is None and len(groups) > 1:
        raise BadPlan(f"`{path}.groups` must hold at most one entry without `{path}.group_by`")
    return AnomaliesPlan(
        column=column,
        threshold=threshold,
        limit=limit,
        groups=groups,
        group_by=group_by,
        filter=parse_filter(obj.get("filter"), f"{path}.filter"),
    )


def partial_schema(plan: AnomaliesPlan) -> pl.Schema:
    cols: dict[str, pl.DataType] = {
        "timestamp": pl.Int64(),
        "event_type": pl.String(),
        "user_id": pl.String(),
        "value": pl.Float64(),
        "metadata": pl.String(),
        "z_score": pl.Float64(),
    }
    if plan.group_by is not None:
        cols["group_key"] = pl.String()
    cols["total"] = pl.Int64()
    return pl.Schema(cols)


def _empty(plan: AnomaliesPlan) -> pl.DataFrame:
    return pl.DataFrame(schema=partial_schema(plan))


def run(plan: AnomaliesPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    if not plan.groups:
        return _empty(plan)
    col = plan.column
    rows = frame.filter(filter_expr(plan.filter) & pl.col(col).is_not_null())
    if plan.group_by is None:
        g = plan.groups[0]
        mean: pl.Expr = pl.lit(g.mean, dtype=pl.Float64)
        stddev: pl.Expr = pl.lit(g.stddev, dtype=pl.Float64)
    else:
        key = plan.group_by
        moments = pl.LazyFrame(
            {
                "group_key": [g.key for g in plan.groups],
                "__mean": [g.mean for g in plan.groups],
                "__stddev": [g.stddev for g in plan.groups],
            },
            schema={"group_key": pl.String, "__mean": pl.Float64, "__stddev": pl.Float64},
        )
        # Inner join: events of groups without usable moments are never anomalies. The null group
        # joins to a null key (nulls_equal), like aggregate's null group.
        rows = (
            with_dimensions(rows, (key,))
            .with_columns(pl.col(key).alias("group_key"))
            .join(moments, on="group_key", how="inner", nulls_equal=True)
        )
        mean, stddev = pl.col("__mean"), pl.col("__stddev")
    # Polars may divide by a constant as a multiplication by its reciprocal, so z can differ from
    # the textbook quotient in the last bit (≤ 1 ulp); every shard computes it the same way.
    rows = rows.with_columns(((pl.col(col) - mean) / stddev).alias("z_score"))
    hits = rows.filter(pl.col("z_score").abs() > plan.threshold).with_columns(pl.len().alias("total"))
    top = hits.sort(
        [pl.col("z_score").abs(), "timestamp", "user_id", "event_type", "z_score", "metadata"],
        descending=[True, False, False, False, False, False],
        nulls_last=True,
    ).head(plan.limit)
    schema = partial_schema(plan)
    return top.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).collect()
