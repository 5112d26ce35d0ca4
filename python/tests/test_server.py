"""The real process (`python -m engine_polars`) spoken to over real pipes with real frames."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from engine_polars.protocol import encode_frame
from event_batches import events_ipc, events_table, ipc_stream, random_events, read_ipc
from sidecar_process import TIMEOUT_S, Sidecar, sidecar_env


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[Sidecar]:
    s = Sidecar(tmp_path, sidecar_env())
    yield s
    s.stop()


def aggregate_plan(group_by: list[str], **filter_: Any) -> dict[str, Any]:
    return {"kind": "aggregate", "filter": filter_, "group_by": group_by, "metrics": ["value"]}


def test_answers_ping_with_the_request_id(sidecar: Sidecar) -> None:
    assert sidecar.request({"id": 41, "op": "ping"}) == ({"id": 41, "ok": True}, b"")


def test_appends_a_batch_and_answers_an_aggregate_query_over_it(sidecar: Sidecar) -> None:
    events = random_events(random.Random(7), 300)
    header, body = sidecar.request({"id": 1, "op": "append"}, events_ipc(events))
    assert header == {"id": 1, "ok": True, "appended": 300, "rows": 300, "open_rows": 300, "next_row": 300}
    assert list(header) == ["id", "ok", "appended", "rows", "open_rows", "next_row"]
    assert body == b""

    header, body = sidecar.request({"id": 2, "op": "query", "plan": aggregate_plan([])})
    assert isinstance(header.pop("op_ms"), float), "the time the op took here, in ms"
    assert header.pop("op_cpu_ms") >= 0, "and the CPU time it used"
    assert header == {"id": 2, "ok": True, "kind": "aggregate", "rows": 1}
    [row] = read_ipc(body).to_pylist()
    values = [e.value for e in events if e.value is not None]
    assert row["count"] == 300
    assert row["value__count"] == len(values)
    assert row["value__min"] == min(values) and row["value__max"] == max(values)

    header, body = sidecar.request({"id": 3, "op": "query", "plan": aggregate_plan(["event_type"], event_types=["click"])})
    assert header.pop("op_ms") >= 0 and header.pop("op_cpu_ms") >= 0
    assert header == {"id": 3, "ok": True, "kind": "aggregate", "rows": 1}
    [row] = read_ipc(body).to_pylist()
    assert (row["event_type"], row["count"]) == ("click", sum(e.event_type == "click" for e in events))


def test_answers_a_query_on_an_empty_shard_with_the_empty_partial(sidecar: Sidecar) -> None:
    header, body = sidecar.request({"id": 1, "op": "query", "plan": aggregate_plan([])})
    assert header.pop("op_ms") >= 0 and header.pop("op_cpu_ms") >= 0
    assert header == {"id": 1, "ok": True, "kind": "aggregate", "rows": 1}
    assert read_ipc(body).to_pylist()[0]["count"] == 0
    header, body = sidecar.request({"id": 2, "op": "query", "plan": aggregate_plan(["user_id"])})
    assert header.pop("op_ms") >= 0 and header.pop("op_cpu_ms") >= 0
    assert header == {"id": 2, "ok": True, "kind": "aggregate", "rows": 0}
    assert read_ipc(body).num_rows == 0


def test_reports_stats_with_rows_chunks_rss_and_pid(sidecar: Sidecar) -> None:
    sidecar.request({"id": 1, "op": "append"}, events_ipc(random_events(random.Random(8), 10)))
    header, _ = sidecar.request({"id": 2, "op": "stats"})
    assert list(header) == [
        "id", "ok", "rows", "chunks", "rss_bytes", "pid", "rows_dropped_by_retention", "partial_cache_bytes",
        "segments", "segment_bytes", "rows_in_segments", "open_rows", "next_row",
    ]  # fmt: skip
    assert header["ok"] is True
    assert (header["rows"], header["chunks"], header["pid"]) == (10, 1, sidecar.proc.pid)
    assert (header["segments"], header["rows_in_segments"], header["open_rows"], header["next_row"]) == (0, 0, 10, 10)
    assert header["rss_bytes"] > 0


def test_compacts_between_frames_so_many_appends_hold_few_chunks(sidecar: Sidecar) -> None:
    rng = random.Random(9)
    for i in range(80):
        header, _ = sidecar.request({"id": i, "op": "append"}, events_ipc(random_events(rng, 3)))
        assert header["ok"] is True
    header, _ = sidecar.request({"id": 100, "op": "stats"})
    assert header["rows"] == 240
    assert 1 <= header["chunks"] <= 32


def test_answers_a_bad_plan_with_bad_plan_and_keeps_serving(sidecar: Sidecar) -> None:
    header, body = sidecar.request({"id": 5, "op": "query", "plan": aggregate_plan(["country"])})
    assert header == {
        "id": 5,
        "ok": False,
        "code": "BAD_PLAN",
        "message": "unknown group key `country` in `plan.group_by`; expected one of `event_type`, `user_id`, "
        "`window`, `metadata.<key>` or `<table>.<column>`",
    }
    assert body == b""
    assert sidecar.request({"id": 6, "op": "query"})[0]["code"] == "BAD_PLAN"
    assert sidecar.request({"id": 7, "op": "ping"})[0] == {"id": 7, "ok": True}


def test_answers_an_unknown_op_with_unknown_op_and_keeps_serving(sidecar: Sidecar) -> None:
    header, _ = sidecar.request({"id": 8, "op": "explode"})
    assert {k: header[k] for k in ("id", "ok", "code")} == {"id": 8, "ok": False, "code": "UNKNOWN_OP"}
    assert header["message"].startswith("unknown op `explode`; expected one of `append`, `query`")
    for op in ("stats", "ping", "shutdown"):
        assert f"`{op}`" in header["message"]
    assert sidecar.request({"id": 9, "op": "ping"})[0] == {"id": 9, "ok": True}


def test_rejects_a_body_with_the_wrong_schema_as_bad_frame_and_stores_nothing(sidecar: Sidecar) -> None:
    table = events_table(random_events(random.Random(10), 4))
    table = table.set_column(0, "timestamp", pa.array(["2024-01-01"] * 4))
    header, _ = sidecar.request({"id": 10, "op": "append"}, ipc_stream(table))
    assert header["code"] == "BAD_FRAME" and header["ok"] is False and header["id"] == 10
    assert header["message"] == "column `timestamp` has type `String`; expected `Float64` or `Int64`"
    assert sidecar.request({"id": 11, "op": "stats"})[0]["rows"] == 0


def test_answers_an_unparseable_header_with_bad_frame_id_zero_and_keeps_serving(sidecar: Sidecar) -> None:
    sidecar.send_raw(struct.pack("<II", 9, 0) + b"not json!")
    header, _ = sidecar.receive()
    assert (header["id"], header["ok"], header["code"]) == (0, False, "BAD_FRAME")
    header, _ = sidecar.request({"op": "ping"})
    assert header == {"id": 0, "ok": False, "code": "BAD_FRAME", "message": "header field `id` must be an integer; got null"}
    assert sidecar.request({"id": 12, "op": "ping"})[0] == {"id": 12, "ok": True}


def test_answers_pipelined_requests_in_order(sidecar: Sidecar) -> None:
    batch = events_ipc(random_events(random.Random(11), 5))
    sidecar.send_raw(b"".join(encode_frame({"id": i, "op": "append"}, batch) for i in range(1, 6)))
    assert [sidecar.receive()[0]["rows"] for _ in range(5)] == [5, 10, 15, 20, 25]


def test_shutdown_answers_then_exits_zero_writing_nothing_else(sidecar: Sidecar) -> None:
    sidecar.request({"id": 1, "op": "append"}, events_ipc(random_events(random.Random(12), 6)))
    assert sidecar.request({"id": 2, "op": "shutdown"}) == ({"id": 2, "ok": True, "rows": 6}, b"")
    assert sidecar.wait() == 0
    assert sidecar.stdout_closed_cleanly()


def test_exits_zero_on_a_clean_end_of_stdin(sidecar: Sidecar) -> None:
    sidecar.close_stdin()
    assert sidecar.wait() == 0
    assert sidecar.stdout_closed_cleanly()


def test_answers_a_truncated_frame_with_bad_frame_then_exits_nonzero(sidecar: Sidecar) -> None:
    sidecar.send_raw(encode_frame({"id": 1, "op": "ping"}, b"abcdef")[:-2])
    sidecar.close_stdin()
    header, _ = sidecar.receive()
    assert (header["id"], header["code"]) == (0, "BAD_FRAME")
    assert header["message"].startswith("truncated frame")
    assert sidecar.wait() == 1


def test_logs_only_to_stderr_with_a_pid_prefix(sidecar: Sidecar) -> None:
    sidecar.request({"id": 1, "op": "explode"})
    sidecar.request({"id": 2, "op": "shutdown"})
    assert sidecar.wait() == 0
    lines = sidecar.stderr_lines()
    assert lines, "expected start-up and shutdown lines"
    assert all(line.startswith(f"engine_polars[{sidecar.proc.pid}] ") for line in lines)
    assert any("UNKNOWN_OP" in line for line in lines)


def test_runs_polars_on_one_thread_when_the_environment_does_not_say(tmp_path: Path) -> None:
    s = Sidecar(tmp_path, sidecar_env())
    try:
        assert s.request({"id": 1, "op": "shutdown"})[0]["ok"] is True
        assert s.wait() == 0
    finally:
        s.stop()
    assert any(", 1 thread(s)" in line for line in s.stderr_lines())


def test_importing_the_package_does_not_import_polars() -> None:
    # `__main__` must pin POLARS_MAX_THREADS before polars loads; the package `__init__` runs first
    code = "import sys, engine_polars; print('polars' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=sidecar_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.stdout.strip() == "False"


def rows_and_pid(s: Sidecar, request_id: int) -> tuple[int, int]:
    header, _ = s.request({"id": request_id, "op": "stats"})
    return header["rows"], header["pid"]


def test_survives_a_plan_nested_1500_deep_answering_bad_frame(sidecar: Sidecar) -> None:
    sidecar.request({"id": 1, "op": "append"}, events_ipc(random_events(random.Random(13), 30)))
    before = rows_and_pid(sidecar, 2)
    params = "[" * 1_500 + "]" * 1_500
    head = ('{"id":3,"op":"query","plan":{"kind":"custom","name":"revenue_by_plan","params":{"x":' + params + "}}}").encode()
    sidecar.send_raw(struct.pack("<II", len(head), 0) + head)
    header, _ = sidecar.receive()
    assert header == {"id": 0, "ok": False, "code": "BAD_FRAME", "message": "header nests deeper than 64 levels"}
    assert rows_and_pid(sidecar, 4) == before == (30, sidecar.proc.pid)


def test_skips_a_frame_over_the_header_limit_answering_frame_too_large(tmp_path: Path) -> None:
    s = Sidecar(tmp_path, sidecar_env(ENGINE_MAX_FRAME_HEADER_BYTES="4096"))
    try:
        s.request({"id": 1, "op": "append"}, events_ipc(random_events(random.Random(14), 12)))
        plan = aggregate_plan([], user_ids=[f"user_{i}" for i in range(1_000)])
        header, _ = s.request({"id": 2, "op": "query", "plan": plan})
        assert header["ok"] is False and header["id"] == 0
        assert header["code"] == "FRAME_TOO_LARGE"
        assert header["message"].endswith("over the 4096-byte limit (`maxFrameHeaderBytes`); skipped the frame")
        # a declared length far beyond the limit, with its bytes following: skipped the same way
        s.send_raw(struct.pack("<II", 3_000_000, 5) + bytes(3_000_005))
        assert s.receive()[0]["code"] == "FRAME_TOO_LARGE"
        assert rows_and_pid(s, 3) == (12, s.proc.pid)
    finally:
        s.stop()
