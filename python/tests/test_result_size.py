"""``max_cells``: the result-cell bound of grouping plans, estimated from cheap counts before the
grouping runs, compared with counts taken independently in plain Python."""

from __future__ import annotations

import json
import random
import re

import polars as pl
import pytest

from engine_polars.errors import BadPlan, ResultTooLarge
from engine_polars.handlers import OPS
from engine_polars.plan import parse_plan, run_plan
from engine_polars.result_size import estimate_cells
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc

TYPES = ("view", "click", "buy", "share")


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(21)
    events = [
        Event(
            T0 + rng.randint(0, 99_999),
            rng.choice(TYPES),
            f"u{rng.randint(0, 49)}",
            rng.uniform(0, 10),
            None if rng.random() < 0.3 else json.dumps({"plan": rng.choice(("free", "pro", "team"))}),
        )
        for _ in range(3_000)
    ]
    store = EventStore()
    store.append(events_ipc(events))
    return store, events


def distinct(events: list[Event], attr: str) -> int:
    return len({getattr(e, attr) for e in events})


def too_large(store: EventStore, plan: dict[str, object]) -> ResultTooLarge:
    with pytest.raises(ResultTooLarge) as info:
        run_plan(parse_plan(plan), store.frame())
    assert info.value.code == "RESULT_TOO_LARGE"
    return info.value


def agg(**fields: object) -> dict[str, object]:
    return {"kind": "aggregate", "metrics": ["value"], **fields}


def test_estimate_is_the_product_of_distinct_keys_capped_at_the_rows() -> None:
    assert estimate_cells(100, [4, 5], None) == (20, 20)
    assert estimate_cells(100, [40, 50], None) == (100, 100)
    assert estimate_cells(0, [0], None) == (0, 0)
    assert estimate_cells(100, [], 7) == (1, 7)
    assert estimate_cells(100, [4], 30) == (4, 100)  # at most rows × panes per window
    assert estimate_cells(100, [4], 30, per_window=3) == (4, 120)


