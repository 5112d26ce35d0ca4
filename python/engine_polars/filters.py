"""The row filter every plan carries (``plan.filter``), parsed into a :class:`Filter` and turned
into one polars predicate. The TypeScript side of this contract is the plans' ``filter`` field.

Ops apply it with :func:`apply_filter`, which reads the frame's schema: over the store's
dictionary-encoded columns a list of event types or users is looked up in the dictionary and
compared as codes (``dictionary.is_in_strings``), never cast into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from engine_polars._utils.fields import finite_number, reject_unknown_keys, require_object, string_list
from engine_polars._utils.json_types import json_type
from engine_polars.dictionary import is_in_strings
from engine_polars.dimensions import check_dimension, dimension_predicate
from engine_polars.errors import BadPlan

__all__ = ["Filter", "apply_filter", "filter_expr", "parse_filter"]

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


def _ceil_ms(bound: float | int) -> int:
    # Timestamps are integers, so `ts >= 1.5` is `ts >= 2` and `ts < 1.5` is `ts < 2`: rounding
    # bounds up keeps the comparison in Int64. Clamped so any JSON number fits a literal.
    return min(max(math.ceil(bound), _INT64_MIN), _INT64_MAX)


def apply_filter(frame: pl.LazyFrame, f: Filter) -> pl.LazyFrame:
    """``frame``'s rows that pass ``f``."""
    if f == Filter():
        return frame
    return frame.filter(filter_expr(f, frame.collect_schema()))


def filter_expr(f: Filter, schema: pl.Schema | None = None) -> pl.Expr:
    """The polars predicate of a filter (``lit(True)`` for no filter) over a frame of ``schema``
    (default: String ``event_type``/``user_id`` and a ``metadata`` text column)."""
    schema = schema if schema is not None else pl.Schema({"event_type": pl.String, "user_id": pl.String, "metadata": pl.String})
    parts: list[pl.Expr] = []
    if f.start is not None:
        parts.append(pl.col("timestamp") >= pl.lit(_ceil_ms(f.start), dtype=pl.Int64))
    if f.end is not None:
        parts.append(pl.col("timestamp") < pl.lit(_ceil_ms(f.end), dtype=pl.Int64))
    if f.event_types is not None:
        parts.append(is_in_strings("event_type", schema.get("event_type", pl.String()), f.event_types))
    if f.user_ids is not None:
        parts.append(is_in_strings("user_id", schema.get("user_id", pl.String()), f.user_ids))
    for name, values in f.dimensions or ():
        parts.append(dimension_predicate(name, values, schema))
    return pl.all_horizontal(parts) if parts else pl.lit(True)
