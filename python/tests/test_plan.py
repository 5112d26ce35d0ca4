from __future__ import annotations

import polars as pl
import pytest

from engine_polars.errors import BadPlan
from engine_polars.ops import HANDLERS
from engine_polars.plan import PARSERS, AggregatePlan, Filter, filter_expr, parse_plan


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


def test_every_plan_kind_has_a_handler() -> None:
    assert set(PARSERS) == set(HANDLERS)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "`plan` must be an object; got array"),
        ({}, "missing field `plan.kind`"),
        ({"kind": 3}, "`plan.kind` must be a string; got number"),
        ({"kind": "sorcery"}, "unknown plan kind `sorcery`; expected one of `aggregate`, `window`"),
        (aggregate(groupBy=[]), "unknown field `plan.groupBy`; expected one of `kind`, `filter`, `group_by`, `metrics`"),
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


FRAME = pl.DataFrame(
    {
        "timestamp": [9, 10, 11, 19, 20, 21],
        "event_type": ["a", "b", "a", "b", "a", "b"],
        "user_id": ["u", "u", "v", "v", "w", "w"],
    },
    schema={"timestamp": pl.Int64, "event_type": pl.String, "user_id": pl.String},
)


def matching(f: Filter) -> list[int]:
    return FRAME.filter(filter_expr(f))["timestamp"].to_list()


def test_no_filter_keeps_every_row() -> None:
    assert matching(Filter()) == [9, 10, 11, 19, 20, 21]


def test_from_is_inclusive_and_to_is_exclusive() -> None:
    assert matching(Filter(start=10, end=20)) == [10, 11, 19]


def test_fractional_bounds_compare_as_the_real_numbers_they_are() -> None:
    assert matching(Filter(start=9.5, end=19.5)) == [10, 11, 19]
    assert matching(Filter(start=-0.5, end=10.0000001)) == [9, 10]


def test_bounds_beyond_int64_do_not_overflow() -> None:
    assert matching(Filter(start=-1e300, end=1e300)) == [9, 10, 11, 19, 20, 21]


def test_event_type_and_user_filters_combine_with_time_bounds() -> None:
    assert matching(Filter(start=10, event_types=("a",))) == [11, 20]
    assert matching(Filter(event_types=("a", "b"), user_ids=("v", "w"))) == [11, 19, 20, 21]


def test_an_empty_list_filter_matches_no_row() -> None:
    assert matching(Filter(user_ids=())) == []
