"""Frames between a shard and this process, exactly as ``src/shards/sidecar-protocol.ts``::

    u32 LE header_len | u32 LE body_len | header: UTF-8 compact JSON | body: bytes

Requests carry ``{id, op, plan?}``; responses carry the same ``id`` and either ``ok: true`` with
op-specific fields or ``ok: false`` with a stable ``code`` and a ``message``.
``test/vectors/frames.json`` holds frames both test suites check byte for byte.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any, BinaryIO, Protocol

from engine_polars._utils.json_types import json_type
from engine_polars.errors import FrameTooLarge, ProtocolError
from engine_polars.limits import MAX_FRAME_HEADER_BYTES

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "PREFIX_BYTES",
    "ProtocolError",
    "encode_frame",
    "frame_head",
    "json_depth_over",
    "read_frame",
]

PREFIX_BYTES = 8
_PREFIX = struct.Struct("<II")

#: Headers are a few hundred bytes (a plan at most); a longer one is skipped unread and answered
#: ``FRAME_TOO_LARGE`` (``maxFrameHeaderBytes`` in ``config/limits.json``).
MAX_HEADER_BYTES = MAX_FRAME_HEADER_BYTES
#: Deepest JSON nesting a header may have; plans nest a handful of levels (custom params more).
MAX_JSON_DEPTH = 64
#: Largest read at a time: a body is collected as it arrives, and skipped bytes never pile up.
_CHUNK = 1 << 20


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
    return frame_head(header, len(body)) + bytes(body)


def frame_head(header: dict[str, Any], body_len: int) -> bytes:
    """A frame's prefix and header, for a body of ``body_len`` bytes written after it (a large
    body is written in pieces as it lies, never joined into one ``bytes``)."""
    try:
        head = _dumps(header, ascii_only=False)
    except UnicodeEncodeError:
        # A lone surrogate (e.g. echoed from a plan that carried "\ud800") has no UTF-8 form;
        # JS escapes it as `\ud800`, and so does ASCII-only JSON, which JS parses the same.
        head = _dumps(header, ascii_only=True)
    return _PREFIX.pack(len(head), body_len) + head


def _read_exactly(stream: ReadableStream, n: int, what: str) -> bytes:
    """Reads ``n`` bytes, at most :data:`_CHUNK` per read; returns fewer only at end of stream.

    Memory grows with the bytes that arrive, not with the length declared. When they do not fit
    (``MemoryError``) the rest is skipped, so the stream stays in step, and the frame is refused.
    """
    parts: list[bytes] = []
    got = 0
    try:
        while got < n:
            more = stream.read(min(n - got, _CHUNK))
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)
    except MemoryError:
        parts.clear()
        skipped = _skip(stream, n - got)
        if got + skipped < n:
            raise _truncated(what, n, got + skipped) from None
        raise FrameTooLarge(f"frame {what} of {n} bytes does not fit in memory; skipped the frame") from None


def _skip(stream: ReadableStream, n: int) -> int:
    """Reads and drops ``n`` bytes, at most :data:`_CHUNK` at a time; returns how many it could."""
    skipped = 0
    while skipped < n:
        more = stream.read(min(n - skipped, _CHUNK))
        if not more:
            break
        skipped += len(more)
    return skipped


def _truncated(what: str, expected: int, got: int) -> ProtocolError:
    return ProtocolError(f"truncated frame: expected {expected} {what} bytes, got {got}", fatal=True)


def read_frame(stream: BinaryIO | ReadableStream) -> tuple[dict[str, Any], bytes] | None:
    """Reads one frame: ``(header, body)``, or ``None`` on a clean end of stream.

    Raises :class:`ProtocolError`. Only a frame cut short by the end of the stream is fatal;
    after any other (a header that is not a JSON object or too deep: ``BAD_FRAME``; a header over
    :data:`MAX_HEADER_BYTES`, or a body too big to hold: ``FRAME_TOO_LARGE``) the frame has been
    consumed whole and the stream is at the next frame.
    """
    prefix = _read_exactly(stream, PREFIX_BYTES, "prefix")
    if not prefix:
        return None
    if len(prefix) < PREFIX_BYTES:
        raise _truncated("prefix", PREFIX_BYTES, len(prefix))
    head_len, body_len = _PREFIX.unpack(prefix)
    if head_len > MAX_HEADER_BYTES:
        skipped = _skip(stream, head_len + body_len)
        if skipped < head_len + body_len:
            raise _truncated("header and body", head_len + body_len, skipped)
        raise FrameTooLarge(
            f"header of {head_len} bytes is over the {MAX_HEADER_BYTES}-byte limit "
            "(`maxFrameHeaderBytes`); skipped the frame"
        )
    head = _read_exactly(stream, head_len, "header")
    if len(head) < head_len:
        raise _truncated("header", head_len, len(head))
    body = _read_exactly(stream, body_len, "body")
    if len(body) < body_len:
        raise _truncated("body", body_len, len(body))
    return _parse_header(head), body


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_OPENERS_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def json_depth_over(text: bytes, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays/objects more than ``limit`` deep (brackets inside
    strings do not count). Cheap and linear per pass: escapes, then strings, then everything but
    brackets are dropped with C-speed regex/translate; each pass then removes the innermost
    ``[]`` pairs, so text of depth d is empty after d passes. Unbalanced text (not JSON anyway)
    stops early and is left to the parser to refuse.

    >>> json_depth_over(b'{"a": [[1], "]]]"]}', 3), json_depth_over(b'{"a": [[1]]}', 2)
    (False, True)
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    if b'"' in text:
        # Escape pairs first (`\"` must not end a string), then whole strings: each regex scans
        # the text once, so no input makes them quadratic.
        if b"\\" in text:
            text = _ESCAPE.sub(b"", text)
        text = _STRING.sub(b"", text)
    brackets = text.translate(_OPENERS_AS_BRACKETS, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        inner_removed = brackets.replace(b"[]", b"")
        if len(inner_removed) == len(brackets):
            return False
        brackets = inner_removed
    return bool(brackets)


def _parse_header(head: bytes) -> dict[str, Any]:
    too_deep = ProtocolError(f"header nests deeper than {MAX_JSON_DEPTH} levels", fatal=False)
    try:
        if json_depth_over(head, MAX_JSON_DEPTH):
            raise too_deep
        header = json.loads(head.decode("utf-8"))
    except ProtocolError:
        raise
    except ValueError as exc:  # UnicodeDecodeError too; also ints past Python's digit limit
        raise ProtocolError(f"header is not UTF-8 JSON: {exc}", fatal=False) from None
    except RecursionError:
        raise too_deep from None
    except MemoryError:
        raise ProtocolError(f"header of {len(head)} bytes does not fit in memory as JSON", fatal=False) from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a JSON object; got {json_type(header)}", fatal=False)
    return header
