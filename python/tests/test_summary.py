"""The ``summary`` partial against a plain-Python brute force: one row of counts, rows held,
distinct users, time range and the column's moments, filtered and unfiltered."""

from __future__ import annotations

import math
import random

import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.ops.summary import SummaryPlan, parse, run
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, read_ipc


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(3)
    store = EventStore()
    events: list[Event] = []
    for size in (700, 1, 900):
        batch = []
        for _ in range(size):
            value = None if rng.random() < 0.2 else rng.gauss(50, 30)
            batch.append(Event(T0 + rng.randint(0, 1000), rng.choice(("a", "b", "c")), f"u{rng.randint(0, 40)}", value, None))
        store.append(events_ipc(batch))
        events.extend(batch)
    return store, events


def matches(e: Event, f: Filter) -> bool:
    return (
        (f.start is None or e.timestamp >= f.start)
        and (f.end is None or e.timestamp < f.end)
        and (f.event_types is None or e.event_type in f.event_types)
        and (f.user_ids is None or e.user_id in f.user_ids)
    )


FILTERS = {
    "none": Filter(),
    "time and type": Filter(start=T0 + 200, end=T0 + 700, event_types=("a", "c")),
    "users": Filter(user_ids=("u1", "u2", "u3")),
    "nothing": Filter(user_ids=("nobody",)),
}


@pytest.mark.parametrize("name", FILTERS)
def test_partial_is_one_row_of_the_brute_force(loaded: tuple[EventStore, list[Event]], name: str) -> None:
    store, events = loaded
    plan = SummaryPlan(columns=("value",), filter=FILTERS[name])
    rows = read_ipc(to_ipc_stream(run(plan, store.frame()))).to_pylist()
    assert len(rows) == 1
    row = rows[0]
    evs = [e for e in events if matches(e, plan.filter)]
    values = [e.value for e in evs if e.value is not None]
    assert row["count"] == len(evs)
    assert row["rows_held"] == len(events)
    assert row["distinct_users"] == len({e.user_id for e in evs})
    assert row["first_timestamp"] == (min(e.timestamp for e in evs) if evs else None)
    assert row["last_timestamp"] == (max(e.timestamp for e in evs) if evs else None)
    assert row["value__count"] == len(values)
    assert row["value__null_count"] == len(evs) - len(values)
    if not values:
        assert all(row[f"value__{m}"] is None for m in ("sum", "min", "max", "mean", "m2"))
        return
    mean = math.fsum(values) / len(values)
    assert row["value__sum"] == pytest.approx(math.fsum(values), rel=1e-12)
    assert row["value__min"] == min(values)
    assert row["value__max"] == max(values)
    assert row["value__mean"] == pytest.approx(mean, rel=1e-12)
    assert row["value__m2"] == pytest.approx(math.fsum((v - mean) ** 2 for v in values), rel=1e-9)


def test_empty_store_gives_one_row_of_zeros_and_nulls() -> None:
    table = read_ipc(to_ipc_stream(run(SummaryPlan(columns=("value",)), EventStore().frame())))
    assert table.to_pylist() == [
        {
            "count": 0, "rows_held": 0, "distinct_users": 0, "first_timestamp": None, "last_timestamp": None,
            "value__count": 0, "value__null_count": 0, "value__sum": None, "value__min": None,
            "value__max": None, "value__mean": None, "value__m2": None,
        }
    ]
    assert table.schema.field("count").type == pa.int64()
    assert table.schema.field("first_timestamp").type == pa.int64()
    assert table.schema.field("value__m2").type == pa.float64()


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"kind": "summary"}, r"missing field `plan\.columns`"),
        ({"kind": "summary", "columns": []}, r"`plan\.columns` must name at least one column"),
        ({"kind": "summary", "columns": ["price"]}, r"unknown column `price` in `plan\.columns`"),
        ({"kind": "summary", "columns": ["value", "value"]}, r"duplicate column `value`"),
        ({"kind": "summary", "columns": "value"}, r"`plan\.columns` must be an array"),
        ({"kind": "summary", "columns": ["value"], "x": 1}, r"unknown field `plan\.x`"),
        ({"kind": "summary", "columns": ["value"], "filter": {"to": "x"}}, r"`plan\.filter\.to`"),
    ],
)
def test_parse_rejects_bad_plans(obj: dict[str, object], message: str) -> None:
    with pytest.raises(BadPlan, match=message):
        parse(obj, "plan")
