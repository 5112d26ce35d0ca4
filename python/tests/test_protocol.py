from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest

from engine_polars import protocol
from engine_polars.errors import FrameTooLarge, ProtocolError
from engine_polars.protocol import MAX_HEADER_BYTES, MAX_JSON_DEPTH, encode_frame, json_depth_over, read_frame

VECTORS = Path(__file__).resolve().parents[2] / "test" / "vectors" / "frames.json"


def load_vectors() -> list[dict]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


class TrickleStream:
    """A stream that returns at most `step` bytes per read, like a pipe under load."""

    def __init__(self, data: bytes, step: int) -> None:
        self._buf = io.BytesIO(data)
        self._step = step

    def read(self, n: int) -> bytes:
        return self._buf.read(min(n, self._step))


@pytest.mark.parametrize("case", load_vectors(), ids=lambda c: c["name"])
def test_encodes_each_shared_vector_byte_for_byte(case: dict) -> None:
    assert encode_frame(case["header"], bytes.fromhex(case["body_hex"])).hex() == case["frame_hex"]


@pytest.mark.parametrize("case", load_vectors(), ids=lambda c: c["name"])
def test_decodes_each_shared_vector_to_its_header_and_body(case: dict) -> None:
    stream = io.BytesIO(bytes.fromhex(case["frame_hex"]))
    assert read_frame(stream) == (case["header"], bytes.fromhex(case["body_hex"]))
    assert read_frame(stream) is None


def test_shared_vectors_cover_empty_body_non_ascii_and_binary_body() -> None:
    cases = load_vectors()
    assert any(c["body_hex"] == "" for c in cases)
    assert any(c["body_hex"] != "" for c in cases)
    assert any("café ✓" in json.dumps(c["header"], ensure_ascii=False) for c in cases)


def test_writes_non_ascii_as_raw_utf8_like_json_stringify() -> None:
    frame = encode_frame({"s": "café ✓"})
    head_len, body_len = struct.unpack_from("<II", frame)
    assert frame[8:] == '{"s":"café ✓"}'.encode()
    assert (head_len, body_len) == (len('{"s":"café ✓"}'.encode()), 0)


def test_escapes_a_lone_surrogate_instead_of_failing() -> None:
    frame = encode_frame({"message": "bad key `\ud800`"})
    assert frame[8:] == b'{"message":"bad key `\\ud800`"}'
    assert read_frame(io.BytesIO(frame)) == ({"message": "bad key `\ud800`"}, b"")


def test_refuses_nan_in_a_header_rather_than_writing_invalid_json() -> None:
    with pytest.raises(ValueError):
        encode_frame({"x": float("nan")})


def test_returns_none_on_a_clean_end_of_stream() -> None:
    assert read_frame(io.BytesIO(b"")) is None


def test_reads_consecutive_frames_through_one_byte_reads() -> None:
    data = encode_frame({"id": 1}, b"abc") + encode_frame({"id": 2, "op": "ping"})
    stream = TrickleStream(data, step=1)
    assert read_frame(stream) == ({"id": 1}, b"abc")
    assert read_frame(stream) == ({"id": 2, "op": "ping"}, b"")
    assert read_frame(stream) is None


@pytest.mark.parametrize("cut", [3, 10, 20])
def test_rejects_a_frame_cut_short_by_the_end_of_input_as_fatal(cut: int) -> None:
    frame = encode_frame({"id": 1, "op": "append"}, b"0123456789")
    with pytest.raises(ProtocolError, match="truncated frame") as info:
        read_frame(io.BytesIO(frame[: len(frame) - cut]))
    assert info.value.fatal
    assert info.value.code == "BAD_FRAME"


def test_rejects_a_header_that_is_not_json_and_stays_at_the_next_frame() -> None:
    bad = struct.pack("<II", 5, 2) + b"{oops" + b"xy"
    stream = io.BytesIO(bad + encode_frame({"id": 7, "op": "ping"}))
    with pytest.raises(ProtocolError, match="not UTF-8 JSON") as info:
        read_frame(stream)
    assert not info.value.fatal
    assert read_frame(stream) == ({"id": 7, "op": "ping"}, b"")


def test_rejects_a_header_that_is_json_but_not_an_object() -> None:
    frame = struct.pack("<II", 7, 0) + b"[1,2,3]"
    with pytest.raises(ProtocolError, match="must be a JSON object; got array"):
        read_frame(io.BytesIO(frame))


class ZeroStream:
    """``n`` zero bytes produced on demand (never held whole), then ``tail``; records read sizes."""

    def __init__(self, prefix: bytes, n: int, tail: bytes = b"") -> None:
        self._head = io.BytesIO(prefix)
        self._zeros = n
        self._tail = io.BytesIO(tail)
        self.reads: list[int] = []

    def read(self, n: int) -> bytes:
        self.reads.append(n)
        head = self._head.read(n)
        if head:
            return head
        if self._zeros:
            k = min(n, self._zeros)
            self._zeros -= k
            return bytes(k)
        return self._tail.read(n)


