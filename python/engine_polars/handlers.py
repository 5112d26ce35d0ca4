"""The ops a shard may ask for: one function per ``op``, each returning the fields of its
``ok: true`` response (after ``id`` and ``ok``), an optional body, and whether to stop."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine_polars import enrichment_tables
from engine_polars._utils.ipc import to_ipc_stream
from engine_polars._utils.proc import rss_bytes
from engine_polars.errors import BadPlan
from engine_polars.limits import MAX_SUBPLANS
from engine_polars.ops import custom as custom_op
from engine_polars.plan import parse_plan, run_plan
from engine_polars.store import EventStore

__all__ = ["OPS", "Reply"]


@dataclass
class Reply:
    fields: dict[str, Any]
    body: bytes = b""
    #: the process exits after sending this reply
    stop: bool = False
    #: the store may need compacting once this reply is sent
    compact: bool = False


def _append(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    appended = store.append(body)
    return Reply({"appended": appended, "rows": store.rows}, compact=appended > 0)


def _query(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """One plan; the request body goes to the plan's kind (only ``anomalies`` reads one)."""
    if "plan" not in header:
        raise BadPlan("query needs a `plan` in its header")
    plan = parse_plan(header["plan"], "plan", body)
    result = run_plan(plan, store.frame())
    return Reply({"kind": plan.kind, "rows": result.height}, body=to_ipc_stream(result))


def _query_many(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    """Several plans in one round trip (e.g. a dashboard), each parsed as by ``query`` with an
    empty body. The answer body is the partials' IPC streams back to back; ``parts`` gives each
    one's byte length, in plan order."""
    raw = header.get("plans")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_SUBPLANS:
        raise BadPlan(f"query_many needs `plans`: a list of 1..{MAX_SUBPLANS} plans")
    plans = [parse_plan(p, f"plans[{i}]") for i, p in enumerate(raw)]
    frame = store.frame()
    streams = [to_ipc_stream(run_plan(p, frame)) for p in plans]
    return Reply({"parts": [len(b) for b in streams]}, body=b"".join(streams))


def _stats(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
    return Reply(
        {"rows": store.rows, "chunks": store.chunks, "rss_bytes": rss_bytes(), "pid": os.getpid()}
    )


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
}
