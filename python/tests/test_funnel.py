"""The ``funnel`` partial against a plain-Python brute force: ordered (greedy), windowed (best
over every step-1 event), unordered, repeated step types, equal timestamps, filters."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import polars as pl
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.ops.funnel import FunnelPlan, parse, run
from engine_polars.plan import parse_plan
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, read_ipc

TYPES = ("a", "b", "c", "d")


def make_events(rng: random.Random, n: int, users: int, span: int) -> list[Event]:
    return [
        Event(
            timestamp=T0 + rng.randint(0, span),
            event_type=rng.choice(TYPES),
            user_id=f"u{int(rng.random() * rng.random() * users)}",
            value=None,
            metadata=None,
        )
        for _ in range(n)
    ]


def chain_level(evs: list[tuple[int, int, str]], steps: tuple[str, ...], start: int, window: int | None) -> int:
    """Greedy from the step-1 event at index ``start`` of ``evs`` (sorted by (ts, arrival))."""
    t1 = evs[start][0]
    used = {start}
    last_of_type = {steps[0]: (evs[start][0], evs[start][1])}
    t_prev = t1
    level = 1
    for s in steps[1:]:
        pick = None
        for j, (ts, arrival, typ) in enumerate(evs):
            if typ != s or ts < t_prev or j in used:
                continue
            if s in last_of_type and (ts, arrival) <= last_of_type[s]:
                continue
            if window is not None and ts - t1 > window:
                continue
            pick = j
            break
        if pick is None:
            break
        used.add(pick)
        last_of_type[s] = (evs[pick][0], evs[pick][1])
        t_prev = evs[pick][0]
        level += 1
    return level


def brute(events: list[Event], steps: tuple[str, ...], mode: str, window: int | None, keep=lambda e: True) -> list[int]:
    per_user: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for arrival, e in enumerate(events):
        if keep(e):
            per_user[e.user_id].append((e.timestamp, arrival, e.event_type))
    counts = [0] * len(steps)
    for evs in per_user.values():
        evs.sort()
        if mode == "unordered":
            have = Counter(t for _, _, t in evs)
            need: Counter[str] = Counter()
            level = 0
            for s in steps:
                need[s] += 1
                if have[s] < need[s]:
                    break
                level += 1
        else:
            starts = [i for i, (_, _, t) in enumerate(evs) if t == steps[0]]
            if window is None:
                starts = starts[:1]
            level = max((chain_level(evs, steps, i, window) for i in starts), default=0)
        for k in range(level):
            counts[k] += 1
    return counts


def load(events: list[Event], sizes: tuple[int, ...] = (0,)) -> EventStore:
    store = EventStore()
    at = 0
    for size in sizes:
        store.append(events_ipc(events[at : at + size]))
        at += size
    store.append(events_ipc(events[at:]))
    return store


def counts_of(plan: FunnelPlan, store: EventStore) -> list[int]:
    out = run(plan, store.frame())
    assert out.schema == pl.Schema({"step": pl.Int64, "users": pl.Int64})
    assert out["step"].to_list() == list(range(1, len(plan.steps) + 1))
    return out["users"].to_list()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("steps", [("a", "b", "c"), ("a", "b", "a", "c"), ("b", "b", "b"), ("d", "a", "c", "b", "a")])
def test_ordered_matches_brute_force(seed: int, steps: tuple[str, ...]) -> None:
    rng = random.Random(seed)
    # A narrow time span makes equal timestamps common.
    events = make_events(rng, 600, 40, 300)
    store = load(events, (100, 1, 250))
    assert counts_of(FunnelPlan(steps=steps), store) == brute(events, steps, "ordered", None)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window", [0, 1, 20, 150])
@pytest.mark.parametrize("steps", [("a", "b", "c"), ("a", "b", "a"), ("c", "c")])
def test_windowed_is_best_over_every_step1_event(seed: int, window: int, steps: tuple[str, ...]) -> None:
    rng = random.Random(100 + seed)
    events = make_events(rng, 500, 30, 400)
    store = load(events, (200,))
    assert counts_of(FunnelPlan(steps=steps, window_ms=window), store) == brute(events, steps, "ordered", window)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("steps", [("a", "b", "c"), ("a", "a", "b"), ("d", "c", "b", "a")])
def test_unordered_counts_event_types_at_all(seed: int, steps: tuple[str, ...]) -> None:
    rng = random.Random(200 + seed)
    events = make_events(rng, 400, 50, 1000)
    store = load(events)
    assert counts_of(FunnelPlan(steps=steps, mode="unordered"), store) == brute(events, steps, "unordered", None)


def test_equal_timestamps_qualify_in_any_arrival_order() -> None:
    events = [
        Event(T0 + 5, "b", "u1", None, None),  # arrives first, same timestamp as the step-1 event
        Event(T0 + 5, "a", "u1", None, None),
        Event(T0 + 4, "c", "u1", None, None),  # before step 2: does not count
        Event(T0 + 9, "a", "u2", None, None),
        Event(T0 + 8, "b", "u2", None, None),  # before step 1
    ]
    store = load(events)
    assert counts_of(FunnelPlan(steps=("a", "b", "c")), store) == [2, 1, 0]


def test_a_repeated_type_needs_a_second_event() -> None:
    one = [Event(T0, "a", "u1", None, None), Event(T0 + 1, "b", "u1", None, None)]
    store = load(one)
    assert counts_of(FunnelPlan(steps=("a", "b", "a")), store) == [1, 1, 0]
    store.append(events_ipc([Event(T0 + 1, "a", "u1", None, None)]))
    assert counts_of(FunnelPlan(steps=("a", "b", "a")), store) == [1, 1, 1]
    assert counts_of(FunnelPlan(steps=("a", "a", "a"), mode="unordered"), store) == [1, 1, 0]


def test_window_takes_the_best_start() -> None:
    # The first `a` is too early for the `b`; the second start reaches it within 10 ms.
    events = [
        Event(T0, "a", "u1", None, None),
        Event(T0 + 100, "a", "u1", None, None),
        Event(T0 + 110, "b", "u1", None, None),
        Event(T0 + 200, "c", "u1", None, None),
    ]
    store = load(events)
    assert counts_of(FunnelPlan(steps=("a", "b", "c"), window_ms=10), store) == [1, 1, 0]
    assert counts_of(FunnelPlan(steps=("a", "b", "c"), window_ms=100), store) == [1, 1, 1]
    assert counts_of(FunnelPlan(steps=("a", "b", "c")), store) == [1, 1, 1]


def test_filter_applies_before_the_funnel() -> None:
    rng = random.Random(7)
    events = make_events(rng, 500, 20, 1000)
    store = load(events)
    f = Filter(start=T0 + 200, end=T0 + 800, user_ids=tuple(f"u{i}" for i in range(0, 20, 2)))
    keep = lambda e: T0 + 200 <= e.timestamp < T0 + 800 and e.user_id in f.user_ids  # noqa: E731
    plan = FunnelPlan(steps=("a", "b", "c"), window_ms=300, filter=f)
    assert counts_of(plan, store) == brute(events, plan.steps, "ordered", 300, keep)


def test_empty_store_answers_zero_per_step() -> None:
    store = EventStore()
    for mode in ("ordered", "unordered"):
        assert counts_of(FunnelPlan(steps=("a", "b", "c"), mode=mode), store) == [0, 0, 0]
    out = read_ipc(to_ipc_stream(run(FunnelPlan(steps=("a", "b")), store.frame())))
    assert out.column_names == ["step", "users"]


def test_parse_and_bad_plans() -> None:
    plan = parse_plan({"kind": "funnel", "steps": ["a", "b"], "window_ms": 60000, "mode": "ordered"})
    assert isinstance(plan, FunnelPlan) and plan.window_ms == 60000
    bad = [
        ({"kind": "funnel"}, "steps"),
        ({"kind": "funnel", "steps": ["a"]}, "steps"),
        ({"kind": "funnel", "steps": ["a"] * 21}, "steps"),
        ({"kind": "funnel", "steps": ["a", 3]}, "steps[1]"),
        ({"kind": "funnel", "steps": ["a", ""]}, "steps[1]"),
        ({"kind": "funnel", "steps": ["a", "b"], "mode": "sideways"}, "mode"),
        ({"kind": "funnel", "steps": ["a", "b"], "window_ms": 0}, "window_ms"),
        ({"kind": "funnel", "steps": ["a", "b"], "window_ms": 1.5}, "window_ms"),
        ({"kind": "funnel", "steps": ["a", "b"], "window_ms": 5, "mode": "unordered"}, "window_ms"),
        ({"kind": "funnel", "steps": ["a", "b"], "extra": 1}, "extra"),
        ({"kind": "funnel", "steps": ["a", "b"], "filter": {"from": "x"}}, "filter.from"),
    ]
    for obj, name in bad:
        with pytest.raises(BadPlan, match=name.replace("[", r"\[").replace("]", r"\]")):
            parse(obj, "plan")
