from __future__ import annotations

import json
import math
import random
import textwrap
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadPlan
from engine_polars.ops import custom
from engine_polars.plan import parse_plan
from engine_polars.server import handle_frame
from engine_polars.store import EventStore
from event_batches import read_ipc

T0 = 1_700_000_000_000
USERS = [f"u{i}" for i in range(60)]


def random_events(rng: random.Random, n: int) -> list[dict[str, object]]:
    out = []
    for _ in range(n):
        meta = None
        if rng.random() < 0.4:
            meta = json.dumps({"plan": rng.choice(["free", "pro"]), "page": f"/p/{rng.randint(0, 25)}"})
        out.append(
            {
                "timestamp": T0 + rng.randint(0, 10_000),
                "event_type": rng.choice(["click", "view", "purchase"]),
                "user_id": rng.choice(USERS),
                "value": rng.choice([None, round(rng.uniform(-100, 900), 2)]),
                "metadata": meta,
            }
        )
    return out


def frame(events: list[dict[str, object]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        events,
        schema={"timestamp": pl.Int64, "event_type": pl.String, "user_id": pl.String, "value": pl.Float64, "metadata": pl.String},
    )


def meta(e: dict[str, object], key: str) -> str | None:
    return None if e["metadata"] is None else json.loads(str(e["metadata"])).get(key)


def run(name: str, events: list[dict[str, object]], params: dict[str, object] | None = None, filt: dict[str, object] | None = None) -> pl.DataFrame:
    obj: dict[str, object] = {"kind": "custom", "name": name, "params": params or {}}
    if filt is not None:
        obj["filter"] = filt
    return custom.run(parse_plan(obj), frame(events))


def test_ships_the_two_example_plugins_with_their_merge_rules() -> None:
    listing = custom.listing()
    assert listing["errors"] == []
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert by_name["revenue_by_plan"]["merge"] == {"kind": "sum", "keys": ["plan"]}
    assert by_name["top_pages"]["merge"] == {"kind": "top-n", "by": "views", "n": 10, "order": "desc", "keys": ["page"]}


@pytest.mark.parametrize("event_types", [None, ["purchase"], ["click", "view"]])
def test_revenue_by_plan_partial_matches_a_brute_force(event_types: list[str] | None) -> None:
    events = random_events(random.Random(3), 3000)
    out = run("revenue_by_plan", events, {} if event_types is None else {"event_types": event_types}, {"from": T0 + 1000})
    assert out.schema == pl.Schema({"plan": pl.String, "events": pl.Int64, "revenue": pl.Float64})
    expected: dict[str | None, list[float]] = {}
    counts: dict[str | None, int] = {}
    for e in events:
        if int(str(e["timestamp"])) < T0 + 1000 or (event_types is not None and e["event_type"] not in event_types):
            continue
        plan = meta(e, "plan")
        counts[plan] = counts.get(plan, 0) + 1
        if e["value"] is not None:
            expected.setdefault(plan, []).append(float(str(e["value"])))
    got = {r["plan"]: r for r in out.to_dicts()}
    assert set(got) == set(counts)
    for plan, n in counts.items():
        assert got[plan]["events"] == n
        assert math.isclose(got[plan]["revenue"], math.fsum(expected.get(plan, [])), rel_tol=1e-9, abs_tol=1e-9)


def test_top_pages_partial_keeps_every_page_group_for_an_exact_merge() -> None:
    events = random_events(random.Random(4), 3000)
    out = run("top_pages", events, {"event_type": "view"})
    expected: dict[str, int] = {}
    for e in events:
        page = meta(e, "page")
        if e["event_type"] == "view" and page is not None:
            expected[page] = expected.get(page, 0) + 1
    # more pages than n = 10: not cut per shard, since pages are spread over every shard
    assert len(expected) > 10
    assert dict(zip(out["page"].to_list(), out["views"].to_list(), strict=True)) == expected


def test_plugins_get_their_own_copy_of_params_and_bad_params_are_a_stable_error() -> None:
    with pytest.raises(custom.CustomBadParams, match="`event_types` must be a list of strings") as err:
        run("revenue_by_plan", [], {"event_types": "click"})
    assert err.value.code == "CUSTOM_BAD_PARAMS"


def test_unknown_names_and_bad_plans_are_rejected() -> None:
    for obj, message in [
        ({"kind": "custom", "name": "nope"}, "unknown custom function `nope`"),
        ({"kind": "custom", "name": "../etc"}, "must match"),
        ({"kind": "custom", "name": "top_pages", "params": [1]}, "params` must be an object"),
        ({"kind": "custom", "name": "top_pages", "code": "x"}, "unknown field"),
        ({"kind": "custom"}, "missing field"),
    ]:
        with pytest.raises(BadPlan, match=message):
            parse_plan(obj)


# --- plugin folders written by the test ---------------------------------------------------------

PLUGINS = {
    "raises": """
        MERGE = {"kind": "concat"}
        def run(frame, params):
            raise RuntimeError("boom in plugin")
    """,
    "exits": """
        import sys
        MERGE = {"kind": "concat"}
        def run(frame, params):
            sys.exit(3)
    """,
    "not_a_frame": """
        MERGE = {"kind": "concat"}
        def run(frame, params):
            return {"a": 1}
    """,
    "no_key": """
        import polars as pl
        MERGE = {"kind": "sum", "keys": ["k"]}
        def run(frame, params):
            return pl.DataFrame({"x": [1]})
    """,
    "string_value": """
        import polars as pl
        MERGE = {"kind": "sum", "keys": ["k"]}
        def run(frame, params):
            return pl.DataFrame({"k": ["a"], "label": ["x"]})
    """,
    "dates": """
        import datetime
        import polars as pl
        MERGE = {"kind": "concat"}
        def run(frame, params):
            return pl.DataFrame({"d": [datetime.date(2026, 1, 1)]})
    """,
    "lazy_types": """
        import polars as pl
        MERGE = {"kind": "concat"}
        def run(frame, params):
            return pl.LazyFrame({"a": pl.Series([1], dtype=pl.UInt8), "b": pl.Series([1.5], dtype=pl.Float32),
                                 "c": pl.Series(["x"], dtype=pl.Categorical), "ok": [True]})
    """,
    "user_top": """
        import polars as pl
        MERGE = {"kind": "top-n", "by": "total", "n": 3, "keys": ["user_id"]}
        def run(frame, params):
            return frame.group_by("user_id").agg(pl.col("value").sum().alias("total"), pl.len().alias("events")).collect()
    """,
    "bad_merge": """
        MERGE = {"kind": "median"}
        def run(frame, params):
            return None
    """,
    "no_run": """
        MERGE = {"kind": "concat"}
    """,
    "import_error": """
        import no_such_module_anywhere
    """,
    "_private": """
        MERGE = {"kind": "concat"}
        def run(frame, params):
            return None
    """,
}


@pytest.fixture
def test_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, custom.Plugin]]:
    pkg = tmp_path / "plugins_under_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, body in PLUGINS.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    found, errors = custom.discover("plugins_under_test")
    monkeypatch.setattr(custom, "_PLUGINS", found)
    monkeypatch.setattr(custom, "_ERRORS", errors)
    yield found


