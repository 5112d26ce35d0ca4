"""bench:peers' plain-polars peer: one process, one eager DataFrame, every thread.

What a competent polars user would write for each question, with no engine code: the events are
read once from the Arrow IPC file the bench wrote, kept as one rechunked DataFrame, and every
query runs against it. Each query's semantics match the engine's documented ones (docs/api/*.md),
group-bys sorted by their keys as the engine's answers are; the bench cross-checks the answers.

Protocol (stdin/stdout, one request at a time; bench/peers/polars-peer.ts is the other side):
a request is one JSON line, ``{"id": 1, "op": "load", "ipc": path, "parquet": path | null}``,
``{"id": 2, "op": "query", "query": "Q1"}`` or ``{"id": 3, "op": "exit"}``. The answer is a header
line ``{"id", "ok", "ms", "bytes"[, "error"]}`` followed by exactly ``bytes`` bytes of JSON and a
newline: for a query an object of named row lists (``{"groups": [{...}, ...]}``), each list a
DataFrame's ``write_json()``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import BinaryIO

import polars as pl

FUNNEL_STEPS = ("page_view", "add_to_cart", "checkout", "purchase")
STRING_COLUMNS = ("event_type", "user_id", "plan", "country", "page")

Answer = dict[str, pl.DataFrame]


def load(ipc: str) -> pl.DataFrame:
    """The events as plain columns: Int64 epoch ms, String dimensions, Float64 value."""
    df = pl.read_ipc(ipc, memory_map=False)
    return df.with_columns(
        pl.col("timestamp").cast(pl.Int64),
        *(pl.col(c).cast(pl.String) for c in STRING_COLUMNS),
    ).rechunk()


def _null_sum_when_no_values(df: pl.DataFrame) -> pl.DataFrame:
    """polars sums no values to 0; the engine (and SQL) answer null: a group without values has no sum."""
    return df.with_columns(pl.when(pl.col("value_count") > 0).then(pl.col("value_sum")).alias("value_sum"))


def _moments() -> list[pl.Expr]:
    v = pl.col("value")
    return [
        pl.len().alias("count"),
        v.count().alias("value_count"),
        v.sum().alias("value_sum"),
        v.mean().alias("value_mean"),
        v.min().alias("value_min"),
        v.max().alias("value_max"),
    ]


def q1(df: pl.DataFrame) -> Answer:
    return {"groups": _null_sum_when_no_values(df.group_by("event_type").agg(_moments()).sort("event_type"))}


def q1b(df: pl.DataFrame) -> Answer:
    return {"groups": _null_sum_when_no_values(df.group_by("event_type", "user_id").agg(_moments()).sort("event_type", "user_id"))}


def q2(df: pl.DataFrame) -> Answer:
    start = (pl.col("timestamp") // 60_000 * 60_000).alias("window_start")
    v = pl.col("value")
    windows = df.group_by(start, "event_type").agg(pl.len().alias("count"), v.count().alias("value_count"), v.sum().alias("value_sum")).sort("window_start", "event_type")
    return {"windows": _null_sum_when_no_values(windows)}


def q3(df: pl.DataFrame) -> Answer:
    v = pl.col("value")
    qs = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
    return {"percentiles": df.select(v.count().alias("count"), *(v.quantile(q, interpolation="linear").alias(k) for k, q in qs.items()))}


def q4(df: pl.DataFrame) -> Answer:
    v = pl.col("value")
    users = df.group_by("user_id").agg(v.sum().alias("value_sum"), v.count().alias("value_count"), pl.len().alias("count"))
    top = users.filter(pl.col("value_count") > 0).sort(["value_sum", "user_id"], descending=[True, False]).head(10)
    return {"top": top.select("user_id", "value_sum", "count")}


def q5(df: pl.DataFrame) -> Answer:
    values = df.get_column("value")
    n = values.count()
    mean = values.mean()
    stddev = values.std(ddof=0)
    totals = pl.DataFrame({"count": [0], "mean": [mean], "stddev": [stddev], "values": [n]}, schema_overrides={"mean": pl.Float64, "stddev": pl.Float64})
    if n < 2 or not stddev:
        return {"totals": totals, "top": pl.DataFrame(schema={"timestamp": pl.Int64, "event_type": pl.String, "user_id": pl.String, "value": pl.Float64, "z_score": pl.Float64})}
    hits = (
        df.lazy()
        .filter(pl.col("value").is_not_null())
        .select("timestamp", "event_type", "user_id", "value", ((pl.col("value") - mean) / stddev).alias("z_score"))
        .filter(pl.col("z_score").abs() > 3)
        .collect()
    )
    top = hits.sort([pl.col("z_score").abs(), "timestamp", "user_id", "event_type"], descending=[True, False, False, False]).head(100)
    return {"totals": totals.with_columns(pl.lit(hits.height, dtype=pl.Int64).alias("count")), "top": top}


def q6(df: pl.DataFrame) -> Answer:
    """Ordered funnel without a window: each step takes the user's earliest event of its type at or
    after the previous step's event."""
    reached = df.filter(pl.col("event_type") == FUNNEL_STEPS[0]).group_by("user_id").agg(pl.col("timestamp").min().alias("at"))
    users = [reached.height]
    for step in FUNNEL_STEPS[1:]:
        events = df.filter(pl.col("event_type") == step).select("user_id", "timestamp")
        reached = (
            events.join(reached, on="user_id")
            .filter(pl.col("timestamp") >= pl.col("at"))
            .group_by("user_id")
            .agg(pl.col("timestamp").min().alias("at"))
        )
        users.append(reached.height)
    return {"steps": pl.DataFrame({"step": list(range(1, len(users) + 1)), "event_type": list(FUNNEL_STEPS), "users": users})}


