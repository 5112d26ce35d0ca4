from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest

from engine_polars.protocol import MAX_HEADER_BYTES, encode_frame, read_frame
from engine_polars.errors import ProtocolError

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
def test_rejects_a_truncated_frame_as_fatal(cut: int) -> None:
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


def test_rejects_an_implausible_header_length_without_waiting_for_it() -> None:
    prefix = struct.pack("<II", MAX_HEADER_BYTES + 1, 0)
    with pytest.raises(ProtocolError, match="over the") as info:
        read_frame(io.BytesIO(prefix))
    assert info.value.fatal