def test_aggregate_over_the_bound_names_group_by_and_both_numbers(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    types, users = distinct(events, "event_type"), distinct(events, "user_id")
    cells = types * users
    exc = too_large(store, agg(group_by=["event_type", "user_id"], max_cells=cells - 1))
    assert exc.message == (
        f"`groupBy`: about {cells} result cells ({types} event_type × {users} user_id) on this shard; "
        f"at most `maxResultCells` {cells - 1}: narrow the filter or group by fewer keys"
    )
    # at the bound exactly, it runs
    out = run_plan(parse_plan(agg(group_by=["event_type", "user_id"], max_cells=cells)), store.frame())
    assert 0 < out.height <= cells


def test_the_estimate_counts_only_filtered_rows_and_the_null_group(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    kept = [e for e in events if e.event_type in ("buy", "view")]
    plans = {json.loads(e.metadata).get("plan") if e.metadata else None for e in kept}
    assert None in plans
    exc = too_large(store, agg(group_by=["metadata.plan"], filter={"event_types": ["buy", "view"]}, max_cells=len(plans) - 1))
    assert f"about {len(plans)} result cells ({len(plans)} metadata.plan)" in exc.message
    run_plan(parse_plan(agg(group_by=["metadata.plan"], filter={"event_types": ["buy", "view"]}, max_cells=len(plans))), store.frame())


def test_aggregate_window_key_over_the_bound_names_window_size(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    ts = [e.timestamp for e in events]
    windows = max(ts) // 1_000 - min(ts) // 1_000 + 1
    types = distinct(events, "event_type")
    cells = min(windows * types, len(events))
    exc = too_large(store, agg(group_by=["window", "event_type"], window_ms=1_000, max_cells=cells - 1))
    assert exc.message == (
        f"`windowSize`: about {cells} result cells ({windows} windows × {types} groups) on this shard; "
        f"at most `maxResultCells` {cells - 1}: use a larger windowSize or slide, narrow the filter or group by fewer keys"
    )


def test_window_plan_multiplies_by_windows_and_caps_at_rows_times_panes(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    ts = [e.timestamp for e in events]
    users = distinct(events, "user_id")
    plan = {"kind": "window", "pane_ms": 500, "panes_per_window": 4, "metric": "value", "group_by": "user_id"}
    windows = max(ts) // 500 - min(ts) // 500 + 4
    cells = min(windows * users, len(events) * 4)
    exc = too_large(store, {**plan, "max_cells": cells - 1})
    assert exc.message.startswith(f"`windowSize`: about {cells} result cells ({windows} windows × {users} groups) on this shard")
    # without a group key a window plan still counts its windows
    exc = too_large(store, {**plan, "group_by": None, "max_cells": windows - 1})
    assert f"about {windows} result cells ({windows} windows) on this shard" in exc.message


def test_groups_alone_over_the_bound_name_group_by_even_with_windows(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    users = distinct(events, "user_id")
    exc = too_large(store, {"kind": "window", "pane_ms": 3_600_000, "metric": "value", "group_by": "user_id", "max_cells": users - 1})
    assert exc.message.startswith("`groupBy`: about ")
    assert f" windows × {users} user_id) on this shard; at most `maxResultCells` {users - 1}" in exc.message


def test_topn_over_the_bound_unless_ranked_on_the_shard(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    users = distinct(events, "user_id")
    plan = {"kind": "topn", "group_by": "user_id", "metric": "value", "agg": "sum", "n": 3, "max_cells": users - 1}
    exc = too_large(store, plan)
    assert exc.message.startswith(f"`groupBy`: about {users} result cells ({users} user_id) on this shard")
    assert run_plan(parse_plan({**plan, "shard_top": True}), store.frame()).height == 3


def test_percentiles_by_group_over_the_bound_and_ungrouped_never(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    types = distinct(events, "event_type")
    plan = {"kind": "percentiles", "column": "value", "group_by": "event_type", "max_cells": types - 1}
    assert too_large(store, plan).message.startswith(f"`groupBy`: about {types} result cells ({types} event_type)")
    assert too_large(store, {**plan, "exact": True}).code == "RESULT_TOO_LARGE"
    assert run_plan(parse_plan({**plan, "group_by": None, "max_cells": 1}), store.frame()).height > 0
    assert run_plan(parse_plan(agg(group_by=[], max_cells=1)), store.frame()).height == 1


def test_the_bound_is_checked_before_grouping(loaded: tuple[EventStore, list[Event]], monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = loaded

    def no_grouping(*args: object, **kwargs: object) -> object:
        raise AssertionError("grouped before checking the bound")

    monkeypatch.setattr(pl.LazyFrame, "group_by", no_grouping)
    too_large(store, agg(group_by=["user_id"], max_cells=1))
    too_large(store, {"kind": "window", "pane_ms": 10, "metric": "value", "max_cells": 1})


def test_keys_whose_dictionary_width_bounds_them_within_max_cells_are_not_counted(
    loaded: tuple[EventStore, list[Event]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # event_type is held with UInt8 codes: at most 257 groups (with null), so under a bound of
    # 257 × windows no distinct count is taken; over it the count decides as before
    store, events = loaded
    counted: list[str] = []
    n_unique = pl.Expr.n_unique
    monkeypatch.setattr(pl.Expr, "n_unique", lambda self: counted.append("n_unique") or n_unique(self))
    run_plan(parse_plan(agg(group_by=["event_type"], max_cells=257)), store.frame())
    ts = [e.timestamp for e in events]
    windows = max(ts) // 10_000 - min(ts) // 10_000 + 1
    run_plan(parse_plan(agg(group_by=["window", "event_type"], window_ms=10_000, max_cells=257 * windows)), store.frame())
    assert counted == []
    run_plan(parse_plan(agg(group_by=["event_type"], max_cells=256)), store.frame())
    assert counted == ["n_unique"]
    too_large(store, agg(group_by=["event_type"], max_cells=distinct(events, "event_type") - 1))


def test_an_empty_shard_is_never_over_the_bound() -> None:
    plan = parse_plan(agg(group_by=["event_type", "user_id"], max_cells=1))
    assert run_plan(plan, EventStore().frame()).height == 0


def test_the_query_op_answers_result_too_large(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    with pytest.raises(ResultTooLarge):
        OPS["query"]({"id": 1, "op": "query", "plan": agg(group_by=["user_id"], max_cells=2)}, b"", store)


@pytest.mark.parametrize("kind", ["aggregate", "window", "topn", "percentiles"])
@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", True, 2**53 + 1])
def test_max_cells_must_be_a_positive_integer(kind: str, bad: object) -> None:
    base = {
        "aggregate": agg(group_by=[]),
        "window": {"kind": "window", "pane_ms": 10, "metric": "value"},
        "topn": {"kind": "topn", "group_by": "user_id", "agg": "count", "n": 1},
        "percentiles": {"kind": "percentiles", "column": "value"},
    }[kind]
    with pytest.raises(BadPlan, match=re.escape("`plan.max_cells` must be an integer in 1..9007199254740992")):
        parse_plan({**base, "max_cells": bad})
    assert parse_plan({**base, "max_cells": None}).max_cells is None  # type: ignore[attr-defined]


def _many_groups_store() -> tuple[EventStore, set[tuple[str, str]]]:
    # enough users that (event_type, user_id) has >= 1,000 possible groups: the packed, sorted path
    rng = random.Random(5)
    events = [Event(T0 + i, rng.choice(TYPES), f"u{rng.randint(0, 1_499)}", rng.uniform(0, 10), None) for i in range(4_000)]
    store = EventStore()
    store.append(events_ipc(events))
    return store, {(e.event_type, e.user_id) for e in events}


def test_packed_groups_are_counted_exactly_and_checked_before_aggregating(monkeypatch: pytest.MonkeyPatch) -> None:
    store, groups = _many_groups_store()
    n = len(groups)
    # the estimate (4 types × ~1,400 users, capped at 4,000 rows) would be far above n
    assert n < 4_000
    out = run_plan(parse_plan(agg(group_by=["event_type", "user_id"], max_cells=n)), store.frame())
    assert out.height == n
    exc = too_large(store, agg(group_by=["event_type", "user_id"], max_cells=n - 1))
    assert exc.message == (
        f"`groupBy`: {n} result cells (groups of event_type × user_id) on this shard; "
        f"at most `maxResultCells` {n - 1}: narrow the filter or group by fewer keys"
    )

    def no_grouping(*args: object, **kwargs: object) -> object:
        raise AssertionError("aggregated before checking the bound")

    monkeypatch.setattr(pl.LazyFrame, "group_by", no_grouping)
    too_large(store, agg(group_by=["event_type", "user_id"], max_cells=n - 1, finish=True))


def test_finished_rows_over_max_bytes_name_max_response_bytes() -> None:
    store, _ = _many_groups_store()
    plan = agg(group_by=["event_type", "user_id"], finish=True)
    rows = run_plan(parse_plan(plan), store.frame())
    # the rows as the answer's `results` array: texts, commas between them, brackets
    text = "[" + ",".join(rows["__row"].to_list()) + "]"
    size = len(text.encode("utf-8"))
    assert [json.loads(t) for t in rows["__row"]] == json.loads(text)
    assert run_plan(parse_plan({**plan, "max_bytes": size}), store.frame()).equals(rows)
    exc = too_large(store, {**plan, "max_bytes": size - 1})
    assert exc.message == (
        f"`(answer)`: this shard's {rows.height} rows alone are {size} bytes of JSON; at most "
        f"`maxResponseBytes` {size - 1}: narrow the filter, group by fewer keys or ask for fewer rows"
    )
    with pytest.raises(BadPlan, match=r"`plan.max_bytes` needs `finish`"):
        parse_plan({**plan, "finish": False, "max_bytes": size})
