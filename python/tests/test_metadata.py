"""Metadata held as typed columns: every object comes back byte for byte, every ``metadata.<key>``
dimension answers what parsing the text answered, and the columns are dictionary-encoded."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from engine_polars import metadata
from engine_polars.dimensions import with_dimensions
from engine_polars.metadata import PREFIX, RAW, SHAPE, js_number
from engine_polars.ops import anomalies, custom, export
from engine_polars.store import EventStore
from event_batches import T0, Event, events_ipc


def js_stringify(obj: object) -> str:
    """What the ingest router writes (JSON.stringify): compact, unescaped non-ASCII, JS numbers."""
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + js_stringify(v) for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ",".join(js_stringify(v) for v in obj) + "]"
    if isinstance(obj, bool) or obj is None:
        return json.dumps(obj)
    if isinstance(obj, (int, float)):
        return js_number(float(obj))
    return json.dumps(obj, ensure_ascii=False)


TEXTS = [
    '{"plan":"pro","page":"/p/1"}',
    '{"page":"/p/1","plan":"pro"}',  # same keys, other order
    '{"plan":"free","n":5,"ok":true}',
    '{"n":1.5,"ok":false,"z":null}',
    '{"n":-0.001,"big":1e+21,"tiny":1.5e-7,"int":9007199254740991}',
    '{"n":123456789012345680000}',
    '{"plan":7}',  # plan was a string: a type conflict
    '{"nested":{"b":2,"a":[1,"x"]},"plan":"pro"}',
    '{"arr":[1,2,3]}',
    '{"ünï":"çødé ✓","emoji":"😀","esc":"a\\"b\\\\c\\n\\t\\u0001"}',
    '{"my-key":"dash","_u":"under"}',
    "{}",
    '{"n":0}',
    '{"s":""}',
]


def store_of(texts: list[str | None], batches: int = 1) -> EventStore:
    store = EventStore()
    per = max(1, len(texts) // batches)
    for i in range(0, len(texts), per):
        part = texts[i : i + per]
        store.append(events_ipc([Event(T0 + i + j, "click", f"u{j % 3}", 1.0, t) for j, t in enumerate(part)]))
    return store


def plain_frame(texts: list[str | None]) -> pl.LazyFrame:
    return pl.LazyFrame({"metadata": texts, "user_id": ["u"] * len(texts)}, schema={"metadata": pl.String, "user_id": pl.String})


def test_every_object_comes_back_byte_for_byte() -> None:
    texts: list[str | None] = [*TEXTS, None, *TEXTS]
    store = store_of(texts, batches=3)
    assert store.events()["metadata"].to_list() == texts


@pytest.mark.parametrize("key", ["plan", "page", "n", "ok", "z", "big", "tiny", "int", "nested", "arr", "my-key", "_u", "s", "missing"])
def test_each_dimension_answers_what_parsing_the_text_answers(key: str) -> None:
    texts: list[str | None] = [*TEXTS, None]
    store = store_of(texts, batches=2)
    got = with_dimensions(store.frame(), [f"metadata.{key}"]).collect()[f"metadata.{key}"].to_list()
    want = with_dimensions(plain_frame(texts), [f"metadata.{key}"]).collect()[f"metadata.{key}"].to_list()
    assert got == want


def test_flat_objects_become_typed_dictionary_encoded_columns_without_text() -> None:
    store = store_of(['{"plan":"pro","n":5,"ok":true}', '{"plan":"free","n":2.5}', None])
    schema = store.frame().collect_schema()
    assert RAW not in schema
    assert isinstance(schema[PREFIX + "plan"], pl.Categorical)
    assert schema[PREFIX + "plan"].categories.physical() == pl.UInt8  # type: ignore[union-attr]
    assert schema[PREFIX + "n"] == pl.Float64
    assert schema[PREFIX + "ok"] == pl.Boolean
    assert SHAPE not in schema  # both objects' keys follow the key order (plan, n, ok): implied
    assert isinstance(schema["event_type"], pl.Categorical) and schema["event_type"].categories.physical() == pl.UInt8  # type: ignore[union-attr]
    assert isinstance(schema["user_id"], pl.Categorical) and schema["user_id"].categories.physical() == pl.UInt16  # type: ignore[union-attr]
    assert "metadata" not in schema


@pytest.mark.parametrize(
    "text",
    [
        '{"nested":{"a":1}}',
        '{"arr":[1]}',
        '{"n":123456789012345680000}',  # JS writes it so; Python's float repr differs in layout
        '{"n":1e+21,"k":"v"}',
        '{"plan":7}',
    ],
)
def test_what_cannot_be_encoded_exactly_keeps_its_text(text: str) -> None:
    store = store_of(['{"plan":"pro"}', text])
    df = store.frame().collect()
    if text in ('{"n":1e+21,"k":"v"}',):
        # 1e21 renders exactly, so it is encoded; its dimension decides per value
        assert store.events()["metadata"].to_list() == ['{"plan":"pro"}', text]
        return
    assert df[RAW].to_list() == [None, text]
    assert store.events()["metadata"].to_list() == ['{"plan":"pro"}', text]


def test_a_type_conflict_keeps_the_first_type_and_the_other_events_text() -> None:
    store = store_of(['{"k":"1"}', '{"k":1}', '{"k":"2"}'])
    df = store.frame().collect()
    assert isinstance(df.schema[PREFIX + "k"], pl.Categorical)
    assert df[RAW].to_list() == [None, '{"k":1}', None]
    dims = with_dimensions(store.frame(), ["metadata.k"]).collect()["metadata.k"].to_list()
    assert dims == ["1", "1", "2"]


def test_a_batchs_texts_are_decided_in_the_order_they_first_appear_among_nulls_and_repeats() -> None:
    # Each distinct text gets a batch-local code, and the rows gather their columns by it: a key's
    # type is still its first row's, and every row (nulls between) gets its own text's columns.
    texts: list[str | None] = [None, '{"k":1}', None, '{"k":"1"}', '{"k":1}', None, '{"j":true,"k":2}', '{"k":"1"}']
    store = store_of(texts)
    df = store.frame().collect()
    assert df.schema[PREFIX + "k"] == pl.Float64
    assert df[RAW].to_list() == [None, None, None, '{"k":"1"}', None, None, None, '{"k":"1"}']
    assert df[PREFIX + "k"].to_list() == [None, 1.0, None, None, 1.0, None, 2.0, None]
    assert store.meta.order == ["k", "j"]
    assert store.events()["metadata"].to_list() == texts


def test_random_flat_objects_round_trip_and_answer_like_the_text() -> None:
    rng = random.Random(11)
    keys = ["a", "b", "c", "plan", "n"]
    texts: list[str | None] = []
    for _ in range(400):
        if rng.random() < 0.2:
            texts.append(None)
            continue
        obj: dict[str, object] = {}
        for k in rng.sample(keys, rng.randint(0, 4)):
            obj[k] = rng.choice([
                rng.choice(["x", "y", "zé", ""]),
                rng.randint(-5, 5),
                rng.uniform(-1e6, 1e6),
                rng.random() * 10 ** rng.randint(-12, 25),
                rng.choice([True, False, None]),
            ])
        texts.append(js_stringify(obj))
    store = store_of(texts, batches=5)
    assert store.events()["metadata"].to_list() == texts
    for k in keys:
        got = with_dimensions(store.frame(), [f"metadata.{k}"]).collect()[f"metadata.{k}"].to_list()
        want = with_dimensions(plain_frame(texts), [f"metadata.{k}"]).collect()[f"metadata.{k}"].to_list()
        assert got == want, k


def test_at_most_max_keys_are_extracted_then_texts_are_kept() -> None:
    texts = [js_stringify({f"k{i}": "v"}) for i in range(metadata.MAX_KEYS + 5)]
    store = store_of(texts)
    df = store.frame().collect()
    assert sum(c.startswith(PREFIX) for c in df.columns) == metadata.MAX_KEYS
    assert df[RAW].null_count() == metadata.MAX_KEYS
    assert store.events()["metadata"].to_list() == texts


def test_texts_repeated_in_later_batches_are_held_as_a_store_deciding_afresh_holds_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # every batch repeats the texts of the earlier ones (conflicts, raw texts and encoded ones)
    texts: list[str | None] = [t for t in TEXTS * 6]
    texts += [None, '{"k":"1"}', '{"k":1}', '{"k":"1"}', '{"k":1}']
    remembered = store_of(texts, batches=7)
    monkeypatch.setattr(metadata, "DECISIONS_KEPT", 0)  # forgotten as soon as the next text is decided
    afresh = store_of(texts, batches=7)
    assert remembered.events()["metadata"].to_list() == texts

    def held(store: EventStore) -> pl.DataFrame:  # each store has dictionaries of its own
        return store.frame().collect().with_columns(pl.col(pl.Categorical).cast(pl.String))

    assert held(remembered).equals(held(afresh))


def test_decisions_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "DECISIONS_KEPT", 10)
    texts = [js_stringify({"k": f"v{i}"}) for i in range(35)]
    store = store_of(texts, batches=5)
    assert len(store.meta._decided) <= 10
    assert store.events()["metadata"].to_list() == texts


@pytest.mark.parametrize(
    ("x", "text"),
    [(100.0, "100"), (1e21, "1e+21"), (1e20, "100000000000000000000"), (1.5e-7, "1.5e-7"), (1e-6, "0.000001"),
     (0.1, "0.1"), (-2.5, "-2.5"), (-0.0, "0"), (123456.789, "123456.789"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308")],
)
def test_numbers_are_written_as_javascript_writes_them(x: float, text: str) -> None:
    assert js_number(x) == text


def test_the_text_is_rebuilt_only_for_the_rows_asked_for() -> None:
    store = store_of(['{"plan":"pro"}'] * 1000)
    frame = store.frame()
    page = frame.slice(10, 3).collect()
    out = page.select(metadata.text(page.schema).alias("m"))["m"].to_list()
    assert out == ['{"plan":"pro"}'] * 3


def test_chunks_whose_every_shape_is_implied_carry_no_shape_column() -> None:
    implied = ['{"plan":"pro"}', '{"a":1,"b":"x","c":true}', None, '{"plan":"free"}']
    store = store_of(implied)
    assert SHAPE not in store.frame().collect_schema()
    assert store.events()["metadata"].to_list() == implied


@pytest.mark.parametrize(
    "text",
    [
        "{}",  # no keys: without its shape it would read as no metadata
        '{"a":1,"z":null}',  # a null value: its column is null as for a missing key
        '{"b":1,"a":2}',  # keys not in code-point order
    ],
)
def test_an_object_whose_shape_is_not_implied_keeps_it(text: str) -> None:
    texts = ['{"a":3}', text, None]
    store = store_of(texts)
    df = store.frame().collect()
    assert df[SHAPE].cast(pl.String).to_list() == [None, json.dumps([k for k in json.loads(text)], separators=(",", ":")), None]
    assert store.events()["metadata"].to_list() == texts


def random_objects(seed: int, n: int) -> list[str | None]:
    """Flat objects with shared keys in random orders, nulls, empty objects, no metadata, and
    now and then a text that stays raw (a nested value, a type conflict)."""
    rng = random.Random(seed)
    keys = ["a", "b", "page", "plan", "n", "é"]
    texts: list[str | None] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            texts.append(None)
        elif r < 0.2:
            texts.append(rng.choice(["{}", '{"plan":{"x":1}}', '{"plan":7}']))
        else:
            chosen = rng.sample(keys, rng.randint(1, 4))
            if rng.random() < 0.5:
                chosen.sort()  # implied: the common case
            obj: dict[str, object] = {}
            for k in chosen:
                if k == "n":
                    obj[k] = rng.choice([rng.randint(-5, 5), rng.uniform(-1e3, 1e3), None])
                elif k == "é":
                    obj[k] = rng.choice([True, False, None])
                else:
                    obj[k] = rng.choice(["x", "y", "zé", "", None]) if rng.random() < 0.9 else None
            texts.append(js_stringify(obj))
    return texts


def test_implied_and_explicit_shapes_round_trip_through_compaction_rolls_and_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    texts = random_objects(5, 900)
    store = EventStore()
    store.open_dir(str(tmp_path))
    row = 0
    rng = random.Random(2)
    while row < len(texts):
        n = rng.randint(1, 60)
        part = texts[row : row + n]
        store.append(events_ipc([Event(T0 + row + j, "click", "u", 1.0, t) for j, t in enumerate(part)]))
        store.compact()
        row += len(part)
        if rng.random() < 0.1:
            store.roll(row)
    # some chunks carry a shape column and some do not, merged and rolled together
    assert store.events()["metadata"].to_list() == texts
    store.roll(row)
    store.close()
    again = EventStore()
    again.open_dir(str(tmp_path))
    assert again.events()["metadata"].to_list() == texts
    for k in ["a", "b", "page", "plan", "n", "missing"]:  # ("é" is no dimension name)
        got = with_dimensions(again.frame(), [f"metadata.{k}"]).collect()[f"metadata.{k}"].to_list()
        want = with_dimensions(plain_frame(texts), [f"metadata.{k}"]).collect()[f"metadata.{k}"].to_list()
        assert got == want, k
    again.close()


def _code_point_rule(pairs: list[tuple[str, object]], position: object) -> bool:
    """The implied-shape rule of e9ffd4c: keys in code-point order (rendered sorted by key)."""
    return len(pairs) > 0 and all(v is not None for _, v in pairs) and all(a[0] < b[0] for a, b in zip(pairs, pairs[1:]))


def _every_shape(pairs: list[tuple[str, object]], position: object) -> bool:
    """Before e9ffd4c: no shape was implied."""
    return False


def _forget_key_order(directory: str) -> None:
    """Makes the manifest one written before key orders (no ``meta_keys``)."""
    path = f"{directory}/segments/manifest.json"
    with open(path) as f:
        raw = json.load(f)
    del raw["meta_keys"]
    with open(path, "w") as f:
        json.dump(raw, f)


@pytest.mark.parametrize("old_rule", [_every_shape, _code_point_rule], ids=["every-shape", "code-point-order"])
def test_segments_written_before_key_orders_still_load_and_mix_with_implied_ones(tmp_path, monkeypatch: pytest.MonkeyPatch, old_rule) -> None:  # type: ignore[no-untyped-def]
    # The layouts before key orders: every encoded row carries its shape, or the rows whose keys
    # are in code-point order do not (rendered sorted by key); the manifest has no key order.
    old = random_objects(6, 300)
    monkeypatch.setattr(metadata, "_implied", old_rule)
    store = EventStore()
    store.open_dir(str(tmp_path))
    store.append(events_ipc([Event(T0 + j, "click", "u", 1.0, t) for j, t in enumerate(old)]))
    df = store.frame().collect()
    encoded = pl.Series([t is not None for t in old]) & df[RAW].is_null()
    if old_rule is _every_shape:
        assert df.filter(encoded)[SHAPE].null_count() == 0
    else:  # some rows implied by code-point order, whose keys are not all in the registration order
        implied = df.filter(encoded & df[SHAPE].is_null())
        assert implied.height > 0
        assert store.meta.order != sorted(store.meta.order)
    store.roll(1)
    store.close()
    _forget_key_order(str(tmp_path))
    monkeypatch.undo()
    # New keys in a producer's own order (not code-point order), and old keys after them.
    new = random_objects(7, 300) + ['{"zz":"x","yy":true}', '{"yy":false,"zz":"y"}', '{"zz":"q","plan":"x"}', '{"plan":"y","zz":"r"}'] * 5
    again = EventStore()
    again.open_dir(str(tmp_path))
    old_keys = list(again.meta.order)
    assert old_keys == sorted(old_keys) and set(old_keys) >= {"a", "plan", "n"}
    assert again.events()["metadata"].to_list() == old
    again.append(events_ipc([Event(T0 + 300 + j, "click", "u", 1.0, t) for j, t in enumerate(new)]))
    assert again.meta.order == old_keys + ["zz", "yy"]
    tail = again.frame().collect().tail(20)
    shapes = tail[SHAPE].cast(pl.String).to_list()
    # {"zz","yy"} and {"plan","zz"} follow the key order: implied; the other two keep their shapes
    assert shapes[:4] == [None, '["yy","zz"]', '["zz","plan"]', None]
    assert again.events()["metadata"].to_list() == old + new
    again.roll(2)
    again.close()
    with open(f"{tmp_path}/segments/manifest.json") as f:
        assert json.load(f)["meta_keys"] == old_keys + ["zz", "yy"]
    third = EventStore()
    third.open_dir(str(tmp_path))
    assert third.meta.order == old_keys + ["zz", "yy"]
    assert third.events()["metadata"].to_list() == old + new
    for k in ["a", "plan", "n", "zz", "yy"]:
        got = with_dimensions(third.frame(), [f"metadata.{k}"]).collect()[f"metadata.{k}"].to_list()
        want = with_dimensions(plain_frame(old + new), [f"metadata.{k}"]).collect()[f"metadata.{k}"].to_list()
        assert got == want, k
    third.close()


DAY = 86_400_000


def _rendered_by_every_op(store: EventStore) -> list[list[str | None]]:
    """The texts as export, anomalies and a plugin's frame rebuild them, in row order."""
    frame = store.frame()
    page = export.run(export.parse({"kind": "export", "limit": 10_000}, "plan"), frame)
    plugin = custom.plugin_frame(frame).collect()["metadata"].to_list()
    top = anomalies._top(frame.with_columns(pl.lit(1.0).alias("z_score"), pl.lit(1.0).alias("__abs")), 10_000)
    return [page["metadata"].to_list(), plugin, top["metadata"].to_list()]


