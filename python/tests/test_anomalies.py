"""The ``anomalies`` partial against a plain-Python brute force: z-scores, threshold, the shard's
top ``limit`` by |z| in the documented order, and the count of all anomalies."""

from __future__ import annotations

import json
import math
import random
import re

import polars as pl
import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadFrame, BadPlan
from engine_polars.filters import Filter
from engine_polars.handlers import OPS
from engine_polars.ops.anomalies import AnomaliesPlan, groups_frame, parse, run
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, ipc_stream, read_ipc

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


def moments(*rows: tuple[str | None, float, float]) -> pl.DataFrame:
    return groups_frame(rows)


def brute(events: list[Event], plan: AnomaliesPlan) -> list[tuple[float, Event, str | None]]:
    by_key = {key: (mean, stddev) for key, mean, stddev in plan.groups.iter_rows()}
    hits = []
    for e in events:
        if e.value is None:
            continue
        if plan.filter.start is not None and e.timestamp < plan.filter.start:
            continue
        key = group_of(e, plan.group_by)
        g = by_key.get(key) if plan.group_by is not None else plan.groups.row(0)[1:]
        if g is None:
            continue
        z = (e.value - g[0]) / g[1]
        if abs(z) > plan.threshold:
            hits.append((z, e, key))
    hits.sort(key=lambda h: (-abs(h[0]), h[1].timestamp, h[1].user_id, h[1].event_type, h[0], (h[1].metadata is None, h[1].metadata or "")))
    return hits


PLANS = {
    "global": AnomaliesPlan(column="value", threshold=2.0, limit=25, groups=moments((None, 1.5, 12.0))),
    "global, limit above hits": AnomaliesPlan(column="value", threshold=3.0, limit=10_000, groups=moments((None, 0.0, 10.0))),
    "global, filtered": AnomaliesPlan(column="value", threshold=1.0, limit=7, groups=moments((None, 0.0, 10.0)), filter=Filter(start=T0 + 25)),
    "by event_type, one group missing": AnomaliesPlan(
        column="value", threshold=1.5, limit=30, group_by="event_type", groups=moments(("a", 2.0, 9.0), ("c", -1.0, 20.0))
    ),
    "by metadata, with the null group": AnomaliesPlan(
        column="value", threshold=2.5, limit=50, group_by="metadata.plan", groups=moments((None, 0.0, 5.0), ("pro", 1.0, 30.0))
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
        ("event_type", pa.large_string()),
        ("user_id", pa.large_string()),
        ("value", pa.float64()),
        ("metadata", pa.large_string()),
        ("z_score", pa.float64()),
        ("group_key", pa.large_string()),
        ("total", pa.int64()),
    ]


def test_no_groups_or_an_empty_store_give_no_rows() -> None:
    plan = AnomaliesPlan(column="value", threshold=1.0, limit=5, groups=moments())
    assert run(plan, EventStore().frame()).height == 0
    plan = AnomaliesPlan(column="value", threshold=1.0, limit=5, groups=moments((None, 0.0, 1.0)))
    df = run(plan, EventStore().frame())
    assert df.height == 0 and df.columns[-1] == "total"


def test_threshold_is_strict() -> None:
    store = EventStore()
    store.append(events_ipc([Event(T0, "a", "u", 3.0, None), Event(T0 + 1, "a", "u", -3.0000001, None)]))
    plan = AnomaliesPlan(column="value", threshold=3.0, limit=5, groups=moments((None, 0.0, 1.0)))
    assert run(plan, store.frame())["value"].to_list() == [-3.0000001]


GOOD = {"kind": "anomalies", "column": "value", "threshold": 3.0, "limit": 10}


def groups_body(rows: list[tuple[object, object, object]], schema: pa.Schema | None = None) -> bytes:
    schema = schema or pa.schema([("key", pa.string()), ("mean", pa.float64()), ("stddev", pa.float64())])
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(schema.names)}, schema=schema)
    return ipc_stream(table)


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
        ({"groups": [{"key": None, "mean": 0.0, "stddev": 1.0}]}, "plan.groups"),
        ({"extra": True}, "plan.extra"),
    ],
)
def test_bad_plans_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(BadPlan, match=re.escape(f"`{field}")):
        parse({**GOOD, **change}, "plan")


def test_reads_the_groups_moments_from_the_arrow_body() -> None:
    body = groups_body([("a", 1.5, 2.0), (None, -3.0, 0.5), ("ü ✓", 0.0, 1e-300)])
    plan = parse({**GOOD, "group_by": "event_type"}, "plan", body)
    assert plan.groups.rows() == [("a", 1.5, 2.0), (None, -3.0, 0.5), ("ü ✓", 0.0, 1e-300)]
    plan = parse(GOOD, "plan", groups_body([(None, 1.0, 2.0)]))
    assert plan.groups.rows() == [(None, 1.0, 2.0)]


def test_an_all_null_key_column_of_type_null_is_accepted() -> None:
    schema = pa.schema([("key", pa.null()), ("mean", pa.float64()), ("stddev", pa.float64())])
    plan = parse(GOOD, "plan", groups_body([(None, 1.0, 2.0)], schema))
    assert plan.groups.rows() == [(None, 1.0, 2.0)] and plan.groups.schema["key"] == pl.String


