"""Arrow IPC stream encoding of results.

Written by polars itself at its oldest compat level, so strings are `LargeUtf8` (64-bit offsets)
and binaries `LargeBinary`, never the view types. Nothing here may import pyarrow: polars'
Arrow interop (``to_arrow``, ``from_arrow``, ``use_pyarrow=``) loads it lazily, and it (with the
numpy it brought) cost ~40 MB of RSS in every shard's process (105 → 64 MB idle; ``tests/test_no_pyarrow.py`` keeps it
out). The TypeScript readers (``src/merge/decode-partial.ts``, the export pages, the
re-partitioning row router and enrichment state) accept `LargeUtf8`.

A result with finished answer rows (a ``__row`` column, ``engine_polars.answer_rows``) travels
as a *rows partial* instead (:func:`encode_result`), read by ``src/merge/aggregate-rows.ts``::

    u32 LE ipc_len | u32 LE 0 | ipc_len bytes: an Arrow IPC stream of every column but ``__row``,
    plus ``__len`` UInt32 (each row text's UTF-8 length) | the row texts' bytes, back to back |
    0-7 zero bytes (the whole a multiple of 8 bytes)

The texts are a hundred MB or more for a by-user aggregate at 10 M events: polars' IPC writer
took ~0.23 s per shard to write them as `LargeUtf8` (and the frame one more copy), where their
bytes are handed to the pipe as they lie in the column (~15 ms to make them contiguous).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence

import polars as pl

from engine_polars.errors import BadFrame

__all__ = ["ROWS_PREFIX", "Buffer", "body_bytes", "encode_result", "ipc_pieces", "read_ipc_body", "string_bytes", "to_ipc_stream"]

#: A reply body piece: ``bytes`` or a ``memoryview`` of bytes (written to the pipe as it is).
Buffer = bytes | memoryview

#: The rows partial's prefix: the IPC stream's length, then 4 zero bytes (8 keeps it aligned).
ROWS_PREFIX = struct.Struct("<II")


class _Pieces:
    """A file for polars' IPC writer that keeps each write as a piece: the writer hands over a
    fresh ``bytes`` per write (14 writes for a 60 MB answer of 9 columns), which an
    ``io.BytesIO`` would copy again into a buffer it grows by reallocation, and ``getvalue``
    once more (60 MB: ~0.11-0.13 s of CPU, against ~0.05 kept as pieces)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(data if isinstance(data, bytes) else bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def ipc_pieces(df: pl.DataFrame) -> list[bytes]:
    """An uncompressed Arrow IPC stream of ``df`` in pieces, in order: the schema, then at least
    one record batch (polars writes one, empty, for an empty frame), then the end-of-stream
    marker."""
    sink = _Pieces()
    df.write_ipc_stream(sink, compression="uncompressed", compat_level=pl.CompatLevel.oldest())  # type: ignore[arg-type]
    return sink.pieces


def to_ipc_stream(df: pl.DataFrame) -> bytes:
    """:func:`ipc_pieces` joined into one ``bytes``."""
    return b"".join(ipc_pieces(df))


def string_bytes(texts: pl.Series) -> memoryview:
    """The UTF-8 bytes of a String Series without nulls, back to back, without a copy on this side:
    a view of the contiguous buffer polars makes of the column (``Series._get_buffers``), which
    the view keeps alive. (polars is pinned, ``python/requirements.txt``;
    ``tests/test_ipc.py`` checks the bytes against the texts.)"""
    if texts.null_count():
        raise ValueError(f"`{texts.name}` has {texts.null_count()} nulls")
    values = texts.rechunk()._get_buffers()["values"]
    pointer, offset, length = values._get_buffer_info()
    if length == 0:
        return memoryview(b"")
    view = (ctypes.c_char * length).from_address(pointer + offset)
    view._owner = values  # type: ignore[attr-defined]  # the buffer lives as long as the view
    return memoryview(view).cast("B")


def encode_result(df: pl.DataFrame) -> list[Buffer]:
    """A result as reply body pieces: a rows partial (see the module doc) when it has a ``__row``
    column, else its Arrow IPC stream."""
    if "__row" not in df.columns:
        return list(ipc_pieces(df))
    texts = df["__row"]
    meta = to_ipc_stream(df.select(pl.exclude("__row"), texts.str.len_bytes().alias("__len")))
    text = string_bytes(texts)
    # padded to a multiple of 8 bytes, so a partial after it in a query_many body stays aligned
    pad = -(ROWS_PREFIX.size + len(meta) + len(text)) % 8
    return [ROWS_PREFIX.pack(len(meta), 0), meta, text, bytes(pad)]


def body_bytes(pieces: Sequence[Buffer]) -> int:
    """The total length of reply body pieces."""
    return sum(len(p) for p in pieces)


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
