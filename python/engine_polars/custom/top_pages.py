"""Pages (`metadata.page`) ranked by the number of events, with the sum of `value` beside it.

params: ``event_type`` (optional string): only count this event type.
Result: the top 10 pages: ``page``, ``views``, ``value_sum``; events without a page are left out.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from engine_polars.custom import BadParams
from engine_polars.dimensions import with_dimensions

MERGE = {"kind": "top-n", "by": "views", "n": 10, "order": "desc", "keys": ["page"]}


def run(frame: pl.LazyFrame, params: dict[str, Any]) -> pl.DataFrame:
    event_type = params.get("event_type")
    if event_type is not None:
        if not isinstance(event_type, str):
            raise BadParams("`event_type` must be a string")
        frame = frame.filter(pl.col("event_type") == event_type)
    return (
        with_dimensions(frame, ["metadata.page"])
        .filter(pl.col("metadata.page").is_not_null())
        .group_by(pl.col("metadata.page").alias("page"))
        .agg(pl.len().alias("views"), pl.col("value").sum().alias("value_sum"))
        .collect()
    )
