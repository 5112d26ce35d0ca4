"""Dimensions a plan may group, rank or filter by, resolved to polars columns.

Names (the TypeScript side is ``src/query/dimensions.ts``):

* ``event_type``, ``user_id``: the event columns;
* ``metadata.<key>``: the value under a top-level key of the event's metadata JSON, as a string
  (numbers and booleans as their JSON text); missing key or no metadata → null;
* ``<table>.<column>``: a column of an enrichment table, left-joined on ``user_id``; a user with
  no row, or an unknown table, → null.
"""

from __future__ import annotations

import re

import polars as pl

from engine_polars import enrichment_tables
from engine_polars.errors import BadPlan

__all__ = ["EVENT_DIMENSIONS", "check_dimension", "with_dimensions"]

EVENT_DIMENSIONS: tuple[str, ...] = ("event_type", "user_id")
_METADATA = re.compile(r"^metadata\.([A-Za-z_][A-Za-z0-9_-]{0,63})$")
_TABLE_COLUMN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63})\.([A-Za-z_][A-Za-z0-9_]{0,63})$")


def check_dimension(name: object, path: str) -> str:
    """Validates a dimension name; raises :class:`BadPlan` naming ``path``."""
    if not isinstance(name, str):
        raise BadPlan(f"`{path}` must be a dimension name string")
    if name in EVENT_DIMENSIONS or _METADATA.match(name) or _TABLE_COLUMN.match(name):
        return name
    raise BadPlan(
        f"unknown dimension `{name}` in `{path}`; expected `event_type`, `user_id`, "
        "`metadata.<key>` or `<table>.<column>`"
    )


def _metadata_expr(key: str, name: str) -> pl.Expr:
    # json_path_match returns strings for string values and the JSON text for others.
    return pl.col("metadata").str.json_path_match(f"$.{key}").alias(name)


def with_dimensions(frame: pl.LazyFrame, names: tuple[str, ...] | list[str]) -> pl.LazyFrame:
    """``frame`` with a String column named exactly like each dimension in ``names``."""
    exprs: list[pl.Expr] = []
    for name in dict.fromkeys(names):
        if name in EVENT_DIMENSIONS:
            continue
        m = _METADATA.match(name)
        if m:
            exprs.append(_metadata_expr(m.group(1), name))
            continue
        t = _TABLE_COLUMN.match(name)
        if t is None:
            raise BadPlan(f"unknown dimension `{name}`")
        table, column = t.group(1), t.group(2)
        df = enrichment_tables.TABLES.get(table)
        if df is None or column not in df.columns:
            exprs.append(pl.lit(None, dtype=pl.String).alias(name))
            continue
        frame = frame.join(
            df.lazy().select(pl.col("user_id"), pl.col(column).cast(pl.String).alias(name)),
            on="user_id",
            how="left",
        )
    return frame.with_columns(exprs) if exprs else frame
