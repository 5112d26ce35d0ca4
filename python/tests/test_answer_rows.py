from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from engine_polars.answer_rows import answer_rows

VECTORS = Path(__file__).resolve().parents[2] / "test" / "vectors" / "json-numbers.json"


def _grouped(values: list[float | None], keys: list[str | None] | None = None, n: int = 1) -> pl.DataFrame:
    """One group per value, every moment equal to it (and m2 0)."""
    rows = len(values)
    return pl.DataFrame(
        {
            "k": keys if keys is not None else [f"k{i:04d}" for i in range(rows)],
            "count": [n] * rows,
            "value__count": [0 if v is None else n for v in values],
            "value__sum": values,
            "value__min": values,
            "value__max": values,
            "value__mean": values,
            "value__m2": [None if v is None else 0.0 for v in values],
        },
        schema_overrides={"k": pl.String, "value__sum": pl.Float64, "value__min": pl.Float64, "value__max": pl.Float64, "value__mean": pl.Float64, "value__m2": pl.Float64},
    )


def _number_text(row: str, field: str) -> str:
    """The text of ``"field":<number>`` in a row's JSON."""
    start = row.index(f'"{field}":') + len(field) + 3
    end = row.index(",", start) if "," in row[start:] else row.index("}", start)
    return row[start:end]


def test_numbers_not_flagged_are_written_as_javascript_writes_them() -> None:
    texts: list[str] = json.loads(VECTORS.read_text())["numbers"]
    values = [float(t) for t in texts]
    out = answer_rows(_grouped(values), ["k"], ["value"], None)
    plain = 0
    for text, x, row, reparse in zip(texts, values, out["__row"], out["__reparse"]):
        parsed = json.loads(row)
        assert parsed["value_sum"] == x and parsed["value_min"] == x, row
        if not reparse:
            plain += 1
            assert _number_text(row, "value_sum") == text, f"{text}: {row}"
            assert _number_text(row, "value_max") == text
        else:
            assert x == 0 or not 1e-5 <= abs(x) < 1e15, f"{text} flagged inside the plain range"
    assert plain > len(texts) // 2


def test_zero_and_negative_zero_are_flagged_but_a_zero_stddev_is_not() -> None:
    out = answer_rows(_grouped([0.0, -0.0, 12.5]), ["k"], ["value"], None)
    assert out["__reparse"].to_list() == [True, True, False]
    assert json.loads(out["__row"][2])["value_stddev"] == 0
    assert _number_text(out["__row"][2], "value_stddev") == "0"


def test_overflowed_moments_are_named_and_infinite_min_max_are_null() -> None:
    inf = math.inf
    out = answer_rows(_grouped([inf, -inf, math.nan, 3.0]), ["k"], ["value"], None)
    rows = [json.loads(r) for r in out["__row"]]
    assert [r["value_sum"] for r in rows] == ["Infinity", "-Infinity", "NaN", 3]
    assert [r["value_mean"] for r in rows] == ["Infinity", "-Infinity", "NaN", 3]
    assert [r["value_min"] for r in rows] == [None, None, None, 3]
    assert [r["value_max"] for r in rows] == [None, None, None, 3]


def test_groups_without_values_answer_null_moments() -> None:
    out = answer_rows(_grouped([None, 2.0]), ["k"], ["value"], None)
    first = json.loads(out["__row"][0])
    assert first == {
        "k": "k0000", "count": 1, "value_count": 0, "value_sum": None, "value_mean": None,
        "value_min": None, "value_max": None, "value_stddev": None,
    }
    assert list(json.loads(out["__row"][1])) == [
        "k", "count", "value_count", "value_sum", "value_mean", "value_min", "value_max", "value_stddev"
    ]


def test_keys_are_escaped_as_json_stringify_does_and_null_keys_are_null() -> None:
    keys = ['a"b', "back\\slash", "tab\tnew\nline\x01\x1f", "ünïcode ✓ \u2028 😀", None]
    out = answer_rows(_grouped([1.0] * len(keys), keys), ["k"], ["value"], None)
    assert [json.loads(r)["k"] for r in out["__row"]] == keys
    assert out["__row"][2].startswith('{"k":"tab\\tnew\\nline\\u0001\\u001f"')
    assert out["k"].to_list() == keys


def test_window_keys_answer_start_and_end_and_metrics_may_be_none() -> None:
    grouped = pl.DataFrame({"window_start": [-60_000, 1_767_225_600_000], "user_id": ["u", "v"], "count": [2, 3]})
    out = answer_rows(grouped, ["window", "user_id"], [], 60_000)
    assert [json.loads(r) for r in out["__row"]] == [
        {"window_start": -60_000, "window_end": 0, "user_id": "u", "count": 2},
        {"window_start": 1_767_225_600_000, "window_end": 1_767_225_660_000, "user_id": "v", "count": 3},
    ]
    assert out.columns == ["window_start", "user_id", "__row", "__reparse"]
    assert out["window_start"].dtype == pl.Int64


