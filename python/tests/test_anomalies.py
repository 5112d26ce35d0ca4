"""The ``anomalies`` partial against a plain-Python brute force: z-scores, threshold, the shard's
top ``limit`` by |z| in the documented order, and the count of all anomalies."""

from __future__ import annotations

import json
import math
import random
import re

import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.ops.anomalies import AnomaliesPlan, GroupMoments, parse, run
from engine_polars.plan import Filter
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, read_ipc

METADATA = (None, '{"plan":"free"}', '{"plan":"pro"}', '{"other":1}')


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(5)
    store = EventStore()
    events: list[Event] = []
    for size in (400, 1, 300):
        batch = []
        for _ in range(size):
            roll = rng.random()
            value = None if roll < 0.1 else float(rng.choice([-40, 40, 95, -95])) if roll < 0.2 else float(round(rng.gauss(0, 10)))
            batch.append(
                Event(T0 + rng.randint(0, 50), rng.choice(("a", "b", "c")), f"u{rng.randint(0, 9)}", value, rng.choice(METADATA))
            )
        store.append(events_ipc(batch))
        events.extend(batch)
    return store, events


def group_of(e: Event, dim: str | None) -> str | None:
    if dim is None:
        return None
    if dim.startswith("metadata."):
        return None if e.metadata is None else json.loads(e.metadata).get(dim.removeprefix("metadata."))
    return str(getattr(e, dim))


def brute(events: list[Event], plan: AnomaliesPlan) -> list[tuple[float, Event, str | None]]:
    by_key = {g.key: g for g in plan.groups}
    hits = []
    for e in events:
        if e.value is None:
            continue
        if plan.filter.start is not None and e.timestamp < plan.filter.start:
            continue
        key = group_of(e, plan.group_by)
        g = by_key.get(key) if plan.group_by is not None else plan.groups[0]
        if g is None:
            continue
        z = (e.value - g.mean) / g.stddev
        if abs(z) > plan.threshold:
            hits.append((z, e, key))
    hits.sort(key=lambda h: (-abs(h[0]), h[1].timestamp, h[1].user_id, h[1].event_type, h[0], (h[1].metadata is None, h[1].metadata or "")))
    return hits


PLANS = {
    "global": AnomaliesPlan(column="value", threshold=2.0, limit=25, groups=(GroupMoments(None, 1.5, 12.0),)),
    "global, limit above hits": AnomaliesPlan(column="value", threshold=3.0, limit=10_000, groups=(GroupMoments(None, 0.0, 10.0),)),
    "global, filtered": AnomaliesPlan(column="value", threshold=1.0, limit=7, groups=(GroupMoments(None, 0.0, 10.0),), filter=Filter(start=T0 + 25)),
    "by event_type, one group missing": AnomaliesPlan(
        column="value", threshold=1.5, limit=30, group_by="event_type", groups=(GroupMoments("a", 2.0, 9.0), GroupMoments("c", -1.0, 20.0))
    ),
    "by metadata, with the null group": AnomaliesPlan(
        column="value", threshold=2.5, limit=50, group_by="metadata.plan", groups=(GroupMoments(None, 0.0, 5.0), GroupMoments("pro", 1.0, 30.0))
    ),
}


@pytest.mark.parametrize("name", list(PLANS))
def test_partial_is_the_shards_top_limit_by_abs_z_and_counts_all(loaded: tuple[EventStore, list[Event]], name: str) -> None:
    store, events = loaded
    plan = PLANS[name]
    rows = read_ipc(to_ipc_stream(run(plan, store.frame()))).to_pylist()
    want = brute(events, plan)
    assert want, "the plan must select some anomalies to be a useful test"
    assert len(rows) == min(plan.limit, len(want))
    assert all(r["total"] == len(want) for r in rows)
    for r, (z, e, key) in zip(rows, want):
        assert (r["timestamp"], r["event_type"], r["user_id"], r["value"], r["metadata"]) == (e.timestamp, e.event_type, e.user_id, e.value, e.metadata)
        assert math.isclose(r["z_score"], z, rel_tol=4e-16)  # same formula, polars may use 1/stddev
        if plan.group_by is not None:
            assert r["group_key"] == key


def test_partial_schema(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    table = read_ipc(to_ipc_stream(run(PLANS["by event_type, one group missing"], store.frame())))
    assert [(f.name, f.type) for f in table.schema] == [
        ("timestamp", pa.int64()),
        ("event_type", pa.string()),
        ("user_id", pa.string()),
        ("value", pa.float64()),
        ("metadata", pa.string()),
        ("z_score", pa.float64()),
        ("group_key", pa.string()),
        ("total", pa.int64()),
    ]


def test_no_groups_or_an_empty_store_give_no_rows() -> None:
    plan = AnomaliesPlan(column="value", threshold=1.0, limit=5, groups=())
    assert run(plan, EventStore().frame()).height == 0
    plan = AnomaliesPlan(column="value", threshold=1.0, limit=5, groups=(GroupMoments(None, 0.0, 1.0),))
    df = run(plan, EventStore().frame())
    assert df.height == 0 and df.columns[-1] == "total"


def test_threshold_is_strict() -> None:
    store = EventStore()
    store.append(events_ipc([Event(T0, "a", "u", 3.0, None), Event(T0 + 1, "a", "u", -3.0000001, None)]))
    plan = AnomaliesPlan(column="value", threshold=3.0, limit=5, groups=(GroupMoments(None, 0.0, 1.0),))
    assert run(plan, store.frame())["value"].to_list() == [-3.0000001]


GOOD = {"kind": "anomalies", "column": "value", "threshold": 3.0, "limit": 10, "groups": [{"key": None, "mean": 0.0, "stddev": 1.0}]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"column": "price"}, "plan.column"),
        ({"threshold": 0}, "plan.threshold"),
        ({"threshold": -1}, "plan.threshold"),
        ({"threshold": "3"}, "plan.threshold"),
        ({"limit": 0}, "plan.limit"),
        ({"limit": 10_001}, "plan.limit"),
        ({"limit": 2.5}, "plan.limit"),
        ({"group_by": "nope"}, "plan.group_by"),
        ({"groups": {}}, "plan.groups"),
        ({"groups": [{"key": None, "mean": 0.0, "stddev": 0.0}]}, "plan.groups[0].stddev"),
        ({"groups": [{"key": 1, "mean": 0.0, "stddev": 1.0}]}, "plan.groups[0].key"),
        ({"groups": [{"key": None, "stddev": 1.0}]}, "plan.groups[0].mean"),
        ({"groups": [{"key": "a", "mean": 0, "stddev": 1}, {"key": "b", "mean": 0, "stddev": 1}]}, "plan.groups"),
        ({"extra": True}, "plan.extra"),
    ],
)
def test_bad_plans_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(BadPlan, match=re.escape(f"`{field}")):
        parse({**GOOD, **change}, "plan")


def test_z_matches_the_textbook_formula_within_an_ulp() -> None:
    v, mean, sd = 123.456, 7.25, 3.3
    store = EventStore()
    store.append(events_ipc([Event(T0, "a", "u", v, None)]))
    [row] = run(AnomaliesPlan(column="value", threshold=1.0, limit=1, groups=(GroupMoments(None, mean, sd),)), store.frame()).to_dicts()
    assert math.isclose(row["z_score"], (v - mean) / sd, rel_tol=4e-16)
