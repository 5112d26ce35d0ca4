"""Plan dispatch through the one table of kinds (``ops.KINDS``), ``aggregate`` included."""

from __future__ import annotations

import inspect
import random
from pathlib import Path

import pytest

from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.handlers import OPS
from engine_polars.ops import BY_KIND, KINDS
from engine_polars.ops import aggregate as aggregate_op
from engine_polars.ops.aggregate import AggregatePlan
from engine_polars.plan import parse_plan, run_plan
from engine_polars.store import EventStore
from event_batches import events_ipc, random_events, read_ipc

OPS_DIR = Path(__file__).resolve().parents[1] / "engine_polars" / "ops"


def aggregate(**fields: object) -> dict:
    plan: dict = {"kind": "aggregate", "filter": {}, "group_by": [], "metrics": ["value"]}
    plan.update(fields)
    return plan


def test_parses_an_aggregate_plan_with_every_filter_field() -> None:
    plan = parse_plan(
        aggregate(
            filter={"from": 10, "to": 20.5, "event_types": ["click"], "user_ids": ["a", "b"]},
            group_by=["user_id", "event_type"],
        )
    )
    assert plan == AggregatePlan(
        filter=Filter(start=10, end=20.5, event_types=("click",), user_ids=("a", "b")),
        group_by=("user_id", "event_type"),
        metrics=("value",),
    )


def test_a_missing_or_null_filter_means_no_filter() -> None:
    raw = aggregate()
    del raw["filter"]
    assert parse_plan(raw).filter == Filter()
    assert parse_plan(aggregate(filter=None)).filter == Filter()


def test_every_module_in_the_ops_folder_is_one_kind_in_the_table() -> None:
    files = sorted(p.stem for p in OPS_DIR.glob("*.py") if p.stem != "__init__")
    assert sorted(m.__name__.rsplit(".", 1)[1] for m in KINDS) == files
    assert sorted(BY_KIND) == sorted(m.KIND for m in KINDS) == files
    for module in KINDS:
        assert list(inspect.signature(module.parse).parameters) == ["obj", "path", "body"], module.__name__
        assert list(inspect.signature(module.run).parameters) == ["plan", "frame"], module.__name__


def test_aggregate_is_dispatched_like_any_other_kind() -> None:
    plan = parse_plan({"kind": "aggregate", "group_by": ["event_type"], "metrics": ["value"]})
    assert isinstance(plan, AggregatePlan) and BY_KIND[plan.kind] is aggregate_op
    store = EventStore()
    store.append(events_ipc(random_events(random.Random(1), 50)))
    assert run_plan(plan, store.frame()).equals(aggregate_op.run(plan, store.frame()))


def test_parse_plan_hands_the_body_to_the_kinds_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bytes]] = []

    def parse(obj: object, path: str, body: bytes = b"") -> str:
        seen.append((path, body))
        return "parsed"

    monkeypatch.setattr(BY_KIND["summary"], "parse", parse)
    assert parse_plan({"kind": "summary"}, "plan", b"xyz") == "parsed"
    assert parse_plan({"kind": "summary"}, "plans[2]") == "parsed"
    assert seen == [("plan", b"xyz"), ("plans[2]", b"")]


def test_query_and_query_many_answer_aggregate_through_the_same_path() -> None:
    store = EventStore()
    store.append(events_ipc(random_events(random.Random(2), 80)))
    plan = {"kind": "aggregate", "group_by": ["user_id"], "metrics": ["value"]}
    one = OPS["query"]({"id": 1, "op": "query", "plan": plan}, b"", store)
    many = OPS["query_many"]({"id": 2, "op": "query_many", "plans": [plan]}, b"", store)
    timing = ("op_ms", "op_cpu_ms")
    assert one.fields == {"kind": "aggregate", "rows": read_ipc(one.body).num_rows, **{k: one.fields[k] for k in timing}}
    assert many.fields == {"parts": [len(many.body)], **{k: many.fields[k] for k in timing}}
    assert read_ipc(many.body).equals(read_ipc(one.body))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "`plan` must be an object; got array"),
        ({}, "missing field `plan.kind`"),
        ({"kind": 3}, "`plan.kind` must be a string; got number"),
        ({"kind": "sorcery"}, "unknown plan kind `sorcery`; expected one of `aggregate`, `window`, `percentiles`"),
        (aggregate(groupBy=[]), "unknown field `plan.groupBy`; expected one of `kind`, `filter`, `group_by`, `metrics`"),
        (aggregate(max_cells=0), "`plan.max_cells` must be an integer in 1..9007199254740992; got 0"),
        (aggregate(max_cells=1.5), "`plan.max_cells` must be an integer in 1..9007199254740992; got number"),
        (aggregate(max_cells=True), "`plan.max_cells` must be an integer in 1..9007199254740992; got boolean"),
        ({"kind": "aggregate", "filter": {}, "metrics": []}, "missing field `plan.group_by`"),
        ({"kind": "aggregate", "filter": {}, "group_by": []}, "missing field `plan.metrics`"),
        (aggregate(group_by="event_type"), "`plan.group_by` must be an array of strings; got string"),
        (aggregate(group_by=["event_type", 1]), "`plan.group_by[1]` must be a string; got number"),
        (
            aggregate(group_by=["foo"]),
            "unknown group key `foo` in `plan.group_by`; expected one of `event_type`, `user_id`",
        ),
        (aggregate(group_by=["user_id", "user_id"]), "duplicate group key `user_id` in `plan.group_by`"),
        (aggregate(metrics=["price"]), "unknown metric `price` in `plan.metrics`; expected one of `value`"),
        (aggregate(metrics=["timestamp"]), "unknown metric `timestamp` in `plan.metrics`; expected one of `value`"),
        (aggregate(filter=[]), "`plan.filter` must be an object; got array"),
        (aggregate(filter={"event_type": ["x"]}), "unknown field `plan.filter.event_type`; expected one of"),
        (aggregate(filter={"from": "2024-01-01"}), "`plan.filter.from` must be a finite number of epoch ms; got string"),
        (aggregate(filter={"to": True}), "`plan.filter.to` must be a finite number of epoch ms; got boolean"),
        (aggregate(filter={"to": float("nan")}), "`plan.filter.to` must be a finite number of epoch ms; got nan"),
        (aggregate(filter={"from": 5, "to": 3}), "`plan.filter.from` (5) is after `plan.filter.to` (3)"),
        (aggregate(filter={"user_ids": "u1"}), "`plan.filter.user_ids` must be an array of strings; got string"),
        (aggregate(filter={"event_types": [None]}), "`plan.filter.event_types[0]` must be a string; got null"),
    ],
)
def test_rejects_a_malformed_plan_naming_the_field(raw: object, message: str) -> None:
    with pytest.raises(BadPlan) as info:
        parse_plan(raw)
    assert info.value.message.startswith(message)
    assert info.value.code == "BAD_PLAN"
