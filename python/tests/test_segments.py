"""Segment files (real files in a temp dir): rolled, loaded back identical, refused when they fail
their checks, orphans of an interrupted roll removed, retention, row numbers and the cut."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import polars as pl
import pytest

from engine_polars import enrichment_tables
from engine_polars.errors import BadPlan
from engine_polars.segments import MANIFEST
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc, random_events

DAY = 86_400_000


@pytest.fixture(autouse=True)
def no_tables() -> None:
    enrichment_tables.TABLES.clear()
    yield
    enrichment_tables.TABLES.clear()


def batches(seed: int, n: int, size: int) -> list[list[Event]]:
    rng = random.Random(seed)
    return [random_events(rng, size) for _ in range(n)]


_OPEN: list[EventStore] = []


def opened(tmp_path: Path, log_start: int = 0) -> tuple[EventStore, dict[str, object]]:
    """A store on ``tmp_path`` (the previous one lets go of the directory first, as the process
    it stands for would by exiting)."""
    for old in _OPEN:
        old.close()
    _OPEN.clear()
    store = EventStore()
    _OPEN.append(store)
    return store, store.open_dir(str(tmp_path), log_start)


def manifest(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "segments" / MANIFEST).read_text())


def test_a_roll_writes_a_segment_and_a_new_store_loads_the_same_rows(tmp_path: Path) -> None:
    store, info = opened(tmp_path)
    assert info["log_position"] == 0 and info["next_row"] == 0
    data = batches(1, 6, 40)
    for b in data[:4]:
        store.append(events_ipc(b))
    out = store.roll(1000)
    assert (out["rolled_rows"], out["segments"], out["open_rows"]) == (160, 1, 0)
    for b in data[4:]:
        store.append(events_ipc(b))
    store.roll(2000)
    before = store.events()
    m = manifest(tmp_path)
    assert (m["log_position"], m["next_row"]) == (2000, 240)
    assert [(s["first_row"], s["rows"], s["log_from"], s["log_to"]) for s in m["segments"]] == [(0, 160, 0, 1000), (160, 80, 1000, 2000)]  # type: ignore[index]

    again, info = opened(tmp_path)
    assert (info["log_position"], info["next_row"], info["rows"], info["segments"]) == (2000, 240, 240, 2)
    assert again.events().equals(before)
    assert again.next_row == 240


def test_rows_held_in_segments_keep_their_dictionary_encoding(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    store.append(events_ipc([Event(T0, "click", "u1", 1.0, '{"plan":"pro","n":2}')]))
    store.roll(10)
    again, _ = opened(tmp_path)
    schema = again.frame().collect_schema()
    assert isinstance(schema["event_type"], pl.Categorical)
    assert isinstance(schema["__meta:plan"], pl.Categorical)
    assert schema["__meta:n"] == pl.Float64
    assert again.events()["metadata"].to_list() == ['{"plan":"pro","n":2}']


def test_enrichment_tables_are_snapshotted_at_a_roll_and_loaded_back(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    enrichment_tables.upsert("users", pl.DataFrame({"user_id": ["a", "b"], "country": ["DE", None]}))
    store.roll(5)
    enrichment_tables.TABLES.clear()
    opened(tmp_path)
    assert enrichment_tables.TABLES["users"].to_dicts() == [{"user_id": "a", "country": "DE"}, {"user_id": "b", "country": None}]
    enrichment_tables.drop({"table": "users"})
    store2, _ = opened(tmp_path)
    store2._tables_version = -1  # a drop after open: the next roll snapshots "no tables"
    enrichment_tables.TABLES.clear()
    store2.roll(6)
    assert manifest(tmp_path)["tables"] is None
    assert [p.name for p in (tmp_path / "segments").iterdir() if p.name.startswith("tables-")] == []


def test_orphans_of_an_interrupted_roll_are_removed_at_open(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    store.append(events_ipc(batches(2, 1, 10)[0]))
    store.roll(100)
    seg = tmp_path / "segments"
    (seg / "seg-00000000000000000010.arrow.tmp").write_bytes(b"torn half of a segment")
    (seg / "seg-00000000000000000010.arrow").write_bytes(b"renamed but never in the manifest")
    (seg / "manifest.json.tmp").write_bytes(b"{")
    again, info = opened(tmp_path)
    assert info["rows"] == 10 and info["log_position"] == 100
    assert sorted(p.name for p in seg.iterdir()) == ["LOCK", "manifest.json", "seg-00000000000000000000.arrow"]


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupt_segment_the_log_still_covers_is_refused_and_replayed_from(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    for i, b in enumerate(batches(3, 3, 10)):
        store.append(events_ipc(b))
        store.roll(100 * (i + 1))
    corrupt(tmp_path / "segments" / "seg-00000000000000000010.arrow")
    again, info = opened(tmp_path, log_start=0)
    assert info["segments_refused"] and "CRC-32" in info["segments_refused"][0]  # type: ignore[index]
    # replay from the refused segment's first record; the later (valid) segment goes too
    assert (info["log_position"], info["next_row"], info["rows"], info["rows_lost"]) == (100, 10, 10, 0)
    names = sorted(p.name for p in (tmp_path / "segments").iterdir())
    assert names == ["LOCK", "manifest.json", "seg-00000000000000000000.arrow", "seg-00000000000000000010.arrow.corrupt"]
    assert manifest(tmp_path)["log_position"] == 100


def test_a_corrupt_segment_the_log_no_longer_covers_is_refused_and_its_rows_counted_lost(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    for i, b in enumerate(batches(4, 3, 10)):
        store.append(events_ipc(b))
        store.roll(100 * (i + 1))
    corrupt(tmp_path / "segments" / "seg-00000000000000000000.arrow")
    again, info = opened(tmp_path, log_start=300)
    assert (info["log_position"], info["next_row"], info["rows"], info["rows_lost"]) == (300, 30, 20, 10)
    assert again.frame().collect().height == 20


def test_a_truncated_segment_file_is_refused(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    store.append(events_ipc(batches(5, 1, 10)[0]))
    store.roll(50)
    path = tmp_path / "segments" / "seg-00000000000000000000.arrow"
    path.write_bytes(path.read_bytes()[:-7])
    _, info = opened(tmp_path, log_start=0)
    assert "bytes, the manifest says" in info["segments_refused"][0]  # type: ignore[index]
    assert (info["log_position"], info["next_row"], info["rows"]) == (0, 0, 0)


def test_appends_with_first_row_skip_rows_already_held(tmp_path: Path) -> None:
    store = EventStore()
    events = batches(6, 1, 10)[0]
    assert store.append(events_ipc(events), first_row=0) == 10
    assert store.append(events_ipc(events), first_row=0) == 0
    assert store.append(events_ipc(events), first_row=5) == 5
    assert store.events()["user_id"].to_list() == [e.user_id for e in events] + [e.user_id for e in events[5:]]
    assert store.next_row == 15


def test_a_cut_sees_exactly_the_rows_numbered_below_it_across_segments_and_chunks(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    events = [Event(T0 + i, "click", f"u{i}", float(i), None) for i in range(50)]
    for i in range(0, 30, 10):
        store.append(events_ipc(events[i : i + 10]), first_row=i)
    store.roll(1)
    for i in range(30, 50, 5):
        store.append(events_ipc(events[i : i + 5]), first_row=i)
    for upto in (0, 1, 10, 29, 30, 31, 37, 49, 50, 10**9):
        values = store.frame(upto).collect()["value"].to_list()
        assert values == [float(i) for i in range(min(upto, 50))], upto


def test_retention_drops_whole_old_segments_never_open_rows(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    now = T0 + 100 * DAY
    old = [Event(T0 + i, "a", "u", 1.0, None) for i in range(5)]
    new = [Event(now - DAY, "a", "u", 2.0, None) for _ in range(5)]
    store.append(events_ipc(old))
    store.roll(10)
    store.append(events_ipc(new))
    store.roll(20)
    store.append(events_ipc(old))  # open, old: kept
    out = store.retain(30 * DAY, now)
    assert (out["rows_dropped"], out["segments_dropped"]) == (5, 1)
    assert store.frame().collect()["value"].to_list() == [2.0] * 5 + [1.0] * 5
    assert [s["first_row"] for s in manifest(tmp_path)["segments"]] == [5]  # type: ignore[index]
    assert not (tmp_path / "segments" / "seg-00000000000000000000.arrow").exists()
    again, info = opened(tmp_path)
    assert info["rows"] == 5 and info["next_row"] == 10


def test_one_far_future_event_does_not_move_the_retention_reference_past_now(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    now = T0 + 10 * DAY
    store.append(events_ipc([Event(now - 2 * DAY, "a", "u", 1.0, None) for _ in range(3)]))
    store.roll(10)
    store.append(events_ipc([Event(now + 3650 * DAY, "a", "u", 1.0, None)]))
    store.roll(20)
    out = store.retain(7 * DAY, now)
    assert out["rows_dropped"] == 0
    assert store.rows == 4


def test_roll_and_open_are_refused_out_of_order(tmp_path: Path) -> None:
    with pytest.raises(BadPlan, match="send `open` first"):
        EventStore().roll(1)
    store, _ = opened(tmp_path)
    _OPEN.clear()
    store.roll(10)
    with pytest.raises(BadPlan, match="before the last roll"):
        store.roll(5)
    with pytest.raises(BadPlan, match="not empty"):
        store.open_dir(str(tmp_path))


def test_segment_files_are_compressed_arrow_ipc_with_dictionary_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    store, _ = opened(tmp_path)
    store.append(events_ipc(batches(7, 1, 100)[0]))
    store.roll(1)
    table = pa.ipc.open_file(tmp_path / "segments" / "seg-00000000000000000000.arrow").read_all()
    assert pa.types.is_dictionary(table.schema.field("event_type").type)
    assert pa.types.is_dictionary(table.schema.field("user_id").type)
    assert table.num_rows == 100
    assert os.path.getsize(tmp_path / "segments" / "seg-00000000000000000000.arrow") > 0


def test_a_directory_another_process_holds_is_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine_polars import segments
    from engine_polars.errors import BadFrame

    monkeypatch.setattr(segments, "_LOCK_WAIT_S", 0.2)
    opened(tmp_path)
    with pytest.raises(BadFrame, match="locked by another process"):
        EventStore().open_dir(str(tmp_path))


def test_user_ids_past_65535_widen_from_uint16_and_every_row_and_count_survives_a_reload(tmp_path: Path) -> None:
    # user_id codes start at UInt16 (2 bytes a row) and widen to UInt32 when a shard's users pass
    # 65,535: the rows already held (and a segment rolled before) must keep their user ids
    def physical(df: pl.LazyFrame) -> pl.DataType:
        dtype = df.collect_schema()["user_id"]
        assert isinstance(dtype, pl.Categorical)
        return dtype.categories.physical()

    store, _ = opened(tmp_path)
    first = [Event(T0 + i, "view", f"u{i % 1000}", float(i), None) for i in range(3000)]
    store.append(events_ipc(first))
    assert physical(store.frame()) == pl.UInt16
    store.roll(10)
    more = [Event(T0 + 3000 + i, "buy", f"n{i}", 1.0, None) for i in range(70_000)]
    store.append(events_ipc(more[:40_000]))
    store.append(events_ipc(more[40_000:]))
    assert physical(store.frame()) == pl.UInt32
    store.roll(20)
    tail = [Event(T0 + 80_000, "view", "u7", 2.0, None), Event(T0 + 80_001, "view", "n69999", 3.0, None)]
    store.append(events_ipc(tail))

    every = [*first, *more, *tail]
    want = {}
    for e in every:
        want[e.user_id] = want.get(e.user_id, 0) + 1
    for s in (store, opened(tmp_path)[0]):
        if s is not store:
            s.append(events_ipc(tail), first_row=73_000)
        assert s.events()["user_id"].to_list() == [e.user_id for e in every]
        counts = s.frame().group_by("user_id").len().collect()
        got = dict(zip(counts["user_id"].cast(pl.String).to_list(), counts["len"].to_list()))
        assert got == want and len(got) == 71_000
