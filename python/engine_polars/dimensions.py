"""Dimensions a plan may group, rank or filter by, resolved to polars columns.

Names (the TypeScript side is ``src/kinds/schemas.ts``):

* ``event_type``, ``user_id``: the event columns;
* ``metadata.<key>``: the value under a top-level key of the event's metadata JSON, as a string
  (numbers and booleans as their JSON text); missing key or no metadata → null. Read from the
  key's column over the store's frame, parsed from the text over a plain one
  (``metadata.dimension``);
* ``<table>.<column>``: a column of an enrichment table, left-joined on ``user_id``; a user with
  no row, or an unknown table, → null. Over the store's dictionary-encoded ``user_id`` the join
  is on codes: the table's users are looked up in the dictionary, never inserted into it.
"""

from __future__ import annotations

import re

import polars as pl

from engine_polars import enrichment_tables, metadata
from engine_polars.dictionary import is_categorical, is_in_strings
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


_PLAIN = pl.Schema({"user_id": pl.String, "metadata": pl.String})


def _metadata_expr(key: str, name: str, schema: pl.Schema) -> pl.Expr:
    return metadata.dimension(key, schema).alias(name)


def _join_table(frame: pl.LazyFrame, schema: pl.Schema, table: pl.DataFrame, name: str) -> pl.LazyFrame:
    """``frame`` left-joined on ``user_id`` with ``table`` (``user_id`` and ``name``, Strings)."""
    users = schema.get("user_id", pl.String())
    if is_categorical(users):
        # Casting inserts the table's users into the shard's user dictionary: they are this
        # shard's own users (tables are routed by user_id), and its UInt32 codes never run out.
        table = table.with_columns(pl.col("user_id").cast(users))
    return frame.join(table.lazy(), on="user_id", how="left")


def with_dimensions(frame: pl.LazyFrame, names: tuple[str, ...] | list[str]) -> pl.LazyFrame:
    """``frame`` with a String column named exactly like each dimension in ``names``
    (``event_type`` and ``user_id`` stay as they are held: String or Categorical)."""
    exprs: list[pl.Expr] = []
    wanted = [n for n in dict.fromkeys(names) if n not in EVENT_DIMENSIONS]
    schema = frame.collect_schema() if wanted else _PLAIN
    for name in wanted:
        m = _METADATA.match(name)
        if m:
            exprs.append(_metadata_expr(m.group(1), name, schema))
            continue
        t = _TABLE_COLUMN.match(name)
        if t is None:
            raise BadPlan(f"unknown dimension `{name}`")
        table, column = t.group(1), t.group(2)
        df = enrichment_tables.TABLES.get(table)
        if df is None or column not in df.columns:
            exprs.append(pl.lit(None, dtype=pl.String).alias(name))
            continue
        frame = _join_table(frame, schema, df.select(pl.col("user_id"), pl.col(column).cast(pl.String).alias(name)), name)
    return frame.with_columns(exprs) if exprs else frame


def dimension_predicate(name: str, values: tuple[str | None, ...], schema: pl.Schema | None = None) -> pl.Expr:
    """Events whose ``metadata.<key>`` / ``<table>.<column>`` is one of ``values`` (``None``:
    missing/null). Needs no join: a table column becomes a ``user_id`` set taken from the table
    now, so the predicate works in any plan's ``filter`` over the plain event frame."""
    schema = schema if schema is not None else _PLAIN
    wanted = [v for v in values if v is not None]
    with_null = len(wanted) < len(values)
    m = _METADATA.match(name)
    if m:
        cell = _metadata_expr(m.group(1), name, schema)
        hit = cell.is_in(wanted) if wanted else pl.lit(False)
        return (hit | cell.is_null()) if with_null else hit.fill_null(False)
    t = _TABLE_COLUMN.match(name)
    if t is None:
        raise BadPlan(f"unknown dimension `{name}`")
    df = enrichment_tables.TABLES.get(t.group(1))
    column = t.group(2)
    if df is None or column not in df.columns:
        return pl.lit(with_null)
    users = schema.get("user_id", pl.String())
    hit = is_in_strings("user_id", users, df.filter(pl.col(column).is_in(wanted))["user_id"]) if wanted else pl.lit(False)
    if not with_null:
        return hit
    present = df.filter(pl.col(column).is_not_null())["user_id"]
    return hit | ~is_in_strings("user_id", users, present)
