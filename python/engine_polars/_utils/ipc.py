"""Arrow IPC stream encoding of results.

Written by polars itself at its oldest compat level, so strings are `LargeUtf8` (64-bit offsets)
and binaries `LargeBinary`, never the view types. Nothing here may import pyarrow: polars'
Arrow interop (``to_arrow``, ``from_arrow``, ``use_pyarrow=``) loads it lazily, and it (with the
numpy it brought) cost ~40 MB of RSS in every shard's process (105 → 64 MB idle; ``tests/test_no_pyarrow.py`` keeps it
out). The TypeScript readers (``src/merge/decode-partial.ts``, the export pages, the
re-partitioning row router and enrichment state) accept `LargeUtf8`.
"""

from __future__ import annotations

import io

import polars as pl

from engine_polars.errors import BadFrame


def to_ipc_stream(df: pl.DataFrame) -> bytes:
    """An uncompressed Arrow IPC stream of ``df``: the schema, then at least one record batch
    (polars writes one, empty, for an empty frame), then the end-of-stream marker."""
    sink = io.BytesIO()
    df.write_ipc_stream(sink, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
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
