from __future__ import annotations

import random

import polars as pl
import pyarrow as pa
import pytest

from engine_polars.errors import BadFrame
from engine_polars.store import EVENT_SCHEMA, MAX_CHUNKS, EventStore
from event_batches import WIRE_SCHEMA, T0, Event, events_ipc, events_table, ipc_stream, random_events


def one_event(**overrides: object) -> Event:
    fields = dict(timestamp=T0, event_type="click", user_id="u1", value=1.5, metadata=None)
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


def with_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


def test_int64_timestamps_as_the_shard_seals_them_and_float64_ones_as_older_logs_hold_them_store_the_same_rows() -> None:
    rng = random.Random(7)
    events = random_events(rng, 300)
    events += [one_event(timestamp=t) for t in (-1, -(2**32) - 5, 2**53 - 1, 0)]
    as_int = with_column(events_table(events), "timestamp", pa.array([e.timestamp for e in events], pa.int64()))
    mixed = EventStore()
    mixed.append(ipc_stream(as_int.slice(0, 150)))
    mixed.append(events_ipc(events[150:250]))  # Float64, as logged before
    mixed.append(ipc_stream(as_int.slice(250)))
    assert mixed.frame().collect()["timestamp"].dtype == pl.Int64
    assert mixed.events()["timestamp"].to_list() == [e.timestamp for e in events]
    plain = EventStore()
    plain.append(events_ipc(events))
    assert mixed.events().equals(plain.events())


def test_appends_rows_and_stores_timestamps_as_int64_epoch_ms() -> None:
    store = EventStore()
    events = random_events(random.Random(1), 50)
    assert store.append(events_ipc(events)) == 50
    assert store.frame().collect()["timestamp"].dtype == pl.Int64
    df = store.events()
    assert df.schema == EVENT_SCHEMA
    assert df["timestamp"].to_list() == [e.timestamp for e in events]
    assert df["value"].to_list() == [e.value for e in events]
    assert df["metadata"].to_list() == [e.metadata for e in events]
    assert (store.rows, store.chunks) == (50, 1)


def test_holds_a_multi_batch_stream_as_one_chunk() -> None:
    store = EventStore()
    assert store.append(events_ipc(random_events(random.Random(2), 40), max_chunksize=7)) == 40
    assert store.chunks == 1


def test_keeps_rows_in_append_order_across_chunks() -> None:
    store = EventStore()
    rng = random.Random(3)
    batches = [random_events(rng, 5) for _ in range(4)]
    for b in batches:
        store.append(events_ipc(b))
    assert store.frame().collect()["user_id"].to_list() == [e.user_id for b in batches for e in b]
    assert (store.rows, store.chunks) == (20, 4)


def test_empty_store_frame_has_the_event_schema_and_no_rows() -> None:
    df = EventStore().events()
    assert df.schema == EVENT_SCHEMA
    assert df.height == 0
    assert EventStore().frame().collect().height == 0


def test_a_batch_with_no_rows_adds_nothing() -> None:
    store = EventStore()
    assert store.append(ipc_stream(events_table([]))) == 0
    assert (store.rows, store.chunks) == (0, 0)


def test_accepts_int64_timestamps() -> None:
    table = events_table([one_event()])
    table = with_column(table, "timestamp", pa.array([T0], pa.int64()))
    store = EventStore()
    assert store.append(ipc_stream(table)) == 1
    assert store.frame().collect()["timestamp"].to_list() == [T0]


def test_rejects_an_empty_body() -> None:
    with pytest.raises(BadFrame, match="append needs a body"):
        EventStore().append(b"")


def test_rejects_a_body_that_is_not_an_ipc_stream() -> None:
    with pytest.raises(BadFrame, match="not a readable Arrow IPC stream"):
        EventStore().append(b"definitely not arrow")


def test_rejects_a_batch_missing_a_column_naming_it() -> None:
    table = events_table([one_event()]).drop_columns(["value"])
    with pytest.raises(BadFrame, match=r"^missing column `value`; expected columns `timestamp`, "):
        EventStore().append(ipc_stream(table))


