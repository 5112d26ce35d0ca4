"""Query plans: the JSON a shard sends in a ``query`` frame (``header.plan``, plus the frame's
body for the kinds that read one), parsed and run by the kind's module in ``ops/``.

The plan object always has a string ``kind``; the rest is the kind's own (see ``ops/<kind>.py``),
and every kind carries the same optional ``filter`` (:mod:`engine_polars.filters`).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import polars as pl

from engine_polars._utils.fields import require_key, require_object
from engine_polars._utils.json_types import json_type
from engine_polars.errors import BadPlan, unknown_name
from engine_polars.ops import BY_KIND

__all__ = ["Plan", "parse_plan", "run_plan"]


class Plan(Protocol):
    """A parsed plan: a frozen dataclass of its kind's module."""

    kind: ClassVar[str]


def parse_plan(raw: object, path: str = "plan", body: bytes = b"") -> Plan:
    """Parses and validates a plan (and the body its kind reads); raises :class:`BadPlan` (or,
    for a bad body, :class:`BadFrame`) naming the offending field.

    >>> parse_plan({"kind": "aggregate", "group_by": [], "metrics": ["value"]}).metrics
    ('value',)
    """
    obj = require_object(raw, path)
    kind = require_key(obj, "kind", path)
    if not isinstance(kind, str):
        raise BadPlan(f"`{path}.kind` must be a string; got {json_type(kind)}")
    module = BY_KIND.get(kind)
    if module is None:
        raise BadPlan(unknown_name("plan kind", kind, BY_KIND))
    plan: Plan = module.parse(obj, path, body)
    return plan


def run_plan(plan: Plan, frame: pl.LazyFrame) -> pl.DataFrame:
    """Runs a parsed plan over the store's events: the partial of ``plan.kind``."""
    partial: pl.DataFrame = BY_KIND[plan.kind].run(plan, frame)
    return partial
