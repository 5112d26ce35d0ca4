"""Count and moments per group of a packed rank key, counted into bins instead of sorted.

A group-by of up to two dictionary-coded keys packs the keys' lexical ranks into one integer
(``aggregate._RankKey``), at most ``possible``. When that range is not much larger than the rows
(by event type and user at 10 M events: 1.4 M possible keys for 5 M rows per shard), each
moment is one pass of numpy's ``bincount`` / ``ufunc.at`` over the rows into an array indexed
by the key, and the groups are the non-empty bins, already in key order: the strings' order,
null last. Sorting the rows by the key and aggregating each group's slice took ~0.55 s of a
shard's CPU there (the stable sort ~0.22, five slice aggregations ~0.33).

The moments are those of ``aggregate.metric_columns``, exactly where the sort's were:

* ``count`` and ``<m>__count`` (values that are not null) are counts;
* ``<m>__sum`` adds a group's values in row order, as the stable sort's slice did (its rounding
  may differ in the last bit: polars may add a slice in another association);
* ``<m>__min`` / ``<m>__max`` skip NaN unless a group holds only NaN, as polars does;
* ``<m>__mean`` is sum / count, and ``<m>__m2`` the sum of squared deviations from it (two
  passes, as polars' variance is);
* a group without values has null moments.

numpy is imported by the first grouping that bins, not at start: it holds ~13 MB per process.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ALL_MOMENTS", "BINS_MAX", "binned_moments", "fits_bins"]

#: Most bins (possible keys) counted into, whatever the rows. A bin costs 8 bytes in each of up
#: to 7 arrays alive at once (the counts, then a metric's count, sum, min, max, mean and m2): at
#: most ~117 MB at this bound, for the query's time. By event type and user at 10 M events: 1.4 M.
BINS_MAX = 1 << 21


def fits_bins(possible: int, rows: int) -> bool:
    """Whether counting into ``possible`` bins costs about what sorting ``rows`` rows would, in
    time and within a small multiple in memory: at most 2 bins per row (+ 65,536) and
    :data:`BINS_MAX`."""
    return possible <= min(BINS_MAX, 2 * rows + 65_536)


#: Every moment, in the columns' order.
ALL_MOMENTS = ("sum", "min", "max", "m2", "mean")


def binned_moments(
    keyed: pl.DataFrame,
    possible: int,
    metrics: Sequence[str],
    check_groups: Callable[[int], None],
    moments: Collection[str] = ALL_MOMENTS,
) -> pl.DataFrame:
    """``keyed`` (``__key``, a non-negative packed key below ``possible``, and the metric columns:
    the store's measures, Float64) → one row per group in key order: ``__key``, ``count``, per
    metric ``<m>__count``, ``__sum``, ``__min``, ``__max``, ``__m2``, ``__mean`` (those not in
    ``moments`` null, and not computed). ``check_groups`` gets the number of groups before any
    moment is taken (and may raise, e.g. :class:`~engine_polars.errors.ResultTooLarge`)."""
    import numpy as np

    # as the index type once: bincount would convert an unsigned key again on every call (and
    # not copied again when it is one already, as a window's Int64 key is)
    key = keyed["__key"].to_numpy().astype(np.intp, copy=False)
    counts = np.bincount(key, minlength=possible)
    present = np.flatnonzero(counts)
    check_groups(int(present.size))
    columns: dict[str, pl.Series] = {
        "__key": pl.Series("__key", present).cast(keyed.schema["__key"]),
        "count": pl.Series("count", counts[present].astype(np.uint32)),
    }
    for m in metrics:
        columns.update(_metric_moments(m, keyed[m], key, counts, present, moments))
    return pl.DataFrame(columns)


def _metric_moments(
    m: str, values: pl.Series, key: np.ndarray, counts: np.ndarray, present: np.ndarray, moments: Collection[str]
) -> dict[str, pl.Series]:
    import numpy as np

    possible = counts.size
    # Rows without a value are few: they are found by index, and their slot in the values (a
    # copy of the column) counts 0.0 toward a sum and its squared deviation is set to 0, then it
    # is a value min and max skip or that changes no bin. Compacting every row instead (the keys
    # by a mask, the values without nulls) cost a 1-minute window's ~100 ms op at 10 M ~5-10 %.
    missing = np.flatnonzero(values.is_null().to_numpy()) if values.null_count() > 0 else None
    v = values.to_numpy(writable=missing is not None)
    if missing is not None:
        v[missing] = 0.0
        n = counts - np.bincount(key[missing], minlength=possible)
    else:
        n = counts  # every row has a value
    arrays: dict[str, np.ndarray] = {}
    if moments:
        arrays["sum"] = np.bincount(key, weights=v, minlength=possible)
    if "mean" in moments or "m2" in moments:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = arrays["sum"] / n
            if "m2" in moments:
                # one temporary of a row's length, not three (the gather, the difference, its
                # square): ~75 instead of ~110 ms for 5 M rows
                squares = np.take(mean, key)
                np.subtract(v, squares, out=squares)
                np.multiply(squares, squares, out=squares)
                if missing is not None:
                    squares[missing] = 0.0
                arrays["m2"] = np.bincount(key, weights=squares, minlength=possible)
                del squares
        arrays["mean"] = mean
    if "min" in moments or "max" in moments:
        # polars' min and max skip NaN unless a group holds nothing else: fmin/fmax from NaN
        nan = bool(np.isnan(v).any())
        for name, plain, skipping, start in (("min", np.minimum, np.fmin, np.inf), ("max", np.maximum, np.fmax, -np.inf)):
            if name in moments:
                if missing is not None:
                    # a row without a value is NaN, which fmin/fmax skip, or else the bins' start,
                    # which changes no bin (fmin.at is ~1.5x minimum.at: only with a NaN value)
                    v[missing] = np.nan if nan else start
                arrays[name] = np.full(possible, np.nan if nan else start)
                (skipping if nan else plain).at(arrays[name], key, v)
    count = n[present]
    empty = np.flatnonzero(count == 0)
    out = {f"{m}__count": pl.Series(f"{m}__count", count.astype(np.uint32))}
    for name in ALL_MOMENTS:
        column = f"{m}__{name}"
        if name not in moments:
            out[column] = pl.Series(column, [None] * present.size, dtype=pl.Float64)
            continue
        out[column] = pl.Series(column, arrays[name][present], dtype=pl.Float64)
        if empty.size:
            out[column] = out[column].scatter(empty, None)
    return out
