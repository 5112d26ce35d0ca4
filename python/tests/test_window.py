from __future__ import annotations

import json
import math
import random

import polars as pl
import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.ops.window import WindowPlan, run
from engine_polars.plan import parse_plan
from engine_polars.store import EVENT_SCHEMA, EventStore
from engine_polars.tdigest import digest_from_values
from event_batches import T0, Event, events_ipc, read_ipc

PLANS = ("free", "pro")


def make_events(rng: random.Random, n: int) -> list[Event]:
    out = []
    for _ in range(n):
        r = rng.random()
        meta = None if r < 0.4 else json.dumps({"plan": rng.choice(PLANS)}) if r < 0.9 else json.dumps({"other": 1})
        value = None if rng.random() < 0.2 else rng.choice([rng.uniform(-50, 50), float(rng.randint(0, 3)), 1e6 + rng.gauss(0, 1)])
        out.append(Event(T0 + rng.randint(0, 9_999), rng.choice(("click", "view", "buy")), f"u{rng.randint(0, 30)}", value, meta))
    return out


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(3)
    store = EventStore()
    events: list[Event] = []
    for size in (700, 1, 0, 2_300):
        batch = make_events(rng, size)
        store.append(events_ipc(batch))
        events.extend(batch)
    return store, events


def group_of(e: Event, group_by: str | None) -> str | None:
    if group_by is None:
        return None
    if group_by == "metadata.plan":
        return None if e.metadata is None else json.loads(e.metadata).get("plan")
    return getattr(e, group_by)


def passes(e: Event, f: Filter) -> bool:
    return (f.start is None or e.timestamp >= f.start) and (f.end is None or e.timestamp < f.end) and (
        f.event_types is None or e.event_type in f.event_types
    )


