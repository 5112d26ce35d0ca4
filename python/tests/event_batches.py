"""Test helpers: random events and Arrow IPC streams built with pyarrow, the way the TS column
builder sends them (timestamp Float64, strings Utf8, value/metadata nullable)."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import pyarrow as pa

EVENT_TYPES = ("page_view", "click", "purchase", "signup")
USERS = tuple(f"user_{i}" for i in range(7)) + ("ünïcode ✓",)
T0 = 1_700_000_000_000

WIRE_SCHEMA = pa.schema(
    [
        pa.field("timestamp", pa.float64(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("metadata", pa.string()),
    ]
)


@dataclass(frozen=True)
class Event:
    timestamp: int
    event_type: str
    user_id: str
    value: float | None
    metadata: str | None


def random_events(rng: random.Random, n: int) -> list[Event]:
    events = []
    for i in range(n):
        value: float | None = None
        if rng.random() > 0.25:
            value = rng.choice([rng.uniform(-500.0, 500.0), float(rng.randint(0, 9)), rng.gauss(1e6, 3.0)])
        events.append(
            Event(
                timestamp=T0 + rng.randint(0, 10_000),
                event_type=rng.choice(EVENT_TYPES),
                user_id=rng.choice(USERS),
                value=value,
                metadata=None if rng.random() < 0.5 else f'{{"i":{i}}}',
            )
        )
    return events


def events_table(events: list[Event]) -> pa.Table:
    return pa.table(
        {
            "timestamp": [float(e.timestamp) for e in events],
            "event_type": [e.event_type for e in events],
            "user_id": [e.user_id for e in events],
            "value": [e.value for e in events],
            "metadata": [e.metadata for e in events],
        },
        schema=WIRE_SCHEMA,
    )


def ipc_stream(table: pa.Table, max_chunksize: int | None = None) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=max_chunksize):
            writer.write_batch(batch)
    return sink.getvalue()


def events_ipc(events: list[Event], max_chunksize: int | None = None) -> bytes:
    return ipc_stream(events_table(events), max_chunksize)


def read_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()
