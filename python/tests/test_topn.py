"""The ``topn`` partial against a plain-Python brute force: full groups and a shard's own top n."""

from __future__ import annotations

import json
import math
import random

import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.filters import Filter
from engine_polars.ops.topn import TopNPlan, parse, run
from engine_polars.plan import parse_plan
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, read_ipc

METADATA = (None, '{"plan":"free"}', '{"plan":"pro","n":3}', '{"other":1}', '{"plan":"ünï ✓"}')
DIMENSIONS = ("event_type", "user_id", "metadata.plan", "metadata.n")


def make_events(rng: random.Random, n: int) -> list[Event]:
    out = []
    for _ in range(n):
        value = None if rng.random() < 0.2 else rng.choice([float(rng.randint(-3, 9)), rng.uniform(-500, 500)])
        out.append(
            Event(
                timestamp=T0 + rng.randint(0, 10_000),
                event_type=rng.choice(("page_view", "click", "purchase", "signup")),
                user_id=f"user_{rng.randint(0, 40)}",
                value=value,
                metadata=rng.choice(METADATA),
            )
        )
    return out


@pytest.fixture(scope="module")
def loaded() -> tuple[EventStore, list[Event]]:
    rng = random.Random(99)
    store = EventStore()
    events: list[Event] = []
    for size in (300, 1, 500, 0):
        batch = make_events(rng, size)
        store.append(events_ipc(batch))
        events.extend(batch)
    # a user whose values are all null: no score for sum/mean/max, a score for count
    nulls = [Event(T0 + 7, "refund", "user_nulls", None, '{"plan":"nulls"}') for _ in range(4)]
    store.append(events_ipc(nulls))
    return store, events + nulls


def key_of(e: Event, dim: str) -> str | None:
    if dim.startswith("metadata."):
        if e.metadata is None:
            return None
        v = json.loads(e.metadata).get(dim.removeprefix("metadata."))
        return None if v is None else (v if isinstance(v, str) else json.dumps(v))
    return str(getattr(e, dim))


def passes(e: Event, f: Filter) -> bool:
    return (f.start is None or e.timestamp >= f.start) and (f.end is None or e.timestamp < f.end) and (
        f.event_types is None or e.event_type in f.event_types
    )


def brute_groups(events: list[Event], dim: str, f: Filter) -> dict[str, dict[str, object]]:
    groups: dict[str, list[Event]] = {}
    for e in events:
        k = key_of(e, dim)
        if k is not None and passes(e, f):
            groups.setdefault(k, []).append(e)
    out = {}
    for k, members in groups.items():
        vs = [e.value for e in members if e.value is not None]
        out[k] = {
            "count": len(members),
            "value__count": len(vs),
            "value__sum": math.fsum(vs) if vs else None,
            "value__max": max(vs) if vs else None,
            "value__mean": math.fsum(vs) / len(vs) if vs else None,
        }
    return out


def close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


FILTERS = {"none": Filter(), "window": Filter(start=T0 + 2_000, end=T0 + 8_000), "types": Filter(event_types=("click", "refund"))}


@pytest.mark.parametrize("dim", DIMENSIONS)
@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_full_partial_has_every_non_null_group_exactly(loaded: tuple[EventStore, list[Event]], dim: str, filter_name: str) -> None:
    store, events = loaded
    plan = TopNPlan(group_by=dim, metric="value", agg="sum", n=3, filter=FILTERS[filter_name])
    rows = read_ipc(to_ipc_stream(run(plan, store.frame()))).to_pylist()
    want = brute_groups(events, dim, plan.filter)
    assert [r[dim] for r in rows] == sorted(want), "every group once, sorted by key, null keys left out"
    for r in rows:
        for col, v in want[r[dim]].items():
            assert close(r[col], v), f"{dim}={r[dim]} {col}: {r[col]} != {v}"


@pytest.mark.parametrize("dim", ["user_id", "metadata.plan"])
@pytest.mark.parametrize("agg", ["sum", "count", "mean", "max"])
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("n", [1, 5, 1000])
def test_shard_top_keeps_the_shards_top_n_with_ties_by_key(loaded: tuple[EventStore, list[Event]], dim: str, agg: str, order: str, n: int) -> None:
    store, events = loaded
    plan = TopNPlan(group_by=dim, metric="value", agg=agg, n=n, order=order, shard_top=True)
    rows = run(plan, store.frame()).to_dicts()
    groups = brute_groups(events, dim, Filter())
    scored = [(k, g["count"] if agg == "count" else g[f"value__{agg}"]) for k, g in groups.items()]
    scored = [(k, s) for k, s in scored if s is not None]
    # exact rational scores would differ only by rounding; rank on the partial's own scores,
    # after checking they agree with the brute force
    got_scores = {r[dim]: (r["count"] if agg == "count" else r[f"value__{agg}"]) for r in rows}
    for k, s in got_scores.items():
        assert close(s, dict(scored)[k])
    all_rows = {r[dim]: r for r in run(TopNPlan(group_by=dim, metric="value", agg=agg, n=n), store.frame()).to_dicts()}
    own = [(k, r["count"] if agg == "count" else r[f"value__{agg}"]) for k, r in all_rows.items()]
    own = [(k, s) for k, s in own if s is not None]
    sign = -1 if order == "desc" else 1
    expected = [k for k, _ in sorted(own, key=lambda ks: (sign * ks[1], ks[0]))[:n]]
    assert [r[dim] for r in rows] == expected
    assert len(rows) == min(n, len(scored))


