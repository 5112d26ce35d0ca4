"""The serving loop: frames in on stdin, one response frame out on stdout per request.

Requests are answered in order, one at a time, but for a ``roll``: its files are written on a
thread (:class:`_Roller`) while the frames after it are served, and it is answered, committed,
between two of them once they are durable. Without that, every query behind a roll waited for
its segment to be merged, compressed and synced (0.3–0.4 s for 1,000,000 rows, more on a busy
box). No request can stop the loop: a failure while
reading a frame (bad header, too deep, too long: the frame is consumed whole), while running an
op or while encoding its reply is answered as ``{id, ok: false, code, message}`` (``id`` 0 when
the frame's own ``id`` is unknown) and the loop goes on. Only the end of stdin (clean, or in the
middle of a frame), a ``shutdown`` request, a closed stdout, ``KeyboardInterrupt`` and
``SystemExit`` end it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

import polars as pl

from engine_polars import partial_cache
from engine_polars._utils.ipc import Buffer, body_bytes
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
from engine_polars.handlers import OPS, Reply, finish_roll
from engine_polars.idle_trim import IdleTrim
from engine_polars.protocol import encode_frame, frame_head, read_frame
from engine_polars.store import EventStore, RollJob

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


def handle_frame(header: dict[str, Any], body: bytes, store: EventStore, *, background: bool = False) -> tuple[bytes, Reply | None]:
    """Answers one request; returns the response frame and, when the op succeeded, its reply.
    Never raises, except ``KeyboardInterrupt`` and ``SystemExit``.

    A roll is written and answered here, unless ``background``: then its reply (``Reply.roll``)
    comes back with no frame, for the caller to write it (``_Roller``) and answer it later."""
    frame, reply = _handle(header, body, store, background=background)
    return (frame if isinstance(frame, bytes) else b"".join(frame)), reply


#: A response frame, or its pieces in order (a reply body in pieces: never joined, see _send).
Frame = bytes | list[Buffer]


def _handle(header: dict[str, Any], body: bytes, store: EventStore, *, background: bool = False) -> tuple[Frame, Reply | None]:
    """:func:`handle_frame`, with the frame left in pieces when the reply's body is."""
    request_id = header.get("id")
    if not is_integer(request_id):
        exc = BadFrame(f"header field `id` must be an integer; got {json_type(request_id)}")
        log(f"bad frame: {exc.message}")
        return _error_frame(0, exc), None
    assert isinstance(request_id, int)
    op = header.get("op")

    def run() -> Reply:
        if not isinstance(op, str):
            raise BadFrame(f"header field `op` must be a string; got {json_type(op)}")
        handler = OPS.get(op)
        if handler is None:
            raise UnknownOp(unknown_name("op", op, OPS))
        reply = handler(header, body, store)
        if reply.roll is not None and not background:
            reply.roll.write()
            return finish_roll(store, reply.roll)
        return reply

    return _answered(request_id, op, run)


def _answered(request_id: int, op: object, run: Callable[[], Reply]) -> tuple[Frame, Reply | None]:
    """``run``'s reply as a response frame (none for a roll left to write), or its failure as an
    error frame."""
    try:
        reply = run()
        if reply.roll is not None:
            return b"", reply
        # Encoding is inside the try: a reply field that is not JSON (NaN, an odd type) or a body
        # too big for memory is this request's failure, answered like any other.
        header = {"id": request_id, "ok": True, **reply.fields}
        if isinstance(reply.body, bytes):
            return encode_frame(header, reply.body), reply
        return [frame_head(header, body_bytes(reply.body)), *reply.body], reply
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


#: The roll's thread runs at this niceness (above the process's own: polars processes run at 10).
#: The thread's GIL-holding moments (between polars calls) made the serving thread wait for the
#: GIL: a dashboard's plans took 26 ms (median, in-process, 1 polars thread) instead of 6 while
#: a 1,000,000-row roll wrote; with the thread at 19, 6.0.
ROLL_NICE = 19
#: A written roll is committed by the serving loop after the next frame; without a frame for this
#: long (an idle shard), by its own thread.
_COMMIT_IDLE_S = 0.05


