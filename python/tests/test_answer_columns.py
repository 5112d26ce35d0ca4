"""The finished rows as columns (an Arrow answer of a by-user aggregate): the same rows, values
and order as the JSON rows, checked against them and against brute force."""

from __future__ import annotations

import json
import math
import random

import polars as pl
import pytest

from engine_polars.answer_rows import answer_columns, answer_rows, column_bytes
from engine_polars.errors import BadPlan, ResultTooLarge
from engine_polars.filters import Filter
from engine_polars.ops.aggregate import AggregatePlan, parse, partial_schema
from engine_polars.ops.aggregate import run as run_aggregate
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc

ANSWER_FIELDS = ["count", "value_count", "value_sum", "value_mean", "value_min", "value_max", "value_stddev"]


def _store(events: list[Event]) -> EventStore:
    store = EventStore()
    for part in (events[: len(events) // 2], events[len(events) // 2 :]):
        if part:
            store.append(events_ipc(part))
    return store


def _events(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(300)] + ["ü", "u", "😀", "\uff5e", 'a"q']
    types = [f"t{i:02d}" for i in range(20)] + ["é"]
    return [
        Event(T0 + rng.randint(0, 5_000), rng.choice(types), rng.choice(users), None if rng.random() < 0.3 else rng.gauss(100.0, 30.0), None)
        for _ in range(n)
    ]


@pytest.mark.parametrize("group_by", [("user_id",), ("event_type", "user_id"), ("user_id", "event_type")], ids=lambda g: ",".join(g))
def test_columns_hold_the_json_rows_values_in_their_order(group_by: tuple[str, ...]) -> None:
    events = _events(4_000, 3)
    store = _store(events)
    plan = AggregatePlan(group_by=group_by, metrics=("value",), finish=True, filter=Filter(start=T0 + 10))
    texts = run_aggregate(plan, store.frame())["__row"].to_list()
    columns = run_aggregate(AggregatePlan(group_by=group_by, metrics=("value",), finish=True, columns=True, filter=Filter(start=T0 + 10)), store.frame())
    assert columns.columns == [*group_by, *ANSWER_FIELDS]
    assert columns.schema == partial_schema(AggregatePlan(group_by=group_by, metrics=("value",), finish=True, columns=True))
    assert [columns[c].dtype for c in ANSWER_FIELDS] == [pl.Int64, pl.Int64, *[pl.Float64] * 5]
    rows = [json.loads(t) for t in texts]
    assert len(rows) == columns.height > 100
    for row, got in zip(rows, columns.iter_rows(named=True)):
        assert [row[k] for k in group_by] == [got[k] for k in group_by]
        for f in ANSWER_FIELDS:
            # both are the same doubles: JSON's text parses back to the column's value
            assert row[f] == got[f], f"{row} {f}: {got[f]}"


def test_window_keys_and_no_metrics() -> None:
    store = _store([Event(T0 + 5, "a", "u2", 1.0, None), Event(T0, "a", "u1", None, None), Event(T0 + 1_500, "a", "u1", 4.0, None)])
    plan = AggregatePlan(group_by=("user_id", "window"), metrics=(), window_ms=1_000, finish=True, columns=True)
    out = run_aggregate(plan, store.frame())
    assert out.schema == pl.Schema({"user_id": pl.String, "window_start": pl.Int64, "window_end": pl.Int64, "count": pl.Int64})
    by_window: dict[tuple[str, int], int] = {}
    for user, t in (("u2", T0 + 5), ("u1", T0), ("u1", T0 + 1_500)):
        by_window[(user, t // 1_000 * 1_000)] = by_window.get((user, t // 1_000 * 1_000), 0) + 1
    assert out.rows() == [(u, s, s + 1_000, n) for (u, s), n in sorted(by_window.items())]
    plan = AggregatePlan(group_by=("user_id",), metrics=("value",), finish=True, columns=True)
    out = run_aggregate(plan, store.frame())
    assert out.rows() == [("u1", 2, 1, 4.0, 4.0, 4.0, 4.0, 0.0), ("u2", 1, 1, 1.0, 1.0, 1.0, 1.0, 0.0)]
    store = _store([Event(T0, "a", "u1", None, None)])
    assert run_aggregate(plan, store.frame()).rows() == [("u1", 1, 0, None, None, None, None, None)]


def test_non_finite_moments_stay_doubles() -> None:
    grouped = pl.DataFrame(
        {"k": ["a", "b"], "count": [1, 1], "value__count": [1, 1], "value__sum": [math.inf, 2.0], "value__min": [1.0, 2.0],
         "value__max": [1.0, 2.0], "value__mean": [math.inf, 2.0], "value__m2": [math.nan, 0.0]}
    )
    out = answer_columns(grouped, ["k"], ["value"], None)
    assert out["value_sum"].to_list() == [math.inf, 2.0]
    assert math.isnan(out["value_stddev"][0])
    assert json.loads(answer_rows(grouped, ["k"], ["value"], None)["__row"][0])["value_sum"] == "Infinity"


def test_column_bytes_bound_the_answer_and_refuse_over_max_bytes() -> None:
    events = _events(1_000, 5)
    store = _store(events)
    raw = {"kind": "aggregate", "filter": {}, "group_by": ["event_type", "user_id"], "metrics": ["value"], "finish": True, "columns": True}
    columns = run_aggregate(parse(raw, "plan"), store.frame())
    strings = sum(len(s.encode()) for s in columns["event_type"].to_list() + columns["user_id"].to_list())
    size = strings + columns.height * (4 * 2 + 8 * 7)
    assert column_bytes(columns) == size
    assert run_aggregate(parse({**raw, "max_bytes": size}, "plan"), store.frame()).equals(columns)
    with pytest.raises(ResultTooLarge, match=rf"`maxResponseBytes` {size - 1}"):
        run_aggregate(parse({**raw, "max_bytes": size - 1}, "plan"), store.frame())


def test_columns_must_be_a_boolean_and_need_finish() -> None:
    with pytest.raises(BadPlan, match="`plan.columns` must be a boolean"):
        parse({"group_by": ["user_id"], "metrics": [], "finish": True, "columns": 1}, "plan")
    with pytest.raises(BadPlan, match="`plan.columns` needs `finish`"):
        parse({"group_by": ["user_id"], "metrics": [], "columns": True}, "plan")
