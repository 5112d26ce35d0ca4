from __future__ import annotations

import random

import pytest

from engine_polars.errors import BadPlan
from engine_polars.handlers import OPS
from engine_polars.store import EventStore

from event_batches import events_ipc, random_events, read_ipc


def agg(group_by: list[str]) -> dict:
    return {"kind": "aggregate", "filter": {}, "group_by": group_by, "metrics": ["value"]}


def test_query_many_answers_each_plan_like_a_single_query_back_to_back() -> None:
    store = EventStore()
    store.append(events_ipc(random_events(random.Random(3), 300)))
    plans = [agg([]), agg(["event_type"]), agg(["user_id"])]
    many = OPS["query_many"]({"id": 1, "op": "query_many", "plans": plans}, b"", store)
    parts = many.fields["parts"]
    assert list(many.fields) == ["parts", "op_ms", "op_cpu_ms"]
    assert sum(parts) == len(many.body)
    offset = 0
    for plan, size in zip(plans, parts):
        single = OPS["query"]({"id": 2, "op": "query", "plan": plan}, b"", store)
        assert read_ipc(many.body[offset : offset + size]).equals(read_ipc(single.body))
        offset += size


@pytest.mark.parametrize("plans", [None, [], "x", [{"kind": "nope"}], [agg([])] * 33])
def test_query_many_rejects_bad_plan_lists(plans: object) -> None:
    with pytest.raises(BadPlan):
        OPS["query_many"]({"id": 1, "op": "query_many", "plans": plans}, b"", EventStore())
