from __future__ import annotations

import math
import random
from collections.abc import Iterable

import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.filters import Filter
from engine_polars.ops.aggregate import AggregatePlan
from engine_polars.ops.aggregate import run as run_aggregate
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, random_events, read_ipc

GROUPINGS = [(), ("event_type",), ("user_id",), ("event_type", "user_id")]
FILTERS = {
    "none": Filter(),
    "from": Filter(start=T0 + 2_500),
    "to": Filter(end=T0 + 7_000),
    "window": Filter(start=T0 + 1_000, end=T0 + 4_000),
    "fractional window": Filter(start=T0 + 999.5, end=T0 + 4_000.25),  # keeps 4000, not 999
    "event types": Filter(event_types=("click", "purchase", "no_such_type")),
    "users": Filter(user_ids=("user_1", "user_3", "ünïcode ✓")),
    "everything": Filter(start=T0 + 500, end=T0 + 9_000, event_types=("click", "page_view"), user_ids=("user_2", "user_5")),
    "nothing matches": Filter(start=T0 + 20_000),
}


def passes(e: Event, f: Filter) -> bool:
    return (
        (f.start is None or e.timestamp >= f.start)
        and (f.end is None or e.timestamp < f.end)
        and (f.event_types is None or e.event_type in f.event_types)
        and (f.user_ids is None or e.user_id in f.user_ids)
    )


def brute_force(events: Iterable[Event], plan: AggregatePlan) -> dict[tuple[str, ...], dict[str, object]]:
    """The partial computed independently, in plain Python with exact sums."""
    groups: dict[tuple[str, ...], list[Event]] = {}
    for e in events:
        if passes(e, plan.filter):
            groups.setdefault(tuple(getattr(e, k) for k in plan.group_by), []).append(e)
    if not plan.group_by and not groups:
        groups[()] = []
    out = {}
    for key, members in groups.items():
        row: dict[str, object] = {"count": len(members)}
        values = [e.value for e in members if e.value is not None]
        n = len(values)
        mean = math.fsum(values) / n if n else None
        row.update(
            {
                "value__count": n,
                "value__sum": math.fsum(values) if n else None,
                "value__min": min(values) if n else None,
                "value__max": max(values) if n else None,
                "value__mean": mean,
                "value__m2": math.fsum((v - mean) ** 2 for v in values) if n else None,
            }
        )
        out[key] = row
    return out


def close(actual: object, expected: object, scale: float) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, int):
        return actual == expected
    assert isinstance(actual, float) and isinstance(expected, float)
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9 * scale)


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(20240601)
    store = EventStore()
    events: list[Event] = []
    for size in (400, 1, 250, 0, 349):  # several chunks, one of one row, one empty append
        batch = random_events(rng, size)
        store.append(events_ipc(batch))
        events.extend(batch)
    # a group whose values are all null, to check the null moments
    nulls = [Event(T0 + 5, "refund", "user_0", None, None) for _ in range(3)]
    # events on and beside every filter bound, so inclusive/exclusive and rounding show
    edges = [Event(T0 + d, "click", "user_2", float(d), None) for d in (499, 500, 999, 1_000, 2_500, 3_999, 4_000, 4_001, 6_999, 7_000, 8_999, 9_000)]
    store.append(events_ipc(nulls + edges))
    return store, events + nulls + edges


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: "[" + ",".join(g) + "]")
@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_partial_matches_brute_force(loaded: tuple[EventStore, list[Event]], group_by: tuple[str, ...], filter_name: str) -> None:
    store, events = loaded
    plan = AggregatePlan(filter=FILTERS[filter_name], group_by=group_by, metrics=("value",))
    table = read_ipc(to_ipc_stream(run_aggregate(plan, store.frame())))
    expected = brute_force(events, plan)
    rows = table.to_pylist()
    keys = [tuple(r[k] for k in group_by) for r in rows]
    assert keys == sorted(expected), "one row per group, sorted by the group keys"
    scale = max((abs(e.value) for e in events if e.value is not None), default=1.0) * len(events)
    for key, row in zip(keys, rows):
        for column, want in expected[key].items():
            assert close(row[column], want, scale), f"{key} {column}: {row[column]} != {want}"


