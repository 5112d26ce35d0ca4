"""The ``percentiles`` partial against a plain-Python brute force: per-group digests built by the
documented definition (sort, cut at ``unit_bucket_ends``, bucket sum / size) and exact value
counts; and the exact merge's definition checked against ``pl.Series.quantile(q, "linear")``."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter

import polars as pl
import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.ops.percentiles import PercentilesPlan, parse, run
from engine_polars.store import EventStore
from engine_polars.tdigest import unit_bucket_ends
from event_batches import T0, Event, events_ipc, read_ipc

METADATA = (None, '{"plan":"free"}', '{"plan":"pro"}', '{"other":1}')


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(9)
    store = EventStore()
    events: list[Event] = []
    for size in (3000, 1, 2500):
        batch = []
        for _ in range(size):
            roll = rng.random()
            value = None if roll < 0.1 else float(rng.randint(0, 20)) if roll < 0.4 else rng.lognormvariate(0, 2)
            batch.append(Event(T0 + rng.randint(0, 100), rng.choice(("a", "b", "c")), f"u{rng.randint(0, 9)}", value, rng.choice(METADATA)))
        store.append(events_ipc(batch))
        events.extend(batch)
    return store, events


def group_of(e: Event, dim: str | None) -> str | None:
    if dim is None:
        return None
    if dim.startswith("metadata."):
        return None if e.metadata is None else json.loads(e.metadata).get(dim.removeprefix("metadata."))
    return str(getattr(e, dim))


def brute_values(events: list[Event], plan: PercentilesPlan) -> dict[str | None, list[float]]:
    out: dict[str | None, list[float]] = {}
    for e in events:
        if e.value is None or not math.isfinite(e.value):
            continue
        if plan.filter.start is not None and e.timestamp < plan.filter.start:
            continue
        if plan.filter.event_types is not None and e.event_type not in plan.filter.event_types:
            continue
        out.setdefault(group_of(e, plan.group_by), []).append(e.value)
    return out


def brute_digest(values: list[float], compression: float) -> list[tuple[float, int]]:
    xs = sorted(values)
    out, left = [], 0
    for right in unit_bucket_ends(len(xs), compression):
        out.append((math.fsum(xs[left:right]) / (right - left), right - left))
        left = right
    return out


PLANS = {
    "global": PercentilesPlan(column="value"),
    "by event_type": PercentilesPlan(column="value", group_by="event_type"),
    "by metadata.plan, filtered": PercentilesPlan(
        column="value", group_by="metadata.plan", filter=Filter(start=T0 + 30, event_types=("a", "b"))
    ),
    "small compression": PercentilesPlan(column="value", group_by="user_id", compression=20),
}


def key_order(k: str | None) -> tuple[int, str]:
    return (1, "") if k is None else (0, k)


@pytest.mark.parametrize("name", PLANS)
def test_digest_partial_is_each_groups_digest(loaded: tuple[EventStore, list[Event]], name: str) -> None:
    store, events = loaded
    plan = PLANS[name]
    rows = read_ipc(to_ipc_stream(run(plan, store.frame()))).to_pylist()
    want = brute_values(events, plan)
    got: dict[str | None, list[dict[str, object]]] = {}
    for r in rows:
        got.setdefault(r.get("group_key"), []).append(r)
    assert list(got) == sorted(want, key=key_order)
    for key, values in want.items():
        centroids = got[key]
        assert all(c["count"] == len(values) and c["min"] == min(values) and c["max"] == max(values) for c in centroids)
        expected = brute_digest(values, plan.compression)
        assert [c["weight"] for c in centroids] == [w for _, w in expected]
        for c, (mean, _) in zip(centroids, expected):
            assert c["mean"] == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("name", PLANS)
def test_exact_partial_is_each_groups_value_counts(loaded: tuple[EventStore, list[Event]], name: str) -> None:
    store, events = loaded
    base = PLANS[name]
    plan = PercentilesPlan(column=base.column, group_by=base.group_by, exact=True, filter=base.filter)
    rows = read_ipc(to_ipc_stream(run(plan, store.frame()))).to_pylist()
    want = {(k, v): n for k, vs in brute_values(events, plan).items() for v, n in Counter(vs).items()}
    got = {(r.get("group_key"), r["value"]): r["count"] for r in rows}
    assert got == want
    keys = [(key_order(r.get("group_key")), r["value"]) for r in rows]
    assert keys == sorted(keys)


def linear_rank_walk(counts: list[tuple[float, int]], q: float) -> float:
    """The merge's definition (src/merge/percentiles.ts `exactQuantile`), in Python."""
    total = sum(n for _, n in counts)
    h = (total - 1) * q
    lo, hi = math.floor(h), math.ceil(h)
    lower = upper = math.nan
    seen = 0
    for v, n in counts:
        seen += n
        if math.isnan(lower) and lo < seen:
            lower = v
        if hi < seen:
            upper = v
            break
    return lower if lower == upper else (h - lo) * (upper - lower) + lower


def test_exact_rank_walk_equals_polars_linear_quantile(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    rows = run(PercentilesPlan(column="value", exact=True), store.frame()).rows()
    values = pl.Series([e.value for e in events], dtype=pl.Float64).drop_nulls()
    for q in (0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0, random.Random(1).random()):
        assert linear_rank_walk(rows, q) == values.quantile(q, interpolation="linear"), q


def test_partial_schema_and_empty_store() -> None:
    for plan in (PercentilesPlan(column="value", group_by="event_type"), PercentilesPlan(column="value", exact=True)):
        table = read_ipc(to_ipc_stream(run(plan, EventStore().frame())))
        assert table.num_rows == 0
        if plan.exact:
            assert table.schema.names == ["value", "count"]
            assert table.schema.field("count").type == pa.int64()
        else:
            assert table.schema.names == ["group_key", "count", "min", "max", "mean", "weight"]
            assert table.schema.field("group_key").type == pa.large_string()
            assert table.schema.field("weight").type == pa.int64()


def test_groups_without_finite_values_have_no_rows() -> None:
    store = EventStore()
    store.append(events_ipc([Event(T0, "a", "u", None, None), Event(T0, "b", "u", 2.0, None)]))
    df = run(PercentilesPlan(column="value", group_by="event_type"), store.frame())
    assert df["group_key"].to_list() == ["b"]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"kind": "percentiles"}, "missing field `plan.column`"),
        ({"kind": "percentiles", "column": "price"}, "`plan.column`"),
        ({"kind": "percentiles", "column": "value", "group_by": "nope"}, "`plan.group_by`"),
        ({"kind": "percentiles", "column": "value", "exact": "yes"}, "`plan.exact` must be a boolean"),
        ({"kind": "percentiles", "column": "value", "compression": 0.5}, "`plan.compression`"),
        ({"kind": "percentiles", "column": "value", "compression": True}, "`plan.compression`"),
        ({"kind": "percentiles", "column": "value", "extra": 1}, "unknown field `plan.extra`"),
        ({"kind": "percentiles", "column": "value", "filter": {"from": "x"}}, "`plan.filter.from`"),
    ],
)
def test_parse_rejects_bad_plans(obj: dict[str, object], message: str) -> None:
    with pytest.raises(BadPlan, match=re.escape(message)):
        parse(obj, "plan")


def test_parse_defaults() -> None:
    plan = parse({"kind": "percentiles", "column": "value", "group_by": None}, "plan")
    assert plan == PercentilesPlan(column="value")
