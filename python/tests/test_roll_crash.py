"""A polars process that dies in the middle of a roll (at each stage of it, as ``kill -9``
would): the next process on the same directory loads what was committed and asks for the log
from the right position, so replaying the log from there holds every row exactly once."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path

import polars as pl
import pytest

from event_batches import Event, events_ipc, random_events
from sidecar_process import Sidecar, sidecar_env

STAGES = ["segment_written", "segment_renamed", "manifest_written"]


#: Each batch's metadata keys, in the producer's own order (never code-point order): the
#: crashed roll's batches (3, 4) bring keys of their own, and objects in another order.
KEYS = [["plan", "page"]] * 3 + [["zeta", "alpha"], ["page", "plan", "zeta"]] + [["mu", "beta", "alpha"]]


def with_metadata(rng: random.Random, batch: int, events: list[Event]) -> list[Event]:
    out = []
    for e in events:
        keys = KEYS[batch] if rng.random() < 0.8 else KEYS[rng.randrange(batch + 1)][::-1]
        text = None if rng.random() < 0.2 else "{" + ",".join(f'"{k}":"{rng.choice("xyz")}"' for k in keys[: rng.randint(1, len(keys))]) + "}"
        out.append(dataclasses.replace(e, metadata=text))
    return out


def exported(sidecar: Sidecar) -> list[str | None]:
    _, body = sidecar.request({"id": 50, "op": "query", "plan": {"kind": "export", "limit": 1000}})
    return pl.read_ipc_stream(io.BytesIO(body))["metadata"].to_list()


def start(tmp_path: Path, fault: Path | None = None) -> Sidecar:
    env = sidecar_env(POLARS_MAX_THREADS="1", **({"SHARDLYTICS_TEST_ROLL_FAULT": str(fault)} if fault else {}))
    return Sidecar(tmp_path, env)


@pytest.mark.parametrize("stage", STAGES)
def test_a_process_killed_mid_roll_leaves_a_directory_the_next_one_loads_exactly_once(tmp_path: Path, stage: str) -> None:
    data = tmp_path / "shard"
    fault = tmp_path / "fault"
    rng = random.Random(stage)
    # The "log": batches with their row numbers and end positions (a position per batch here).
    log = [(i * 20, with_metadata(rng, i, random_events(rng, 20))) for i in range(6)]
    # export order: (timestamp, arrival)
    texts = [e.metadata for e in sorted((e for _, events in log for e in events), key=lambda e: e.timestamp)]

    first = start(tmp_path, fault)
    assert first.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})[0]["ok"]
    for i, (row, events) in enumerate(log[:3]):
        first.request({"id": 2 + i, "op": "append", "first_row": row}, events_ipc(events))
    assert first.request({"id": 9, "op": "roll", "plan": {"log_position": 1}})[0]["ok"]  # rows 0..59 in a segment
    for i, (row, events) in enumerate(log[3:5]):
        first.request({"id": 10 + i, "op": "append", "first_row": row}, events_ipc(events))
    fault.write_text(f"crash:{stage}")
    first.send({"id": 20, "op": "roll", "plan": {"log_position": 2}})
    assert first.wait() == 137
    first.stop()
    assert not fault.exists()

    second = start(tmp_path)
    try:
        header, _ = second.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})
        committed = stage == "manifest_written"
        assert (header["log_position"], header["next_row"], header["rows"]) == ((2, 100, 100) if committed else (1, 60, 60))
        # replay the log from where the files end: every batch from that row on, once
        for row, events in log:
            if row >= header["next_row"]:
                second.request({"id": 2, "op": "append", "first_row": row}, events_ipc(events))
        stats, _ = second.request({"id": 3, "op": "stats"})
        assert (stats["rows"], stats["next_row"]) == (120, 120)
        leftovers = sorted(p.name for p in (data / "segments").iterdir())
        assert leftovers == ["LOCK", "manifest.json", "seg-00000000000000000000.arrow"] + (["seg-00000000000000000060.arrow"] if committed else [])
        # every object byte for byte, those whose shape is implied (in the key order) too
        assert exported(second) == texts
        assert second.request({"id": 4, "op": "roll", "plan": {"log_position": 3}})[0]["ok"]
    finally:
        second.stop()
    third = start(tmp_path)
    try:
        third.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})
        assert exported(third) == texts
    finally:
        third.stop()


def test_a_replayed_batch_already_in_a_segment_is_not_held_twice(tmp_path: Path) -> None:
    data = tmp_path / "shard"
    events = random_events(random.Random(5), 30)
    first = start(tmp_path)
    first.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})
    first.request({"id": 2, "op": "append", "first_row": 0}, events_ipc(events))
    first.request({"id": 3, "op": "roll", "plan": {"log_position": 7}})
    first.stop()
    second = start(tmp_path)
    try:
        second.request({"id": 1, "op": "open", "plan": {"dir": str(data), "log_start": 0}})
        header, _ = second.request({"id": 2, "op": "append", "first_row": 0}, events_ipc(events))
        assert (header["appended"], header["rows"]) == (0, 30)
    finally:
        second.stop()
