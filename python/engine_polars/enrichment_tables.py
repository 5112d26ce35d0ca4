"""Enrichment tables held by this shard process: name → DataFrame keyed by ``user_id``.

Process-global on purpose: one process serves one shard, and every plan handler sees the same
tables through :func:`engine_polars.dimensions.with_dimensions` and the filter. Rows arrive routed
by user, so a shard holds exactly the rows of the users it owns. In memory only: a restarted
process starts with no tables (not durable yet).

Managed by the sidecar ops ``enrich_upsert`` (body: Arrow IPC stream, a String ``user_id`` column
and String value columns), ``enrich_drop`` and ``enrich_list`` (see ``handlers.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import polars as pl

from engine_polars._utils.ipc import read_ipc_body
from engine_polars._utils.json_types import json_type
from engine_polars.errors import BadFrame, BadPlan
from engine_polars.limits import ENRICHMENT_MAX_COLUMNS

__all__ = ["TABLES", "column_names", "drop", "listing", "replace_all", "table_name", "upsert", "upsert_ipc", "version"]

#: table name → DataFrame with a unique String ``user_id`` column and String value columns.
TABLES: dict[str, pl.DataFrame] = {}
#: Bumped by every change, so a roll snapshots the tables only when they changed.
_VERSION = [0]


def version() -> int:
    return _VERSION[0]


def replace_all(tables: Mapping[str, pl.DataFrame]) -> None:
    """Sets every table at once (loading a snapshot at start-up)."""
    TABLES.clear()
    TABLES.update(tables)
    _VERSION[0] += 1

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_RESERVED = ("metadata", "event_type", "user_id", "timestamp", "value", "window")


def column_names(table: str) -> tuple[str, ...]:
    df = TABLES.get(table)
    return () if df is None else tuple(c for c in df.columns if c != "user_id")


def table_name(raw: object, path: str) -> str:
    """A valid table name (``[A-Za-z_][A-Za-z0-9_]{0,63}``, not reserved); raises BadPlan."""
    if not isinstance(raw, str) or not _NAME.match(raw):
        shown = repr(raw) if isinstance(raw, str) else json_type(raw)
        raise BadPlan(f"`{path}` must be a table name matching [A-Za-z_][A-Za-z0-9_]{{0,63}}; got {shown}")
    if raw in _RESERVED:
        raise BadPlan(f"`{path}`: table name `{raw}` is reserved")
    return raw


def _validated_rows(df: pl.DataFrame) -> pl.DataFrame:
    if "user_id" not in df.columns:
        raise BadFrame("enrichment rows need a `user_id` column")
    for name, dtype in df.schema.items():
        if not _NAME.match(name):
            raise BadFrame(f"column name `{name}` must match [A-Za-z_][A-Za-z0-9_]{{0,63}}")
        if dtype not in (pl.String, pl.Null):
            raise BadFrame(f"column `{name}` has type `{dtype}`; expected `String`")
    nulls = df["user_id"].null_count()
    if nulls:
        raise BadFrame(f"column `user_id` has {nulls} null(s); it must not be null")
    # Last row per user wins; String everywhere (an all-null column may arrive as Null).
    return df.unique(subset="user_id", keep="last", maintain_order=True).select(
        pl.col("user_id"), *(pl.col(c).cast(pl.String) for c in df.columns if c != "user_id")
    )


def upsert(table: str, rows: pl.DataFrame) -> tuple[int, int]:
    """Upserts ``rows`` into ``table``; returns (rows upserted, rows the table holds after).

    A user's new row replaces the old one whole (a column the new row lacks becomes null);
    columns the table did not have are added, null for the rows already held.
    """
    new = _validated_rows(rows)
    old = TABLES.get(table)
    if old is None:
        merged = new
    else:
        kept = old.filter(~pl.col("user_id").is_in(new["user_id"].implode()))
        merged = pl.concat([kept, new], how="diagonal")
    if merged.width - 1 > ENRICHMENT_MAX_COLUMNS:
        raise BadFrame(
            f"table `{table}` would have {merged.width - 1} columns besides `user_id`; "
            f"at most {ENRICHMENT_MAX_COLUMNS} (`enrichmentMaxColumns`)"
        )
    TABLES[table] = merged
    _VERSION[0] += 1
    return new.height, merged.height


def upsert_ipc(header_plan: object, body: bytes) -> dict[str, Any]:
    """The ``enrich_upsert`` op: ``plan = {table}``, body an Arrow IPC stream of the rows."""
    plan = _plan_object(header_plan, ("table",))
    table = table_name(plan.get("table"), "plan.table")
    rows = read_ipc_body(body, "enrich_upsert", "rows")
    upserted, held = upsert(table, rows)
    return {"table": table, "upserted": upserted, "rows": held, "columns": list(column_names(table))}


def drop(header_plan: object) -> dict[str, Any]:
    """The ``enrich_drop`` op: ``plan = {table}``; dropping an unknown table is not an error."""
    plan = _plan_object(header_plan, ("table",))
    table = table_name(plan.get("table"), "plan.table")
    df = TABLES.pop(table, None)
    _VERSION[0] += 1
    return {"table": table, "dropped": df is not None, "rows": 0 if df is None else df.height}


def listing() -> pl.DataFrame:
    """The ``enrich_list`` partial: one row per table, ``table`` String, ``rows`` Int64 and
    ``columns`` String (the value columns, comma-joined, in table order)."""
    names = sorted(TABLES)
    return pl.DataFrame(
        {
            "table": names,
            "rows": [TABLES[n].height for n in names],
            "columns": [",".join(column_names(n)) for n in names],
        },
        schema={"table": pl.String, "rows": pl.Int64, "columns": pl.String},
    )


def _plan_object(raw: object, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise BadPlan(f"`plan` must be an object; got {json_type(raw)}")
    for key in raw:
        if key not in allowed:
            raise BadPlan(f"unknown field `plan.{key}`")
    return raw
