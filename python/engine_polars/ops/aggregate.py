"""The ``aggregate`` plan: event count and per-metric moments per group.

Plan (``src/kinds/aggregate.ts``)::

    {"kind": "aggregate", "filter": {...}, "group_by": ["<dimension>" | "window", ...],
     "metrics": ["value", ...], "window_ms": int >= 1 (only with a ``window`` key),
     "max_cells": int >= 1 (optional), "finish": bool (optional, default false),
     "max_bytes": int >= 1 (optional, only with ``finish``),
     "columns": bool (optional, only with ``finish``)}

Partial (one row per group, sorted by the group keys; exactly one row when there are none,
with ``count`` 0 on an empty or fully filtered shard)::

    <each group key> LargeUtf8 (``window``: Int64 ``window_start``)   count Int64
    <m>__count Int64 (non-null values)
    <m>__sum, <m>__min, <m>__max, <m>__mean, <m>__m2 Float64

All five floats are null when ``<m>__count`` is 0, ``sum`` included (polars' sum of nothing is
0.0; null says "no values" the same way for every moment). ``m2`` is the sum of squared
deviations from the group mean, computed in two passes (mean, then deviations) so it does not
cancel the way sum-of-squares minus square-of-sum does; shards merge it with Chan's formula.

With ``finish`` (the router sets it when ``user_id`` is a group key: no other shard holds any of
this shard's groups) the partial is instead the finished answer rows, sorted the same way
(``engine_polars.answer_rows``)::

    <each group key> LargeUtf8 (``window``: Int64 ``window_start``)   __row LargeUtf8 (the answer
    row's JSON text)   __reparse Boolean (the merge must re-serialize the text)

(sent as a rows partial, the texts beside a small IPC stream: ``_utils/ipc.encode_result``);
with ``columns`` too (an Arrow answer) the finished rows as the answer's own columns instead, no
text (``engine_polars.answer_rows.answer_columns``): the keys, ``count``, per metric ``m_count``
and ``m_sum|mean|min|max|stddev``, sorted the same way, sent as a plain IPC stream;

and, with ``max_bytes`` (the router's ``maxResponseBytes``), a shard whose rows alone take more
bytes of JSON than that answers ``RESULT_TOO_LARGE`` naming ``maxResponseBytes`` instead of
sending them: the answer holds every shard's rows, so it would be refused anyway (with
``columns``: the columns' bytes, ``answer_columns.column_bytes``).

Group keys are dimensions (``engine_polars.dimensions``: event columns, ``metadata.<key>``,
``<table>.<column>``; missing → null group) or ``window``: the tumbling window of ``window_ms``
(``engine_polars.windows``: a pane of one window) as the Int64 column ``window_start``. A shard
whose filtered data spans more than ``maxWindows`` windows answers ``BAD_PLAN`` naming
``windowSize``; one whose estimated result cells are over ``max_cells`` answers
``RESULT_TOO_LARGE`` (``engine_polars.result_size``), both before grouping. Grouped by up to two
dictionary-coded keys with many possible groups (e.g. ``event_type`` and ``user_id``) the rows
are counted into bins of a packed key (or sorted by it), and the exact number of groups, not an
estimate, is checked against ``max_cells`` before any group is aggregated (:func:`_by_rank_key`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from engine_polars._utils.fields import MAX_CELLS_BOUND, distinct_names, max_cells, optional_int, reject_unknown_keys, require_key, string_list
from engine_polars._utils.json_types import json_type
from engine_polars.dictionary import category_count, category_strings, is_categorical, lexical_ranks
from engine_polars.dimensions import check_dimension, with_dimensions
from engine_polars.errors import BadPlan, ResultTooLarge
from engine_polars.filters import Filter, apply_filter, parse_filter
from engine_polars.limits import MAX_WINDOW_MS, MAX_WINDOWS
from engine_polars.answer_rows import STATS, answer_columns, answer_rows, column_bytes
from engine_polars.binned_moments import binned_moments, fits_bins
from engine_polars.result_size import check_result_size
from engine_polars.store import MEASURES
from engine_polars.windows import Panes

__all__ = ["KIND", "MOMENTS", "AggregatePlan", "key_column", "metric_columns", "parse", "partial_schema", "run", "series_moments"]

KIND = "aggregate"
MOMENTS = ("sum", "min", "max", "mean", "m2")


@dataclass(frozen=True)
class AggregatePlan:
    kind: ClassVar[str] = KIND
    filter: Filter = field(default_factory=Filter)
    group_by: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    #: With a ``window`` group key: the tumbling window size in ms (partial column ``window_start``).
    window_ms: int | None = None
    #: Most result cells this shard may produce; ``None``: unbounded.
    max_cells: int | None = None
    #: Answer the finished rows as JSON text (``engine_polars.answer_rows``): this shard's groups are its own.
    finish: bool = False
    #: With ``finish``: most bytes of JSON the rows may take (the answer's bound); ``None``: unbounded.
    max_bytes: int | None = None
    #: With ``finish``: answer the finished rows as columns (an Arrow answer), not JSON text.
    columns: bool = False
    #: The statistics the answer rows have per metric (``answer_rows.STATS`` order). Only a
    #: ``finish`` plan heeds it (it skips the moments none of them needs); a partial merged
    #: across shards always has every moment.
    stats: tuple[str, ...] = STATS


#: The moments each statistic of a finished row is made of (``mean`` is ``sum`` / count).
_STAT_MOMENTS = {"sum": ("sum",), "mean": ("sum", "mean"), "min": ("min",), "max": ("max",), "stddev": ("sum", "mean", "m2")}


def _group_keys(raw: object, path: str) -> tuple[str, ...]:
    # `window` or a dimension (event columns, metadata.<key>, <table>.<column>), each once.
    items = string_list(raw, path)
    for item in items:
        if item == "window":
            continue
        try:
            check_dimension(item, path)
        except BadPlan:
            raise BadPlan(
                f"unknown group key `{item}` in `{path}`; expected one of `event_type`, `user_id`, "
                "`window`, `metadata.<key>` or `<table>.<column>`"
            ) from None
    if len(set(items)) != len(items):
        dup = next(i for i in items if items.count(i) > 1)
        raise BadPlan(f"duplicate group key `{dup}` in `{path}`")
    return items


def parse(obj: Mapping[str, Any], path: str, body: bytes = b"") -> AggregatePlan:
    reject_unknown_keys(obj, ("kind", "filter", "group_by", "metrics", "window_ms", "max_cells", "finish", "max_bytes", "columns", "stats"), path)
    group_by = _group_keys(require_key(obj, "group_by", path), f"{path}.group_by")
    window_ms = obj.get("window_ms")
    if "window" in group_by:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or not 1 <= window_ms <= MAX_WINDOW_MS:
            raise BadPlan(
                f"`{path}.window_ms` must be an integer in 1..{MAX_WINDOW_MS} with a `window` group key"
            )
    elif window_ms is not None:
        raise BadPlan(f"`{path}.window_ms` needs a `window` group key")
    finish = obj.get("finish", False)
    if not isinstance(finish, bool):
        raise BadPlan(f"`{path}.finish` must be a boolean; got {json_type(finish)}")
    max_bytes = optional_int(obj, "max_bytes", path, 1, MAX_CELLS_BOUND)
    if max_bytes is not None and not finish:
        raise BadPlan(f"`{path}.max_bytes` needs `finish`")
    columns = obj.get("columns", False)
    if not isinstance(columns, bool):
        raise BadPlan(f"`{path}.columns` must be a boolean; got {json_type(columns)}")
    if columns and not finish:
        raise BadPlan(f"`{path}.columns` needs `finish`")
    stats = STATS
    if obj.get("stats") is not None:
        named = distinct_names(obj["stats"], f"{path}.stats", "statistic", STATS)
        if not named:
            raise BadPlan(f"`{path}.stats` needs at least one of {', '.join(STATS)}")
        stats = tuple(s for s in STATS if s in named)
    return AggregatePlan(
        filter=parse_filter(obj.get("filter"), f"{path}.filter"),
        group_by=group_by,
        metrics=distinct_names(require_key(obj, "metrics", path), f"{path}.metrics", "metric", MEASURES),
        window_ms=window_ms,
        max_cells=max_cells(obj, path),
        finish=finish,
        max_bytes=max_bytes,
        columns=columns,
        stats=stats,
    )


def key_column(key: str) -> str:
    """The partial column of a group key: ``window`` → ``window_start``, a dimension → itself."""
    return "window_start" if key == "window" else key


def partial_schema(plan: AggregatePlan) -> pl.Schema:
    """The exact schema of the partial for ``plan``."""
    cols: dict[str, pl.DataType] = {
        key_column(k): pl.Int64() if k == "window" else pl.String() for k in plan.group_by
    }
    if plan.finish and plan.columns:
        return answer_columns(pl.DataFrame(schema=_moments_schema(cols, plan.metrics)), plan.group_by, plan.metrics, plan.window_ms or 1, plan.stats).schema
    if plan.finish:
        return pl.Schema({**cols, "__row": pl.String(), "__reparse": pl.Boolean()})
    return pl.Schema(_moments_schema(cols, plan.metrics))


def metric_columns(m: str, deviations: str | None = None) -> list[pl.Expr]:
    """Aggregations for one metric column, valid in ``select`` and in ``group_by().agg``.

    ``deviations``: a column holding each value's squared deviation from its group's mean (see
    :func:`_grouped`); m2 is then its plain sum, which polars runs on its fast group-by path,
    where the two-pass expression is evaluated group by group (at 500,000 rows and 69,000
    groups: ~140 ms against ~60 ms for the whole group-by with the column)."""
    x = pl.col(m)
    n = x.count()
    mean = x.mean()

    def when_any(e: pl.Expr) -> pl.Expr:
        return pl.when(n > 0).then(e)

    m2 = pl.col(deviations).sum() if deviations is not None else ((x - mean) ** 2).sum()
    return [
        n.alias(f"{m}__count"),
        when_any(x.sum()).alias(f"{m}__sum"),
        x.min().alias(f"{m}__min"),
        x.max().alias(f"{m}__max"),
        mean.alias(f"{m}__mean"),
        when_any(m2).alias(f"{m}__m2"),
    ]


@dataclass(frozen=True)
class _RankKey:
    """Up to two dictionary-coded group keys as one UInt64 of their strings' lexical ranks: one
    integer key groups faster than two Categoricals, and sorting the groups by it is sorting them
    by their strings (null last: its rank is past every string's)."""

    key: pl.Expr
    #: The key columns back as Strings, from the packed key ``__key``.
    decode: list[pl.Expr]
    #: One past the largest key.
    possible: int


#: Below this many possible groups the two-pass expression per group costs less than the
#: deviations column (by event_type: 17 against 18 ms at 500,000 rows).
_FEW_GROUPS = 1_000


def _rank_key(schema: pl.Schema, keys: list[str]) -> _RankKey | None:
    if not 1 <= len(keys) <= 2 or not all(is_categorical(schema[k]) for k in keys):
        return None
    counts = [category_count(schema[k]) for k in keys]
    possible = 1
    for n in counts:
        possible *= n + 1
    if possible < _FEW_GROUPS:
        return None
    ranks: list[pl.Expr] = []
    strings: list[pl.Series] = []
    for k in keys:
        # rank of each code's string (kept per dictionary: dictionary.lexical_ranks); a null
        # row gets the strings' count: after every string
        rank, ordered = lexical_ranks(schema[k])
        ranks.append(pl.lit(rank).gather(pl.col(k).to_physical()).fill_null(rank.len()))
        strings.append(pl.concat([ordered, pl.Series([None], dtype=pl.String)]))
    if len(keys) == 1:
        return _RankKey(ranks[0], [pl.lit(strings[0]).gather(pl.col("__key")).alias(keys[0])], possible)
    width = strings[1].len()
    return _RankKey(
        ranks[0] * width + ranks[1],
        [
            pl.lit(strings[0]).gather(pl.col("__key") // width).alias(keys[0]),
            pl.lit(strings[1]).gather(pl.col("__key") % width).alias(keys[1]),
        ],
        possible,
    )


#: Up to this many possible values of one dictionary-coded key (null included), each group's rows
#: are cut out with a filter on its code and its moments taken over the cut: a filter and a few
#: contiguous reductions per group cost less than a hashed group-by's gathers per aggregation
#: (the whole op by event_type, 8 groups, 5 M rows, one thread: ~57 against ~296 ms of CPU);
#: each group costs one more pass over the codes.
_FILTERED_GROUPS = 32


def series_moments(values: pl.Series, m: str) -> dict[str, float | int | None]:
    """``<m>__count`` and the moments of ``values`` (nulls skipped), as :func:`metric_columns`
    computes them: the sum of squared deviations from the mean in a second pass."""
    n = values.len() - values.null_count()
    if n == 0:
        return {f"{m}__count": 0, **{f"{m}__{moment}": None for moment in MOMENTS}}
    total = values.sum()
    mean = total / n
    return {
        f"{m}__count": n,
        f"{m}__sum": total,
        f"{m}__min": values.min(),
        f"{m}__max": values.max(),
        f"{m}__mean": mean,
        # on the streaming engine: the deviations squared and summed a morsel at a time, never
        # a column of them (5 M values: 12 -> 6 ms)
        f"{m}__m2": values.to_frame("v").lazy().select(((pl.col("v") - mean) ** 2).sum()).collect(engine="streaming").item(),
    }


def _by_filtered_codes(rows: pl.LazyFrame, key: str, dtype: pl.Categorical, metrics: tuple[str, ...]) -> pl.LazyFrame:
    """``count`` and the moments per value of the dictionary-coded ``key``, one filter per code
    present, sorted by the key's strings (null last)."""
    categories = category_strings(dtype)
    data = rows.select(pl.col(key).to_physical().alias("__code"), *metrics).collect()
    codes = data["__code"]
    out: list[dict[str, object]] = []
    for code in codes.unique().to_list():
        mask = codes.is_null() if code is None else codes == code
        row: dict[str, object] = {key: None if code is None else categories[code], "count": int(mask.sum())}
        for m in metrics:
            row.update(series_moments(data[m].filter(mask), m))
        out.append(row)
    return pl.DataFrame(out, schema=_moments_schema({key: pl.String()}, metrics)).sort(key, nulls_last=True).lazy()


def _moments_schema(keys: dict[str, pl.DataType], metrics: tuple[str, ...]) -> dict[str, pl.DataType]:
    schema = {**keys, "count": pl.Int64()}
    for m in metrics:
        schema[f"{m}__count"] = pl.Int64()
        schema.update({f"{m}__{moment}": pl.Float64() for moment in MOMENTS})
    return schema


def _grouped(rows: pl.LazyFrame, keys: list[str], metrics: tuple[str, ...]) -> pl.LazyFrame:
    """``count`` and the moments per group of ``keys``, sorted by the keys (null last): one
    dictionary-coded key of few possible values by filters on its codes (the key back as a
    String), any other keys by a hashed group-by (many groups of up to two dictionary-coded keys
    go through :func:`_by_rank_key` instead)."""
    schema = rows.collect_schema()
    dtype = schema[keys[0]] if len(keys) == 1 else None
    # (a dictionary's strings are only counted when its codes are one byte: listing a wide one's,
    # e.g. 170,000 user ids, takes ~25 ms)
    if isinstance(dtype, pl.Categorical) and dtype.categories.physical() == pl.UInt8:
        if category_count(dtype) + 1 <= _FILTERED_GROUPS:
            return _by_filtered_codes(rows, keys[0], dtype, metrics)
    # Few groups, or keys that are not dictionary codes (metadata, enrichment, window).
    aggs = [pl.len().alias("count")]
    for m in metrics:
        aggs.extend(metric_columns(m))
    return rows.group_by(keys).agg(aggs).sort(keys, nulls_last=True)


def _slice_moments(m: str) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """:func:`metric_columns` for groups that are contiguous slices of sorted rows, as plain
    aggregations (polars runs them slice by slice; a ``when`` or an arithmetic expression inside
    the aggregation is evaluated group by group, ~2x the time) and the expressions that finish
    them over the grouped frame. polars takes a slice's variance in two passes (its mean, then
    the squared deviations from it), so ``m2`` = variance × count keeps the two-pass accuracy
    with large offsets."""
    x = pl.col(m)
    aggs = [
        x.count().alias(f"{m}__count"),
        x.sum().alias(f"{m}__sum"),
        x.min().alias(f"{m}__min"),
        x.max().alias(f"{m}__max"),
        x.var(ddof=0).alias(f"{m}__m2"),
    ]
    n = pl.col(f"{m}__count")
    finish = [
        pl.when(n > 0).then(pl.col(f"{m}__sum")).alias(f"{m}__sum"),
        # polars' slice mean is this very division (bit for bit on 680,000 groups); as its own
        # aggregation it was one more pass over the slices, ~70 of a shard's ~360 ms of them
        pl.when(n > 0).then(pl.col(f"{m}__sum") / n).alias(f"{m}__mean"),
        pl.when(n > 0).then(pl.col(f"{m}__m2") * n).alias(f"{m}__m2"),
    ]
    return aggs, finish


def _by_rank_key(
    rows: pl.LazyFrame, packed: _RankKey, keys: list[str], metrics: tuple[str, ...], max_cells: int | None, moments: Collection[str] = MOMENTS
) -> pl.LazyFrame:
    """``count`` and the moments per group of up to two dictionary-coded ``keys`` (``packed``),
    sorted by the keys (null last). When the packed key's range is not much larger than the rows
    (``binned_moments.fits_bins``), each moment is counted into bins indexed by the key and the
    non-empty bins are the groups, in key order (by event type and user at 10 M events, 5 M rows
    and 680,000 groups per shard: ~0.2 s of CPU). Otherwise the rows are sorted by the packed key,
    so every group is a contiguous slice (~0.55 s there; hashing the rows into groups took ~1.5
    s: a group-by for the means broadcast back to the rows, then another for the sums of squared
    deviations). Either way the exact number of groups is known, and checked against
    ``max_cells``, before any moment is taken. Counted into bins, only ``moments`` are taken (the
    others are null); sorted, every one."""
    key = packed.key if packed.possible > 2**32 else packed.key.cast(pl.UInt32)  # a narrower key sorts faster
    keyed = rows.select(key.alias("__key"), *metrics).collect()

    def check_groups(groups: int) -> None:
        if max_cells is not None and groups > max_cells:
            raise ResultTooLarge(
                f"`groupBy`: {groups} result cells (groups of {' × '.join(keys)}) on this shard; "
                f"at most `maxResultCells` {max_cells}: narrow the filter or group by fewer keys"
            )

    if fits_bins(packed.possible, keyed.height):
        return binned_moments(keyed, packed.possible, metrics, check_groups, moments).lazy().select(*packed.decode, pl.exclude("__key"))
    keyed = keyed.sort("__key")
    if max_cells is not None:
        check_groups(keyed["__key"].n_unique())
    aggs = [pl.len().alias("count")]
    finish: list[pl.Expr] = []
    for m in metrics:
        a, f = _slice_moments(m)
        aggs += a
        finish += f
    grouped = keyed.lazy().group_by("__key", maintain_order=True).agg(aggs)
    return (grouped.with_columns(finish) if finish else grouped).select(*packed.decode, pl.exclude("__key"))


def _check_text_bytes(rows: pl.DataFrame, max_bytes: int) -> None:
    """:class:`ResultTooLarge` when the finished ``rows`` take more than ``max_bytes`` bytes of
    JSON as the answer's ``results`` array (the texts, a comma between two, the brackets)."""
    text = int(rows["__row"].str.len_bytes().sum() or 0) + max(rows.height - 1, 0) + 2
    if text > max_bytes:
        raise ResultTooLarge(
            f"`(answer)`: this shard's {rows.height} rows alone are {text} bytes of JSON; at most "
            f"`maxResponseBytes` {max_bytes}: narrow the filter, group by fewer keys or ask for fewer rows"
        )


def _check_column_bytes(columns: pl.DataFrame, max_bytes: int) -> None:
    """:class:`ResultTooLarge` when the finished ``columns`` take more than ``max_bytes`` bytes
    in an Arrow answer (at least :func:`column_bytes`)."""
    size = column_bytes(columns)
    if size > max_bytes:
        raise ResultTooLarge(
            f"`(answer)`: this shard's {columns.height} rows alone are over {size} bytes of Arrow; at most "
            f"`maxResponseBytes` {max_bytes}: narrow the filter, group by fewer keys or ask for fewer rows"
        )


def run(plan: AggregatePlan, frame: pl.LazyFrame) -> pl.DataFrame:
    """The aggregate partial of ``frame`` (the store's events) for ``plan``."""
    rows = apply_filter(frame, plan.filter)
    if plan.group_by:
        dims = [k for k in plan.group_by if k != "window"]
        if dims:
            rows = with_dimensions(rows, dims)
        panes = None
        if "window" in plan.group_by:
            if plan.window_ms is None:
                raise BadPlan("a `window` group key needs `window_ms`")
            panes = Panes(plan.window_ms)
        keys = [key_column(k) for k in plan.group_by]
        packed = _rank_key(rows.collect_schema(), keys) if panes is None else None
        if packed is not None:
            # the exact group count is checked against max_cells, once the groups are counted
            # finished rows need only their statistics' moments; a partial to merge needs every one
            moments = {m for s in plan.stats for m in _STAT_MOMENTS[s]} if plan.finish else set(MOMENTS)
            out = _by_rank_key(rows, packed, keys, plan.metrics, plan.max_cells, moments)
        else:
            check_result_size(rows, dims, panes=panes, max_windows=MAX_WINDOWS, max_cells=plan.max_cells)
            if panes is not None:
                rows = rows.with_columns(panes.start().alias("window_start"))
            out = _grouped(rows, keys, plan.metrics)
    else:
        # One row, even over no rows; each metric's column read once (contiguous reductions).
        row: dict[str, object] = {"count": rows.select(pl.len()).collect().item()}
        if plan.metrics:
            data = rows.select(plan.metrics).collect()
            for m in plan.metrics:
                row.update(series_moments(data[m], m))
        out = pl.DataFrame([row], schema=_moments_schema({}, plan.metrics)).lazy()
    if plan.finish and plan.columns:
        columns = answer_columns(out.collect(), plan.group_by, plan.metrics, plan.window_ms, plan.stats)
        if plan.max_bytes is not None:
            _check_column_bytes(columns, plan.max_bytes)
        return columns
    if plan.finish:
        rows_out = answer_rows(out.collect(), plan.group_by, plan.metrics, plan.window_ms, plan.stats)
        if plan.max_bytes is not None:
            _check_text_bytes(rows_out, plan.max_bytes)
        return rows_out
    schema = partial_schema(plan)
    return out.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).collect()