def q7(df: pl.DataFrame) -> Answer:
    v = pl.col("value")
    stats = df.select(
        pl.len().alias("count"),
        v.count().alias("value_count"),
        v.mean().alias("mean"),
        v.std(ddof=0).alias("stddev"),
        v.min().alias("min"),
        v.max().alias("max"),
        v.quantile(0.25, interpolation="linear").alias("p25"),
        v.quantile(0.5, interpolation="linear").alias("p50"),
        v.quantile(0.75, interpolation="linear").alias("p75"),
        pl.col("user_id").n_unique().alias("distinct_users"),
        pl.col("event_type").n_unique().alias("distinct_event_types"),
        pl.col("timestamp").min().alias("first_timestamp"),
        pl.col("timestamp").max().alias("last_timestamp"),
    )
    return {"stats": stats}


QUERIES: dict[str, Callable[[pl.DataFrame], Answer]] = {"Q1": q1, "Q1b": q1b, "Q2": q2, "Q3": q3, "Q4": q4, "Q5": q5, "Q6": q6, "Q7": q7}


def _encode(answer: Answer) -> bytes:
    return ("{" + ",".join(f"{json.dumps(name)}:{frame.write_json()}" for name, frame in answer.items()) + "}").encode()


def _reply(out: BinaryIO, request_id: object, ok: bool, ms: float, payload: bytes, error: str | None = None) -> None:
    head: dict[str, object] = {"id": request_id, "ok": ok, "ms": ms, "bytes": len(payload)}
    if error is not None:
        head["error"] = error
    out.write(json.dumps(head).encode() + b"\n" + payload + b"\n")
    out.flush()


def main() -> None:
    out = sys.stdout.buffer
    df: pl.DataFrame | None = None
    for line in sys.stdin:
        req = json.loads(line)
        rid = req.get("id")
        t0 = time.perf_counter()
        try:
            if req["op"] == "exit":
                _reply(out, rid, True, 0.0, b"{}")
                return
            if req["op"] == "load":
                df = load(req["ipc"])
                loaded_ms = (time.perf_counter() - t0) * 1000
                parquet_ms = None
                if req.get("parquet"):
                    t1 = time.perf_counter()
                    df.write_parquet(req["parquet"], compression="lz4")
                    parquet_ms = (time.perf_counter() - t1) * 1000
                payload = json.dumps({"rows": df.height, "load_ms": loaded_ms, "parquet_ms": parquet_ms, "threads": pl.thread_pool_size(), "polars": pl.__version__}).encode()
                _reply(out, rid, True, loaded_ms, payload)
            elif req["op"] == "query":
                if df is None:
                    raise RuntimeError("query before load")
                payload = _encode(QUERIES[req["query"]](df))
                _reply(out, rid, True, (time.perf_counter() - t0) * 1000, payload)
            else:
                raise ValueError(f"unknown op {req['op']!r}")
        except Exception as exc:  # reported to the bench, which fails loudly
            _reply(out, rid, False, (time.perf_counter() - t0) * 1000, b"{}", f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
