"""Merging t-digest with the k1 scale function, mirroring ``src/merge/tdigest.ts`` step for step.

A digest is a list of centroids (mean, weight) sorted by mean plus the exact count, min and max.
The arithmetic is written in the same order as the TypeScript so both sides produce the same
digest; ``test/vectors/tdigest.json`` is checked by both test suites. See ``docs/TDIGEST.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

DEFAULT_COMPRESSION: float = 200


@dataclass
class Digest:
    """Centroids sorted by mean; ``count`` is the sum of ``weights``; empty: count 0, min/max NaN."""

    compression: float = DEFAULT_COMPRESSION
    means: list[float] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    count: int = 0
    min: float = math.nan
    max: float = math.nan


def _check_compression(compression: float) -> float:
    if not math.isfinite(compression) or compression < 1:
        raise ValueError(f"`compression` must be a finite number >= 1, got {compression}")
    return compression


def _k_scale(q: float, norm: float) -> float:
    # k1: δ/(2π)·asin(2q − 1), as `norm * asin(2q − 1)` exactly like the TypeScript.
    return norm * math.asin(2 * q - 1)


def make_digest(compression: float = DEFAULT_COMPRESSION) -> Digest:
    """An empty digest."""
    return Digest(compression=_check_compression(compression))


def unit_bucket_ends(n: int, compression: float = DEFAULT_COMPRESSION) -> list[int]:
    """End positions of the centroids the k1 greedy pass makes from ``n`` sorted unit weights.

    Centroid j covers sorted positions ``[ends[j-1], ends[j])``. Same as :func:`merge_digests`
    over ``n`` singletons, in O(centroids): guess the end from the inverse of k, then correct it
    with the greedy pass's own ``asin`` test.
    """
    norm = _check_compression(compression) / (2 * math.pi)
    ends: list[int] = []
    left = 0
    while left < n:
        k_left = _k_scale(left / n, norm)

        def fits(right: int) -> bool:
            return _k_scale(right / n, norm) - k_left <= 1

        angle = (k_left + 1) / norm
        right = n if angle >= math.pi / 2 else math.floor((n * (math.sin(angle) + 1)) / 2)
        right = min(n, max(left + 1, right))
        while right < n and fits(right + 1):
            right += 1
        while right > left + 1 and not fits(right):
            right -= 1
        ends.append(right)
        left = right
    return ends


def digest_from_series(s: pl.Series, compression: float = DEFAULT_COMPRESSION) -> Digest:
    """Digest of a numeric series; nulls, NaN and ±inf are skipped.

    Sort (polars), cut at :func:`unit_bucket_ends` and take each bucket's sum over its size. The
    Python loop runs once per centroid (about δ/2), never once per value.
    """
    if not s.dtype.is_numeric():
        raise TypeError(f"expected a numeric series, got `{s.dtype}`")
    digest = make_digest(compression)
    x = s.cast(pl.Float64)
    x = x.filter(x.is_finite()).sort()
    n = x.len()
    if n == 0:
        return digest
    left = 0
    for right in unit_bucket_ends(n, compression):
        total = x.slice(left, right - left).sum()
        digest.means.append(total / (right - left))
        digest.weights.append(right - left)
        left = right
    digest.count = n
    digest.min = float(x[0])
    digest.max = float(x[n - 1])
    return digest


def digest_from_values(values: Sequence[float | None], compression: float = DEFAULT_COMPRESSION) -> Digest:
    """Digest of a Python sequence (through :func:`digest_from_series`)."""
    return digest_from_series(pl.Series(values, dtype=pl.Float64, strict=False), compression)


def merge_digests(digests: Sequence[Digest], compression: float | None = None) -> Digest:
    """Dunning's merge: sort all centroids by mean (ties in input order), one greedy k1 pass.

    The next centroid joins the current one while k(q_right) − k(q_left) ≤ 1. ``compression``
    defaults to the first digest's, else 200.
    """
    if compression is None:
        compression = digests[0].compression if digests else DEFAULT_COMPRESSION
    out = make_digest(compression)
    means: list[float] = []
    weights: list[int] = []
    total = 0
    for d in digests:
        if len(d.means) != len(d.weights):
            raise ValueError(f"expected as many weights as means, got {len(d.weights)} and {len(d.means)}")
        if d.count == 0:
            continue
        means.extend(d.means)
        weights.extend(d.weights)
        total += sum(d.weights)
        out.min = d.min if out.count == 0 else min(out.min, d.min)
        out.max = d.max if out.count == 0 else max(out.max, d.max)
        out.count += d.count
    if not means:
        return out

    order = sorted(range(len(means)), key=lambda i: (means[i], i))
    norm = out.compression / (2 * math.pi)
    weight_before = 0
    k_left = _k_scale(0, norm)
    cur_weight = weights[order[0]]
    cur_sum = means[order[0]] * cur_weight
    for i in order[1:]:
        proposed = cur_weight + weights[i]
        if _k_scale((weight_before + proposed) / total, norm) - k_left <= 1:
            cur_weight = proposed
            cur_sum += means[i] * weights[i]
        else:
            out.means.append(cur_sum / cur_weight)
            out.weights.append(cur_weight)
            weight_before += cur_weight
            k_left = _k_scale(weight_before / total, norm)
            cur_weight = weights[i]
            cur_sum = means[i] * cur_weight
    out.means.append(cur_sum / cur_weight)
    out.weights.append(cur_weight)
    return out


def _weighted_average(x1: float, w1: float, x2: float, w2: float) -> float:
    if x1 > x2:
        return _weighted_average(x2, w2, x1, w1)
    x = (x1 * w1 + x2 * w2) / (w1 + w2)
    return max(x1, min(x, x2))


def quantile(d: Digest, q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1), as MergingDigest.quantile; NaN for an empty digest."""
    if not (0 <= q <= 1):
        raise ValueError(f"`q` must be in [0, 1], got {q}")
    means, weights = d.means, d.weights
    n = len(means)
    if n == 0 or d.count == 0:
        return math.nan
    total = d.count
    index = q * total
    if index < 1:
        return d.min
    first = weights[0]
    if first > 1 and index < first / 2:
        return d.min + ((index - 1) / (first / 2 - 1)) * (means[0] - d.min)
    if index > total - 1:
        return d.max
    last = weights[n - 1]
    if last > 1 and total - index <= last / 2:
        return d.max - ((total - index - 1) / (last / 2 - 1)) * (d.max - means[n - 1])
    weight_so_far = first / 2
    for i in range(n - 1):
        dw = (weights[i] + weights[i + 1]) / 2
        if weight_so_far + dw > index:
            left_unit = 0.0
            if weights[i] == 1:
                if index - weight_so_far < 0.5:
                    return means[i]
                left_unit = 0.5
            right_unit = 0.0
            if weights[i + 1] == 1:
                if weight_so_far + dw - index <= 0.5:
                    return means[i + 1]
                right_unit = 0.5
            z1 = index - weight_so_far - left_unit
            z2 = weight_so_far + dw - index - right_unit
            return _weighted_average(means[i], z2, means[i + 1], z1)
        weight_so_far += dw
    # Only reachable if the weights do not add up to `count`: interpolate from the last centre to max.
    z1 = max(0.0, index - weight_so_far)
    z2 = max(0.0, total - index)
    return d.max if z1 + z2 == 0 else _weighted_average(means[n - 1], z2, d.max, z1)