def test_partial_schema_is_keys_large_utf8_then_int64_counts_then_float64_moments(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    plan = AggregatePlan(group_by=("user_id", "event_type"), metrics=("value",))
    schema = read_ipc(to_ipc_stream(run_aggregate(plan, store.frame()))).schema
    assert [(f.name, f.type) for f in schema] == [
        ("user_id", pa.large_string()),
        ("event_type", pa.large_string()),
        ("count", pa.int64()),
        ("value__count", pa.int64()),
        ("value__sum", pa.float64()),
        ("value__min", pa.float64()),
        ("value__max", pa.float64()),
        ("value__mean", pa.float64()),
        ("value__m2", pa.float64()),
    ]


def test_a_group_with_only_null_values_has_null_moments(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    plan = AggregatePlan(filter=Filter(event_types=("refund",)), group_by=("event_type",), metrics=("value",))
    [row] = run_aggregate(plan, store.frame()).to_dicts()
    assert row == {
        "event_type": "refund", "count": 3, "value__count": 0, "value__sum": None,
        "value__min": None, "value__max": None, "value__mean": None, "value__m2": None,
    }


def test_global_partial_on_an_empty_store_is_one_row_with_count_zero() -> None:
    plan = AggregatePlan(group_by=(), metrics=("value",))
    table = read_ipc(to_ipc_stream(run_aggregate(plan, EventStore().frame())))
    assert table.to_pylist() == [
        {"count": 0, "value__count": 0, "value__sum": None, "value__min": None,
         "value__max": None, "value__mean": None, "value__m2": None},
    ]


def test_grouped_partial_on_an_empty_store_has_no_rows_but_the_full_schema() -> None:
    plan = AggregatePlan(group_by=("event_type",), metrics=("value",))
    table = read_ipc(to_ipc_stream(run_aggregate(plan, EventStore().frame())))
    assert table.num_rows == 0
    assert table.schema.names == ["event_type", "count", "value__count", "value__sum", "value__min", "value__max", "value__mean", "value__m2"]


def test_without_metrics_the_partial_has_only_keys_and_count(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    plan = AggregatePlan(group_by=("event_type",), metrics=())
    df = run_aggregate(plan, store.frame())
    assert df.columns == ["event_type", "count"]
    assert df["count"].sum() == len(events)


def test_m2_stays_accurate_for_large_values_with_small_spread() -> None:
    # sum(x^2) - n*mean^2 would lose every digit here; the two-pass m2 must not
    base = 1e9
    deltas = [0.25 * i for i in range(-20, 21)]
    events = [Event(T0 + i, "click", "u", base + d, None) for i, d in enumerate(deltas)]
    store = EventStore()
    store.append(events_ipc(events))
    [row] = run_aggregate(AggregatePlan(metrics=("value",)), store.frame()).to_dicts()
    assert math.isclose(row["value__m2"], math.fsum(d * d for d in deltas), rel_tol=1e-9)


def _dimension(e: Event, key: str, window_ms: int) -> object:
    if key == "window":
        return (e.timestamp // window_ms) * window_ms
    if key.startswith("metadata."):
        import json

        meta = json.loads(e.metadata) if e.metadata else {}
        v = meta.get(key.split(".", 1)[1])
        return None if v is None else v if isinstance(v, str) else json.dumps(v)
    return getattr(e, key)


@pytest.mark.parametrize(
    ("group_by", "window_ms"),
    [(("window",), 1_000), (("metadata.i",), None), (("window", "metadata.i", "event_type"), 333), (("metadata.missing", "window"), 7)],
    ids=str,
)
def test_window_and_metadata_groups_match_brute_force(loaded: tuple[EventStore, list[Event]], group_by: tuple[str, ...], window_ms: int | None) -> None:
    store, events = loaded
    plan = AggregatePlan(group_by=group_by, metrics=("value",), window_ms=window_ms, filter=Filter(start=T0 + 100))
    table = read_ipc(to_ipc_stream(run_aggregate(plan, store.frame())))
    columns = ["window_start" if k == "window" else k for k in group_by]
    assert table.schema.names[: len(columns)] == columns
    for k, c in zip(group_by, columns):
        assert table.schema.field(c).type == (pa.int64() if k == "window" else pa.large_string())
    groups: dict[tuple[object, ...], list[Event]] = {}
    for e in events:
        if passes(e, plan.filter):
            groups.setdefault(tuple(_dimension(e, k, window_ms or 1) for k in group_by), []).append(e)
    rows = table.to_pylist()
    keys = [tuple(r[c] for c in columns) for r in rows]
    assert sorted(keys, key=lambda t: tuple((x is None, x) for x in t)) == keys, "sorted, nulls last"
    assert set(keys) == set(groups) and len(keys) == len(groups)
    for key, row in zip(keys, rows):
        members = groups[key]
        values = [e.value for e in members if e.value is not None]
        assert row["count"] == len(members)
        assert row["value__count"] == len(values)
        if values:
            assert math.isclose(row["value__sum"], math.fsum(values), rel_tol=1e-9, abs_tol=1e-6)


def test_metadata_json_numbers_group_as_their_json_text() -> None:
    store = EventStore()
    store.append(events_ipc([Event(T0, "a", "u", 1.0, '{"i": 5}'), Event(T0, "a", "u", 2.0, '{"i": 5}'), Event(T0, "a", "u", 3.0, None)]))
    rows = run_aggregate(AggregatePlan(group_by=("metadata.i",), metrics=()), store.frame()).rows()
    assert rows == [("5", 2), (None, 1)]


def test_window_groups_floor_negative_timestamps() -> None:
    import polars as pl

    from engine_polars.store import EVENT_SCHEMA

    frame = pl.LazyFrame(
        {"timestamp": [-1, 0, 59_999, 60_000], "event_type": ["a"] * 4, "user_id": ["u"] * 4, "value": [1.0] * 4, "metadata": [None] * 4},
        schema=EVENT_SCHEMA,
    )
    rows = run_aggregate(AggregatePlan(group_by=("window",), metrics=(), window_ms=60_000), frame).rows()
    assert rows == [(-60_000, 1), (0, 2), (60_000, 1)]


def test_too_many_windows_is_a_bad_plan_naming_window_size() -> None:
    from engine_polars.errors import BadPlan

    store = EventStore()
    # 1 ms windows from T0 to T0 + 100,000 ms: 100,001 windows, one over the limit
    store.append(events_ipc([Event(T0, "a", "u", 1.0, None), Event(T0 + 100_000, "a", "u", 1.0, None)]))
    with pytest.raises(BadPlan, match="^`windowSize`: 100001 windows"):
        run_aggregate(AggregatePlan(group_by=("window",), metrics=(), window_ms=1), store.frame())
    assert run_aggregate(AggregatePlan(group_by=("window",), metrics=(), window_ms=2), store.frame()).height == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"group_by": ["window"]}, "`plan.window_ms` must be an integer in 1..31622400000 with a `window` group key"),
        ({"group_by": ["window"], "window_ms": 0}, "`plan.window_ms` must be an integer in 1..31622400000"),
        ({"group_by": ["window"], "window_ms": 31622400001}, "`plan.window_ms` must be an integer in 1..31622400000"),
        ({"group_by": ["event_type"], "window_ms": 10}, "`plan.window_ms` needs a `window` group key"),
        ({"group_by": ["metadata."]}, "unknown group key `metadata.` in `plan.group_by`"),
        ({"group_by": ["window", "window"], "window_ms": 5}, "duplicate group key `window`"),
    ],
)
def test_rejects_bad_window_or_dimension_group_keys(raw: dict, message: str) -> None:
    from engine_polars.errors import BadPlan
    from engine_polars.plan import parse_plan

    with pytest.raises(BadPlan) as info:
        parse_plan({"kind": "aggregate", "filter": {}, "metrics": ["value"], **raw})
    assert info.value.message.startswith(message)


