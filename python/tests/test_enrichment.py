from __future__ import annotations

import json
import random
from collections.abc import Iterator

import polars as pl
import pyarrow as pa
import pytest

from engine_polars import enrichment_tables
from engine_polars._utils.ipc import to_ipc_stream
from engine_polars.errors import BadFrame, BadPlan
from engine_polars.filters import filter_expr
from engine_polars.handlers import OPS
from engine_polars.ops.aggregate import run as run_aggregate
from engine_polars.plan import parse_plan
from engine_polars.server import handle_frame
from engine_polars.store import EventStore
from event_batches import ipc_stream, read_ipc

T0 = 1_700_000_000_000
USERS = [f"u{i}" for i in range(40)] + ["ünïcode ✓"]
COUNTRIES = ["DE", "FR", "IT", None]


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    enrichment_tables.TABLES.clear()
    yield
    enrichment_tables.TABLES.clear()


def rows_ipc(rows: dict[str, list[str | None]]) -> bytes:
    return ipc_stream(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}))


def upsert(table: str, rows: dict[str, list[str | None]]) -> dict[str, object]:
    return enrichment_tables.upsert_ipc({"table": table}, rows_ipc(rows))


def as_dict(table: str) -> dict[str, dict[str, str | None]]:
    df = enrichment_tables.TABLES[table]
    return {r["user_id"]: {k: v for k, v in r.items() if k != "user_id"} for r in df.to_dicts()}


def test_upsert_replaces_a_users_row_whole_and_adds_new_columns_as_null() -> None:
    assert upsert("users", {"user_id": ["a", "b"], "country": ["DE", "FR"]}) == {
        "table": "users", "upserted": 2, "rows": 2, "columns": ["country"]
    }
    out = upsert("users", {"user_id": ["b", "c"], "tier": ["gold", None]})
    assert out == {"table": "users", "upserted": 2, "rows": 3, "columns": ["country", "tier"]}
    assert as_dict("users") == {
        "a": {"country": "DE", "tier": None},
        "b": {"country": None, "tier": "gold"},
        "c": {"country": None, "tier": None},
    }
    assert enrichment_tables.TABLES["users"]["user_id"].is_unique().all()


def test_last_row_of_a_user_in_one_upsert_wins() -> None:
    out = upsert("users", {"user_id": ["a", "b", "a"], "country": ["DE", "FR", "IT"]})
    assert out["upserted"] == 2
    assert as_dict("users") == {"a": {"country": "IT"}, "b": {"country": "FR"}}


def test_random_upserts_match_a_dict_model() -> None:
    rng = random.Random(5)
    model: dict[str, dict[str, str | None]] = {}
    columns: list[str] = []
    for _ in range(30):
        cols = rng.sample(["country", "tier", "plan", "age"], rng.randint(1, 3))
        users = [rng.choice(USERS) for _ in range(rng.randint(1, 25))]
        rows = {"user_id": users, **{c: [rng.choice(COUNTRIES) for _ in users] for c in cols}}
        upsert("t", rows)
        for c in cols:
            if c not in columns:
                columns.append(c)
        for i, u in enumerate(users):
            model[u] = {c: rows[c][i] for c in cols}
    expected = {u: {c: row.get(c) for c in columns} for u, row in model.items()}
    assert as_dict("t") == expected
    assert list(enrichment_tables.column_names("t")) == columns


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "needs a body"),
        (b"not arrow", "not a readable Arrow IPC stream"),
    ],
)
def test_rejects_unreadable_bodies(body: bytes, message: str) -> None:
    with pytest.raises(BadFrame, match=message):
        enrichment_tables.upsert_ipc({"table": "users"}, body)


def test_rejects_rows_without_user_id_null_user_ids_and_non_string_columns() -> None:
    with pytest.raises(BadFrame, match="`user_id`"):
        upsert("users", {"country": ["DE"]})
    with pytest.raises(BadFrame, match="null"):
        upsert("users", {"user_id": ["a", None], "country": ["DE", "FR"]})
    with pytest.raises(BadFrame, match="`age` has type"):
        enrichment_tables.upsert_ipc(
            {"table": "users"}, ipc_stream(pa.table({"user_id": ["a"], "age": pa.array([3], pa.int64())}))
        )
    assert enrichment_tables.TABLES == {}


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "metadata", "user_id", "x" * 65, 5, None])
def test_rejects_bad_and_reserved_table_names(name: object) -> None:
    with pytest.raises(BadPlan):
        enrichment_tables.upsert_ipc({"table": name}, rows_ipc({"user_id": ["a"]}))


def test_rejects_more_than_the_column_limit_and_keeps_the_table() -> None:
    upsert("wide", {"user_id": ["a"], **{f"c{i}": ["x"] for i in range(60)}})
    with pytest.raises(BadFrame, match="at most 64"):
        upsert("wide", {"user_id": ["b"], **{f"d{i}": ["x"] for i in range(5)}})
    assert enrichment_tables.TABLES["wide"].width == 61


