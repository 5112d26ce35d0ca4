"""The serving loop in-process, over byte streams: every failure a request can cause is answered
as an error frame and the loop goes on; only the end of input, in or between frames, ends it."""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from typing import Any

import pytest

from engine_polars import handlers
from engine_polars.handlers import Reply
from engine_polars.protocol import MAX_HEADER_BYTES, encode_frame, read_frame
from engine_polars.server import serve
from engine_polars.store import EventStore
from event_batches import events_ipc, random_events


def run_loop(data: bytes, store: EventStore | None = None) -> tuple[int, list[dict[str, Any]]]:
    out = io.BytesIO()
    code = serve(io.BytesIO(data), out, store)  # type: ignore[arg-type]
    out.seek(0)
    replies = []
    while (frame := read_frame(out)) is not None:
        replies.append(frame[0])
    return code, replies


def ping(i: int) -> bytes:
    return encode_frame({"id": i, "op": "ping"})


def with_op(monkeypatch: pytest.MonkeyPatch, op: Callable[[dict[str, Any], bytes, EventStore], Reply]) -> None:
    monkeypatch.setitem(handlers.OPS, "boom", op)


def raising(exc: BaseException) -> Callable[[dict[str, Any], bytes, EventStore], Reply]:
    def op(header: dict[str, Any], body: bytes, store: EventStore) -> Reply:
        raise exc

    return op


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (RecursionError("maximum recursion depth exceeded"), "RecursionError: maximum recursion depth exceeded"),
        (MemoryError(), "MemoryError"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    ],
)
def test_an_exception_in_an_op_is_an_internal_error_reply_and_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, message: str
) -> None:
    with_op(monkeypatch, raising(exc))
    code, replies = run_loop(encode_frame({"id": 5, "op": "boom"}) + ping(6))
    assert code == 0
    assert replies == [{"id": 5, "ok": False, "code": "INTERNAL", "message": message}, {"id": 6, "ok": True}]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3)])
def test_keyboard_interrupt_and_system_exit_still_propagate(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    with_op(monkeypatch, raising(exc))
    with pytest.raises(type(exc)):
        run_loop(encode_frame({"id": 5, "op": "boom"}))


@pytest.mark.parametrize("bad", [float("nan"), {1, 2}, b"bytes", object()])
def test_a_reply_that_cannot_be_encoded_is_an_internal_error_reply(monkeypatch: pytest.MonkeyPatch, bad: object) -> None:
    with_op(monkeypatch, lambda header, body, store: Reply({"value": bad}))
    code, replies = run_loop(encode_frame({"id": 7, "op": "boom"}) + ping(8))
    assert code == 0
    assert [(r["id"], r["ok"], r.get("code")) for r in replies] == [(7, False, "INTERNAL"), (8, True, None)]


def test_running_out_of_memory_while_encoding_a_reply_is_an_internal_error_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    class Huge(bytes):
        def __bytes__(self) -> bytes:
            raise MemoryError

    with_op(monkeypatch, lambda header, body, store: Reply({}, body=Huge(b"x")))
    code, replies = run_loop(encode_frame({"id": 9, "op": "boom"}) + ping(10))
    assert replies == [{"id": 9, "ok": False, "code": "INTERNAL", "message": "MemoryError"}, {"id": 10, "ok": True}]


def test_an_error_reply_that_cannot_be_encoded_falls_back_to_fixed_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*args: object, **kwargs: object) -> bytes:
        raise MemoryError

    with_op(monkeypatch, raising(ValueError("x")))
    monkeypatch.setattr("engine_polars.server.encode_frame", no_memory)
    out = io.BytesIO()
    assert serve(io.BytesIO(encode_frame({"id": 11, "op": "boom"})), out) == 0  # type: ignore[arg-type]
    out.seek(0)
    assert read_frame(out) == (
        {"id": 11, "ok": False, "code": "INTERNAL", "message": "the reply could not be encoded"},
        b"",
    )


def test_a_deep_header_a_huge_header_and_garbage_are_each_answered_and_rows_survive() -> None:
    store = EventStore()
    store.append(events_ipc(random_events(random.Random(1), 20)))
    deep = b'{"id":1,"op":"query","plan":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    oversized = struct.pack("<II", MAX_HEADER_BYTES + 1, 2) + bytes(MAX_HEADER_BYTES + 3)
    frames = [
        struct.pack("<II", len(deep), 0) + deep,
        ping(2),
        oversized,
        ping(3),
        struct.pack("<II", 4, 0) + b"\xff\xfe{[",
        encode_frame({"id": 4, "op": "stats"}),
    ]
    code, replies = run_loop(b"".join(frames), store)
    assert code == 0
    assert [(r["id"], r["ok"], r.get("code")) for r in replies] == [
        (0, False, "BAD_FRAME"),
        (2, True, None),
        (0, False, "FRAME_TOO_LARGE"),
        (3, True, None),
        (0, False, "BAD_FRAME"),
        (4, True, None),
    ]
    assert replies[0]["message"] == "header nests deeper than 64 levels"
    assert replies[-1]["rows"] == 20


def test_only_a_frame_cut_short_by_the_end_of_input_ends_the_loop_with_an_error() -> None:
    code, replies = run_loop(ping(1) + ping(2)[:-3])
    assert code == 1
    assert [r["id"] for r in replies] == [1, 0]
    assert replies[1]["message"].startswith("truncated frame")


def test_a_failing_stdin_ends_the_loop() -> None:
    class Broken:
        def read(self, n: int) -> bytes:
            raise OSError(5, "Input/output error")

    assert serve(Broken(), io.BytesIO()) == 1  # type: ignore[arg-type]
