"""The ``export`` partial: pages in (timestamp, arrival) order that add up to exactly the
matching events, also when events arrive between pages."""

from __future__ import annotations

import random

import polars as pl
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.ops.export import ExportPlan, parse, run
from engine_polars.plan import parse_plan
from engine_polars.store import EVENT_SCHEMA, EventStore
from event_batches import T0, Event, events_ipc, random_events, read_ipc


def as_tuples(df: pl.DataFrame) -> list[tuple]:
    return [tuple(r) for r in df.iter_rows()]


def event_tuple(e: Event) -> tuple:
    return (e.timestamp, e.event_type, e.user_id, e.value, e.metadata)


def drain(store: EventStore, limit: int, flt: Filter = Filter(), between=None) -> tuple[list[tuple], int]:
    """Pages until an empty or short one, advancing the cursor the way the TypeScript side does."""
    out: list[tuple] = []
    after: tuple[int, int] | None = None
    pages = 0
    while True:
        page = run(ExportPlan(limit=limit, after=after, filter=flt), store.frame())
        pages += 1
        assert page.height <= limit
        rows = as_tuples(page)
        out.extend(rows)
        if page.height < limit:
            return out, pages
        last = rows[-1][0]
        run_len = sum(1 for r in rows if r[0] == last)
        carried = after[1] if after is not None and after[0] == last and run_len == len(rows) else 0
        after = (last, run_len + carried)
        if between is not None:
            between(pages)


@pytest.mark.parametrize("limit", [1, 3, 7, 50, 10_000])
def test_pages_add_up_to_the_events_in_timestamp_then_arrival_order(limit: int) -> None:
    rng = random.Random(limit)
    # A narrow span makes many equal timestamps, so pages split runs of them.
    events = [Event(T0 + rng.randint(0, 20), e.event_type, e.user_id, e.value, e.metadata) for e in random_events(rng, 400)]
    store = EventStore()
    for i in range(0, 400, 90):
        store.append(events_ipc(events[i : i + 90]))
    got, pages = drain(store, limit)
    expected = [event_tuple(e) for _, e in sorted(enumerate(events), key=lambda p: (p[1].timestamp, p[0]))]
    assert got == expected
    assert pages == len(events) // limit + 1


def test_filtered_pages_equal_the_brute_force_filter() -> None:
    rng = random.Random(5)
    events = random_events(rng, 500)
    store = EventStore()
    store.append(events_ipc(events))
    users = ("user_1", "user_3")
    flt = Filter(start=T0 + 2000, end=T0 + 8000, event_types=("click", "purchase"), user_ids=users)
    got, _ = drain(store, 13, flt)
    keep = [
        (e.timestamp, i, event_tuple(e))
        for i, e in enumerate(events)
        if T0 + 2000 <= e.timestamp < T0 + 8000 and e.event_type in ("click", "purchase") and e.user_id in users
    ]
    assert got == [t for _, _, t in sorted(keep)]
    assert got


def test_events_ingested_between_pages_are_neither_repeated_nor_shifting_the_rest() -> None:
    rng = random.Random(9)
    first = [Event(T0 + rng.randint(0, 30), "a", f"u{i % 5}", float(i), None) for i in range(200)]
    store = EventStore()
    store.append(events_ipc(first))
    late: list[Event] = []

    def ingest(page: int) -> None:
        batch = [Event(T0 + rng.randint(0, 40), "b", "late", float(len(late) + i), None) for i in range(5)]
        late.extend(batch)
        store.append(events_ipc(batch))

    got, _ = drain(store, 17, between=ingest)
    # Every event present before the export started is returned exactly once.
    assert sorted(r for r in got if r[1] == "a") == sorted(event_tuple(e) for e in first)
    # Late events come out in order with the rest, each at most once.
    assert [r[0] for r in got] == sorted(r[0] for r in got)
    late_values = [r[3] for r in got if r[1] == "b"]
    assert len(late_values) == len(set(late_values)) and set(late_values) <= {e.value for e in late}


def test_partial_schema_is_the_event_schema() -> None:
    store = EventStore()
    empty = run(ExportPlan(limit=10), store.frame())
    assert empty.height == 0 and empty.schema == EVENT_SCHEMA
    store.append(events_ipc([Event(T0, "a", "u", None, '{"k":"v"}')]))
    table = read_ipc(to_ipc_stream(run(ExportPlan(limit=10), store.frame())))
    assert table.column_names == ["timestamp", "event_type", "user_id", "value", "metadata"]
    assert table.to_pylist() == [{"timestamp": T0, "event_type": "a", "user_id": "u", "value": None, "metadata": '{"k":"v"}'}]


def test_parse_and_bad_plans() -> None:
    plan = parse_plan({"kind": "export", "limit": 5, "after": {"timestamp": T0, "skip": 2}})
    assert isinstance(plan, ExportPlan) and plan.after == (T0, 2)
    bad = [
        ({"kind": "export"}, "limit"),
        ({"kind": "export", "limit": 0}, "limit"),
        ({"kind": "export", "limit": 100_001}, "limit"),
        ({"kind": "export", "limit": 2.5}, "limit"),
        ({"kind": "export", "limit": True}, "limit"),
        ({"kind": "export", "limit": 5, "after": 3}, "after"),
        ({"kind": "export", "limit": 5, "after": {"timestamp": 1}}, "after.skip"),
        ({"kind": "export", "limit": 5, "after": {"timestamp": 1.5, "skip": 0}}, "after.timestamp"),
        ({"kind": "export", "limit": 5, "after": {"timestamp": 1, "skip": -1}}, "after.skip"),
        ({"kind": "export", "limit": 5, "offset": 3}, "offset"),
    ]
    for obj, name in bad:
        with pytest.raises(BadPlan, match=name):
            parse(obj, "plan")