def test_rejects_an_unexpected_column_naming_it() -> None:
    table = events_table([one_event()]).append_column("country", pa.array(["fr"]))
    with pytest.raises(BadFrame, match=r"^unexpected column `country`"):
        EventStore().append(ipc_stream(table))


@pytest.mark.parametrize(
    ("column", "array", "got"),
    [
        ("timestamp", pa.array(["2024-01-01"]), "String"),
        ("user_id", pa.array([7], pa.int64()), "Int64"),
        ("value", pa.array(["1.5"]), "String"),
        ("metadata", pa.array([1.0]), "Float64"),
    ],
)
def test_rejects_a_column_of_the_wrong_type_naming_it(column: str, array: pa.Array, got: str) -> None:
    table = with_column(events_table([one_event()]), column, array)
    with pytest.raises(BadFrame, match=rf"^column `{column}` has type `{got}`; expected `"):
        EventStore().append(ipc_stream(table))


def test_rejects_nulls_in_a_required_column() -> None:
    table = events_table([one_event(), one_event()])
    table = table.cast(WIRE_SCHEMA.set(2, pa.field("user_id", pa.string(), nullable=True)))
    table = with_column(table, "user_id", pa.array(["u1", None]))
    with pytest.raises(BadFrame, match=r"^column `user_id` has 1 null\(s\); it must not be null"):
        EventStore().append(ipc_stream(table))


@pytest.mark.parametrize("bad", [1.5, float("nan"), float("inf"), 2.0**60])
def test_rejects_a_timestamp_that_is_not_an_integral_epoch_ms(bad: float) -> None:
    table = with_column(events_table([one_event(), one_event()]), "timestamp", pa.array([float(T0), bad]))
    with pytest.raises(BadFrame, match=r"^column `timestamp` has .* at row 1; expected an integral"):
        EventStore().append(ipc_stream(table))


def test_a_rejected_batch_leaves_the_store_unchanged() -> None:
    store = EventStore()
    store.append(events_ipc([one_event()]))
    with pytest.raises(BadFrame):
        store.append(events_ipc([one_event()])[:-20])
    assert (store.rows, store.chunks) == (1, 1)


def test_compaction_waits_until_more_than_the_chunk_limit() -> None:
    store = EventStore()
    for _ in range(MAX_CHUNKS):
        store.append(events_ipc([one_event()]))
    assert not store.compact()
    assert store.chunks == MAX_CHUNKS


def test_compaction_of_equal_batches_merges_them_into_one_chunk_keeping_rows_and_order() -> None:
    store = EventStore()
    rng = random.Random(4)
    events = random_events(rng, (MAX_CHUNKS + 1) * 3)
    for i in range(MAX_CHUNKS + 1):
        store.append(events_ipc(events[i * 3 : (i + 1) * 3]))
    before = store.frame().collect()
    assert store.compact()
    assert (store.rows, store.chunks) == (len(events), 1)
    assert store.frame().collect().equals(before)


def test_compaction_keeps_a_large_leading_chunk_and_merges_the_small_tail() -> None:
    store = EventStore()
    rng = random.Random(5)
    store.append(events_ipc(random_events(rng, 500)))
    for _ in range(MAX_CHUNKS):
        store.append(events_ipc(random_events(rng, 2)))
    before = store.frame().collect()
    assert store.compact()
    assert store.chunks == 2
    assert store.frame().collect().equals(before)


def test_chunk_count_stays_bounded_over_many_appends_and_compactions() -> None:
    store = EventStore()
    rng = random.Random(6)
    expected: list[str] = []
    for _ in range(400):
        batch = random_events(rng, rng.randint(1, 20))
        expected.extend(e.user_id for e in batch)
        store.append(events_ipc(batch))
        store.compact()
        assert store.chunks <= MAX_CHUNKS
    assert store.rows == len(expected)
    assert store.frame().collect()["user_id"].to_list() == expected


def test_stored_chunks_are_polars_frames_whose_events_have_the_event_schema() -> None:
    store = EventStore()
    store.append(events_ipc([one_event()]))
    assert store.frame().collect_schema().names()[:4] == ["timestamp", "event_type", "user_id", "value"]
    assert store.events().schema == pl.Schema(EVENT_SCHEMA)
