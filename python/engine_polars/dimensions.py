"""Dimensions a plan may group, rank or filter by, resolved to polars columns.

Names (the TypeScript side is ``src/kinds/schemas.ts``):

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

__all__ = ["EVENT_DIMENSIONS", "check_dimension", "dimension_predicate", "with_dimensions"]

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


def dimension_predicate(name: str, values: tuple[str | None, ...]) -> pl.Expr:
    """Events whose ``metadata.<key>`` / ``<table>.<column>`` is one of ``values`` (``None``:
    missing/null). Needs no join: a table column becomes a ``user_id`` set taken from the table
    now, so the predicate works in any plan's ``filter`` over the plain event frame."""
    wanted = [v for v in values if v is not None]
    with_null = len(wanted) < len(values)
    m = _METADATA.match(name)
    if m:
        cell = _metadata_expr(m.group(1), name)
        hit = cell.is_in(wanted) if wanted else pl.lit(False)
        return (hit | cell.is_null()) if with_null else hit.fill_null(False)
    t = _TABLE_COLUMN.match(name)
    if t is None:
        raise BadPlan(f"unknown dimension `{name}`")
    df = enrichment_tables.TABLES.get(t.group(1))
    column = t.group(2)
    if df is None or column not in df.columns:
        return pl.lit(with_null)
    users = pl.col("user_id")
    hit = users.is_in(df.filter(pl.col(column).is_in(wanted))["user_id"].implode()) if wanted else pl.lit(False)
    if not with_null:
        return hit
    present = df.filter(pl.col(column).is_not_null())["user_id"]
    return hit | ~users.is_in(present.implode())
