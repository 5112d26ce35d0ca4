"""Groups of a packed rank key counted into bins (engine_polars.binned_moments) against plain
Python and against the sorted slices they replace: the same groups in the same (string) order,
counts, min and max exact, sums, means and m2 within rounding; values that are null, NaN,
infinite, -0 or far from zero; filters; and when the bins are not used."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import polars as pl
import pytest

import engine_polars.binned_moments as binned
import engine_polars.ops.aggregate as aggregate
from engine_polars.errors import ResultTooLarge
from engine_polars.plan import parse_plan, run_plan
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc

TYPES = ("view", "click", "buy", "share")
MOMENT_FIELDS = ("sum", "mean", "m2")


def _value(rng: random.Random) -> float | None:
    pick = rng.random()
    if pick < 0.15:
        return None
    if pick < 0.17:
        return math.nan
    if pick < 0.18:
        return rng.choice([math.inf, -math.inf, -0.0, 0.0])
    if pick < 0.4:
        return 1e9 + rng.uniform(0, 1)  # a large offset: m2 must stay two-pass accurate
    return rng.uniform(-100, 100)


def _store(seed: int, n: int = 6_000, users: int = 1_500) -> tuple[EventStore, list[Event]]:
    rng = random.Random(seed)
    events = [Event(T0 + i, rng.choice(TYPES), f"u{rng.randint(0, users - 1):05d}", _value(rng), None) for i in range(n)]
    # a user whose every value is NaN, one whose every value is null
    events += [Event(T0 + n + i, "view", "u-nan", math.nan, None) for i in range(3)]
    events += [Event(T0 + n + 3 + i, "view", "u-null", None, None) for i in range(3)]
    store = EventStore()
    store.append(events_ipc(events))
    return store, events


def _brute(events: list[Event], keys: list[str]) -> dict[tuple[str, ...], dict[str, float | int | None]]:
    """count, value count, sum, min, max (NaN skipped unless nothing else), mean and two-pass m2."""
    groups: dict[tuple[str, ...], list[float | None]] = defaultdict(list)
    for e in events:
        groups[tuple(getattr(e, k) for k in keys)].append(e.value)
    out: dict[tuple[str, ...], dict[str, float | int | None]] = {}
    for key, values in groups.items():
        xs = [v for v in values if v is not None]
        row: dict[str, float | int | None] = {"count": len(values), "n": len(xs)}
        if xs:
            total = 0.0
            for x in xs:
                total += x
            mean = total / len(xs)
            numbers = [x for x in xs if not math.isnan(x)]
            row.update(sum=total, mean=mean, min=min(numbers) if numbers else math.nan, max=max(numbers) if numbers else math.nan, m2=sum((x - mean) ** 2 for x in xs))
        else:
            row.update(sum=None, mean=None, min=None, max=None, m2=None)
        out[key] = row
    return out


def _same(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300) or abs(a - b) <= 1e-6


def _run(store: EventStore, keys: list[str], **fields: object) -> pl.DataFrame:
    return run_plan(parse_plan({"kind": "aggregate", "metrics": ["value"], "group_by": keys, **fields}), store.frame())


def _expected_order(groups: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return sorted(groups, key=lambda g: tuple(s.encode("utf-8") for s in g))


@pytest.mark.parametrize("keys", [["event_type", "user_id"], ["user_id"], ["user_id", "event_type"]])
def test_binned_groups_equal_plain_python_and_the_sorted_slices(keys: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, events = _store(7)
    calls = []
    real = binned.binned_moments
    monkeypatch.setattr(aggregate, "binned_moments", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = _run(store, keys)
    assert calls, "the bins were not used"
    brute = _brute(events, keys)
    rows = got.to_dicts()
    assert [tuple(r[k] for k in keys) for r in rows] == _expected_order(list(brute))
    wrong = []
    for r in rows:
        b = brute[tuple(r[k] for k in keys)]
        if (r["count"], r["value__count"]) != (b["count"], b["n"]):
            wrong.append(("counts", r, b))
        for f in ("min", "max"):
            x, y = r[f"value__{f}"], b[f]
            if not (x is None and y is None) and not (x is not None and y is not None and (x == y or (math.isnan(x) and math.isnan(y)))):
                wrong.append((f, r, b))
        for f in MOMENT_FIELDS:
            if not _same(r[f"value__{f}"], b[f], 1e-12 if f != "m2" else 1e-9):
                wrong.append((f, r, b))
    assert wrong == [], wrong[:3]

    # the sorted slices (the path the bins replace) answer the same groups, in the same order
    monkeypatch.setattr(aggregate, "fits_bins", lambda *_: False)
    sorted_ = _run(store, keys)
    assert sorted_.columns == got.columns
    assert sorted_.schema == got.schema
    exact = [k for k in keys] + ["count", "value__count", "value__min", "value__max"]
    assert sorted_.select(exact).equals(got.select(exact), null_equal=True)
    # polars' slice variance is the less accurate of the two with large offsets (7.8e-14 relative
    # off plain Python's two passes on one group here, the bins 0), and says 0 for a lone NaN
    # (the bins, plain Python and the hashed group-by say NaN): m2 is compared where the mean is a number
    finite = [m is not None and math.isfinite(m) for m in got["value__mean"].to_list()]
    for f in MOMENT_FIELDS:
        pairs = zip(sorted_[f"value__{f}"].to_list(), got[f"value__{f}"].to_list(), finite)
        assert all(_same(a, b, 1e-12 if f != "m2" else 1e-9) for a, b, ok in pairs if ok or f != "m2"), f


def test_a_filter_and_finished_rows_and_arrow_columns_come_from_the_bins_too() -> None:
    store, events = _store(11)
    kept = [e for e in events if e.event_type in ("view", "buy")]
    brute = _brute(kept, ["user_id"])
    flt = {"event_types": ["view", "buy"]}
    rows = _run(store, ["user_id"], filter=flt, finish=True)
    columns = _run(store, ["user_id"], filter=flt, finish=True, columns=True)
    assert rows["user_id"].to_list() == columns["user_id"].to_list() == [k[0] for k in _expected_order(list(brute))]
    import json

    for text, (uid,) in zip(rows["__row"], _expected_order(list(brute))):
        row, b = json.loads(text), brute[(uid,)]
        assert (row["count"], row["value_count"]) == (b["count"], b["n"])
        if b["n"] == 0:
            assert row["value_sum"] is None and row["value_min"] is None
        if b["n"] and not any(isinstance(row[f], str) for f in ("value_sum", "value_mean")):
            assert _same(row["value_sum"], b["sum"], 1e-12)


def test_too_many_groups_are_refused_before_any_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    store, events = _store(3)
    groups = len({(e.event_type, e.user_id) for e in events})

    def no_moments(*_: object) -> object:
        raise AssertionError("a moment was taken before the bound was checked")

    monkeypatch.setattr(binned, "_metric_moments", no_moments)
    with pytest.raises(ResultTooLarge) as info:
        _run(store, ["event_type", "user_id"], max_cells=groups - 1)
    assert f"`groupBy`: {groups} result cells" in info.value.message


def test_few_rows_of_a_large_dictionary_are_sorted_not_binned(monkeypatch: pytest.MonkeyPatch) -> None:
    # 20,000 users in the dictionary; a filter keeps two users' rows: 5 × 20,001 possible keys
    # for two rows is past 2 bins a row (+ 65,536)
    events = [Event(T0 + i, TYPES[i % 4], f"u{i:05d}", float(i), None) for i in range(20_000)]
    store = EventStore()
    store.append(events_ipc(events))

    def no_bins(*_: object, **__: object) -> object:
        raise AssertionError("binned")

    monkeypatch.setattr(aggregate, "binned_moments", no_bins)
    out = _run(store, ["event_type", "user_id"], filter={"user_ids": ["u00007", "u00008"]})
    assert out.select("user_id", "count", "value__sum").rows() == [("u00007", 1, 7.0), ("u00008", 1, 8.0)]


def test_fits_bins_bounds_the_bins_by_the_rows_and_a_ceiling() -> None:
    assert binned.fits_bins(2 * 500_000 + 65_536, 500_000)
    assert not binned.fits_bins(2 * 500_000 + 65_537, 500_000)
    assert binned.fits_bins(65_536, 0)
    assert binned.fits_bins(binned.BINS_MAX, 10**9)
    assert not binned.fits_bins(binned.BINS_MAX + 1, 10**9)
    # by event type and user at 10 M events: 9 × ~151,000 possible keys for 5 M rows per shard
    assert binned.fits_bins(1_360_000, 5_000_000)


@pytest.mark.parametrize("moments", [["sum"], ["min", "max"], ["mean", "m2"], ["sum", "min", "max", "mean", "m2"]])
def test_window_panes_by_a_dictionary_key_are_binned_as_the_group_by_answers_them(moments: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import engine_polars.ops.window as window

    store, events = _store(17, n=4_000, users=40)
    plan = {"kind": "window", "pane_ms": 250, "metric": "value", "group_by": "event_type", "moments": moments}
    calls = []
    real = binned.binned_moments
    monkeypatch.setattr(window, "binned_moments", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = run_plan(parse_plan(plan), store.frame())
    assert calls, "the bins were not used"
    # plain Python: count and value count per (pane, type)
    brute: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        cell = brute[((e.timestamp // 250) * 250, e.event_type)]
        cell[0] += 1
        cell[1] += e.value is not None
    assert sorted(zip(got["pane_start"], got["event_type"])) == sorted(brute)
    assert {(p, t): [c, n] for p, t, c, n in got.select("pane_start", "event_type", "count", "value__count").rows()} == brute
    monkeypatch.setattr(window, "fits_bins", lambda *_: False)
    hashed = run_plan(parse_plan(plan), store.frame())
    assert hashed.columns == got.columns and hashed.schema == got.schema
    exact = ["pane_start", "event_type", "count", "value__count", "value__min", "value__max"]
    assert hashed.select(exact).equals(got.select(exact), null_equal=True)
    finite = [m is not None and math.isfinite(m) for m in got["value__mean"].to_list()] if "mean" in moments else [True] * got.height
    for f in ("sum", "mean", "m2"):
        pairs = zip(hashed[f"value__{f}"].to_list(), got[f"value__{f}"].to_list(), finite)
        assert all(_same(a, b, 1e-12 if f != "m2" else 1e-9) for a, b, ok in pairs if ok or f != "m2"), f
    for f in ("sum", "min", "max", "mean", "m2"):
        if f not in moments:
            assert got[f"value__{f}"].null_count() == got.height, f