def test_skips_a_frame_whose_header_is_over_the_limit_in_bounded_reads_and_stays_in_step() -> None:
    head_len, body_len = MAX_HEADER_BYTES + 1, 3 * 1024 * 1024 + 5
    stream = ZeroStream(struct.pack("<II", head_len, body_len), head_len + body_len, encode_frame({"id": 3, "op": "ping"}))
    with pytest.raises(FrameTooLarge) as info:
        read_frame(stream)
    assert (info.value.code, info.value.fatal) == ("FRAME_TOO_LARGE", False)
    assert info.value.message == (
        f"header of {head_len} bytes is over the {MAX_HEADER_BYTES}-byte limit (`maxFrameHeaderBytes`); skipped the frame"
    )
    assert max(stream.reads) <= 1 << 20
    assert read_frame(stream) == ({"id": 3, "op": "ping"}, b"")
    assert read_frame(stream) is None


def test_an_oversized_frame_cut_short_by_the_end_of_input_is_fatal() -> None:
    stream = ZeroStream(struct.pack("<II", MAX_HEADER_BYTES + 1, 10), 1000)
    with pytest.raises(ProtocolError, match="^truncated frame") as info:
        read_frame(stream)
    assert info.value.fatal


def test_a_header_at_the_limit_is_read() -> None:
    head = b'{"id":1,"pad":"' + b"x" * (MAX_HEADER_BYTES - 17) + b'"}'
    assert len(head) == MAX_HEADER_BYTES
    header, _ = read_frame(io.BytesIO(struct.pack("<II", len(head), 0) + head)) or ({}, b"")
    assert header["id"] == 1


def nested(depth: int) -> bytes:
    return b'{"id":1,"plan":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_500, 200_000])
def test_rejects_a_header_nested_too_deep_and_stays_at_the_next_frame(depth: int) -> None:
    head = nested(depth)
    stream = io.BytesIO(struct.pack("<II", len(head), 0) + head + encode_frame({"id": 2, "op": "ping"}))
    with pytest.raises(ProtocolError) as info:
        read_frame(stream)
    assert (info.value.code, info.value.fatal) == ("BAD_FRAME", False)
    assert info.value.message == f"header nests deeper than {MAX_JSON_DEPTH} levels"
    assert read_frame(stream) == ({"id": 2, "op": "ping"}, b"")


def test_accepts_a_header_nested_exactly_to_the_limit() -> None:
    head = nested(MAX_JSON_DEPTH)
    header, _ = read_frame(io.BytesIO(struct.pack("<II", len(head), 0) + head)) or ({}, b"")
    assert header["id"] == 1


def test_a_recursion_error_while_parsing_is_a_bad_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "json_depth_over", lambda text, limit: False)
    head = nested(5_000)
    with pytest.raises(ProtocolError, match="nests deeper than") as info:
        read_frame(io.BytesIO(struct.pack("<II", len(head), 0) + head))
    assert not info.value.fatal


def test_a_memory_error_while_parsing_is_a_bad_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(text: str) -> object:
        raise MemoryError

    monkeypatch.setattr(protocol.json, "loads", out_of_memory)
    with pytest.raises(ProtocolError, match="does not fit in memory as JSON") as info:
        read_frame(io.BytesIO(encode_frame({"id": 1})))
    assert (info.value.code, info.value.fatal) == ("BAD_FRAME", False)


def test_a_body_that_does_not_fit_in_memory_is_skipped_and_the_stream_stays_in_step() -> None:
    class FailsOnce(ZeroStream):
        def read(self, n: int) -> bytes:
            if len(self.reads) == 4:  # prefix, header, first body chunk, then no memory
                self.reads.append(n)
                raise MemoryError
            return super().read(n)

    body_len = 3 * (1 << 20)
    head = b'{"id":1,"op":"append"}'
    stream = FailsOnce(struct.pack("<II", len(head), body_len) + head, body_len, encode_frame({"id": 2}))
    with pytest.raises(FrameTooLarge, match=f"^frame body of {body_len} bytes does not fit in memory"):
        read_frame(stream)
    assert read_frame(stream) == ({"id": 2}, b"")


@pytest.mark.parametrize(
    "head",
    [b'{"id":' + b"9" * 5_000 + b"}", b'{"id":1,"s":"\xff"}', b"\xff\xfe", b'{"a":"unterminated'],
)
def test_rejects_a_header_python_cannot_decode_as_bad_frame(head: bytes) -> None:
    with pytest.raises(ProtocolError, match="not UTF-8 JSON") as info:
        read_frame(io.BytesIO(struct.pack("<II", len(head), 0) + head))
    assert not info.value.fatal


@pytest.mark.parametrize(
    ("text", "limit", "over"),
    [
        (b"[]", 1, False),
        (b"[[]]", 1, True),
        (b'{"a":"[[[[[[[["}', 1, False),
        (b'{"a":"\\"[[[[[[[["}', 1, False),
        (b'{"a":"\\\\","b":[[1]]}', 2, True),  # an escaped backslash does not escape the quote
        (b'{"a":"\\\\","b":[[1]]}', 3, False),
        (b'[{"a":[{"b":[1,2,[3]]}]}]', 6, False),
        (b'[{"a":[{"b":[1,2,[3]]}]}]', 5, True),
        (b"][" * 100, 3, False),  # not JSON: left to the parser
        (b"[" * 100, 3, False),  # unbalanced: the parser refuses it (or hits its recursion limit)
    ],
)
def test_json_depth_over_counts_brackets_outside_strings(text: bytes, limit: int, over: bool) -> None:
    assert json_depth_over(text, limit) is over
