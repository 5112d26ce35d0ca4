"""The row filter every plan carries: its predicate against hand-picked rows."""

from __future__ import annotations

import polars as pl

from engine_polars.filters import Filter, filter_expr


FRAME = pl.DataFrame(
    {
        "timestamp": [9, 10, 11, 19, 20, 21],
        "event_type": ["a", "b", "a", "b", "a", "b"],
        "user_id": ["u", "u", "v", "v", "w", "w"],
    },
    schema={"timestamp": pl.Int64, "event_type": pl.String, "user_id": pl.String},
)


def matching(f: Filter) -> list[int]:
    return FRAME.filter(filter_expr(f))["timestamp"].to_list()


def test_no_filter_keeps_every_row() -> None:
    assert matching(Filter()) == [9, 10, 11, 19, 20, 21]


def test_from_is_inclusive_and_to_is_exclusive() -> None:
    assert matching(Filter(start=10, end=20)) == [10, 11, 19]


def test_fractional_bounds_compare_as_the_real_numbers_they_are() -> None:
    assert matching(Filter(start=9.5, end=19.5)) == [10, 11, 19]
    assert matching(Filter(start=-0.5, end=10.0000001)) == [9, 10]


def test_bounds_beyond_int64_do_not_overflow() -> None:
    assert matching(Filter(start=-1e300, end=1e300)) == [9, 10, 11, 19, 20, 21]


def test_event_type_and_user_filters_combine_with_time_bounds() -> None:
    assert matching(Filter(start=10, event_types=("a",))) == [11, 20]
    assert matching(Filter(event_types=("a", "b"), user_ids=("v", "w"))) == [11, 19, 20, 21]


def test_an_empty_list_filter_matches_no_row() -> None:
    assert matching(Filter(user_ids=())) == []
