"""Frames between a shard and this process, exactly as ``src/shards/sidecar-protocol.ts``::

    u32 LE header_len | u32 LE body_len | header: UTF-8 compact JSON | body: bytes

Requests carry ``{id, op, plan?}``; responses carry the same ``id`` and either ``ok: true`` with
op-specific fields or ``ok: false`` with a stable ``code`` and a ``message``.
``test/vectors/frames.json`` holds frames both test suites check byte for byte.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO, Protocol

from engine_polars._utils.json_types import json_type
from engine_polars.errors import ProtocolError

__all__ = ["MAX_HEADER_BYTES", "PREFIX_BYTES", "ProtocolError", "encode_frame", "read_frame"]

PREFIX_BYTES = 8
_PREFIX = struct.Struct("<II")

#: Headers are a few hundred bytes (a plan at most); a length beyond this means the stream is
#: out of step, and reading it would wait for bytes that never come.
MAX_HEADER_BYTES = 16 * 1024 * 1024


class ReadableStream(Protocol):
    def read(self, n: int, /) -> bytes | None: ...


def _dumps(header: dict[str, Any], ascii_only: bool) -> bytes:
    # Compact separators and raw UTF-8 give the same bytes as JS `JSON.stringify` for the same
    # key order (ints, strings, bools, null, nesting). NaN is refused: it is not JSON.
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=ascii_only, allow_nan=False)
    return text.encode("utf-8")


def encode_frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    """Encodes one frame.

    >>> encode_frame({"id": 1, "op": "ping"})
    b'\\x14\\x00\\x00\\x00\\x00\\x00\\x00\\x00{"id":1,"op":"ping"}'
    """
    try:
        head = _dumps(header, ascii_only=False)
    except UnicodeEncodeError:
        # A lone surrogate (e.g. echoed from a plan that carried "\ud800") has no UTF-8 form;
        # JS escapes it as `\ud800`, and so does ASCII-only JSON, which JS parses the same.
        head = _dumps(header, ascii_only=True)
    return _PREFIX.pack(len(head), len(body)) + head + bytes(body)


def _read_exactly(stream: ReadableStream, n: int) -> bytes:
    """Reads ``n`` bytes, looping over short reads; returns fewer only at end of stream."""
    if n == 0:
        return b""
    first = stream.read(n) or b""
    if len(first) == n or not first:
        return first
    parts = [first]
    got = len(first)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_frame(stream: BinaryIO | ReadableStream) -> tuple[dict[str, Any], bytes] | None:
    """Reads one frame: ``(header, body)``, or ``None`` on a clean end of stream.

    Raises :class:`ProtocolError`: fatal for a truncated frame or an implausible header length,
    non-fatal (the frame was consumed whole) for a header that is not a JSON object.
    """
    prefix = _read_exactly(stream, PREFIX_BYTES)
    if not prefix:
        return None
    if len(prefix) < PREFIX_BYTES:
        raise ProtocolError(
            f"truncated frame: expected {PREFIX_BYTES} prefix bytes, got {len(prefix)}", fatal=True
        )
    head_len, body_len = _PREFIX.unpack(prefix)
    if head_len > MAX_HEADER_BYTES:
        raise ProtocolError(
            f"header length {head_len} is over the {MAX_HEADER_BYTES}-byte limit", fatal=True
        )
    head = _read_exactly(stream, head_len)
    if len(head) < head_len:
        raise ProtocolError(
            f"truncated frame: expected {head_len} header bytes, got {len(head)}", fatal=True
        )
    body = _read_exactly(stream, body_len)
    if len(body) < body_len:
        raise ProtocolError(
            f"truncated frame: expected {body_len} body bytes, got {len(body)}", fatal=True
        )
    return _parse_header(head), body


def _parse_header(head: bytes) -> dict[str, Any]:
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"header is not UTF-8 JSON: {exc}", fatal=False) from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a JSON object; got {json_type(header)}", fatal=False)
    return header
