"""Tests for engine_polars.tdigest: shared vectors (also read by src/merge/tdigest.test.ts),
exact small cases, and merged-from-shards rank error against exact ranks of the whole."""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine_polars.tdigest import (
    Digest,
    digest_from_dict,
    digest_from_series,
    digest_from_values,
    digest_to_dict,
    make_digest,
    merge_digests,
    quantile,
    unit_bucket_ends,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "test" / "vectors" / "tdigest.json").read_text()
)


def lcg_values(seed: int, n: int, transform: str) -> list[float]:
    """MINSTD as documented in python/tests/gen_tdigest_vectors.py (re-implemented on purpose)."""
    state = seed
    out: list[float] = []
    for _ in range(n):
        state = state * 48271 % 2147483647
        u = state / 2147483647
        out.append(
            float(state % 1000) if transform == "int1000" else 1000 * u * u if transform == "square" else (u - 0.5) * 100
        )
    return out


def part_series(part: dict[str, Any]) -> pl.Series:
    if "values" in part:
        return pl.Series(part["values"], dtype=pl.Float64)
    spec = part["lcg"]
    return pl.Series(lcg_values(spec["seed"], spec["n"], spec["transform"]), dtype=pl.Float64)


def assert_close(actual: float | None, expected: float | None, what: str) -> None:
    """Floats agree to 1e-9 relative (libm and V8 may differ by an ulp in asin/sin)."""
    if actual is None or expected is None:
        assert actual == expected, what
        return
    assert abs(actual - expected) <= 1e-9 * max(abs(actual), abs(expected)), f"{what}: {actual} != {expected}"


def assert_digest(actual: Digest, expected: dict[str, Any], what: str) -> None:
    got = digest_to_dict(actual)
    assert got["compression"] == expected["compression"], what
    assert got["count"] == expected["count"], what
    assert got["weights"] == expected["weights"], what
    assert_close(got["min"], expected["min"], f"{what} min")
    assert_close(got["max"], expected["max"], f"{what} max")
    assert len(got["means"]) == len(expected["means"]), what
    for i, (m, e) in enumerate(zip(got["means"], expected["means"], strict=True)):
        assert_close(m, e, f"{what} means[{i}]")


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_builds_merges_and_reads_quantiles_like_the_typescript_side(case: dict[str, Any]) -> None:
    digests = [digest_from_series(part_series(p), case["compression"]) for p in case["parts"]]
    for i, (d, e) in enumerate(zip(digests, case["digests"], strict=True)):
        assert_digest(d, e, f"part {i}")
    merged = merge_digests([digest_from_dict(e) for e in case["digests"]], case["compression"])
    assert_digest(merged, case["merged"], "merged")
    if case["mergedQuantiles"] is None:
        assert all(math.isnan(quantile(merged, q)) for q in VECTORS["quantiles"])
    else:
        for q, e in zip(VECTORS["quantiles"], case["mergedQuantiles"], strict=True):
            assert_close(quantile(merged, q), e, f"q={q}")


def single(v: float, compression: float = 200) -> Digest:
    return Digest(compression, [v], [1], 1, v, v)


def test_keeps_a_handful_of_distinct_values_as_exact_singletons() -> None:
    d = digest_from_values([5, 1, 4, 2, 3])
    assert d == Digest(200, [1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 1, 1, 1], 5, 1.0, 5.0)
    assert [quantile(d, q) for q in (0, 0.1, 0.3, 0.5, 0.7, 0.9, 1)] == [1, 1, 2, 3, 4, 5, 5]


def test_skips_nulls_nans_and_infinities_and_accepts_integer_columns() -> None:
    d = digest_from_series(pl.Series([2.0, None, math.nan, math.inf, -math.inf, 1.0]))
    assert (d.count, d.min, d.max) == (2, 1.0, 2.0)
    assert digest_from_series(pl.Series([3, 1, 2], dtype=pl.Int32)).means == [1.0, 2.0, 3.0]


def test_rejects_a_non_numeric_series_a_bad_compression_and_q_outside_0_1() -> None:
    with pytest.raises(TypeError, match="expected a numeric series, got `String`"):
        digest_from_series(pl.Series(["a"]))
    with pytest.raises(ValueError, match="`compression` must be a finite number >= 1, got 0"):
        make_digest(0)
    with pytest.raises(ValueError, match=r"`q` must be in \[0, 1\], got 1.5"):
        quantile(digest_from_values([1.0]), 1.5)


def test_answers_nan_for_an_empty_digest_and_writes_min_max_as_none() -> None:
    d = make_digest()
    assert math.isnan(quantile(d, 0.5))
    assert digest_to_dict(d) == {"compression": 200, "means": [], "weights": [], "count": 0, "min": None, "max": None}
    assert merge_digests([d, make_digest()]).count == 0


def test_builds_from_a_series_exactly_what_the_greedy_merge_makes_of_singletons() -> None:
    for compression in (1, 3, 10, 57.5, 200):
        for n in (1, 2, 3, 7, 50, 199, 1000, 4321):
            values = [float((i * 7919) % n) - n / 3 for i in range(n)]
            from_series = digest_from_values(values, compression)
            greedy = merge_digests([single(v, compression) for v in values], compression)
            assert from_series.weights == greedy.weights, (compression, n)
            for a, b in zip(from_series.means, greedy.means, strict=True):
                assert_close(a, b, f"δ={compression} n={n}")


