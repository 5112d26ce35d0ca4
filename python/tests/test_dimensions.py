from __future__ import annotations

import polars as pl
import pytest

from engine_polars import enrichment_tables
from engine_polars.dimensions import check_dimension, with_dimensions
from engine_polars.errors import BadPlan


def frame() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "user_id": ["a", "b", "c"],
            "event_type": ["x", "y", "x"],
            "metadata": ['{"plan":"pro","n":5}', None, '{"other":1}'],
        }
    )


def test_metadata_keys_resolve_to_strings_and_missing_to_null() -> None:
    out = with_dimensions(frame(), ["metadata.plan", "metadata.n"]).collect()
    assert out["metadata.plan"].to_list() == ["pro", None, None]
    assert out["metadata.n"].to_list() == ["5", None, None]


def test_enrichment_columns_left_join_on_user_id() -> None:
    enrichment_tables.TABLES["users"] = pl.DataFrame({"user_id": ["a", "c"], "country": ["DE", "FR"]})
    try:
        out = with_dimensions(frame(), ["users.country", "nope.col"]).collect().sort("user_id")
        assert out["users.country"].to_list() == ["DE", None, "FR"]
        assert out["nope.col"].to_list() == [None, None, None]
    finally:
        enrichment_tables.TABLES.clear()


@pytest.mark.parametrize("bad", ["", "metadata.", "metadata.a b", 5, "a.b.c"])
def test_rejects_malformed_dimension_names(bad: object) -> None:
    with pytest.raises(BadPlan):
        check_dimension(bad, "plan.group_by[0]")
