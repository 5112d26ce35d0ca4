"""The ``anomalies`` plan (phase 2 of GET /query/anomalies): events with |z| > threshold.

Phase 1 is an ordinary ``aggregate`` plan whose merged moments give each group's mean and
standard deviation; the router sends each shard the moments of its groups. Plan
(``src/kinds/anomalies.ts``)::

    {"kind": "anomalies", "filter": {...}, "column": "value", "group_by": "<dimension>" | null,
     "threshold": > 0, "limit": 1..anomaliesMaxLimit}

The groups' moments travel in the ``query`` frame's body, never in the JSON header (240k users'
moments are ~20 MB of JSON): an Arrow IPC stream with exactly these columns::

    key Utf8 (nullable: the null group)   mean Float64 (finite)   stddev Float64 (finite, > 0)

Keys are distinct; without ``group_by`` there is at most one row and its key is null. An empty
body or a stream of zero rows means no group has usable moments, so the partial is empty. A body
that is not an Arrow IPC stream, or breaks any rule above, is ``BAD_FRAME`` naming the column. A
``groups`` field in the plan is an unknown field (``BAD_PLAN``). In ``query_many`` a plan gets an
empty body.

Events of a group without a row (fewer than two values, or a standard deviation of 0) are never
anomalies. The null group (the key is missing) is a group like any other, as in ``aggregate``.

``z = (value - mean) / stddev`` (as polars evaluates it: within 1 ulp of the textbook quotient);
an event is an anomaly when ``|z| > threshold`` (strict).

Partial (this shard's top ``limit`` anomalies, sorted by |z| descending, then timestamp, user_id,
event_type, z, metadata ascending, nulls last)::

    timestamp Int64   event_type LargeUtf8   user_id LargeUtf8   value Float64   metadata LargeUtf8
    z_score Float64   group_key LargeUtf8 (the group's key, only with ``group_by``)
    total Int64       anomalies on this shard (every row carries it; it can exceed the rows)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import reject_unknown_keys, require_key
from engine_polars._utils.ipc import read_ipc_body
from engine_polars._utils.json_types import is_finite_number, is_integer, json_type
from engine_polars.dimensions import check_dimension, with_dimensions
from engine_polars.errors import BadFrame, BadPlan, names, unknown_name
from engine_polars.dictionary import codes_of, is_categorical
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.limits import ANOMALIES_MAX_LIMIT
from engine_polars.store import MEASURES, event_columns

__all__ = ["GROUPS_SCHEMA", "KIND", "AnomaliesPlan", "groups_frame", "parse", "parse_groups", "partial_schema", "run"]

KIND = "anomalies"
#: The columns of the groups body, in order.
GROUPS_SCHEMA = pl.Schema({"key": pl.String(), "mean": pl.Float64(), "stddev": pl.Float64()})


def groups_frame(rows: Iterable[tuple[str | None, float, float]] = ()) -> pl.DataFrame:
    """A groups table from ``(key, mean, stddev)`` rows, unchecked (tests, and the empty table)."""
    keys, means, stddevs = [], [], []
    for key, mean, stddev in rows:
        keys.append(key)
        means.append(mean)
        stddevs.append(stddev)
    return pl.DataFrame({"key": keys, "mean": means, "stddev": stddevs}, schema=GROUPS_SCHEMA)


# eq=False: a DataFrame field has no boolean equality.
@dataclass(frozen=True, eq=False)
class AnomaliesPlan:
    kind: ClassVar[str] = KIND
    column: str
    threshold: float
    limit: int
    #: One row per group with usable moments: :data:`GROUPS_SCHEMA`.
    groups: pl.DataFrame = field(default_factory=groups_frame)
    group_by: str | None = None
    filter: Filter = field(default_factory=Filter)


def _number(raw: object, path: str) -> float:
    if not is_finite_number(raw):
        raise BadPlan(f"`{path}` must be a finite number; got {json_type(raw)}")
    assert isinstance(raw, (int, float))
    return float(raw)


def _first_bad(bad: pl.Series) -> int:
    return int(bad.arg_max() or 0)


def parse_groups(body: bytes, grouped: bool) -> pl.DataFrame:
    """The groups table of a ``query`` frame's body (see the module doc); raises
    :class:`BadFrame` naming the column and the first bad row."""
    if not body:
        return groups_frame()
    df = read_ipc_body(body, "anomalies", "groups")
    if df.columns != GROUPS_SCHEMA.names():
        raise BadFrame(
            f"anomalies body has columns {names(df.columns)}; expected {names(GROUPS_SCHEMA.names())}"
        )
    for name, dtype in GROUPS_SCHEMA.items():
        got = df.schema[name]
        if got != dtype and not (name == "key" and got == pl.Null):
            raise BadFrame(f"anomalies body column `{name}` has type `{got}`; expected `{dtype}`")
    df = df.with_columns(pl.col("key").cast(pl.String))
    for name in ("mean", "stddev"):
        col = df[name]
        bad = col.is_null() | ~col.is_finite()
        if name == "stddev":
            bad = bad | (col <= 0)
        bad = bad.fill_null(True)
        if bad.any():
            row = _first_bad(bad)
            want = "finite and > 0" if name == "stddev" else "finite"
            raise BadFrame(f"anomalies body column `{name}` must be {want}; row {row} has {col[row]!r}")
    if not grouped and (df.height > 1 or (df.height == 1 and df["key"][0] is not None)):
        raise BadFrame("anomalies body without `group_by` must hold at most one row, with a null `key`")
    dup = df["key"].is_duplicated()
    if dup.any():
        row = _first_bad(dup)
        raise BadFrame(f"anomalies body column `key` repeats {df['key'][row]!r} at row {row}; keys must be distinct")
    return df


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> AnomaliesPlan:
    reject_unknown_keys(obj, ("kind", "filter", "column", "group_by", "threshold", "limit"), path)
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
    if not is_integer(limit) or not 1 <= limit <= ANOMALIES_MAX_LIMIT:
        got = repr(limit) if is_integer(limit) else json_type(limit)
        raise BadPlan(f"`{path}.limit` must be an integer in 1..{ANOMALIES_MAX_LIMIT}; got {got}")
    return AnomaliesPlan(
        column=column,
        threshold=threshold,
        limit=limit,
        group_by=group_by,
        filter=parse_filter(obj.get("filter"), f"{path}.filter"),
        groups=parse_groups(body, grouped=group_by is not None),
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


def _with_moments(rows: pl.LazyFrame, key: str, groups: pl.DataFrame) -> pl.LazyFrame:
    """``rows`` inner-joined with their group's moments (``__mean``, ``__stddev``) on ``key``,
    kept as ``group_key``. The null group joins to a null key (nulls_equal), like aggregate's
    null group. A dictionary-encoded key joins on codes (the moments' keys looked up, never
    inserted)."""
    moments = groups.select(
        pl.col("key").alias("group_key"), pl.col("mean").alias("__mean"), pl.col("stddev").alias("__stddev")
    )
    dtype = rows.collect_schema()[key]
    if key == "user_id" and is_categorical(dtype):
        # The moments of this shard's own users only: casting them into its user dictionary adds
        # nothing new, and a UInt32 dictionary never runs out.
        moments = moments.with_columns(pl.col("group_key").cast(dtype))
    if key == "user_id" or not is_categorical(dtype):
        return rows.with_columns(pl.col(key).alias("group_key")).join(
            moments.lazy(), on="group_key", how="inner", nulls_equal=True
        )
    codes = codes_of(moments["group_key"].drop_nulls(), dtype).rename({"value": "group_key", "code": "__code"})
    coded = moments.join(codes, on="group_key", how="inner").drop("group_key")
    return (
        rows.with_columns(pl.col(key).to_physical().alias("__code"))
        .join(coded.lazy(), on="__code", how="inner")
        .drop("__code")
        .with_columns(pl.col(key).alias("group_key"))
    )


_ORDER = ["__abs", "timestamp", "user_id", "event_type", "z_score"]


def _top(hits: pl.LazyFrame, limit: int) -> pl.DataFrame:
    """The first ``limit`` hits by |z| desc, then timestamp, user_id, event_type, z, metadata.

    The metadata text is the last tie-break and, on the store's frame, is rebuilt per row, so
    it is built only for the rows that can make the cut: the first ``limit`` by the other keys,
    plus every row tied with the last of them (found in a second pass only when there are any).
    """
    by = dict(descending=[True, False, False, False, False], nulls_last=True)
    first = hits.sort(_ORDER, **by).head(limit + 1).collect()  # type: ignore[arg-type]
    if first.height > limit:
        edge = first.row(limit - 1, named=True)
        beyond = first.row(limit, named=True)
        if all(edge[k] == beyond[k] for k in _ORDER):
            same = pl.all_horizontal(pl.col(k).eq_missing(pl.lit(edge[k], dtype=first.schema[k])) for k in _ORDER)
            before = first.head(limit).filter(~same)
            first = pl.concat([before, hits.filter(same).collect()], how="vertical")
        else:
            first = first.head(limit)
    schema = first.schema
    return (
        first.with_columns(event_columns(schema)[-1])
        .sort([*_ORDER, "metadata"], descending=[True, False, False, False, False, False], nulls_last=True)
        .head(limit)
    )


def _likely_top(rows: pl.LazyFrame, z: pl.Expr, plan: AnomaliesPlan) -> pl.LazyFrame | None:
    """The hits that can be among the first ``limit`` (``z_score``, ``__abs``, and ``total``, every
    hit's count), or ``None`` without hits. Without groups z is one expression of the value
    alone: the |z| of every hit is taken from that column first (no other column is filtered),
    and only rows with |z| at or above the ``limit``-th largest are cut out with their columns
    (5 M rows, one thread: ~50 → ~22 ms of CPU where the hits were filtered and sorted whole)."""
    # Both passes on the streaming engine, a morsel at a time (no column of z is ever whole):
    # 15 -> 8 and 16 -> 11 ms of CPU. The same expression on the same rows: the same |z| in both.
    scores = (
        rows.select(z.abs().alias("__abs"))
        .filter(pl.col("__abs") > plan.threshold)
        .collect(engine="streaming")["__abs"]
    )
    if scores.len() == 0:
        return None
    edge = scores.top_k(plan.limit).min()
    return (
        rows.with_columns(z.alias("z_score"))
        .filter(pl.col("z_score").abs() >= edge)
        .with_columns(pl.lit(scores.len(), dtype=pl.Int64).alias("total"), pl.col("z_score").abs().alias("__abs"))
        .collect(engine="streaming")
        .lazy()
    )


def run(plan: AnomaliesPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    if plan.groups.height == 0:
        return _empty(plan)
    col = plan.column
    rows = apply_filter(frame, plan.filter)
    if plan.group_by is not None:
        # (without groups the |z| comparisons leave null values out without this filter, which
        # would copy every column of the rows it keeps)
        rows = rows.filter(pl.col(col).is_not_null())
    if plan.group_by is None:
        mean: pl.Expr = pl.lit(plan.groups["mean"][0], dtype=pl.Float64)
        stddev: pl.Expr = pl.lit(plan.groups["stddev"][0], dtype=pl.Float64)
    else:
        rows = _with_moments(with_dimensions(rows, (plan.group_by,)), plan.group_by, plan.groups)
        mean, stddev = pl.col("__mean"), pl.col("__stddev")
    # Polars may divide by a constant as a multiplication by its reciprocal, so z can differ from
    # the textbook quotient in the last bit (≤ 1 ulp); every shard computes it the same way.
    z = (pl.col(col) - mean) / stddev
    if plan.group_by is None:
        hits = _likely_top(rows, z, plan)
        if hits is None:
            return _empty(plan)
    else:
        rows = rows.with_columns(z.alias("z_score"))
        hits = rows.filter(pl.col("z_score").abs() > plan.threshold).with_columns(
            pl.len().alias("total"), pl.col("z_score").abs().alias("__abs")
        )
    top = _top(hits, plan.limit)
    schema = partial_schema(plan)
    return top.select(pl.col(name).cast(dtype) for name, dtype in schema.items())
