"""The polars process never imports pyarrow (~28 MB of RSS in each shard's process): every op
kind is run once against the real process, which then reports every module it imported.

``PYTHONPROFILEIMPORTTIME`` makes Python write one ``import time:`` line to stderr for each module
the first time it is imported, whoever imports it (polars loads pyarrow lazily, from inside its
Arrow interop), so the lines name everything that ever reached ``sys.modules``."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from event_batches import T0, Event, events_ipc, ipc_stream, read_ipc
from sidecar_process import Sidecar, sidecar_env

QUERIES: list[dict[str, Any]] = [
    {"kind": "aggregate", "filter": {}, "group_by": ["event_type", "metadata.plan"], "metrics": ["value"]},
    {"kind": "window", "pane_ms": 5000, "panes_per_window": 4, "metric": "value", "group_by": "user_id"},
    {"kind": "percentiles", "column": "value", "group_by": "event_type"},
    {"kind": "percentiles", "column": "value", "exact": True},
    {"kind": "topn", "group_by": "metadata.page", "metric": "value", "agg": "sum", "n": 3},
    {"kind": "funnel", "steps": ["page_view", "purchase"], "window_ms": 60_000, "mode": "ordered"},
    {"kind": "summary", "columns": ["value"]},
    {"kind": "export", "limit": 100, "after": {"timestamp": T0 + 10_000, "skip": 0}},
    {"kind": "custom", "name": "top_pages"},
    {"kind": "custom", "name": "revenue_by_plan"},
    {"kind": "aggregate", "filter": {}, "group_by": ["users.country"], "metrics": ["value"]},
]


def events(n: int) -> list[Event]:
    rng = random.Random(5)
    return [
        Event(
            T0 + rng.randint(0, 60_000),
            rng.choice(["page_view", "click", "purchase"]),
            f"u{rng.randint(0, 40)}",
            None if rng.random() < 0.2 else rng.uniform(-50, 50),
            None if rng.random() < 0.3 else json.dumps({"plan": rng.choice(["free", "pro"]), "page": f"/p/{rng.randint(0, 5)}"}),
        )
        for _ in range(n)
    ]


def imported_modules(sidecar: Sidecar) -> set[str]:
    # "import time: self [us] | cumulative | imported package", the name indented by depth
    lines = [line for line in sidecar.stderr_lines() if line.startswith("import time:") and "|" in line]
    return {line.rsplit("|", 1)[1].strip() for line in lines} - {"imported package"}


def ok(sidecar: Sidecar, header: dict[str, Any], body: bytes = b"") -> tuple[dict[str, Any], bytes]:
    reply, answer = sidecar.request(header, body)
    assert reply["ok"] is True, reply
    return reply, answer


def served(sidecar: Sidecar) -> set[str]:
    """Stops ``sidecar`` and answers the top-level packages it imported."""
    ok(sidecar, {"id": 99, "op": "shutdown"})
    assert sidecar.wait() == 0
    sidecar.stop()
    return {name.split(".")[0] for name in imported_modules(sidecar)}


def test_serves_every_op_kind_and_a_segment_roll_and_restore_without_importing_pyarrow(tmp_path: Path) -> None:
    env = sidecar_env(PYTHONPROFILEIMPORTTIME="1")
    shard = tmp_path / "shard"
    first = Sidecar(tmp_path, env)
    try:
        ok(first, {"id": 1, "op": "ping"})
        ok(first, {"id": 2, "op": "open", "plan": {"dir": str(shard), "log_start": 0}})
        ok(first, {"id": 3, "op": "append", "first_row": 0}, events_ipc(events(600)))
        users = pa.table({"user_id": [f"u{i}" for i in range(30)], "country": ["DE", "FR", None] * 10})
        ok(first, {"id": 4, "op": "enrich_upsert", "plan": {"table": "users"}}, ipc_stream(users))
        for i, plan in enumerate(QUERIES):
            reply, body = ok(first, {"id": 10 + i, "op": "query", "plan": plan})
            assert read_ipc(body).num_rows == reply["rows"]
        groups = io.BytesIO()
        pl.DataFrame({"key": [None], "mean": [0.0], "stddev": [10.0]}, schema={"key": pl.String, "mean": pl.Float64, "stddev": pl.Float64}).write_ipc_stream(groups)
        anomalies = {"kind": "anomalies", "column": "value", "threshold": 2.0, "limit": 10}
        ok(first, {"id": 30, "op": "query", "plan": anomalies}, groups.getvalue())
        reply, body = ok(first, {"id": 31, "op": "query_many", "plans": QUERIES[:3]})  # a dashboard
        assert sum(reply["parts"]) == len(body)
        ok(first, {"id": 32, "op": "enrich_list"})
        ok(first, {"id": 33, "op": "custom_list"})
        ok(first, {"id": 34, "op": "stats"})
        ok(first, {"id": 35, "op": "roll", "plan": {"log_position": 1}})
        ok(first, {"id": 36, "op": "retain", "plan": {"retention_ms": 10**12, "now_ms": T0}})
        ok(first, {"id": 37, "op": "enrich_drop", "plan": {"table": "users"}})
    except BaseException:
        first.stop()
        raise
    before_restart = served(first)

    second = Sidecar(tmp_path, env)
    try:
        opened, _ = ok(second, {"id": 1, "op": "open", "plan": {"dir": str(shard), "log_start": 0}})
        assert opened["rows"] == 600
        for i, plan in enumerate(QUERIES):
            ok(second, {"id": 2 + i, "op": "query", "plan": plan})
    except BaseException:
        second.stop()
        raise
    after_restart = served(second)

    for imported in (before_restart, after_restart):
        assert {"engine_polars", "polars"} <= imported  # the check sees the process's imports
        assert "pyarrow" not in imported
