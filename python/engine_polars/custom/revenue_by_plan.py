"""Revenue (sum of `value`) and event counts per subscription plan (`metadata.plan`).

params: ``event_types`` (optional list of strings): only these event types count.
Result: one row per plan (null: events without a plan): ``plan``, ``events``, ``revenue``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from engine_polars.custom import BadParams
from engine_polars.dimensions import with_dimensions

MERGE = {"kind": "sum", "keys": ["plan"]}


def run(frame: pl.LazyFrame, params: dict[str, Any]) -> pl.DataFrame:
    types = params.get("event_types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise BadParams("`event_types` must be a list of strings")
        frame = frame.filter(pl.col("event_type").is_in(types))
    return (
        with_dimensions(frame, ["metadata.plan"])
        .group_by(pl.col("metadata.plan").alias("plan"))
        .agg(pl.len().alias("events"), pl.col("value").sum().alias("revenue"))
        .collect()
    )
