"""Enrichment tables held by this shard process: name → DataFrame keyed by ``user_id``.

Process-global on purpose: one process serves one shard, and every plan handler sees the same
tables through :func:`engine_polars.dimensions.with_dimensions`. Rows arrive routed by user, so a
shard holds exactly the rows of the users it owns. (Managed by the enrichment ops.)
"""

from __future__ import annotations

import polars as pl

__all__ = ["TABLES", "column_names"]

#: table name → DataFrame with a unique String ``user_id`` column and String value columns.
TABLES: dict[str, pl.DataFrame] = {}


def column_names(table: str) -> tuple[str, ...]:
    df = TABLES.get(table)
    return () if df is None else tuple(c for c in df.columns if c != "user_id")