def brute_force(events: list[Event], plan: WindowPlan) -> dict[tuple[int, str | None], tuple[int, list[float]]]:
    out: dict[tuple[int, str | None], tuple[int, list[float]]] = {}
    for e in events:
        if not passes(e, plan.filter):
            continue
        key = ((e.timestamp // plan.pane_ms) * plan.pane_ms, group_of(e, plan.group_by))
        n, values = out.get(key, (0, []))
        if e.value is not None:
            values.append(e.value)
        out[key] = (n + 1, values)
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def null_last(key: tuple[int, str | None]) -> tuple[int, bool, str]:
    return (key[0], key[1] is None, key[1] or "")


CASES = [
    WindowPlan(pane_ms=1_000, group_by="event_type", digest=True),
    WindowPlan(pane_ms=250, group_by=None, digest=True),
    WindowPlan(pane_ms=3_000, panes_per_window=3, group_by="metadata.plan", digest=True),
    WindowPlan(pane_ms=7, group_by="user_id", digest=False),
    WindowPlan(pane_ms=10_000, group_by=None, digest=True, filter=Filter(start=T0 + 1_000.5, end=T0 + 8_000, event_types=("buy", "view"))),
]


@pytest.mark.parametrize("plan", CASES, ids=lambda p: f"{p.pane_ms}ms-{p.group_by}-{p.digest}")
def test_partial_matches_brute_force_per_pane_and_group(loaded: tuple[EventStore, list[Event]], plan: WindowPlan) -> None:
    store, events = loaded
    rows = read_ipc(to_ipc_stream(run(plan, store.frame()))).to_pylist()
    expected = brute_force(events, plan)
    m = plan.metric
    summaries = [r for r in rows if r["count"] > 0]
    keys = [(r["pane_start"], r.get(plan.group_by) if plan.group_by else None) for r in summaries]
    assert keys == sorted(expected, key=null_last), "one summary row per (pane, group), sorted, null group last"
    centroids: dict[tuple[int, str | None], list[tuple[float, int]]] = {}
    current: tuple[int, str | None] | None = None
    for r in rows:
        key = (r["pane_start"], r.get(plan.group_by) if plan.group_by else None)
        if r["count"] > 0:
            assert r.get("digest_mean") is None and r.get("digest_weight") is None
            n, values = expected[key]
            assert r["count"] == n
            assert r[f"{m}__count"] == len(values)
            mean = math.fsum(values) / len(values) if values else None
            assert close(r[f"{m}__sum"], math.fsum(values) if values else None)
            assert close(r[f"{m}__min"], min(values) if values else None)
            assert close(r[f"{m}__max"], max(values) if values else None)
            assert close(r[f"{m}__mean"], mean)
            assert close(r[f"{m}__m2"], math.fsum((v - mean) ** 2 for v in values) if values else None)
            current = key
        else:
            assert plan.digest and key == current, "centroid rows follow their pane's summary row"
            assert r[f"{m}__count"] == 0 and r[f"{m}__mean"] is None
            centroids.setdefault(key, []).append((r["digest_mean"], r["digest_weight"]))
    if not plan.digest:
        assert "digest_mean" not in rows[0] if rows else True
        return
    for key, (_, values) in expected.items():
        want = digest_from_values(values)
        got = centroids.get(key, [])
        assert [w for _, w in got] == want.weights, f"{key}: centroid weights"
        assert all(close(a, b) for (a, _), b in zip(got, want.means)), f"{key}: centroid means"


@pytest.mark.parametrize("moments", [(), ("sum",), ("min", "max"), ("mean", "m2")])
def test_a_plan_naming_some_moments_gets_those_and_nulls_for_the_rest(loaded: tuple[EventStore, list[Event]], moments: tuple[str, ...]) -> None:
    store, _ = loaded
    full = run(WindowPlan(pane_ms=500, group_by="event_type", digest=True), store.frame())
    some = run(WindowPlan(pane_ms=500, group_by="event_type", digest=True, moments=moments), store.frame())
    assert some.schema == full.schema
    for moment in ("sum", "min", "max", "mean", "m2"):
        col = f"value__{moment}"
        if moment in moments:
            assert some[col].equals(full[col])
        else:
            assert some[col].null_count() == some.height
    rest = [c for c in full.columns if not c.startswith("value__") or c == "value__count"]
    assert some.select(rest).equals(full.select(rest))


@pytest.mark.parametrize("group_by", ["event_type", "user_id"])
@pytest.mark.parametrize("pane_ms", [7, 1_000])
def test_dictionary_coded_groups_packed_with_the_pane_give_the_partial_of_plain_text_groups(
    loaded: tuple[EventStore, list[Event]], group_by: str, pane_ms: int
) -> None:
    # the store's Categorical keys group as one Int64 with the pane; a plain frame's text keys do not
    store, events = loaded
    plain = pl.LazyFrame(
        [(e.timestamp, e.event_type, e.user_id, e.value, e.metadata) for e in events], schema=EVENT_SCHEMA, orient="row"
    )
    plan = WindowPlan(pane_ms=pane_ms, group_by=group_by, filter=Filter(start=T0 + 100, event_types=("buy", "view")))
    packed, text = run(plan, store.frame()), run(plan, plain)
    assert packed.height >= 20
    # the packed path groups on the streaming engine, whose sums add in row order (the in-memory
    # group-by compensates): the same groups, counts and extremes, the sums within rounding
    sums = ["value__sum", "value__mean", "value__m2"]
    assert packed.drop(sums).equals(text.drop(sums))
    for col in sums:
        assert all(close(a, b) for a, b in zip(packed[col], text[col])), col


def test_big_panes_have_compressed_digests_equal_to_digest_from_values() -> None:
    rng = random.Random(11)
    events = [Event(T0 + rng.randint(0, 1_999), "click", "u", rng.gauss(0, 1), None) for _ in range(30_000)]
    store = EventStore()
    store.append(events_ipc(events))
    df = run(WindowPlan(pane_ms=1_000, digest=True), store.frame())
    for pane in (T0, T0 + 1_000):
        part = df.filter((pl.col("pane_start") == pane) & (pl.col("count") == 0))
        want = digest_from_values([e.value for e in events if (e.timestamp // 1_000) * 1_000 == pane])
        assert 50 < len(want.weights) < 200
        assert part["digest_weight"].to_list() == want.weights
        assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(part["digest_mean"].to_list(), want.means))


def test_panes_floor_negative_timestamps_towards_minus_infinity() -> None:
    frame = pl.LazyFrame(
        {"timestamp": [-1_001, -1_000, -1, 0, 999], "event_type": ["a"] * 5, "user_id": ["u"] * 5, "value": [1.0] * 5, "metadata": [None] * 5},
        schema=EVENT_SCHEMA,
    )
    df = run(WindowPlan(pane_ms=1_000), frame)
    assert df.select("pane_start", "count").rows() == [(-2_000, 1), (-1_000, 2), (0, 2)]


def test_partial_schema_with_digest() -> None:
    table = read_ipc(to_ipc_stream(run(WindowPlan(group_by="metadata.plan", digest=True), EventStore().frame())))
    assert table.num_rows == 0
    assert [(f.name, f.type) for f in table.schema] == [
        ("pane_start", pa.int64()), ("metadata.plan", pa.large_string()), ("count", pa.int64()), ("value__count", pa.int64()),
        ("value__sum", pa.float64()), ("value__min", pa.float64()), ("value__max", pa.float64()),
        ("value__mean", pa.float64()), ("value__m2", pa.float64()), ("digest_mean", pa.float64()), ("digest_weight", pa.int64()),
    ]


def test_too_many_windows_over_the_data_range_is_a_bad_plan_naming_window_size(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    with pytest.raises(BadPlan, match="`windowSize`: 10003 windows"):
        run(WindowPlan(pane_ms=1, panes_per_window=4, max_windows=10_000), store.frame())
    # the same plan over a narrow filter is fine
    assert run(WindowPlan(pane_ms=1, panes_per_window=4, max_windows=10_000, filter=Filter(end=T0 + 100)), store.frame()).height > 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"metric": "value"}, "missing field `plan.pane_ms`"),
        ({"pane_ms": 0, "metric": "value"}, "`plan.pane_ms` must be an integer in [1, "),
        ({"pane_ms": 1.5, "metric": "value"}, "`plan.pane_ms` must be an integer"),
        ({"pane_ms": 10}, "missing field `plan.metric`"),
        ({"pane_ms": 10, "metric": "price"}, "unknown metric `price` in `plan.metric`"),
        ({"pane_ms": 10, "metric": "value", "group_by": "nope"}, "unknown dimension `nope` in `plan.group_by`"),
        ({"pane_ms": 10, "metric": "value", "digest": "yes"}, "`plan.digest` must be a boolean"),
        ({"pane_ms": 10, "metric": "value", "panes_per_window": True}, "`plan.panes_per_window` must be an integer"),
        ({"pane_ms": 10, "metric": "value", "extra": 1}, "unknown field `plan.extra`"),
        ({"pane_ms": 10, "metric": "value", "moments": ["sum", "p2"]}, "unknown moment `p2` in `plan.moments`"),
        ({"pane_ms": 10, "metric": "value", "moments": ["sum", "sum"]}, "duplicate moment `sum` in `plan.moments`"),
        ({"pane_ms": 10, "metric": "value", "moments": "sum"}, "`plan.moments` must be"),
    ],
)
def test_rejects_a_bad_window_plan_naming_the_field(raw: dict, message: str) -> None:
    with pytest.raises(BadPlan) as info:
        parse_plan({"kind": "window", **raw})
    assert info.value.message.startswith(message)


def test_parses_a_full_window_plan() -> None:
    plan = parse_plan(
        {"kind": "window", "filter": {"from": 5}, "pane_ms": 30_000, "panes_per_window": 2, "group_by": "metadata.plan",
         "metric": "value", "digest": True, "max_windows": 100_000, "moments": ["min", "max"]}
    )
    assert plan == WindowPlan(
        filter=Filter(start=5), pane_ms=30_000, panes_per_window=2, group_by="metadata.plan", digest=True, moments=("min", "max")
    )