def test_drop_and_listing() -> None:
    upsert("users", {"user_id": ["a", "b"], "country": ["DE", None]})
    upsert("plans", {"user_id": ["a"], "plan": ["pro"], "seats": ["3"]})
    listing = enrichment_tables.listing()
    assert listing.schema == pl.Schema({"table": pl.String, "rows": pl.Int64, "columns": pl.String})
    assert listing.to_dicts() == [
        {"table": "plans", "rows": 1, "columns": "plan,seats"},
        {"table": "users", "rows": 2, "columns": "country"},
    ]
    assert enrichment_tables.drop({"table": "users"}) == {"table": "users", "dropped": True, "rows": 2}
    assert enrichment_tables.drop({"table": "users"}) == {"table": "users", "dropped": False, "rows": 0}
    assert list(enrichment_tables.TABLES) == ["plans"]


def test_sidecar_ops_round_trip_through_handle_frame() -> None:
    store = EventStore()
    frame, reply = handle_frame({"id": 1, "op": "enrich_upsert", "plan": {"table": "users"}}, rows_ipc({"user_id": ["a"], "country": ["DE"]}), store)
    assert reply is not None and reply.fields["rows"] == 1
    _, reply = handle_frame({"id": 2, "op": "enrich_list"}, b"", store)
    assert reply is not None and read_ipc(reply.body).to_pylist() == [{"table": "users", "rows": 1, "columns": "country"}]
    _, reply = handle_frame({"id": 3, "op": "enrich_drop", "plan": {"table": "users"}}, b"", store)
    assert reply is not None and reply.fields["dropped"] is True
    _, reply = handle_frame({"id": 4, "op": "enrich_upsert", "plan": {"table": "users", "x": 1}}, b"", store)
    assert reply is None
    assert {"enrich_upsert", "enrich_drop", "enrich_list", "custom_list"} <= set(OPS)


# --- joins and filters over enrichment columns and metadata, against a brute force -------------


def random_events(rng: random.Random, n: int) -> list[dict[str, object]]:
    out = []
    for _ in range(n):
        meta = None
        if rng.random() < 0.5:
            meta = json.dumps({"plan": rng.choice(["free", "pro"]), "n": rng.randint(0, 3)})
        out.append(
            {
                "timestamp": T0 + rng.randint(0, 10_000),
                "event_type": rng.choice(["click", "view"]),
                "user_id": rng.choice(USERS),
                "value": rng.choice([None, rng.uniform(-10, 10)]),
                "metadata": meta,
            }
        )
    return out


def events_frame(events: list[dict[str, object]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        events,
        schema={"timestamp": pl.Int64, "event_type": pl.String, "user_id": pl.String, "value": pl.Float64, "metadata": pl.String},
    )


def dim_value(e: dict[str, object], name: str, table: dict[str, dict[str, str | None]]) -> str | None:
    if name.startswith("metadata."):
        if e["metadata"] is None:
            return None
        v = json.loads(str(e["metadata"])).get(name.split(".", 1)[1])
        return None if v is None else (v if isinstance(v, str) else json.dumps(v))
    return table.get(str(e["user_id"]), {}).get(name.split(".", 1)[1])


@pytest.mark.parametrize(
    "dims",
    [
        {"users.country": ["DE"]},
        {"users.country": ["DE", "FR"]},
        {"users.country": [None]},
        {"users.country": ["IT", None]},
        {"metadata.plan": ["pro"]},
        {"metadata.n": ["1", "2"]},
        {"metadata.plan": [None]},
        {"users.country": ["DE", "FR"], "metadata.plan": ["free"]},
        {"nosuch.col": ["x"]},
        {"users.nosuch": [None]},
    ],
)
def test_dimension_filters_match_a_brute_force(dims: dict[str, list[str | None]]) -> None:
    rng = random.Random(11)
    users = rng.sample(USERS, 30)
    table = {u: {"country": rng.choice(COUNTRIES)} for u in users}
    upsert("users", {"user_id": users, "country": [table[u]["country"] for u in users]})
    events = random_events(rng, 2000)
    plan = parse_plan({"kind": "aggregate", "group_by": [], "metrics": ["value"], "filter": {"dimensions": dims}})
    got = events_frame(events).filter(filter_expr(plan.filter)).collect()
    expected = [e for e in events if all(dim_value(e, n, table) in vs for n, vs in dims.items())]
    assert got.height == len(expected)
    assert sorted(got["timestamp"].to_list()) == sorted(int(str(e["timestamp"])) for e in expected)
    # and through a whole plan: the aggregate partial counts the same events
    assert run_aggregate(plan, events_frame(events))["count"].to_list() == [len(expected)]


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ([], "must be an object"),
        ({"event_type": ["x"]}, "event_types"),
        ({"users.country": []}, "non-empty array"),
        ({"users.country": "DE"}, "non-empty array"),
        ({"users.country": [1]}, r"users.country\[0\]"),
        ({"bad name": ["x"]}, "unknown dimension"),
    ],
)
def test_rejects_malformed_dimension_filters(dims: object, message: str) -> None:
    with pytest.raises(BadPlan, match=message):
        parse_plan({"kind": "aggregate", "group_by": [], "metrics": [], "filter": {"dimensions": dims}})


def test_enrichment_partial_is_large_utf8_arrow() -> None:
    upsert("users", {"user_id": ["a"], "country": ["DE"]})
    schema = read_ipc(to_ipc_stream(enrichment_tables.listing())).schema
    assert [str(f.type) for f in schema] == ["large_string", "int64", "large_string"]
