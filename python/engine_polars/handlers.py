"""The ops a shard may ask for: one function per ``op``, each returning the fields of its
``ok: true`` response (after ``id`` and ``ok``), an optional body, and whether to stop."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from engine_polars import enrichment_tables, partial_cache
from engine_polars._utils.fields import require_object
from engine_polars._utils.ipc import Buffer, body_bytes, encode_result, to_ipc_stream
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars._utils.proc import rss_bytes
from engine_polars.errors import BadFrame, BadPlan
from engine_polars.limits import MAX_SUBPLANS
from engine_polars.ops import custom as custom_op
from engine_polars.plan import Plan, parse_plan, rows_upto, run_plan
from engine_polars.store import EventStore, RollJob

__all__ = ["OPS", "Reply", "finish_roll"]


@dataclass
class Reply:
    fields: dict[str, Any]
    #: the body, or its pieces in order (written to the pipe one after the other, never joined)
    body: bytes | list[Buffer] = b""
    #: the process exits after sending this reply
    stop: bool = False
    #: the store may need compacting (and its new chunks' cached partials computed) once this reply is sent
    compact: bool = False
    #: a roll begun, its files not written yet: the answer is :func:`finish_roll`'s, once they are
    roll: RollJob | None = None


#: Reply bodies up to this many bytes are joined into one ``bytes`` (one write to the pipe);
#: larger ones go as their pieces, never copied once more.
_JOIN_UP_TO = 1 << 20


def _body(pieces: list[Buffer]) -> bytes | list[Buffer]:
    """A reply body: one ``bytes`` when every piece is and they are small (partials of a few kB,
    joined), else the pieces (a rows partial's texts as they lie in polars' memory, a large IPC
    stream as polars' writer made it)."""
    if all(isinstance(p, bytes) for p in pieces) and body_bytes(pieces) <= _JOIN_UP_TO:
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # type: ignore[return-value]
    return pieces


def _append(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """Body: a sealed batch. ``first_row`` (optional): the absolute index of its first row."""
    first_row = header.get("first_row")
    if first_row is not None and (not is_integer(first_row) or first_row < 0):
        raise BadFrame(f"header field `first_row` must be an integer >= 0; got {json_type(first_row)}")
    appended = store.append(body, first_row)
    return Reply(
        {"appended": appended, "rows": store.rows, "open_rows": store.open_rows, "next_row": store.next_row},
        compact=appended > 0,
    )


def _timing(since: tuple[float, float]) -> dict[str, float]:
    """``op_ms`` since ``since`` (perf_counter, process_time) and ``op_cpu_ms``, the CPU the
    process used meanwhile (every thread: polars' pool too): much less than ``op_ms`` means the
    op waited for a core."""
    return {
        "op_ms": round((time.perf_counter() - since[0]) * 1000, 3),
        "op_cpu_ms": round((time.process_time() - since[1]) * 1000, 3),
    }


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _query(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """One plan; the request body goes to the plan's kind (only ``anomalies`` reads one).

    ``op_ms``: the time spent on it here (parse, run, Arrow encode), so the shard can tell it
    from the time spent in the pipes and queues (the engine logs both at debug level), and
    ``op_cpu_ms`` the CPU time it took."""
    started = _now()
    if "plan" not in header:
        raise BadPlan("query needs a `plan` in its header")
    plan = parse_plan(header["plan"], "plan", body)
    cut = rows_upto(header["plan"])
    result = partial_cache.Request(store).answer(plan, cut)
    if result is None:
        result = run_plan(plan, store.frame(cut))
    body = _body(encode_result(result))
    return Reply({"kind": plan.kind, "rows": result.height, **_timing(started)}, body=body)


def _query_many(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """Several plans in one round trip (e.g. a dashboard), each parsed as by ``query`` with an
    empty body. The answer body is the partials (IPC streams or rows partials) back to back; ``parts`` gives each
    one's byte length, in plan order; ``op_ms`` and ``op_cpu_ms`` as for ``query``, for all of them."""
    started = _now()
    raw = header.get("plans")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_SUBPLANS:
        raise BadPlan(f"query_many needs `plans`: a list of 1..{MAX_SUBPLANS} plans")
    plans = [parse_plan(p, f"plans[{i}]") for i, p in enumerate(raw)]
    cuts = [rows_upto(p, f"plans[{i}]") for i, p in enumerate(raw)]
    cached = partial_cache.Request(store)
    frames: dict[int | None, pl.LazyFrame] = {}

    def run(plan: Plan, cut: int | None) -> pl.DataFrame:
        out = cached.answer(plan, cut)
        if out is not None:
            return out
        if cut not in frames:
            frames[cut] = store.frame(cut)
        return run_plan(plan, frames[cut])

    streams = [encode_result(run(p, cut)) for p, cut in zip(plans, cuts)]
    return Reply({"parts": [body_bytes(s) for s in streams], **_timing(started)}, body=_body([piece for s in streams for piece in s]))


def _stats(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply(
        {
            "rows": store.rows,
            "chunks": store.chunks,
            "rss_bytes": rss_bytes(),
            "pid": os.getpid(),
            "rows_dropped_by_retention": store.rows_dropped,
            "partial_cache_bytes": partial_cache.cached_bytes(store),
            **store.segment_stats(),
        }
    )


def _int_field(plan: Any, key: str, low: int = 0) -> int:
    value = plan.get(key)
    if not is_integer(value) or value < low:
        raise BadPlan(f"`plan.{key}` must be an integer >= {low}; got {json_type(value)}")
    return value


def _open(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """``plan: {dir, log_start}``: loads ``<dir>/segments``; answers where the log replay starts."""
    plan = require_object(header.get("plan"), "plan")
    directory = plan.get("dir")
    if not isinstance(directory, str) or not directory:
        raise BadPlan(f"`plan.dir` must be the shard's directory; got {json_type(directory)}")
    return Reply(store.open_dir(directory, _int_field(plan, "log_start")))


def _roll(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """``plan: {log_position}``: seals the open rows into a segment covering the log before it.

    Only begins it: the server writes the files (``RollJob.write``) on a thread while it serves
    the frames after this one, then answers with :func:`finish_roll` (``server.py``)."""
    plan = require_object(header.get("plan"), "plan")
    job = store.begin_roll(_int_field(plan, "log_position"))
    job.on_merged = partial_cache.roll_partials(store)
    return Reply({}, roll=job)


def finish_roll(store: EventStore, job: RollJob) -> Reply:
    """The answer to a roll whose files are written: committed, its segment given the rolled
    chunks' cached partials (``compact``: anything still missing is computed once it is sent)."""
    fields = store.finish_roll(job)
    partial_cache.carry_over(store, job)
    return Reply(fields, compact=True)


def _retain(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """``plan: {retention_ms, now_ms}``: drops the segments older than the retention."""
    plan = require_object(header.get("plan"), "plan")
    out = store.retain(_int_field(plan, "retention_ms", 1), _int_field(plan, "now_ms", -(2**62)))
    return Reply(out, compact=out["segments_dropped"] > 0)


def _ping(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply({})


def _shutdown(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply({"rows": store.rows}, stop=True)


def _enrich_upsert(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply(enrichment_tables.upsert_ipc(header.get("plan"), body))


def _enrich_drop(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply(enrichment_tables.drop(header.get("plan")))


def _enrich_list(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    listing = enrichment_tables.listing()
    return Reply({"tables": listing.height}, body=to_ipc_stream(listing))


def _custom_list(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply(custom_op.listing())


#: op → handler; the names are ``SidecarOp`` in sidecar-protocol.ts.
OPS: dict[str, Callable[[dict[str, Any], bytes, EventStore], Reply]] = {
    "append": _append,
    "query": _query,
    "query_many": _query_many,
    "stats": _stats,
    "ping": _ping,
    "shutdown": _shutdown,
    "enrich_upsert": _enrich_upsert,
    "enrich_drop": _enrich_drop,
    "enrich_list": _enrich_list,
    "custom_list": _custom_list,
    "open": _open,
    "roll": _roll,
    "retain": _retain,
}
