"""A roll written beside the frames after it (``EventStore.begin_roll`` / ``RollJob.write`` /
``finish_roll``, and the server's roll thread): the frames sent after a roll are answered while
its files are written, seeing every row; the roll is answered after them and holds exactly the
rows sent before it; compaction and a dictionary widening meanwhile leave it whole; a restart
loads what it committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from engine_polars import enrichment_tables
from engine_polars.store import EventStore
from event_batches import Event, events_ipc, random_events
from sidecar_process import Sidecar, sidecar_env


@pytest.fixture(autouse=True)
def no_tables() -> None:
    enrichment_tables.TABLES.clear()
    yield
    enrichment_tables.TABLES.clear()


def sorted_events(df: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(df.rows(), key=repr)


def test_appends_and_compactions_while_a_roll_is_written_leave_its_chunks_alone(tmp_path: Path) -> None:
    rng = random.Random(1)
    store = EventStore()
    store.open_dir(str(tmp_path), 0)
    for _ in range(5):
        store.append(events_ipc(random_events(rng, 30)))
    before = store.events()
    job = store.begin_roll(5)
    # enough appends for several compactions of what came after the roll's chunks
    for _ in range(40):
        store.append(events_ipc(random_events(rng, 7)))
        store.compact()
    assert store.held_chunks()[:5] == job.chunks
    assert store.events().height == 150 + 280
    job.write()
    out = store.finish_roll(job)
    assert (out["rolled_rows"], out["segments"], out["open_rows"]) == (150, 1, 280)
    assert store.events().slice(0, 150).equals(before)
    manifest = json.loads((tmp_path / "segments" / "manifest.json").read_text())
    assert (manifest["log_position"], manifest["next_row"]) == (5, 150)
    # a new store on the directory holds the rolled rows, numbered on from them
    store.close()
    again = EventStore()
    opened = again.open_dir(str(tmp_path), 0)
    assert (opened["log_position"], opened["next_row"], opened["rows"]) == (5, 150, 150)
    assert again.events().equals(before)


def test_a_dictionary_widened_while_a_roll_is_written_reencodes_its_segment(tmp_path: Path) -> None:
    rng = random.Random(2)
    store = EventStore()
    store.open_dir(str(tmp_path), 0)
    store.append(events_ipc(random_events(rng, 50)))
    job = store.begin_roll(1)
    # 300 event types: past what a UInt8 dictionary holds, so every held chunk is re-encoded
    many = [Event(timestamp=1_700_000_000_000 + i, event_type=f"t{i}", user_id="u", value=float(i), metadata=None) for i in range(300)]
    store.append(events_ipc(many))
    assert [c.token for c in job.chunks] != job.tokens  # re-encoded while the roll is pending
    job.write()
    store.finish_roll(job)
    segment, after = store.held_chunks()
    assert segment.df["event_type"].to_physical().dtype == after.df["event_type"].to_physical().dtype == pl.UInt16
    events = store.events()
    assert events.height == 350
    assert events["event_type"].n_unique() == 300 + len(set(store.events().slice(0, 50)["event_type"]))
    store.close()
    again = EventStore()
    again.open_dir(str(tmp_path), 0)
    assert sorted_events(again.events()) == sorted_events(events.slice(0, 50))


def test_a_second_roll_before_the_first_is_finished_is_refused(tmp_path: Path) -> None:
    store = EventStore()
    store.open_dir(str(tmp_path), 0)
    store.append(events_ipc(random_events(random.Random(3), 10)))
    job = store.begin_roll(1)
    with pytest.raises(Exception, match="previous roll is not finished"):
        store.begin_roll(2)
    job.write()
    store.finish_roll(job)
    assert store.roll(2)["rolled_rows"] == 0


def test_the_frames_after_a_roll_are_answered_while_its_files_are_written(tmp_path: Path) -> None:
    """The roll's write is held at `segment_written` for 1.5 s (the test fault): the append and
    the query sent after it are answered first, the query counting every row, and the roll's
    answer follows with exactly the rows sent before it."""
    data = tmp_path / "shard"
    fault = tmp_path / "fault"
    rng = random.Random(4)
    batches = [random_events(rng, 25) for _ in range(4)]
    sidecar = Sidecar(tmp_path, sidecar_env(POLARS_MAX_THREADS="1", SHARDLYTICS_TEST_ROLL_FAULT=str(fault)))
    try:
        assert sidecar.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})[0]["ok"]
        for i, b in enumerate(batches[:3]):
            sidecar.request({"id": 2 + i, "op": "append", "first_row": 25 * i}, events_ipc(b))
        fault.write_text("pause:segment_written:1500")
        sidecar.send({"id": 10, "op": "roll", "plan": {"log_position": 3}})
        sidecar.send({"id": 11, "op": "append", "first_row": 75}, events_ipc(batches[3]))
        sidecar.send({"id": 12, "op": "query", "plan": {"kind": "summary", "columns": ["value"]}})
        answers = [sidecar.receive()[0] for _ in range(3)]
        assert [a["id"] for a in answers] == [11, 12, 10]
        assert all(a["ok"] for a in answers), answers
        assert answers[0]["rows"] == 100
        roll = answers[2]
        assert (roll["rolled_rows"], roll["segments"], roll["open_rows"], roll["next_row"]) == (75, 1, 25, 100)
        stats, _ = sidecar.request({"id": 13, "op": "stats"})
        assert (stats["rows"], stats["rows_in_segments"], stats["open_rows"]) == (100, 75, 25)
        # a shutdown right behind a roll answers after it
        sidecar.send({"id": 14, "op": "roll", "plan": {"log_position": 4}})
        sidecar.send({"id": 15, "op": "shutdown"})
        assert [sidecar.receive()[0]["id"] for _ in range(2)] == [14, 15]
        assert sidecar.wait() == 0
    finally:
        sidecar.stop()
    assert not fault.exists()
    again = Sidecar(tmp_path, sidecar_env(POLARS_MAX_THREADS="1"))
    try:
        header, _ = again.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})
        assert (header["log_position"], header["next_row"], header["rows"]) == (4, 100, 100)
    finally:
        again.stop()
