"""The ``export`` plan: one page of this shard's matching events, in (timestamp, arrival) order.

Plan (``src/kinds/export.ts``)::

    {"kind": "export", "filter": {...}, "limit": 1..exportMaxPage,
     "after": {"timestamp": int, "skip": int >= 0} | null}

Partial: the events themselves, columns exactly as they arrived (and in this order)::

    timestamp Int64 (epoch ms)   event_type LargeUtf8   user_id LargeUtf8
    value Float64 (nullable)     metadata LargeUtf8 (JSON object text, nullable)

Paging is by key, not by offset: a page holds the first ``limit`` matching events, in
(timestamp, arrival) order, among those with ``timestamp >= after.timestamp`` after skipping the
first ``after.skip`` of them (the events at exactly ``after.timestamp`` that earlier pages already
returned). Arrival order is the store's row order, which appends never change (chunks only grow at
the end and compaction keeps the order), so an event ingested while an export runs never shifts
the events already paged: nothing is returned twice or skipped. Events ingested during an export
are included when they sort after the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import reject_unknown_keys, require_key, require_object
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.limits import EXPORT_MAX_PAGE
from engine_polars.store import event_columns

__all__ = ["KIND", "ExportPlan", "parse", "run"]

KIND = "export"
_ROW = "__arrival"


@dataclass(frozen=True)
class ExportPlan:
    kind: ClassVar[str] = KIND
    limit: int
    #: (timestamp, events at that timestamp already returned); None for the first page
    after: tuple[int, int] | None = None
    filter: Filter = field(default_factory=Filter)


def _int(raw: object, path: str, low: int, high: int) -> int:
    if not is_integer(raw) or not low <= raw <= high:  # type: ignore[operator]
        got = repr(raw) if is_integer(raw) else json_type(raw)
        raise BadPlan(f"`{path}` must be an integer in {low}..{high}; got {got}")
    assert isinstance(raw, int)
    return raw


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> ExportPlan:
    reject_unknown_keys(obj, ("kind", "filter", "limit", "after"), path)
    limit = _int(require_key(obj, "limit", path), f"{path}.limit", 1, EXPORT_MAX_PAGE)
    after = None
    if obj.get("after") is not None:
        raw = require_object(obj["after"], f"{path}.after")
        reject_unknown_keys(raw, ("timestamp", "skip"), f"{path}.after")
        ts = _int(require_key(raw, "timestamp", f"{path}.after"), f"{path}.after.timestamp", -(2**63), 2**63 - 1)
        skip = _int(require_key(raw, "skip", f"{path}.after"), f"{path}.after.skip", 0, 2**62)
        after = (ts, skip)
    return ExportPlan(limit=limit, after=after, filter=parse_filter(obj.get("filter"), f"{path}.filter"))


def run(plan: ExportPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    """The page of events ``plan`` asks for (at most ``plan.limit`` rows)."""
    rows = apply_filter(frame.with_row_index(_ROW), plan.filter)
    skip = 0
    if plan.after is not None:
        ts, skip = plan.after
        rows = rows.filter(pl.col("timestamp") >= ts)
    # (timestamp, arrival) is unique, so the order is total and the same on every page.
    page = rows.sort(["timestamp", _ROW]).slice(skip, plan.limit).collect()
    # The metadata text is rebuilt for the page's rows only.
    return page.select(event_columns(page.schema))