def digest_to_dict(d: Digest) -> dict[str, Any]:
    """JSON form (same shape as the TypeScript ``DigestJSON``): empty min/max become None."""
    empty = d.count == 0
    return {
        "compression": d.compression,
        "means": list(d.means),
        "weights": list(d.weights),
        "count": d.count,
        "min": None if empty else d.min,
        "max": None if empty else d.max,
    }


def digest_from_dict(obj: dict[str, Any]) -> Digest:
    """Reads a digest's JSON form; raises ValueError naming the field that is wrong."""
    compression = _check_compression(float(obj["compression"]))
    means = [float(m) for m in obj["means"]]
    weights = [int(w) for w in obj["weights"]]
    if len(means) != len(weights):
        raise ValueError(f"expected `means` and `weights` of equal length, got {len(means)} and {len(weights)}")
    for i, w in enumerate(weights):
        if w < 1 or w != obj["weights"][i]:
            raise ValueError(f"expected a positive integer at `weights[{i}]`, got {obj['weights'][i]}")
        if not math.isfinite(means[i]) or (i > 0 and means[i] < means[i - 1]):
            raise ValueError(f"expected finite ascending means, got {means[i]} at `means[{i}]`")
    total = sum(weights)
    if obj["count"] != total:
        raise ValueError(f"expected `count` {total} (sum of weights), got {obj['count']}")
    if total == 0:
        return make_digest(compression)
    lo, hi = obj["min"], obj["max"]
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"expected finite `min` <= `max`, got {lo} and {hi}")
    return Digest(compression, means, weights, total, float(lo), float(hi))
