"""A plan's ``rows_upto``: every kind, in ``query`` and in ``query_many``, sees only the rows
numbered below it, handled once (plan parsing and ``store.frame(upto)``), never by a kind."""

from __future__ import annotations

import json
import random

import pytest

from engine_polars.errors import BadPlan
from engine_polars.handlers import OPS
from engine_polars.plan import parse_plan, rows_upto, run_plan
from engine_polars.store import EventStore
from event_batches import events_ipc, random_events, read_ipc

PLANS = [
    {"kind": "aggregate", "group_by": ["event_type"], "metrics": ["value"]},
    {"kind": "summary", "columns": ["value"]},
    {"kind": "topn", "group_by": "user_id", "metric": "value", "agg": "sum", "n": 3},
    {"kind": "window", "pane_ms": 1000, "metric": "value"},
    {"kind": "percentiles", "column": "value", "exact": True},
    {"kind": "funnel", "steps": ["page_view", "click"]},
    {"kind": "export", "limit": 1000},
]


@pytest.fixture(scope="module")
def store_and_prefix() -> tuple[EventStore, EventStore]:
    """A store of 5 batches, and a store holding only its first 2 batches and 7 rows."""
    rng = random.Random(21)
    batches = [random_events(rng, 30) for _ in range(5)]
    whole, prefix = EventStore(), EventStore()
    for i, b in enumerate(batches):
        whole.append(events_ipc(b), first_row=30 * i)
    prefix.append(events_ipc(batches[0]))
    prefix.append(events_ipc(batches[1]))
    prefix.append(events_ipc(batches[2][:7]))
    return whole, prefix


@pytest.mark.parametrize("plan", PLANS, ids=[p["kind"] for p in PLANS])
def test_a_cut_plan_answers_what_the_prefix_alone_answers(plan: dict[str, object], store_and_prefix: tuple[EventStore, EventStore]) -> None:
    whole, prefix = store_and_prefix
    cut = OPS["query"]({"id": 1, "op": "query", "plan": {**plan, "rows_upto": 67}}, b"", whole)
    alone = OPS["query"]({"id": 1, "op": "query", "plan": plan}, b"", prefix)
    assert read_ipc(cut.body).equals(read_ipc(alone.body))
    uncut = OPS["query"]({"id": 1, "op": "query", "plan": {**plan, "rows_upto": None}}, b"", whole)
    assert read_ipc(uncut.body).equals(read_ipc(OPS["query"]({"id": 1, "op": "query", "plan": plan}, b"", whole).body))


def test_query_many_cuts_each_plan_by_its_own_rows_upto(store_and_prefix: tuple[EventStore, EventStore]) -> None:
    whole, prefix = store_and_prefix
    plan = {"kind": "summary", "columns": ["value"]}
    reply = OPS["query_many"]({"id": 1, "op": "query_many", "plans": [{**plan, "rows_upto": 67}, plan]}, b"", whole)
    first, second = reply.fields["parts"]
    assert read_ipc(reply.body[:first]).to_pylist()[0]["count"] == 67
    assert read_ipc(reply.body[first : first + second]).to_pylist()[0]["count"] == 150
    assert prefix.rows == 67


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True, 2**60])
def test_rejects_a_rows_upto_that_is_not_a_row_index(bad: object) -> None:
    with pytest.raises(BadPlan, match=r"`plan.rows_upto` must be an integer"):
        parse_plan({"kind": "summary", "columns": ["value"], "rows_upto": bad})
    with pytest.raises(BadPlan, match=r"`plans\[0\].rows_upto`"):
        rows_upto(json.loads(json.dumps({"rows_upto": bad})), "plans[0]")


def test_kinds_never_see_rows_upto() -> None:
    plan = parse_plan({"kind": "summary", "columns": ["value"], "rows_upto": 5})
    assert not hasattr(plan, "rows_upto")
    assert run_plan(plan, EventStore().frame(0)).height == 1