def test_parses_window_and_dimension_group_keys() -> None:
    from engine_polars.plan import parse_plan

    plan = parse_plan({"kind": "aggregate", "filter": {}, "metrics": [], "group_by": ["window", "metadata.plan", "users.tier"], "window_ms": 60_000})
    assert plan.group_by == ("window", "metadata.plan", "users.tier") and plan.window_ms == 60_000


@pytest.mark.parametrize("group_by", [("user_id",), ("event_type", "user_id"), ("user_id", "event_type")], ids=lambda g: ",".join(g))
@pytest.mark.parametrize("filter_name", ["none", "window", "everything", "nothing matches"])
def test_finished_rows_are_the_answer_rows_sorted_by_the_keys(loaded: tuple[EventStore, list[Event]], group_by: tuple[str, ...], filter_name: str) -> None:
    import json

    store, events = loaded
    plan = AggregatePlan(filter=FILTERS[filter_name], group_by=group_by, metrics=("value",), finish=True)
    table = read_ipc(to_ipc_stream(run_aggregate(plan, store.frame())))
    assert [(f.name, f.type) for f in table.schema] == [*((k, pa.large_string()) for k in group_by), ("__row", pa.large_string()), ("__reparse", pa.bool_())]
    expected = brute_force(events, plan)
    texts = table.column("__row").to_pylist()
    rows = [json.loads(t) for t in texts]
    keys = [tuple(r[k] for k in group_by) for r in rows]
    assert keys == sorted(expected) == [tuple(r[k] for k in group_by) for r in table.select(list(group_by)).to_pylist()]
    scale = max((abs(e.value) for e in events if e.value is not None), default=1.0) * len(events)
    for key, row in zip(keys, rows):
        want = expected[key]
        assert list(row) == [*group_by, "count", "value_count", "value_sum", "value_mean", "value_min", "value_max", "value_stddev"]
        assert (row["count"], row["value_count"]) == (want["count"], want["value__count"])
        n = want["value__count"]
        stddev = math.sqrt(want["value__m2"] / n) if n else None  # type: ignore[operator]
        for field, value in (("value_sum", want["value__sum"]), ("value_mean", want["value__mean"]), ("value_min", want["value__min"]), ("value_max", want["value__max"]), ("value_stddev", stddev)):
            assert close(None if row[field] is None else float(row[field]), value, scale), f"{key} {field}: {row[field]} != {value}"


