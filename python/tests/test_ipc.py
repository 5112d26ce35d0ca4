"""Result encoding (``_utils/ipc.py``): what the TypeScript readers get from polars' own writer."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from engine_polars._utils.ipc import ROWS_PREFIX, body_bytes, encode_result, string_bytes, to_ipc_stream

FRAME = pl.DataFrame(
    {"k": ["a", None, "ünïcode ✓"], "n": [1, 2, None], "x": [1.5, None, -2.0], "ok": [True, False, None]},
    schema={"k": pl.String, "n": pl.Int64, "x": pl.Float64, "ok": pl.Boolean},
)


@pytest.mark.parametrize("rows", [3, 0])
def test_writes_large_utf8_strings_and_at_least_one_record_batch(rows: int) -> None:
    reader = pa.ipc.open_stream(to_ipc_stream(FRAME.head(rows)))
    batches = list(reader)
    assert [(f.name, str(f.type)) for f in reader.schema] == [("k", "large_string"), ("n", "int64"), ("x", "double"), ("ok", "bool")]
    assert len(batches) >= 1 and sum(b.num_rows for b in batches) == rows
    assert pa.Table.from_batches(batches, reader.schema).to_pylist() == FRAME.head(rows).to_dicts()


def test_round_trips_through_polars() -> None:
    assert pl.read_ipc_stream(to_ipc_stream(FRAME)).equals(FRAME)


def _rows_partial(data: bytes) -> tuple[pa.Table, list[str], bytes]:
    """A rows partial's table, its texts (cut by ``__len``) and its padding."""
    ipc_len, zero = ROWS_PREFIX.unpack_from(data)
    assert zero == 0 and len(data) % 8 == 0
    table = pa.ipc.open_stream(data[8 : 8 + ipc_len]).read_all()
    text = data[8 + ipc_len :]
    texts, at = [], 0
    for n in table.column("__len").to_pylist():
        texts.append(text[at : at + n].decode("utf-8"))
        at += n
    return table, texts, text[at:]


ROWS = pl.DataFrame(
    {"user_id": ["a", "ünï", None, "d"], "__row": ['{"user_id":"a"}', '{"user_id":"ünï","x":"✓"}', "{}", '{"user_id":"d"}'], "__reparse": [False, True, False, False]}
)


@pytest.mark.parametrize("frame", [ROWS, ROWS.head(0), ROWS.slice(1, 2), pl.concat([ROWS.head(1), ROWS.tail(3)], rechunk=False)], ids=["rows", "none", "slice", "chunks"])
def test_a_frame_with_row_texts_travels_as_a_rows_partial(frame: pl.DataFrame) -> None:
    pieces = encode_result(frame)
    data = b"".join(bytes(p) for p in pieces)
    assert body_bytes(pieces) == len(data)
    table, texts, pad = _rows_partial(data)
    assert table.schema.names == ["user_id", "__reparse", "__len"] and str(table.schema.field("__len").type) == "uint32"
    assert texts == frame["__row"].to_list()
    assert pad == bytes(len(pad)) and len(pad) < 8
    assert table.select(["user_id", "__reparse"]).to_pylist() == frame.select("user_id", "__reparse").to_dicts()


def test_a_frame_without_row_texts_is_one_ipc_stream_in_pieces() -> None:
    pieces = encode_result(FRAME)
    assert len(pieces) > 1 and all(isinstance(p, bytes) for p in pieces)
    assert b"".join(pieces) == to_ipc_stream(FRAME)
    assert pl.read_ipc_stream(b"".join(pieces)).equals(FRAME)


def test_the_texts_are_viewed_in_place_and_outlive_the_frame() -> None:
    texts = pl.Series("__row", ["x" * 1000, "ÿ" * 500]).rechunk()
    view = string_bytes(texts)
    del texts
    import gc

    gc.collect()
    assert bytes(view) == b"x" * 1000 + "ÿ".encode() * 500
    with pytest.raises(ValueError, match="1 nulls"):
        string_bytes(pl.Series("__row", ["a", None]))


def test_a_query_answers_a_rows_partial_in_pieces_and_query_many_keeps_the_next_partial_aligned() -> None:
    from engine_polars.handlers import OPS
    from engine_polars.protocol import PREFIX_BYTES
    from engine_polars.server import handle_frame
    from engine_polars.store import EventStore
    import json
    import random

    from event_batches import events_ipc, random_events

    store = EventStore()
    store.append(events_ipc(random_events(random.Random(5), 300)))
    by_user = {"kind": "aggregate", "filter": {}, "group_by": ["event_type", "user_id"], "metrics": ["value"], "finish": True}
    plain = {"kind": "aggregate", "filter": {}, "group_by": ["event_type"], "metrics": ["value"]}
    reply = OPS["query"]({"id": 1, "op": "query", "plan": by_user}, b"", store)
    assert isinstance(reply.body, list) and any(isinstance(p, memoryview) for p in reply.body)
    frame, _ = handle_frame({"id": 1, "op": "query", "plan": by_user}, b"", store)
    head_len = int.from_bytes(frame[:4], "little")
    assert int.from_bytes(frame[4:8], "little") == len(frame) - PREFIX_BYTES - head_len
    table, texts, _ = _rows_partial(frame[PREFIX_BYTES + head_len :])
    rows = [json.loads(t) for t in texts]
    assert [(r["event_type"], r["user_id"]) for r in rows] == sorted((r["event_type"], r["user_id"]) for r in rows)
    assert sum(r["count"] for r in rows) == 300 and table.num_rows == len(rows) > 0
    many = OPS["query_many"]({"id": 2, "op": "query_many", "plans": [by_user, plain]}, b"", store)
    body = b"".join(bytes(p) for p in many.body)
    first, second = many.fields["parts"]
    assert first % 8 == 0 and first + second == len(body)
    assert _rows_partial(body[:first])[1] == texts
    single = OPS["query"]({"id": 3, "op": "query", "plan": plain}, b"", store)
    assert pa.ipc.open_stream(body[first:]).read_all().equals(pa.ipc.open_stream(single.body).read_all())


def test_a_large_reply_body_stays_in_pieces_and_a_small_one_is_joined() -> None:
    from engine_polars.handlers import _JOIN_UP_TO, _body

    small = encode_result(FRAME)
    assert _body(small) == b"".join(small)
    big_frame = pl.DataFrame({"x": pl.int_range(0, _JOIN_UP_TO // 8 + 1, eager=True)})
    big = encode_result(big_frame)
    body = _body(big)
    assert isinstance(body, list) and body_bytes(body) > _JOIN_UP_TO
    assert pl.read_ipc_stream(b"".join(body)).equals(big_frame)