class _Roller:
    """Writes at most one roll's files on a thread, then commits and answers it between frames.

    ``lock`` is held by the serving loop while it handles a frame and sends its answer, and by
    whoever commits the roll, answers it and primes: the store and stdout are only ever touched
    by one of them at a time, and never in the middle of a frame. The thread's write reads only
    the job (frames it holds; polars releases the GIL while it merges, compresses and syncs them)
    and runs at :data:`ROLL_NICE`, so it takes the CPU (and the GIL) the serving thread leaves.
    The commit is made at the serving thread's priority: by the loop between two frames
    (:meth:`poll`), or by the roll's thread once no frame came for :data:`_COMMIT_IDLE_S` (nobody
    waits then). Frames are answered in order but for the roll, whose answer comes after those of
    the frames served meanwhile: the shard matches answers by ``id``."""

    def __init__(self, store: EventStore, out: BinaryIO, lock: threading.Lock) -> None:
        self.store = store
        self.out = out
        self.lock = lock
        self.thread: threading.Thread | None = None
        #: the roll begun and not answered yet (guarded by ``lock``)
        self.pending: tuple[int, RollJob] | None = None
        self.written = threading.Event()

    def start(self, request_id: int, job: RollJob) -> None:
        """Starts writing ``job``; the caller holds ``lock`` and no roll is pending."""
        assert self.pending is None
        self.pending = (request_id, job)
        self.written.clear()
        self.thread = threading.Thread(target=self._run, args=(job,), name="roll", daemon=True)
        self.thread.start()

    def _run(self, job: RollJob) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ROLL_NICE)
        except (OSError, AttributeError):  # not Linux, or not allowed: the thread's share stays
            pass
        job.write()
        self.written.set()
        time.sleep(_COMMIT_IDLE_S)
        with self.lock:
            self.poll()

    def poll(self) -> None:
        """Commits, answers and primes the pending roll if its files are written; the caller
        holds ``lock``."""
        if self.pending is None or not self.written.is_set():
            return
        request_id, job = self.pending
        self.pending = None
        response, reply = _answered(request_id, "roll", lambda: finish_roll(self.store, job))
        try:
            _send(self.out, response)
        except OSError as exc:  # stdout closed: the loop sees the end of its input too
            log(f"the roll's answer could not be sent: {exc}")
            return
        if reply is not None:
            _compact(self.store)

    def wait(self) -> None:
        """Returns once the roll in progress (if any) is committed and answered; the caller does
        not hold ``lock``."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        with self.lock:
            self.poll()


def _send(out: BinaryIO, frame: Frame) -> None:
    for piece in [frame] if isinstance(frame, bytes) else frame:
        out.write(piece)
    out.flush()


def serve(stdin: BinaryIO, stdout: BinaryIO, store: EventStore | None = None) -> int:
    """Serves until shutdown or end of input; returns the process exit code."""
    store = store if store is not None else EventStore()
    log(f"serving: polars {pl.__version__}, {pl.thread_pool_size()} thread(s)")
    lock = threading.Lock()
    roller = _Roller(store, stdout, lock)
    trim = IdleTrim()
    trim.start()
    try:
        return _serve(stdin, stdout, store, lock, roller, trim)
    finally:
        roller.wait()


def _serve(stdin: BinaryIO, stdout: BinaryIO, store: EventStore, lock: threading.Lock, roller: _Roller, trim: IdleTrim) -> int:
    while True:
        try:
            frame = read_frame(stdin)
        except ProtocolError as exc:
            log(f"bad frame: {exc.code}: {exc.message}{' (end of input; exiting)' if exc.fatal else ''}")
            with lock:
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
            with lock:
                _send(stdout, _error_frame(0, error))
            continue
        if frame is None:
            roller.wait()
            log(f"stdin closed; exiting with {store.rows} rows")
            return 0
        if frame[0].get("op") in ("roll", "shutdown"):
            roller.wait()  # one roll at a time; a shutdown answers after the roll before it
        with lock:
            response, reply = _handle(*frame, store, background=True)
            if reply is not None and reply.roll is not None:
                roller.start(frame[0]["id"], reply.roll)
                continue
            _send(stdout, response)
            trim.touched()
            if reply is not None and reply.stop:
                log(f"shutdown; exiting with {store.rows} rows")
                return 0
            if reply is not None and reply.compact:
                _compact(store)
            roller.poll()


def _compact(store: EventStore) -> None:
    # Between frames: the reply is already out, so an append's latency does not include it.
    # The cached partials of chunks a compaction or a roll made are made here too, not by the
    # next dashboard query (partial_cache.after_compaction, carry_over in finish_roll, prime;
    # only once the cache is in use).
    try:
        before = store.held_chunks()
        if store.compact():
            partial_cache.after_compaction(store, before)
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
