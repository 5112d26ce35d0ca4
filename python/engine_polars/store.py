"""The shard's events, held as a list of polars DataFrame chunks.

Appends add a chunk (no copy of what is already held); :meth:`EventStore.compact` merges chunks
between frames so queries never scan hundreds of tiny ones.
"""

from __future__ import annotations

import polars as pl

from engine_polars._utils.ipc import read_ipc_body
from engine_polars.errors import BadFrame, names

__all__ = ["DIMENSIONS", "EVENT_SCHEMA", "MAX_CHUNKS", "MEASURES", "EventStore"]

#: Columns held, in order. `timestamp` is epoch ms; `metadata` is JSON object text, not parsed here.
EVENT_SCHEMA = pl.Schema(
    {
        "timestamp": pl.Int64,
        "event_type": pl.String,
        "user_id": pl.String,
        "value": pl.Float64,
        "metadata": pl.String,
    }
)
#: String columns a query may group by.
DIMENSIONS: tuple[str, ...] = ("event_type", "user_id")
#: Numeric columns a query may aggregate.
MEASURES: tuple[str, ...] = ("value",)

#: Types accepted in an appended batch. Timestamps arrive as Float64 because JS numbers are
#: doubles; Int64 (the stored type) is accepted too, so a store's own rows can be replayed.
_INCOMING_TYPES: dict[str, tuple[pl.DataType, ...]] = {
    "timestamp": (pl.Float64(), pl.Int64()),
    "event_type": (pl.String(),),
    "user_id": (pl.String(),),
    "value": (pl.Float64(),),
    "metadata": (pl.String(),),
}
_NOT_NULL = ("timestamp", "event_type", "user_id")
#: Beyond 2^53 a double no longer holds every integer, so such a "timestamp" is not one.
_MAX_SAFE_INTEGER = 2**53 - 1

#: More chunks than this triggers a compaction.
MAX_CHUNKS = 32


class EventStore:
    """All events of one shard. Every method leaves the store unchanged when it raises."""

    def __init__(self) -> None:
        self._chunks: list[pl.DataFrame] = []
        self._rows = 0

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def chunks(self) -> int:
        return len(self._chunks)

    def append(self, ipc_bytes: bytes) -> int:
        """Adds the rows of one Arrow IPC stream; returns how many. Raises :class:`BadFrame`."""
        batch = _validated(_read_stream(ipc_bytes))
        if batch.height > 0:
            self._chunks.append(batch)
            self._rows += batch.height
        return batch.height

    def frame(self) -> pl.LazyFrame:
        """A lazy frame over every chunk (no copy); empty, with :data:`EVENT_SCHEMA`, when empty."""
        if not self._chunks:
            return pl.LazyFrame(schema=EVENT_SCHEMA)
        return pl.concat(self._chunks, how="vertical", rechunk=False).lazy()

    def compact(self) -> bool:
        """Merges chunks when more than :data:`MAX_CHUNKS` are held; returns whether it did.

        Only a suffix is merged: from the first chunk that is no bigger than all the chunks after
        it together, to the end. Every chunk left in front is then bigger than everything behind
        it, so sizes at least double towards the front, the chunk count stays near log2(rows),
        and a row is copied O(log rows) times over its life, where merging everything would copy
        every row at every compaction. With equal-sized batches the first compaction merges all
        of them into one.
        """
        if len(self._chunks) <= MAX_CHUNKS:
            return False
        sizes = [c.height for c in self._chunks]
        after = sum(sizes)
        start = len(sizes) - 2
        for i, size in enumerate(sizes):
            after -= size
            if size <= after:
                start = min(i, start)
                break
        merged = pl.concat(self._chunks[start:], how="vertical", rechunk=True)
        self._chunks[start:] = [merged]
        return True


def _read_stream(ipc_bytes: bytes) -> pl.DataFrame:
    batch = read_ipc_body(ipc_bytes, "append", "events")
    # One chunk per append, however many record batches the stream held: compaction and
    # scans count on chunks being appends.
    return batch.rechunk()


def _validated(batch: pl.DataFrame) -> pl.DataFrame:
    expected = list(EVENT_SCHEMA.names())
    for name in expected:
        if name not in batch.schema:
            raise BadFrame(f"missing column `{name}`; expected columns {names(expected)}")
    for name, dtype in batch.schema.items():
        allowed = _INCOMING_TYPES.get(name)
        if allowed is None:
            raise BadFrame(f"unexpected column `{name}`; expected columns {names(expected)}")
        if dtype not in allowed:
            want = " or ".join(f"`{t}`" for t in allowed)
            raise BadFrame(f"column `{name}` has type `{dtype}`; expected {want}")
    for name in _NOT_NULL:
        nulls = batch[name].null_count()
        if nulls:
            raise BadFrame(f"column `{name}` has {nulls} null(s); it must not be null")
    return batch.select(_timestamp_ms(batch["timestamp"]), *expected[1:])


def _timestamp_ms(ts: pl.Series) -> pl.Series:
    if ts.dtype == pl.Int64:
        return ts
    ok = ts.is_finite() & (ts.floor() == ts) & (ts.abs() <= _MAX_SAFE_INTEGER)
    if not ok.all():
        row = int(ok.not_().arg_max() or 0)
        raise BadFrame(
            f"column `timestamp` has {ts[row]!r} at row {row}; expected an integral number of epoch ms"
        )
    return ts.cast(pl.Int64)
