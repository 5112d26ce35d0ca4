"""Arrow IPC stream encoding of results.

Polars writes strings as `Utf8View` (or `LargeUtf8` at its oldest compat level); the partial
schemas in ``src/kinds/aggregate.ts`` say `Utf8`, so results go through pyarrow and are cast to the
exact types the TypeScript side documents. Partials are small, so the cast costs little.
"""

from __future__ import annotations

import io

import polars as pl
import pyarrow as pa

from engine_polars.errors import BadFrame

_PLAIN = {
    pa.large_string(): pa.string(),
    pa.string_view(): pa.string(),
    pa.large_binary(): pa.binary(),
    pa.binary_view(): pa.binary(),
}


def to_ipc_stream(df: pl.DataFrame) -> bytes:
    """An uncompressed Arrow IPC stream of ``df`` with plain `Utf8` strings; one batch, even
    when empty, so every reader sees the schema and a (possibly empty) batch."""
    table = df.to_arrow(compat_level=pl.CompatLevel.oldest())
    schema = pa.schema(
        [pa.field(f.name, _PLAIN.get(f.type, f.type), nullable=True) for f in table.schema]
    )
    table = table.cast(schema)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as writer:
        batches = table.to_batches()
        if not batches:
            batches = [pa.RecordBatch.from_pylist([], schema=schema)]
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


def read_ipc_body(body: bytes, op: str, what: str) -> pl.DataFrame:
    """The DataFrame in a request body that must be an Arrow IPC stream of ``what``;
    :class:`BadFrame` when it is missing or unreadable."""
    if not body:
        raise BadFrame(f"{op} needs a body: an Arrow IPC stream of {what}")
    try:
        return pl.read_ipc_stream(body)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        # ComputeError for a malformed message, OSError for a cut-short stream
        raise BadFrame(f"body is not a readable Arrow IPC stream: {exc}") from None
