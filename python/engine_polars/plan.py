"""Query plans: the JSON a shard sends in a ``query`` frame (``header.plan``), parsed into typed
dataclasses. The TypeScript side of this contract is ``src/query/plan.ts``.

Adding a plan kind: a frozen dataclass and a parser here (registered in :data:`PARSERS`), and a
handler in ``ops/`` (registered in ``ops.HANDLERS``); a test checks the two registries match.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import (
    distinct_names,
    finite_number,
    reject_unknown_keys,
    require_key,
    require_object,
    string_list,
)
from engine_polars._utils.json_types import json_type
from engine_polars.dimensions import check_dimension
from engine_polars.dimensions import check_dimension, dimension_predicate
from engine_polars.errors import BadPlan, unknown_name
from engine_polars.store import MEASURES

__all__ = ["PARSERS", "AggregatePlan", "Filter", "Plan", "filter_expr", "parse_plan"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Filter:
    """Row filter shared by every plan; ``None`` means "no constraint".

    ``start`` is inclusive and ``end`` exclusive (epoch ms, as sent: may be fractional). An empty
    ``event_types`` or ``user_ids`` tuple matches no row (the TS side never sends one).
    """

    start: float | int | None = None
    end: float | int | None = None
    event_types: tuple[str, ...] | None = None
    user_ids: tuple[str, ...] | None = None
    #: equality on ``metadata.<key>`` / ``<table>.<column>``: (name, allowed values); a ``None``
    #: value matches a missing key, a user without a row, or a null cell.
    dimensions: tuple[tuple[str, tuple[str | None, ...]], ...] | None = None


@dataclass(frozen=True)
class AggregatePlan:
    """Counts and per-metric moments per group; see ``ops/aggregate.py`` for the partial."""

    kind: ClassVar[str] = "aggregate"
    filter: Filter = field(default_factory=Filter)
    group_by: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    #: With a ``window`` group key: the tumbling window size in ms (partial column ``window_start``).
    window_ms: int | None = None


Plan = AggregatePlan  # a Union as kinds are added

_FILTER_FIELDS = ("from", "to", "event_types", "user_ids", "dimensions")


def parse_filter(raw: object, path: str) -> Filter:
    """Parses a filter object; a missing (``None``) filter means no filter."""
    if raw is None:
        return Filter()
    obj = require_object(raw, path)
    reject_unknown_keys(obj, _FILTER_FIELDS, path)
    start = finite_number(obj["from"], f"{path}.from") if "from" in obj else None
    end = finite_number(obj["to"], f"{path}.to") if "to" in obj else None
    if start is not None and end is not None and start > end:
        raise BadPlan(f"`{path}.from` ({start}) is after `{path}.to` ({end})")
    event_types = string_list(obj["event_types"], f"{path}.event_types") if "event_types" in obj else None
    user_ids = string_list(obj["user_ids"], f"{path}.user_ids") if "user_ids" in obj else None
    dims = _dimension_filters(obj["dimensions"], f"{path}.dimensions") if "dimensions" in obj else None
    return Filter(start, end, event_types, user_ids, dims)


def _dimension_filters(raw: object, path: str) -> tuple[tuple[str, tuple[str | None, ...]], ...]:
    obj = require_object(raw, path)
    out: list[tuple[str, tuple[str | None, ...]]] = []
    for name, values in obj.items():
        check_dimension(name, f"{path}.{name}")
        if name in ("event_type", "user_id"):
            raise BadPlan(f"`{path}.{name}`: filter event columns with `event_types` / `user_ids`")
        if not isinstance(values, list) or not values:
            raise BadPlan(f"`{path}.{name}` must be a non-empty array of strings or nulls; got {json_type(values)}")
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, str):
                raise BadPlan(f"`{path}.{name}[{i}]` must be a string or null; got {json_type(v)}")
        out.append((name, tuple(values)))
    return tuple(out)


def _aggregate_group_keys(raw: object, path: str) -> tuple[str, ...]:
    # `window` or a dimension (event columns, metadata.<key>, <table>.<column>), each once.
    items = string_list(raw, path)
    for item in items:
        if item == "window":
            continue
        try:
            check_dimension(item, path)
        except BadPlan:
            raise BadPlan(
                f"unknown group key `{item}` in `{path}`; expected one of `event_type`, `user_id`, "
                "`window`, `metadata.<key>` or `<table>.<column>`"
            ) from None
    if len(set(items)) != len(items):
        dup = next(i for i in items if items.count(i) > 1)
        raise BadPlan(f"duplicate group key `{dup}` in `{path}`")
    return items


def _parse_aggregate(obj: Mapping[str, Any], path: str) -> AggregatePlan:
    reject_unknown_keys(obj, ("kind", "filter", "group_by", "metrics", "window_ms"), path)
    group_by = _aggregate_group_keys(require_key(obj, "group_by", path), f"{path}.group_by")
    window_ms = obj.get("window_ms")
    if "window" in group_by:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1:
            raise BadPlan(f"`{path}.window_ms` must be a positive integer with a `window` group key")
    elif window_ms is not None:
        raise BadPlan(f"`{path}.window_ms` needs a `window` group key")
    return AggregatePlan(
        filter=parse_filter(obj.get("filter"), f"{path}.filter"),
        group_by=group_by,
        metrics=distinct_names(
            require_key(obj, "metrics", path), f"{path}.metrics", "metric", MEASURES
        ),
        window_ms=window_ms,
    )


#: Plan kind → parser of the plan object (already known to be a dict) at a path.
PARSERS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    AggregatePlan.kind: _parse_aggregate,
}


def parse_plan(raw: object, path: str = "plan") -> Plan:
    """Parses and validates a plan; raises :class:`BadPlan` naming the offending field.

    >>> parse_plan({"kind": "aggregate", "group_by": [], "metrics": ["value"]}).metrics
    ('value',)
    """
    obj = require_object(raw, path)
    kind = require_key(obj, "kind", path)
    if not isinstance(kind, str):
        raise BadPlan(f"`{path}.kind` must be a string; got {json_type(kind)}")
    parser = PARSERS.get(kind)
    if parser is None:
        raise BadPlan(unknown_name("plan kind", kind, PARSERS))
    return parser(obj, path)


def _ceil_ms(bound: float | int) -> int:
    # Timestamps are integers, so `ts >= 1.5` is `ts >= 2` and `ts < 1.5` is `ts < 2`: rounding
    # bounds up keeps the comparison in Int64. Clamped so any JSON number fits a literal.
    return min(max(math.ceil(bound), _INT64_MIN), _INT64_MAX)


def filter_expr(f: Filter) -> pl.Expr:
    """The polars predicate of a filter (``lit(True)`` for no filter)."""
    parts: list[pl.Expr] = []
    if f.start is not None:
        parts.append(pl.col("timestamp") >= pl.lit(_ceil_ms(f.start), dtype=pl.Int64))
    if f.end is not None:
        parts.append(pl.col("timestamp") < pl.lit(_ceil_ms(f.end), dtype=pl.Int64))
    if f.event_types is not None:
        parts.append(pl.col("event_type").is_in(list(f.event_types)))
    if f.user_ids is not None:
        parts.append(pl.col("user_id").is_in(list(f.user_ids)))
    for name, values in f.dimensions or ():
        parts.append(dimension_predicate(name, values))
    return pl.all_horizontal(parts) if parts else pl.lit(True)