@pytest.mark.parametrize("body", [b"", "zero rows"])
def test_an_empty_body_or_zero_rows_mean_no_usable_groups_and_an_empty_partial(
    loaded: tuple[EventStore, list[Event]], body: bytes | str
) -> None:
    store, _ = loaded
    raw = groups_body([]) if body == "zero rows" else body
    assert isinstance(raw, bytes)
    for group_by in (None, "event_type"):
        plan = parse({**GOOD, "group_by": group_by, "threshold": 0.001}, "plan", raw)
        out = run(plan, store.frame())
        assert out.height == 0 and out.columns[-1] == "total"


def test_query_many_gives_an_anomalies_plan_an_empty_body(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    many = OPS["query_many"]({"id": 1, "op": "query_many", "plans": [GOOD]}, groups_body([(None, 0.0, 1.0)]), store)
    assert read_ipc(many.body).num_rows == 0


def test_the_query_op_reads_the_groups_from_its_body(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    body = groups_body([("a", 2.0, 9.0), ("c", -1.0, 20.0)])
    reply = OPS["query"]({"id": 1, "op": "query", "plan": {**GOOD, "group_by": "event_type", "threshold": 1.5, "limit": 30}}, body, store)
    want = brute(events, PLANS["by event_type, one group missing"])
    assert [r["z_score"] for r in read_ipc(reply.body).to_pylist()] == pytest.approx([z for z, _, _ in want][:30], rel=4e-16)


F64 = pa.float64()


@pytest.mark.parametrize(
    ("group_by", "body", "message"),
    [
        (None, b"not arrow", "body is not a readable Arrow IPC stream"),
        (None, "truncated", "body is not a readable Arrow IPC stream"),
        (None, pa.schema([("key", pa.string()), ("mean", F64)]), "anomalies body has columns `key`, `mean`; expected `key`, `mean`, `stddev`"),
        (None, pa.schema([("key", pa.string()), ("mean", F64), ("stddev", F64), ("n", F64)]), "anomalies body has columns"),
        (None, pa.schema([("mean", F64), ("key", pa.string()), ("stddev", F64)]), "anomalies body has columns `mean`, `key`, `stddev`"),
        (None, pa.schema([("key", pa.int64()), ("mean", F64), ("stddev", F64)]), "anomalies body column `key` has type `Int64`; expected `String`"),
        (None, pa.schema([("key", pa.string()), ("mean", pa.float32()), ("stddev", F64)]), "anomalies body column `mean` has type `Float32`"),
        ("event_type", [("a", 0.0, 0.0)], "anomalies body column `stddev` must be finite and > 0; row 0 has 0.0"),
        ("event_type", [("a", 0.0, 1.0), ("b", 0.0, -1.0)], "anomalies body column `stddev` must be finite and > 0; row 1 has -1.0"),
        ("event_type", [("a", 0.0, math.inf)], "anomalies body column `stddev` must be finite and > 0; row 0 has inf"),
        ("event_type", [("a", 0.0, None)], "anomalies body column `stddev` must be finite and > 0; row 0 has None"),
        ("event_type", [("a", math.nan, 1.0)], "anomalies body column `mean` must be finite; row 0 has nan"),
        ("event_type", [("a", None, 1.0)], "anomalies body column `mean` must be finite; row 0 has None"),
        ("event_type", [("a", 0.0, 1.0), (None, 0.0, 1.0), ("a", 1.0, 1.0)], "anomalies body column `key` repeats 'a' at row 0"),
        ("event_type", [(None, 0.0, 1.0), (None, 1.0, 1.0)], "anomalies body column `key` repeats None"),
        (None, [(None, 0.0, 1.0), (None, 1.0, 2.0)], "anomalies body without `group_by` must hold at most one row, with a null `key`"),
        (None, [("a", 0.0, 1.0)], "anomalies body without `group_by` must hold at most one row, with a null `key`"),
    ],
)
def test_rejects_a_bad_groups_body_as_bad_frame_naming_the_column(group_by: str | None, body: object, message: str) -> None:
    if body == "truncated":
        whole = groups_body([(None, 0.0, 1.0)])
        raw = whole[: len(whole) // 2]
    elif isinstance(body, pa.Schema):
        raw = groups_body([tuple(1 if f.type == pa.int64() else 1.0 if pa.types.is_floating(f.type) else "a" for f in body)], body)
    elif isinstance(body, list):
        raw = groups_body(body)
    else:
        assert isinstance(body, bytes)
        raw = body
    with pytest.raises(BadFrame) as info:
        parse({**GOOD, "group_by": group_by}, "plan", raw)
    assert info.value.code == "BAD_FRAME"
    assert info.value.message.startswith(message)


def test_z_matches_the_textbook_formula_within_an_ulp() -> None:
    v, mean, sd = 123.456, 7.25, 3.3
    store = EventStore()
    store.append(events_ipc([Event(T0, "a", "u", v, None)]))
    [row] = run(AnomaliesPlan(column="value", threshold=1.0, limit=1, groups=moments((None, mean, sd))), store.frame()).to_dicts()
    assert math.isclose(row["z_score"], (v - mean) / sd, rel_tol=4e-16)