def test_cuts_a_million_unit_weights_into_about_half_delta_centroids() -> None:
    ends = unit_bucket_ends(1_000_000, 200)
    assert 100 <= len(ends) <= 101
    assert ends[-1] == 1_000_000
    assert ends[0] == math.floor(1_000_000 * math.sin(math.pi / 200) ** 2)


def test_round_trips_through_json_and_rejects_a_count_that_is_not_the_sum_of_weights() -> None:
    d = digest_from_values(lcg_values(3, 5000, "square"))
    assert digest_from_dict(json.loads(json.dumps(digest_to_dict(d)))) == d
    bad = {**digest_to_dict(d), "count": 5001}
    with pytest.raises(ValueError, match="expected `count` 5000"):
        digest_from_dict(bad)


# ---------------------------------------------------------------------------------------------
# Merged from skewed shards vs exact ranks; the bound is in the vector file (docs/TDIGEST.md)
# ---------------------------------------------------------------------------------------------

BOUND: dict[str, Any] = VECTORS["rankErrorBound"]
QS: list[float] = BOUND["q"]
RANK_ERROR_BOUND = dict(zip(QS, BOUND["continuous"], strict=True))


def atom_or_gap_bound(q: float, compression: float) -> float:
    """Atoms or gaps: a number of centroid widths, a width being Δq = 2π·√(q(1 − q))/δ."""
    width = 2 * math.pi * math.sqrt(q * (1 - q)) / compression
    return max(RANK_ERROR_BOUND[q], BOUND["atomsOrGapsCentroidWidths"] * width)


def box_muller(rnd: random.Random) -> float:
    return math.sqrt(-2 * math.log(1 - rnd.random())) * math.cos(2 * math.pi * rnd.random())


DISTRIBUTIONS: dict[str, tuple[Callable[[random.Random], float], bool]] = {
    "uniform": (lambda r: r.random() * 100 - 50, False),
    "normal": (box_muller, False),
    "exponential": (lambda r: -math.log(1 - r.random()), False),
    "lognormal": (lambda r: math.exp(2 * box_muller(r)), False),
    "many duplicates": (lambda r: float(math.floor(-math.log(1 - r.random()) * 5)), True),
    "bimodal": (lambda r: box_muller(r) if r.random() < 0.9 else 1000 + box_muller(r), True),
}


def rank_error(sorted_values: list[float], x: float, q: float) -> float:
    n = len(sorted_values)
    below = bisect.bisect_left(sorted_values, x) / n
    at_or_below = bisect.bisect_right(sorted_values, x) / n
    return below - q if q < below else q - at_or_below if q > at_or_below else 0.0


def skewed_sizes(n: int, parts: int, rnd: random.Random) -> list[int]:
    w = [2 ** (10 * rnd.random()) for _ in range(parts)]
    sizes = [math.floor(n * x / sum(w)) for x in w]
    sizes[-1] += n - sum(sizes)
    return sizes


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_merged_shard_digests_keep_rank_error_within_the_bound(name: str) -> None:
    draw, atoms_or_gaps = DISTRIBUTIONS[name]
    violations: list[str] = []
    for trial in range(4):
        for n in (2_000, 20_000):
            rnd = random.Random(f"{name}-{trial}-{n}")
            values = [draw(rnd) for _ in range(n)]
            parts = rnd.randint(1, 8)
            by_range = rnd.random() < 0.25
            source = sorted(values) if by_range else rnd.sample(values, n)
            shards, at = [], 0
            for size in skewed_sizes(n, parts, rnd):
                shards.append(digest_from_series(pl.Series(source[at : at + size], dtype=pl.Float64)))
                at += size
            merged = merge_digests(shards)
            exact = sorted(values)
            where = f"{name} trial={trial} n={n} parts={parts} by_range={by_range}"
            assert (merged.count, merged.min, merged.max) == (n, exact[0], exact[-1]), where
            assert len(merged.means) <= 2 * merged.compression, where
            for q in QS:
                err = rank_error(exact, quantile(merged, q), q)
                bound = atom_or_gap_bound(q, merged.compression) if atoms_or_gaps else RANK_ERROR_BOUND[q]
                if err > bound:
                    violations.append(f"{where}: q={q} rank error {err}")
    assert violations == []


def test_a_million_values_over_skewed_shards_merge_within_the_bound() -> None:
    n = 1_000_000
    # Uniform bits from polars' hash, bent into a skewed (squared) distribution: no Python loop.
    u = (pl.int_range(0, n, eager=True).hash(seed=7) // 2**11).cast(pl.Float64) / float(2**53)
    values = u * u * 1000
    sizes = [n * 2**i // 255 for i in range(8)]
    sizes[-1] += n - sum(sizes)
    shards, at = [], 0
    for size in sizes:
        shards.append(digest_from_series(values.slice(at, size)))
        at += size
    merged = merge_digests(shards)
    exact = values.sort()
    assert (merged.count, merged.min, merged.max) == (n, exact[0], exact[-1])
    assert len(merged.means) <= 2 * merged.compression
    for q in QS:
        x = quantile(merged, q)
        below = (exact < x).sum() / n
        at_or_below = (exact <= x).sum() / n
        err = below - q if q < below else q - at_or_below if q > at_or_below else 0.0
        assert err <= RANK_ERROR_BOUND[q], f"q={q} rank error {err}"
