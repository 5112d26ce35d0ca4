"""Plan handlers: one module per plan kind, registered by kind in :data:`HANDLERS`.

Each module in this package defines ``KIND``, ``parse(obj, path)`` (the plan object → a frozen
dataclass, raising ``BadPlan`` naming the field) and ``run(plan, frame)`` (the store's lazy frame
→ the partial DataFrame whose columns and types are exactly the partial schema documented in the
module and in ``src/query/<kind>-request.ts``). Registering here also registers the parser in
``plan.PARSERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from engine_polars import plan as _plan
from engine_polars.ops import anomalies, custom, export, funnel, percentiles, summary, topn, window
from engine_polars.ops.aggregate import run_aggregate
from engine_polars.plan import AggregatePlan, Plan

__all__ = ["HANDLERS", "run_plan"]

_KIND_MODULES = (window, percentiles, topn, anomalies, funnel, summary, export, custom)

#: Plan kind → handler. Keys match ``plan.PARSERS``.
HANDLERS: dict[str, Callable[[Any, pl.LazyFrame], pl.DataFrame]] = {
    AggregatePlan.kind: run_aggregate,
    **{m.KIND: m.run for m in _KIND_MODULES},
}
_plan.PARSERS.update({m.KIND: m.parse for m in _KIND_MODULES})


def run_plan(plan: Plan, frame: pl.LazyFrame) -> pl.DataFrame:
    """Runs a parsed plan over the store's events."""
    return HANDLERS[plan.kind](plan, frame)  # type: ignore[attr-defined]