def test_finished_rows_put_null_keys_last_and_carry_window_end() -> None:
    import json

    store = EventStore()
    store.append(events_ipc([Event(T0 + 5, "a", "u2", 1.0, '{"plan": "pro"}'), Event(T0, "a", "u1", 2.0, None), Event(T0 + 1, "a", "u1", 4.0, '{"plan": "free"}')]))
    plan = AggregatePlan(group_by=("metadata.plan", "user_id"), metrics=("value",), finish=True)
    rows = [json.loads(t) for t in run_aggregate(plan, store.frame())["__row"]]
    assert [(r["metadata.plan"], r["user_id"], r["value_sum"]) for r in rows] == [("free", "u1", 4), ("pro", "u2", 1), (None, "u1", 2)]
    plan = AggregatePlan(group_by=("user_id", "window"), metrics=(), window_ms=1_000, finish=True)
    rows = [json.loads(t) for t in run_aggregate(plan, store.frame())["__row"]]
    start = T0 // 1_000 * 1_000
    assert rows == [
        {"user_id": "u1", "window_start": start, "window_end": start + 1_000, "count": 2},
        {"user_id": "u2", "window_start": start, "window_end": start + 1_000, "count": 1},
    ]


def test_finish_must_be_a_boolean() -> None:
    from engine_polars.errors import BadPlan
    from engine_polars.ops.aggregate import parse

    assert parse({"group_by": ["user_id"], "metrics": [], "finish": True}, "plan").finish is True
    with pytest.raises(BadPlan, match="`plan.finish` must be a boolean"):
        parse({"group_by": ["user_id"], "metrics": [], "finish": 1}, "plan")


@pytest.mark.parametrize("group_by", [("user_id",), ("event_type", "user_id"), ("user_id", "event_type")], ids=lambda g: ",".join(g))
@pytest.mark.parametrize("finish", [False, True])
def test_many_groups_of_dictionary_keys_match_brute_force(group_by: tuple[str, ...], finish: bool) -> None:
    # Enough users and types for the packed rank key (and its order: unicode and prefixes).
    import json

    rng = random.Random(7)
    users = [f"u{i}" for i in range(1_000)] + ["ü", "u", "u10a", "Z", "😀", "\uff5e"]
    types = [f"t{i:02d}" for i in range(25)] + ["é"]
    events = [
        Event(T0 + rng.randint(0, 5_000), rng.choice(types), rng.choice(users), None if rng.random() < 0.2 else rng.gauss(1e9, 2.0), None)
        for _ in range(3_000)
    ]
    store = EventStore()
    for part in (events[:1_000], events[1_000:1_001], events[1_001:]):
        store.append(events_ipc(part))
    plan = AggregatePlan(group_by=group_by, metrics=("value",), filter=Filter(start=T0 + 100), finish=finish)
    out = run_aggregate(plan, store.frame())
    expected = brute_force(events, plan)
    if finish:
        rows = [json.loads(t) for t in out["__row"]]
        got = {tuple(r[k] for k in group_by): {"count": r["count"], "value__count": r["value_count"], "value__sum": r["value_sum"], "value__mean": r["value_mean"]} for r in rows}
    else:
        rows = out.to_dicts()
        got = {tuple(r[k] for k in group_by): r for r in rows}
    assert [tuple(r[k] for k in group_by) for r in rows] == sorted(expected)
    for key, want in expected.items():
        for column in ("count", "value__count", "value__sum", "value__mean", *(() if finish else ("value__min", "value__max", "value__m2"))):
            assert close(got[key][column], want[column], 1.0), f"{key} {column}: {got[key][column]} != {want[column]}"
