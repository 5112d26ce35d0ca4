"""Query plans: the JSON a shard sends in a ``query`` frame (``header.plan``, plus the frame's
body for the kinds that read one), parsed and run by the kind's module in ``ops/``.

The plan object always has a string ``kind``; the rest is the kind's own (see ``ops/<kind>.py``),
and every kind carries the same optional ``filter`` (:mod:`engine_polars.filters`).

Every plan (also each of ``query_many``'s) may carry ``rows_upto``, an integer: the op then sees
only the rows whose absolute index on this shard is below it (``EventStore.frame(upto)``), so a
query reads the same cut of every shard (whole ingest requests or nothing). It is handled here
and in the handlers, never by a kind: :func:`parse_plan` takes it off before the kind parses the
plan, and :func:`rows_upto` reads it.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import polars as pl

from engine_polars._utils.fields import require_key, require_object
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars.errors import BadPlan, unknown_name
from engine_polars.ops import BY_KIND

__all__ = ["Plan", "parse_plan", "rows_upto", "run_plan"]

#: Largest ``rows_upto`` (row indexes are counted in a JS number on the other side).
_MAX_ROWS_UPTO = 2**53


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
    if "rows_upto" in obj:
        rows_upto(obj, path)
        obj = {k: v for k, v in obj.items() if k != "rows_upto"}
    kind = require_key(obj, "kind", path)
    if not isinstance(kind, str):
        raise BadPlan(f"`{path}.kind` must be a string; got {json_type(kind)}")
    module = BY_KIND.get(kind)
    if module is None:
        raise BadPlan(unknown_name("plan kind", kind, BY_KIND))
    plan: Plan = module.parse(obj, path, body)
    return plan


def rows_upto(raw: object, path: str = "plan") -> int | None:
    """The plan's ``rows_upto`` (``None`` when absent or null: every row); raises
    :class:`BadPlan` unless it is an integer in 0..2^53.

    >>> rows_upto({"kind": "summary", "rows_upto": 1000})
    1000
    """
    if not isinstance(raw, dict) or raw.get("rows_upto") is None:
        return None
    value = raw["rows_upto"]
    if not is_integer(value) or not 0 <= value <= _MAX_ROWS_UPTO:
        got = repr(value) if is_integer(value) else json_type(value)
        raise BadPlan(f"`{path}.rows_upto` must be an integer in 0..{_MAX_ROWS_UPTO}; got {got}")
    return value


def run_plan(plan: Plan, frame: pl.LazyFrame) -> pl.DataFrame:
    """Runs a parsed plan over the store's events: the partial of ``plan.kind``."""
    partial: pl.DataFrame = BY_KIND[plan.kind].run(plan, frame)
    return partial
