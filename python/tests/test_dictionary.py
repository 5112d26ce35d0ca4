"""Dictionaries that widen with their values, and membership tests that never insert."""

from __future__ import annotations

import polars as pl

from engine_polars.dictionary import Dictionary, category_strings, codes_of, is_in_strings, lexical_ranks
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc


def physical(dtype: pl.DataType) -> pl.DataType:
    assert isinstance(dtype, pl.Categorical)
    return dtype.categories.physical()


def test_widens_from_uint8_to_uint16_when_a_batch_brings_too_many_values() -> None:
    d = Dictionary()
    first, widened, _ = d.encode(pl.Series([f"v{i}" for i in range(200)]))
    assert not widened and physical(first.dtype) == pl.UInt8
    second, widened, refused = d.encode(pl.Series([f"w{i}" for i in range(100)] + ["v3"]))
    assert widened and physical(second.dtype) == pl.UInt16
    assert not refused.any()
    assert d.recode(first).to_list() == [f"v{i}" for i in range(200)]
    assert second.to_list() == [f"w{i}" for i in range(100)] + ["v3"]


def test_a_full_widest_dictionary_refuses_new_values_and_keeps_known_ones() -> None:
    d = Dictionary(widest=pl.UInt8())
    # polars frees a mapping no column uses any more: keep the held column alive, as a store does
    held, _, _ = d.encode(pl.Series([f"v{i}" for i in range(250)]))
    out, widened, refused = d.encode(pl.Series(["v1"] + [f"n{i}" for i in range(10)] + [None]))
    assert not widened
    assert refused.to_list() == [False] + [False] * 5 + [True] * 5 + [False]
    assert out.to_list()[:6] == ["v1"] + [f"n{i}" for i in range(5)]
    assert out.to_list()[6:] == [None] * 6
    assert held.len() == 250


def test_membership_and_codes_never_insert_into_the_dictionary() -> None:
    d = Dictionary()
    col, _, _ = d.encode(pl.Series(["a", "b", "a"]))
    df = col.to_frame("c")
    before = d.size
    assert df.filter(is_in_strings("c", col.dtype, ["a", "zz", "yy"])).height == 2
    assert codes_of(["b", "nope"], col.dtype)["value"].to_list() == ["b"]
    assert d.size == before


def test_a_store_past_255_event_types_widens_and_keeps_every_answer() -> None:
    store = EventStore()
    store.append(events_ipc([Event(T0 + i, f"t{i}", "u", 1.0, None) for i in range(200)]))
    store.append(events_ipc([Event(T0 + i, f"s{i}", "u", 1.0, None) for i in range(200)]))
    df = store.events()
    assert df["event_type"].to_list() == [f"t{i}" for i in range(200)] + [f"s{i}" for i in range(200)]
    assert physical(store.frame().collect_schema()["event_type"]) == pl.UInt16
    assert store.frame().select(pl.col("event_type").n_unique()).collect().item() == 400


def test_kept_listings_and_ranks_follow_a_dictionary_as_it_grows_and_widens() -> None:
    d = Dictionary()
    held = [d.encode(pl.Series(["m", "b", "x"]))[0]]
    assert category_strings(d.dtype).to_list() == ["m", "b", "x"]
    ranks, ordered = lexical_ranks(d.dtype)
    assert ranks.to_list() == [1, 0, 2] and ordered.to_list() == ["b", "m", "x"]
    # new strings: the kept listing is extended, the ranks made again
    held.append(d.encode(pl.Series(["a", "m", "zz"]))[0])
    assert category_strings(d.dtype).to_list() == ["m", "b", "x", "a", "zz"]
    ranks, ordered = lexical_ranks(d.dtype)
    assert ranks.to_list() == [2, 1, 3, 0, 4] and ordered.to_list() == ["a", "b", "m", "x", "zz"]
    # widened to UInt16: a new Categories, listed afresh in its own code order
    many = [f"v{i:03d}" for i in range(300)]
    encoded, widened, _ = d.encode(pl.Series(many))
    assert widened
    held = [d.recode(h) for h in held] + [encoded]
    listed = category_strings(d.dtype)
    assert listed.to_list() == d.dtype.categories.to_series().to_list()
    assert sorted(listed.to_list()) == sorted(["m", "b", "x", "a", "zz", *many])
    ranks, ordered = lexical_ranks(d.dtype)
    assert ordered.to_list() == sorted(listed.to_list())
    assert [ordered[r] for r in ranks.to_list()] == listed.to_list()


def test_a_growing_dictionary_keeps_only_its_current_ranks() -> None:
    from engine_polars import dictionary

    d = Dictionary()
    held = []
    for i in range(20):
        held.append(d.encode(pl.Series([f"user_{i}"]))[0])
        ranks, ordered = lexical_ranks(d.dtype)
        assert ordered.to_list() == sorted(f"user_{j}" for j in range(i + 1))
    mine = [k for k in dictionary._RANKED if k[0] == d.dtype.categories.name()]
    assert len(mine) == 1 and dictionary._RANKED[mine[0]][0].len() == 20
