"""The serving loop: frames in on stdin, one response frame out on stdout per request.

Requests are answered in order, one at a time. No request can stop the loop: a failure while
reading a frame (bad header, too deep, too long: the frame is consumed whole), while running an
op or while encoding its reply is answered as ``{id, ok: false, code, message}`` (``id`` 0 when
the frame's own ``id`` is unknown) and the loop goes on. Only the end of stdin (clean, or in the
middle of a frame), a ``shutdown`` request, a closed stdout, ``KeyboardInterrupt`` and
``SystemExit`` end it.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, BinaryIO

import polars as pl

from engine_polars import partial_cache
from engine_polars._utils.json_types import is_integer, json_type
from engine_polars._utils.log import log
from engine_polars.errors import (
    BadFrame,
    EngineError,
    ProtocolError,
    UnknownOp,
    internal_error,
    unknown_name,
)
from engine_polars.handlers import OPS, Reply
from engine_polars.protocol import encode_frame, read_frame
from engine_polars.store import EventStore

__all__ = ["handle_frame", "main", "serve"]

#: Answered when even an error reply cannot be encoded (e.g. out of memory): fixed bytes.
_LAST_RESORT = b'"ok":false,"code":"INTERNAL","message":"the reply could not be encoded"}'


def _error_frame(request_id: int, exc: EngineError) -> bytes:
    try:
        return encode_frame({"id": request_id, "ok": False, "code": exc.code, "message": exc.message})
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # MemoryError, or a message that is not a str
        head = b'{"id":' + str(request_id).encode("ascii") + b"," + _LAST_RESORT
        return len(head).to_bytes(4, "little") + bytes(4) + head


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown place"
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno}"


def handle_frame(header: dict[str, Any], body: bytes, store: EventStore) -> tuple[bytes, Reply | None]:
    """Answers one request; returns the response frame and, when the op succeeded, its reply.
    Never raises, except ``KeyboardInterrupt`` and ``SystemExit``."""
    request_id = header.get("id")
    if not is_integer(request_id):
        exc = BadFrame(f"header field `id` must be an integer; got {json_type(request_id)}")
        log(f"bad frame: {exc.message}")
        return _error_frame(0, exc), None
    assert isinstance(request_id, int)
    op = header.get("op")
    try:
        if not isinstance(op, str):
            raise BadFrame(f"header field `op` must be a string; got {json_type(op)}")
        handler = OPS.get(op)
        if handler is None:
            raise UnknownOp(unknown_name("op", op, OPS))
        reply = handler(header, body, store)
        # Encoding is inside the try: a reply field that is not JSON (NaN, an odd type) or a body
        # too big for memory is this request's failure, answered like any other.
        return encode_frame({"id": request_id, "ok": True, **reply.fields}, reply.body), reply
    except EngineError as exc:
        log(f"{op!r} #{request_id} failed: {exc.code}: {exc.message}")
        return _error_frame(request_id, exc), None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # incl. RecursionError, MemoryError and a Rust panic (pyo3
        # `PanicException` is a BaseException): answer, log and keep serving
        error = internal_error(exc)
        log(f"{op!r} #{request_id} failed: INTERNAL at {_where(exc)}: {error.message}")
        return _error_frame(request_id, error), None


def _send(out: BinaryIO, frame: bytes) -> None:
    out.write(frame)
    out.flush()


def serve(stdin: BinaryIO, stdout: BinaryIO, store: EventStore | None = None) -> int:
    """Serves until shutdown or end of input; returns the process exit code."""
    store = store if store is not None else EventStore()
    log(f"serving: polars {pl.__version__}, {pl.thread_pool_size()} thread(s)")
    while True:
        try:
            frame = read_frame(stdin)
        except ProtocolError as exc:
            log(f"bad frame: {exc.code}: {exc.message}{' (end of input; exiting)' if exc.fatal else ''}")
            _send(stdout, _error_frame(0, exc))
            if exc.fatal:
                return 1
            continue
        except (OSError, ValueError) as exc:  # stdin itself failed (EIO, closed): no more frames
            log(f"stdin failed: {type(exc).__name__}: {exc}; exiting with {store.rows} rows")
            return 1
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a bug in reading: answer it; every read consumed bytes
            error = internal_error(exc)
            log(f"reading a frame failed: INTERNAL at {_where(exc)}: {error.message}")
            _send(stdout, _error_frame(0, error))
            continue
        if frame is None:
            log(f"stdin closed; exiting with {store.rows} rows")
            return 0
        response, reply = handle_frame(*frame, store)
        _send(stdout, response)
        if reply is None:
            continue
        if reply.stop:
            log(f"shutdown; exiting with {store.rows} rows")
            return 0
        if reply.compact:
            _compact(store)


def _compact(store: EventStore) -> None:
    # Between frames: the reply is already out, so an append's latency does not include it.
    # The cached partials of chunks a compaction or a roll made are computed here too, not by
    # the next dashboard query (partial_cache.prime; only once the cache is in use).
    try:
        store.compact()
        partial_cache.prime(store)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # e.g. MemoryError: the store is unchanged, serving goes on
        log(f"compaction failed at {_where(exc)}: {type(exc).__name__}: {exc}")


def _claim_stdout() -> BinaryIO:
    """Takes fd 1 for frames and points fd 1 and ``sys.stdout`` at stderr, so a stray print
    (ours or a library's, Python or native) cannot corrupt the frame stream."""
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(frames_fd, "wb")


def main() -> int:
    out = _claim_stdout()
    try:
        return serve(sys.stdin.buffer, out)
    except BrokenPipeError:
        log("stdout closed; exiting")
        return 1
    except KeyboardInterrupt:
        return 130
