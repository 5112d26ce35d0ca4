"""Plan kinds: one module per kind, all found through :data:`KINDS`.

Each module defines ``KIND`` (the plan's ``kind``), ``parse(obj, path, body)`` (the plan object
and the ``query`` frame's body → a frozen dataclass, raising ``BadPlan``/``BadFrame`` naming the
field; only ``anomalies`` reads the body) and ``run(plan, frame)`` (the store's lazy frame → the
partial DataFrame whose columns and types are exactly the partial schema documented in the
module). Adding a kind is its module plus one entry in :data:`KINDS`; ``plan.parse_plan`` and
``plan.run_plan`` dispatch through it, ``aggregate`` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from engine_polars.ops import aggregate, anomalies, custom, export, funnel, percentiles, summary, topn, window

__all__ = ["BY_KIND", "KINDS"]

#: Every plan kind's module.
KINDS: tuple[ModuleType, ...] = (aggregate, window, percentiles, topn, anomalies, funnel, summary, export, custom)

#: ``kind`` → its module.
BY_KIND: Mapping[str, ModuleType] = {m.KIND: m for m in KINDS}
