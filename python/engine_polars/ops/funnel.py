"""The ``funnel`` plan: how many of this shard's users reach each step of a funnel.

Plan (``src/kinds/funnel.ts``)::

    {"kind": "funnel", "filter": {...}, "steps": ["page_view", "add_to_cart", ...]
     (funnelMinSteps..funnelMaxSteps),
     "mode": "ordered" | "unordered", "window_ms": int >= 1 | null}

Partial (exactly one row per step, in step order, also on an empty shard)::

    step Int64 (1-based)   users Int64 (users of this shard whose level is >= step)

Users live on one shard (routing is by ``user_id``), so a user's level is computed here from all
of the user's events and the merge is a per-step sum: the answer is exact.

Semantics (only events that pass ``filter`` take part):

* ``ordered`` without a window: step 1 takes the user's earliest step-1 event; step k takes the
  earliest event of type ``steps[k-1]`` whose timestamp is at or after the event step k-1 took
  (equal timestamps qualify, whatever their arrival order). Each step needs its own event: when
  an event type repeats in ``steps``, the later step takes an event strictly after (timestamp,
  then arrival order) the one the earlier step of that type took. The level is the number of
  steps taken.
* ``ordered`` with ``window_ms``: as above, and every step's timestamp must also be at most
  ``window_ms`` after the step-1 event's (``ts_k - ts_1 <= window_ms``); the user's level is the
  best over every choice of step-1 event (as ClickHouse's ``windowFunnel``).
* ``unordered``: a user reaches step k when, for each event type among ``steps[0..k-1]``, the
  user has at least as many events of that type as it appears there (so each step still needs
  its own event). Order and timing do not matter; ``window_ms`` must be null.

How, ordered without a window and with every step a different type: each step keeps, per user
still in the funnel, the earliest event of its type at or after the previous step's time (one
join and one grouped minimum per step). Otherwise: the events of each step type are sorted by (timestamp, arrival) and numbered per user
(``r``). A *chain* is one choice of step-1 event (every step-1 event with a window, each user's
first without). Each step extends every live chain at once: an as-of join (forward, by user)
finds the first event of the step's type at or after the chain's last timestamp; for a repeated
type the number is raised past the event of that type the chain took last (and the chain dies
when the user has no such event); a chain dies when its event falls outside the window. Work per step is
O(chains log events); no Python loop over users or events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import reject_unknown_keys, require_key, string_list
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars.errors import BadPlan, unknown_name
from engine_polars.dictionary import is_in_strings
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.limits import FUNNEL_MAX_STEPS, FUNNEL_MIN_STEPS

__all__ = ["KIND", "FunnelPlan", "parse", "partial_schema", "run"]

KIND = "funnel"
MODES = ("ordered", "unordered")


@dataclass(frozen=True)
class FunnelPlan:
    kind: ClassVar[str] = KIND
    steps: tuple[str, ...]
    mode: str = "ordered"
    window_ms: int | None = None
    filter: Filter = field(default_factory=Filter)


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> FunnelPlan:
    reject_unknown_keys(obj, ("kind", "filter", "steps", "mode", "window_ms"), path)
    steps = string_list(require_key(obj, "steps", path), f"{path}.steps")
    if not FUNNEL_MIN_STEPS <= len(steps) <= FUNNEL_MAX_STEPS:
        raise BadPlan(f"`{path}.steps` must hold {FUNNEL_MIN_STEPS}..{FUNNEL_MAX_STEPS} event types; got {len(steps)}")
    for i, s in enumerate(steps):
        if not s:
            raise BadPlan(f"`{path}.steps[{i}]` must not be empty")
    mode = obj.get("mode", "ordered")
    if mode not in MODES:
        raise BadPlan(unknown_name("mode", str(mode), MODES) + f" (at `{path}.mode`)")
    window_ms = obj.get("window_ms")
    if window_ms is not None:
        if not is_integer(window_ms) or window_ms < 1:
            got = repr(window_ms) if is_integer(window_ms) else json_type(window_ms)
            raise BadPlan(f"`{path}.window_ms` must be a positive integer or null; got {got}")
        if mode == "unordered":
            raise BadPlan(f"`{path}.window_ms` applies to the `ordered` mode only")
    return FunnelPlan(
        steps=steps, mode=mode, window_ms=window_ms, filter=parse_filter(obj.get("filter"), f"{path}.filter")
    )


def partial_schema() -> pl.Schema:
    return pl.Schema({"step": pl.Int64(), "users": pl.Int64()})


def _partial(counts: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"step": list(range(1, len(counts) + 1)), "users": counts}, schema=partial_schema()
    )


def run(plan: FunnelPlan, frame: pl.LazyFrame) -> pl.DataFrame:
    """Users of this shard at each level ≥ step, one row per step."""
    types = list(dict.fromkeys(plan.steps))
    filtered = apply_filter(frame, plan.filter)
    rows = (
        filtered.filter(is_in_strings("event_type", filtered.collect_schema()["event_type"], types))
        .select("user_id", "timestamp", "event_type")
        .collect()
    )
    if plan.mode == "unordered":
        return _partial(_unordered_counts(plan.steps, types, rows))
    return _partial(_ordered_counts(plan.steps, plan.window_ms, rows))


def _unordered_counts(steps: tuple[str, ...], types: list[str], rows: pl.DataFrame) -> list[int]:
    per_user = rows.group_by("user_id").agg(
        (pl.col("event_type") == t).sum().cast(pl.Int64).alias(f"c{i}") for i, t in enumerate(types)
    )
    counts: list[int] = []
    need = [0] * len(types)
    for s in steps:
        need[types.index(s)] += 1
        cond = pl.all_horizontal(pl.col(f"c{i}") >= n for i, n in enumerate(need) if n > 0)
        counts.append(per_user.filter(cond).height)
    return counts


def _earliest_counts(steps: tuple[str, ...], rows: pl.DataFrame) -> list[int]:
    """Ordered, no window, every step a different event type: each step's time is the user's
    earliest event of its type at or after the previous step's time, so one grouped minimum per
    step over the users still in the funnel does it (no per-user numbering, no as-of join)."""
    at = rows.filter(pl.col("event_type") == steps[0]).group_by("user_id").agg(pl.col("timestamp").min().alias("at"))
    counts = [at.height]
    for step in steps[1:]:
        if at.height == 0:
            counts.append(0)
            continue
        at = (
            rows.filter(pl.col("event_type") == step)
            .select("user_id", "timestamp")
            .join(at, on="user_id")
            .filter(pl.col("timestamp") >= pl.col("at"))
            .group_by("user_id")
            .agg(pl.col("timestamp").min().alias("at"))
        )
        counts.append(at.height)
    return counts


def _ordered_counts(steps: tuple[str, ...], window_ms: int | None, rows: pl.DataFrame) -> list[int]:
    types = list(dict.fromkeys(steps))
    if window_ms is None and len(types) == len(steps):
        return _earliest_counts(steps, rows)
    repeated = {t for t in types if steps.count(t) > 1}
    # Per type: its events in (timestamp, arrival) order, numbered per user by `r` (0, 1, ...).
    # Sorting by the timestamp alone is stable, so arrival order breaks ties without a string sort.
    by_type: dict[str, pl.DataFrame] = {}
    for t in types:
        events = (
            rows.filter(pl.col("event_type") == t)
            .select("user_id", "timestamp")
            .sort("timestamp", maintain_order=True)
            .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over("user_id").alias("r"))
        )
        if t in repeated:
            # The as-of join may land on any of several equal timestamps: take the first of them.
            events = events.with_columns(pl.col("r").min().over("user_id", "timestamp").alias("r_first"))
        by_type[t] = events

    first = by_type[steps[0]]
    if window_ms is None:
        # Without a window the earliest step-1 event dominates every other choice.
        first = first.filter(pl.col("r") == 0)
    chains = first.select(
        "user_id",
        pl.col("timestamp").alias("t1"),
        pl.col("timestamp").alias("t_prev"),
        pl.col("r").alias(f"last_{types.index(steps[0])}"),
    )
    counts = [chains["user_id"].n_unique()]
    for step in steps[1:]:
        if chains.height == 0:
            counts.append(0)
            continue
        last = f"last_{types.index(step)}"
        events = by_type[step]
        q = "r_first" if step in repeated else "r"
        found = chains.sort("t_prev").join_asof(
            events.select("user_id", pl.col("timestamp").alias("t_found"), pl.col(q).alias("q")),
            left_on="t_prev",
            right_on="t_found",
            by="user_id",
            strategy="forward",
            check_sortedness=False,
        )
        found = found.filter(pl.col("q").is_not_null())
        if last in found.columns:
            # A repeated type: the event must come after the one the earlier step of this type took.
            found = found.with_columns(pl.max_horizontal("q", pl.col(last) + 1).alias("q"))
            found = found.drop("t_found").join(
                events.select("user_id", pl.col("r").alias("q"), pl.col("timestamp").alias("t_found")),
                on=["user_id", "q"],
                how="inner",
            )
        if window_ms is not None:
            found = found.filter(pl.col("t_found") - pl.col("t1") <= window_ms)
        chains = found.with_columns(pl.col("t_found").alias("t_prev"), pl.col("q").alias(last)).drop("t_found", "q")
        counts.append(chains["user_id"].n_unique())
    return counts