def test_objects_in_the_producers_own_key_order_are_implied_through_concats_retention_and_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = ['{"plan":"pro","page":"/a"}'] * 3  # sets the key order: plan, page
    later = ['{"page":"/b"}', '{"plan":"free","page":"/c"}', '{"page":"/d","plan":"x"}', None, '{"plan":"pro","page":"/a"}']
    store = EventStore()
    store.open_dir(str(tmp_path))
    store.append(events_ipc([Event(T0 + j, "click", "u", 1.0, t) for j, t in enumerate(first)]))
    store.roll(1)
    assert SHAPE not in store.frame().collect_schema()
    # a chunk whose columns are page, plan (its first object's order)
    store.append(events_ipc([Event(T0 + 10 * DAY + j, "click", "u", 1.0, t) for j, t in enumerate(later)]))
    assert store._open[0].df.columns.index(PREFIX + "page") < store._open[0].df.columns.index(PREFIX + "plan")
    assert store.frame().collect()[SHAPE].cast(pl.String).to_list() == [None] * 3 + [None, None, '["page","plan"]', None, None]
    assert store.events()["metadata"].to_list() == first + later
    store.roll(2)
    # the first segment dropped: what is left starts with page; the manifest keeps plan, page
    assert store.retain(DAY, T0 + 10 * DAY)["segments_dropped"] == 1
    assert store.events()["metadata"].to_list() == later
    store.append(events_ipc([Event(T0 + 11 * DAY, "click", "u", 1.0, '{"plan":"z","page":"/e"}')]))
    store.close()
    again = EventStore()  # the log's rows after the roll are appended again, as at a replay
    again.open_dir(str(tmp_path))
    assert again.meta.order == ["plan", "page"]
    again.append(events_ipc([Event(T0 + 11 * DAY, "click", "u", 1.0, '{"plan":"z","page":"/e"}')]), first_row=8)
    want = later + ['{"plan":"z","page":"/e"}']
    assert again.frame().collect_schema().names().index(PREFIX + "plan") < again.frame().collect_schema().names().index(PREFIX + "page")
    assert again.events()["metadata"].to_list() == want
    assert _rendered_by_every_op(again) == [want, want, want]  # (anomalies: every z ties, so by timestamp)
    again.close()