def test_discovery_skips_private_and_reports_broken_modules(test_plugins: dict[str, custom.Plugin]) -> None:
    assert "_private" not in test_plugins
    errors = {e["module"]: e["message"] for e in custom.listing()["errors"]}
    assert set(errors) == {"bad_merge", "no_run", "import_error"}
    assert "MERGE.kind" in errors["bad_merge"] and "run" in errors["no_run"] and "ModuleNotFoundError" in errors["import_error"]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("raises", custom.CustomFailed, "`raises` failed: RuntimeError: boom in plugin"),
        ("exits", custom.CustomFailed, "SystemExit: 3"),
        ("not_a_frame", custom.CustomBadResult, "returned dict"),
        ("no_key", custom.CustomBadResult, "no key column `k`"),
        ("string_value", custom.CustomBadResult, "`label`"),
        ("dates", custom.CustomBadResult, "`d` of type `Date`"),
    ],
)
def test_plugin_failures_are_answered_with_stable_codes(test_plugins: dict[str, custom.Plugin], name: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        run(name, random_events(random.Random(1), 10))
    # and through the serving loop: an error frame, the process keeps serving
    response, reply = handle_frame({"id": 9, "op": "query", "plan": {"kind": "custom", "name": name}}, b"", EventStore())
    assert reply is None and error.code.encode() in response


def test_result_types_are_normalised_for_the_merge(test_plugins: dict[str, custom.Plugin]) -> None:
    out = run("lazy_types", [])
    assert out.schema == pl.Schema({"a": pl.Int64, "b": pl.Float64, "c": pl.String, "ok": pl.Boolean})
    assert [str(f.type) for f in read_ipc(to_ipc_stream(out)).schema] == ["int64", "double", "large_string", "bool"]


def test_top_n_by_the_shard_key_keeps_the_top_rows_and_ties(test_plugins: dict[str, custom.Plugin]) -> None:
    events = [
        {"timestamp": T0, "event_type": "x", "user_id": u, "value": v, "metadata": None}
        for u, v in [("a", 5.0), ("b", 9.0), ("c", 7.0), ("d", 7.0), ("e", 1.0), ("c", None), ("f", None)]
    ]
    out = run("user_top", events).sort("user_id")
    # top 3 by total: b 9, then c and d tie at 7 (both kept: the key tie-break is the merge's)
    assert out["user_id"].to_list() == ["b", "c", "d"]
    assert out["total"].to_list() == [9.0, 7.0, 7.0]