@pytest.mark.parametrize("agg", ["sum", "count", "mean", "max"])
@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_shard_top_rows_carry_every_moment_of_their_group(loaded: tuple[EventStore, list[Event]], agg: str, filter_name: str) -> None:
    # the ranking pass computes only the score; the moments of the kept groups come from a second one
    store, events = loaded
    f = FILTERS[filter_name]
    top = run(TopNPlan(group_by="user_id", metric="value", agg=agg, n=7, shard_top=True, filter=f), store.frame()).to_dicts()
    full = {r["user_id"]: r for r in run(TopNPlan(group_by="user_id", metric="value", agg=agg, n=7, filter=f), store.frame()).to_dicts()}
    assert top
    for r in top:
        members = [e.value for e in events if e.user_id == r["user_id"] and passes(e, f) and e.value is not None]
        mean = math.fsum(members) / len(members) if members else None
        assert close(r["value__m2"], math.fsum((v - mean) ** 2 for v in members) if mean is not None else None)
        assert close(r["value__min"], min(members, default=None))
        assert r == pytest.approx(full[r["user_id"]], rel=1e-12)


def test_count_without_metric_counts_events_and_has_only_key_and_count(loaded: tuple[EventStore, list[Event]]) -> None:
    store, events = loaded
    plan = parse_plan({"kind": "topn", "group_by": "event_type", "metric": None, "agg": "count", "n": 10})
    table = read_ipc(to_ipc_stream(run(plan, store.frame())))  # type: ignore[arg-type]
    assert [(f.name, f.type) for f in table.schema] == [("event_type", pa.large_string()), ("count", pa.int64())]
    assert sum(table.column("count").to_pylist()) == len(events)


def test_partial_schema_with_a_metric(loaded: tuple[EventStore, list[Event]]) -> None:
    store, _ = loaded
    table = read_ipc(to_ipc_stream(run(TopNPlan(group_by="metadata.plan", metric="value", agg="mean", n=2), store.frame())))
    assert [(f.name, f.type) for f in table.schema] == [
        ("metadata.plan", pa.large_string()),
        ("count", pa.int64()),
        ("value__count", pa.int64()),
        ("value__sum", pa.float64()),
        ("value__min", pa.float64()),
        ("value__max", pa.float64()),
        ("value__mean", pa.float64()),
        ("value__m2", pa.float64()),
    ]


def test_empty_store_gives_an_empty_partial_with_the_schema() -> None:
    df = run(TopNPlan(group_by="user_id", metric="value", agg="sum", n=3, shard_top=True), EventStore().frame())
    assert df.height == 0
    assert df.columns[:2] == ["user_id", "count"]


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"group_by": "nope", "agg": "sum", "metric": "value", "n": 1}, "plan.group_by"),
        ({"group_by": "user_id", "agg": "median", "metric": "value", "n": 1}, "plan.agg"),
        ({"group_by": "user_id", "agg": "sum", "metric": "price", "n": 1}, "plan.metric"),
        ({"group_by": "user_id", "agg": "sum", "metric": None, "n": 1}, "plan.metric"),
        ({"group_by": "user_id", "agg": "sum", "metric": "value", "n": 0}, "plan.n"),
        ({"group_by": "user_id", "agg": "sum", "metric": "value", "n": 10_001}, "plan.n"),
        ({"group_by": "user_id", "agg": "sum", "metric": "value", "n": 1.5}, "plan.n"),
        ({"group_by": "user_id", "agg": "sum", "metric": "value", "n": 1, "order": "up"}, "plan.order"),
        ({"group_by": "user_id", "agg": "sum", "metric": "value", "n": 1, "shard_top": 1}, "plan.shard_top"),
        ({"group_by": "user_id", "agg": "sum", "metric": "value", "n": 1, "extra": 1}, "plan.extra"),
        ({"agg": "sum", "metric": "value", "n": 1}, "plan.group_by"),
    ],
)
def test_bad_plans_name_the_field(obj: dict[str, object], field: str) -> None:
    with pytest.raises(BadPlan, match=f"`{field}"):
        parse(obj, "plan")