def test_stddev_is_the_population_one_from_m2() -> None:
    grouped = _grouped([10.0]).with_columns(pl.lit(4).alias("value__count"), pl.lit(20.0).alias("value__m2"))
    row = json.loads(answer_rows(grouped, ["k"], ["value"], None)["__row"][0])
    assert row["value_stddev"] == math.sqrt(20.0 / 4)


def _random_grouped(seed: int, rows: int = 400) -> pl.DataFrame:
    """Two string keys, two metrics, moments of every magnitude (whole, tiny, huge, zero, -0)
    and groups without values."""
    import random

    rng = random.Random(seed)

    def moment() -> float:
        pick = rng.random()
        if pick < 0.2:
            return float(rng.randint(-10**6, 10**6))
        if pick < 0.3:
            return rng.choice([0.0, -0.0, 1e-7, 5e-324, 1e15, 1e21, 123456789012345.6, 2.0**53])
        return rng.uniform(-1, 1) * 10 ** rng.randint(-6, 16)

    data: dict[str, list[object]] = {"a": [f"t{rng.randint(0, 9)}" for _ in range(rows)], "b": [f"u-{i}" for i in range(rows)], "count": [rng.randint(1, 50) for _ in range(rows)]}
    for m in ("value", "x"):
        n = [0 if rng.random() < 0.1 else rng.randint(1, 50) for _ in range(rows)]
        data[f"{m}__count"] = n
        for f in ("sum", "min", "max", "mean"):
            data[f"{m}__{f}"] = [moment() for _ in range(rows)]
        data[f"{m}__m2"] = [abs(moment()) for _ in range(rows)]
    return pl.DataFrame(data)


def test_a_row_encoded_whole_is_the_row_made_piece_by_piece(monkeypatch) -> None:
    import engine_polars.answer_rows as module

    for seed in range(5):
        grouped = _random_grouped(seed)
        encoded = answer_rows(grouped, ["a", "b"], ["value", "x"], None)
        monkeypatch.setattr(module, "_keys_hold", lambda *_: True)
        pieces = answer_rows(grouped, ["a", "b"], ["value", "x"], None)
        monkeypatch.undo()
        assert encoded["__reparse"].to_list() == pieces["__reparse"].to_list()
        differ = [(e, p) for e, p in zip(encoded["__row"], pieces["__row"]) if e != p]
        assert differ == [], differ[:3]
        assert list(json.loads(encoded["__row"][0])) == ["a", "b", "count", "value_count", "x_count"] + [
            f"{m}_{f}" for m in ("value", "x") for f in ("sum", "mean", "min", "max", "stddev")
        ]


def test_keys_holding_a_whole_number_s_text_are_kept_as_they_are() -> None:
    keys = ["a.0,b", "c.0}", "d.0", "e"]
    out = answer_rows(_grouped([2.0, 3.0, 4.5, 100.0], keys), ["k"], ["value"], None)
    rows = [json.loads(r) for r in out["__row"]]
    assert [r["k"] for r in rows] == keys
    assert [_number_text(r, "value_sum") for r in out["__row"]] == ["2", "3", "4.5", "100"]
    # without such a key the row is encoded whole, and the same text
    out = answer_rows(_grouped([2.0, 3.0, 4.5, 100.0], ["a", "c", "d", "e"]), ["k"], ["value"], None)
    assert [_number_text(r, "value_sum") for r in out["__row"]] == ["2", "3", "4.5", "100"]


def test_stats_names_the_moments_a_row_has_in_the_fixed_order() -> None:
    grouped = _grouped([2.5, None, 1e20])
    full = [json.loads(r) for r in answer_rows(grouped, ["k"], ["value"], None)["__row"]]
    for stats in (("max", "sum"), ("stddev",), ("sum", "mean", "min", "max", "stddev")):
        out = answer_rows(grouped, ["k"], ["value"], None, stats)
        fixed = [s for s in ("sum", "mean", "min", "max", "stddev") if s in stats]
        for row, whole in zip(out["__row"], full):
            parsed = json.loads(row)
            assert list(parsed) == ["k", "count", "value_count", *[f"value_{s}" for s in fixed]]
            assert parsed == {k: v for k, v in whole.items() if k in parsed}
    # only a moment outside the plain range flags the row: 1e20 as a min, not without it
    assert answer_rows(grouped, ["k"], ["value"], None, ("stddev",))["__reparse"].to_list() == [False, False, False]
    assert answer_rows(grouped, ["k"], ["value"], None, ("min",))["__reparse"].to_list() == [False, False, True]


def test_a_plan_refuses_stats_that_are_empty_unknown_or_twice() -> None:
    import pytest

    from engine_polars.errors import BadPlan
    from engine_polars.ops.aggregate import parse

    base = {"kind": "aggregate", "group_by": ["user_id"], "metrics": ["value"], "finish": True}
    assert parse({**base, "stats": ["max", "sum"]}, "plan").stats == ("sum", "max")
    assert parse(base, "plan").stats == ("sum", "mean", "min", "max", "stddev")
    for bad, match in (([], "at least one"), (["median"], "unknown statistic `median`"), (["sum", "sum"], "duplicate statistic `sum`"), ("sum", "plan.stats")):
        with pytest.raises(BadPlan, match=match):
            parse({**base, "stats": bad}, "plan")
