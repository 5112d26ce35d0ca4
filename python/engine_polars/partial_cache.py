"""Cached per-chunk partials: the dashboard's plans (and GET /query/summary's) without a pass
over every row on every request.

Which plans (exactly the shapes ``src/kinds/dashboard.ts`` and ``src/kinds/summary.ts`` send
without a filter; any other plan runs as before, ``handlers.py``):

* ``summary`` without a filter;
* ``aggregate`` by ``event_type`` without metrics, filter or ``max_cells`` (the events per type);
* ``percentiles`` of a column without group, filter or ``max_cells``, not ``exact``;
* ``topn`` by ``user_id`` of ``count`` without a metric, ``shard_top``, descending, without a filter;
* ``aggregate`` grouped by ``window`` and ``event_type`` (the dashboard's last 15 one-minute
  windows) whose filter is a time range on window edges: per chunk, only for the chunks whose
  timestamps reach into the range (min/max timestamp kept per chunk), the chunk's rows grouped by
  (window, event-type code) with count and moments, kept for the window size; any other aggregate
  grouped by ``window``/``event_type``/``user_id`` with only a time range is run over the rows of
  those chunks only.

What is kept, per chunk (``Chunk.partials``, dropped with the chunk: a compaction, a roll, a
retention drop or a re-encoding makes new chunks or tokens): row count, timestamp range, the
moments of every measure (``ops.aggregate.metric_columns``, as the cold path computes them), the
events per event-type code and the measure's t-digest (``tdigest.digest_from_series``). Segments
(immutable) are always cached; open chunks once they hold :data:`MIN_CACHED_ROWS` rows (the
front of the open chunks, which compaction leaves alone for long); smaller ones and a chunk cut by
``rows_upto`` are computed afresh on every request, together, in one pass.

Events per user (``distinct_users`` and the top users) are the big part: one count per user. They
are kept once per store as a dense count per user code (:class:`_UserCounts`) over the leading run
of cached chunks, and moved forward when chunks are added at its end; an open chunk in it keeps
its own (code, count) frame so that a compaction or a roll, which replaces open chunks, is
subtracted exactly, and so does a segment a roll made (:func:`carry_over`); anything else (a
retention drop of a segment loaded from its file, a re-encoding, a restart) recounts from the
rows once. Counts are integers, so the answer is exact whichever way it was reached.

A roll's segment gets its partials from the open chunks it was made of (:func:`carry_over`, at
the roll's commit), not from a pass over its rows; only its digest is computed from the rows, by
the roll's thread (:func:`roll_partials`).

Answers: the same partials, schema and order as the cold ops (``src/merge/*`` reads them as
before). Counts, distinct users, time range, types and top users are exact; the moments are
combined with Chan's formula, as the merge combines shards (equal up to rounding); the digest
partial is the centroids of every chunk's digest (count, min and max of the shard), which the
merge merges in one pass as it merges shards' digests: the estimate differs from one digest over
all the values, within the documented rank error of a merge (docs/TDIGEST.md, "Cached partials").

``ENGINE_PARTIAL_CACHE=off`` (config ``partialCache``) turns all of it off: every plan then runs
over every row (bench:peers' cold runs).
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine_polars.dictionary import category_strings
from engine_polars.filters import Filter
from engine_polars.ops import aggregate as aggregate_op
from engine_polars.ops import percentiles as percentiles_op
from engine_polars.ops import summary as summary_op
from engine_polars.ops import topn as topn_op
from engine_polars.ops.aggregate import MOMENTS, metric_columns
from engine_polars.store import MEASURES, Chunk, EventStore, RollJob, Segment
from engine_polars.tdigest import DEFAULT_COMPRESSION, Digest, digest_from_series

__all__ = ["ENABLED", "MIN_CACHED_ROWS", "Request", "after_compaction", "cached_bytes", "carry_over", "prime", "roll_partials"]

#: Off with ``ENGINE_PARTIAL_CACHE=off`` (or ``0``/``false``).
ENABLED: bool = os.environ.get("ENGINE_PARTIAL_CACHE", "on").lower() not in ("off", "0", "false")

#: Open chunks smaller than this are computed afresh on every request (they are merged soon).
#: The open chunks below it hold fewer than ~2x as many rows together (compaction keeps sizes
#: growing towards the front), and a fresh pass costs ~0.1 µs a row (130,000 rows: ~13 ms,
#: 32,000: ~4.4 ms per shard); above it a chunk's partials are computed once, after the
#: compaction that made it, and kept: ~7 times per row on its way to a 1,000,000-row segment.
MIN_CACHED_ROWS = 16_384

_CORE = ("timestamp", "event_type", "user_id", *MEASURES)


@dataclass
class _Moments:
    count: int = 0
    nulls: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0

    def add(self, o: _Moments) -> None:
        """Chan's merge of (count, mean, m2), as ``src/merge/moments.ts`` merges shards."""
        self.nulls += o.nulls
        if o.count == 0:
            return
        if self.count == 0:
            self.count, self.sum, self.min, self.max, self.mean, self.m2 = o.count, o.sum, o.min, o.max, o.mean, o.m2
            return
        n = self.count + o.count
        delta = o.mean - self.mean
        self.mean += delta * o.count / n
        self.m2 += o.m2 + delta * delta * self.count * o.count / n
        self.sum += o.sum
        self.min = min(self.min, o.min)
        self.max = max(self.max, o.max)
        self.count = n

    @property
    def finite(self) -> bool:
        return self.count == 0 or all(math.isfinite(x) for x in (self.sum, self.min, self.max, self.mean, self.m2))


@dataclass
class _State:
    """The partials of some rows (one chunk, or the fresh rows of a request)."""

    rows: int
    first_ts: int | None
    last_ts: int | None
    moments: dict[str, _Moments]
    #: events per event-type code: ``code`` UInt32, ``count`` Int64
    types: pl.DataFrame
    digests: dict[str, Digest]
    #: events per user code: ``code`` UInt32, ``count`` Int64 (None: not kept, recount from rows)
    users: pl.DataFrame | None

    def nbytes(self) -> int:
        centroids = sum(len(d.means) for d in self.digests.values())
        return int(self.types.estimated_size()) + 16 * centroids + (0 if self.users is None else int(self.users.estimated_size()))


def _code_counts(df: pl.DataFrame, column: str) -> pl.DataFrame:
    return _code_counts_lazy(df, column).collect()


def _code_counts_lazy(df: pl.DataFrame, column: str) -> pl.LazyFrame:
    return df.lazy().group_by(pl.col(column).to_physical().cast(pl.UInt32).alias("code")).agg(pl.len().cast(pl.Int64).alias("count"))


def _state_of(df: pl.DataFrame, keep_users: bool) -> _State:
    """The partials of ``df`` (rows in the store layout)."""
    aggs: list[pl.Expr] = [
        pl.len().alias("rows"),
        pl.col("timestamp").min().alias("first_ts"),
        pl.col("timestamp").max().alias("last_ts"),
    ]
    for m in MEASURES:
        aggs.extend(metric_columns(m))
        aggs.append(pl.col(m).null_count().alias(f"{m}__null_count"))
    # one call for the three (each query has a fixed cost of ~0.1-0.2 ms; a request's fresh rows are few)
    queries = [df.lazy().select(aggs), _code_counts_lazy(df, "event_type")]
    if keep_users:
        queries.append(_code_counts_lazy(df, "user_id"))
    found = pl.collect_all(queries)
    row = found[0].row(0, named=True)
    moments: dict[str, _Moments] = {}
    for m in MEASURES:
        n, nulls = int(row[f"{m}__count"]), int(row[f"{m}__null_count"])
        moments[m] = _Moments(n, nulls, *(row[f"{m}__{k}"] for k in MOMENTS)) if n else _Moments(nulls=nulls)
    return _State(
        rows=int(row["rows"]),
        first_ts=row["first_ts"],
        last_ts=row["last_ts"],
        moments=moments,
        types=found[1],
        digests={m: digest_from_series(df[m], DEFAULT_COMPRESSION) for m in MEASURES},
        users=found[2] if keep_users else None,
    )


_WINDOW_KEYS = ["window_start", "code"]
#: Window sizes whose groups are kept per chunk (the dashboard's is one); others are grouped afresh.
_WINDOW_SIZES = 2


def _windowed(df: pl.LazyFrame, window_ms: int) -> pl.DataFrame:
    """Per (window start, event-type code): ``count`` and the moments of every measure."""
    return _windowed_lazy(df, window_ms).collect()


def _windowed_lazy(df: pl.LazyFrame, window_ms: int) -> pl.LazyFrame:
    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("count")]
    for m in MEASURES:
        aggs.extend(metric_columns(m))
    return df.group_by(
        ((pl.col("timestamp") // window_ms) * window_ms).alias("window_start"),
        pl.col("event_type").to_physical().cast(pl.UInt32).alias("code"),
    ).agg(aggs)


def _chunk_windows(c: Chunk, window_ms: int, lo: int | None = None) -> pl.DataFrame:
    """``c``'s groups for ``window_ms``, complete from ``lo`` on (None: all of them). A rolled
    segment's groups may be complete only from ``windows_from:<ms>`` on (:func:`carry_over`):
    asked for earlier windows, the segment's rows are grouped afresh."""
    key = f"windows:{window_ms}"
    out: pl.DataFrame | None = c.partials.get(key)
    complete_from: int | None = c.partials.get(f"windows_from:{window_ms}")
    if out is None or (complete_from is not None and (lo is None or lo < complete_from)):
        out = c.partials[key] = _windowed(c.df.lazy(), window_ms)
        c.partials.pop(f"windows_from:{window_ms}", None)
    return out


def _merge_windows(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Groups of several parts merged: counts and sums added, min/max, and (count, mean, m2) by
    Chan's formula, as ``src/merge/moments.ts`` merges shards; one part's groups as they are."""
    if len(parts) == 1:
        return parts[0]
    return _merged_windows_lazy([p.lazy() for p in parts]).collect()


def _merged_windows_lazy(parts: list[pl.LazyFrame]) -> pl.LazyFrame:
    """:func:`_merge_windows` as one lazy query (a request's parts merge in one collect)."""
    rows = pl.concat(parts, how="vertical")
    aggs: list[pl.Expr] = [pl.col("count").sum()]
    for m in MEASURES:
        n, mean, m2 = pl.col(f"{m}__count"), pl.col(f"{m}__mean"), pl.col(f"{m}__m2")
        total = n.sum()
        grand = (n * mean).sum() / total
        aggs += [
            total.alias(f"{m}__count"),
            pl.when(total > 0).then(pl.col(f"{m}__sum").sum()).alias(f"{m}__sum"),
            pl.col(f"{m}__min").min(),
            pl.col(f"{m}__max").max(),
            pl.when(total > 0).then(grand).alias(f"{m}__mean"),
            pl.when(total > 0).then(m2.sum() + (n * (mean - grand) ** 2).sum()).alias(f"{m}__m2"),
        ]
    return rows.group_by(_WINDOW_KEYS).agg(aggs)


def _cacheable(c: Chunk) -> bool:
    return isinstance(c, Segment) or c.rows >= MIN_CACHED_ROWS


def _chunk_state(c: Chunk) -> _State:
    state: _State | None = c.partials.get("state")
    if state is None:
        # Open chunks keep their user counts: they are the ones compactions and rolls replace.
        state = _state_of(c.df, keep_users=not isinstance(c, Segment))
        c.partials["state"] = state
        c.partials["ts"] = (state.first_ts, state.last_ts)
    return state


def _ts_range(c: Chunk) -> tuple[int | None, int | None]:
    ts: tuple[int | None, int | None] | None = c.partials.get("ts")
    if ts is None:
        row = c.df.select(pl.col("timestamp").min().alias("a"), pl.col("timestamp").max().alias("b")).row(0)
        ts = (row[0], row[1])
        c.partials["ts"] = ts
    return ts


def _dense_add(dense: pl.Series, counts: pl.DataFrame, sign: int = 1) -> pl.Series:
    """``dense`` (Int64, index = code) plus (or minus) the (code, count) rows of ``counts``
    (codes distinct), grown to hold every code; a new Series."""
    if counts.height == 0:
        return dense
    top = int(counts["code"].max()) + 1  # type: ignore[arg-type]
    # `scatter` writes in place: never into the Series given (the store's kept counts)
    dense = dense.extend_constant(0, top - dense.len()) if top > dense.len() else dense.clone()
    codes = counts["code"]
    delta = counts["count"] if sign > 0 else -counts["count"]
    return dense.scatter(codes, dense.gather(codes) + delta)


@dataclass
class _UserCounts:
    """Events per user code over the chunks whose tokens are ``tokens`` (in order)."""

    tokens: list[int] = field(default_factory=list)
    #: per token: the chunk's (code, count) frame when it keeps one (open chunks), else None
    kept: list[pl.DataFrame | None] = field(default_factory=list)
    dense: pl.Series = field(default_factory=lambda: pl.Series("count", [], dtype=pl.Int64))

    def nbytes(self) -> int:
        return int(self.dense.estimated_size())


#: Per store: the user counts of its leading cached chunks. Weak: a store dropped drops them.
_USERS: weakref.WeakKeyDictionary[EventStore, _UserCounts] = weakref.WeakKeyDictionary()
#: Per store: window size → the start of the last windows range asked for (what :func:`prime` groups).
_WINDOWS_ASKED: weakref.WeakKeyDictionary[EventStore, dict[int, int | None]] = weakref.WeakKeyDictionary()


def _users_over(store: EventStore, chunks: list[Chunk]) -> pl.Series:
    """Events per user code over ``chunks`` (a leading run of cached chunks), moving the store's
    :class:`_UserCounts` to them."""
    old = _USERS.get(store) or _UserCounts()
    tokens = [c.token for c in chunks]
    same = 0
    while same < min(len(tokens), len(old.tokens)) and tokens[same] == old.tokens[same]:
        same += 1
    gone = old.kept[same:]
    if all(k is not None for k in gone):
        dense, kept = old.dense, old.kept[:same]
        for k in gone:
            assert k is not None
            dense = _dense_add(dense, k, -1)
        start = same
    else:
        # A chunk without kept counts left (a segment: retention, re-encoding): recount.
        dense, kept, start = pl.Series("count", [], dtype=pl.Int64), [], 0
    for c in chunks[start:]:
        kept.append(_chunk_state(c).users)
        dense = _dense_add(dense, _users_of(c))
    _USERS[store] = _UserCounts(tokens, kept, dense)
    return dense


@dataclass
class _Combined:
    """Every partial of the rows a request sees, combined."""

    state: _State
    #: the per-chunk digests, in row order, per measure
    digests: dict[str, list[Digest]]
    #: events per user code (Int64, index = code; 0 for users without events here)
    users: pl.Series


def _leading(chunks: list[Chunk]) -> int:
    """How many chunks at the front are cached (segments, then big open chunks)."""
    n = 0
    while n < len(chunks) and _cacheable(chunks[n]):
        n += 1
    return n


def _users_of(c: Chunk) -> pl.DataFrame:
    state: _State | None = c.partials.get("state")
    return state.users if state is not None and state.users is not None else _code_counts(c.df, "user_id")



def _sum_states(states: list[_State], digests: dict[str, Digest]) -> _State:
    """Rows, time range, moments and events per type of ``states`` added up (``users`` left
    None for the caller; ``digests`` taken as given)."""
    total = _State(0, None, None, {m: _Moments() for m in MEASURES}, pl.DataFrame(), digests, None)
    for s in states:
        total.rows += s.rows
        if s.first_ts is not None:
            total.first_ts = s.first_ts if total.first_ts is None else min(total.first_ts, s.first_ts)
            total.last_ts = s.last_ts if total.last_ts is None else max(total.last_ts, s.last_ts)  # type: ignore[type-var]
        for m in MEASURES:
            total.moments[m].add(s.moments[m])
    types = _summed([s.types for s in states])
    total.types = types if types is not None else pl.DataFrame(schema={"code": pl.UInt32, "count": pl.Int64})
    return total

def _summed(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    frames = [f for f in frames if f.height]
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else pl.concat(frames).group_by("code").agg(pl.col("count").sum())


def _combine(store: EventStore, upto: int | None) -> _Combined:
    """Every partial of the rows below ``upto``: cached chunks' kept partials, the rest afresh.

    The store's user counts always cover its whole leading run of cached chunks (a request
    never moves them back): the rows of that run a request does not see (at or past ``upto``:
    what was appended after the request was cut) are counted and subtracted for it alone."""
    chunks = store.held_chunks()
    lead = _leading(chunks)
    users = _users_over(store, chunks[:lead])
    states: list[_State] = []
    fresh: list[pl.DataFrame] = []
    #: (code, count) frames to add to / take from ``users`` for this request
    plus: list[pl.DataFrame] = []
    minus: list[pl.DataFrame] = []
    fresh_users: list[pl.DataFrame] = []
    for i, c in enumerate(chunks):
        in_lead = i < lead
        if upto is not None and c.first_row >= upto:
            if not in_lead:
                break
            minus.append(_users_of(c))
            continue
        if upto is not None and c.end_row > upto:
            # cut by the visibility bound: these rows afresh, never cached
            seen = upto - c.first_row
            fresh.append(c.df.slice(0, seen).select(_CORE))
            if in_lead:
                minus.append(_code_counts(c.df.slice(seen), "user_id"))
            else:
                fresh_users.append(fresh[-1])
            continue
        if _cacheable(c):
            state = _chunk_state(c)
            states.append(state)
            if not in_lead:
                assert state.users is not None  # an open chunk: it keeps them
                plus.append(state.users)
        else:
            fresh.append(c.df.select(_CORE))
            fresh_users.append(fresh[-1])
    if fresh:
        rows = fresh[0] if len(fresh) == 1 else pl.concat(fresh, rechunk=True)
        every = len(fresh_users) == len(fresh)
        state = _state_of(rows, keep_users=every)
        states.append(state)
        if every:
            assert state.users is not None
            plus.append(state.users)
        elif fresh_users:
            plus.append(_code_counts(pl.concat(fresh_users), "user_id"))
    more, less = _summed(plus), _summed(minus)
    if more is not None:
        users = _dense_add(users, more)
    if less is not None:
        users = _dense_add(users, less, -1)
    total = _sum_states(states, {})
    return _Combined(total, {m: [s.digests[m] for s in states] for m in MEASURES}, users)


def prime(store: EventStore) -> None:
    """Computes the partials of cached chunks that have none yet, and moves the store's user
    counts to them: after a roll or a compaction, between frames, so the next dashboard does
    not. Only once the cache answered a request in this process (else nobody needs them)."""
    if not ENABLED or store not in _USERS:
        return
    chunks = store.held_chunks()
    asked = _WINDOWS_ASKED.get(store, {})
    for c in chunks:
        if _cacheable(c):
            last = _chunk_state(c).last_ts
            for w, lo in asked.items():
                if last is not None and (lo is None or last >= lo):
                    _chunk_windows(c, w, lo)
    _users_over(store, chunks[: _leading(chunks)])


def roll_partials(store: EventStore) -> Callable[[pl.DataFrame], dict[str, Any]] | None:
    """What a roll's thread computes for :func:`carry_over` beside the segment file (the rows are
    merged there anyway, and polars releases the GIL while it groups and sorts them): every
    measure's digest over the segment's rows, the same digest a segment loaded from its file gets,
    and the events per user code (adding the rolled chunks' up held the pipe ~17 ms per 1,000,000
    rows). None when the cache is not in use in this process."""
    if not ENABLED or store not in _USERS:
        return None
    return lambda rows: {
        "digests": {m: digest_from_series(rows[m], DEFAULT_COMPRESSION) for m in MEASURES},
        "users": _code_counts(rows, "user_id"),
    }


def carry_over(store: EventStore, job: RollJob) -> None:
    """Gives the segment a committed roll made its cached partials from the open chunks it was
    made of (:func:`_carry`), with the digests and user counts the roll's thread computed
    (:func:`roll_partials`), instead of a pass over its rows (~0.6 s for 1,000,000 rows, with the
    pipe blocked). No-op when the cache is not in use or the roll wrote no segment."""
    extra = job.extra
    if not ENABLED or store not in _USERS or job.info is None or not isinstance(extra, dict):
        return
    seg = next((c for c in store.held_chunks() if isinstance(c, Segment) and c.first_row == job.info.first_row), None)
    if seg is None or seg.partials or seg.rows != sum(c.rows for c in job.chunks):
        return
    # user codes of the thread's rows are the chunks' unless a re-encoding came in between
    same_codes = [c.token for c in job.chunks] == job.tokens
    _carry(store, seg, job.chunks, extra["digests"], extra["users"] if same_codes else None)


def after_compaction(store: EventStore, before: list[Chunk]) -> None:
    """Gives the chunk a compaction made from ``before``'s last ones its cached partials from
    theirs (:func:`_carry`) when it is big enough to keep them and some of them kept theirs:
    only its digests are computed from its rows. A compaction that merged 500,000 rows otherwise
    had :func:`prime` compute everything from them (~0.2 s) before the next frame."""
    if not ENABLED or store not in _USERS:
        return
    now = store.held_chunks()
    kept = {id(c) for c in now}
    was = {id(c) for c in before}
    gone = [c for c in before if id(c) not in kept]
    made = [c for c in now if id(c) not in was]
    if len(made) != 1 or not gone or not _cacheable(made[0]) or not any("state" in c.partials for c in gone):
        return
    merged = made[0]
    if merged.partials or merged.rows != sum(c.rows for c in gone):
        return
    _carry(store, merged, gone, {m: digest_from_series(merged.df[m], DEFAULT_COMPRESSION) for m in MEASURES})


def _carry(store: EventStore, target: Chunk, sources: list[Chunk], digests: dict[str, Digest], users: pl.DataFrame | None = None) -> None:
    """``target``'s cached partials (its rows are ``sources``' rows) from ``sources``': rows,
    time range, event types and events per user added up exactly, the moments by Chan's formula
    (as :func:`_combine` adds chunks), ``digests`` as given, and each asked window size's groups
    merged as :func:`_merge_windows` merges chunks' at a request (``users``: the events per user
    code when they were counted from the rows already). Sources without partials of
    their own (small open chunks) are taken together, in one pass over their rows. A source
    without groups whose rows all precede the asked range (or whose groups are complete only from
    some window) leaves ``target``'s groups complete only from the window after its last row
    (``windows_from:<ms>``, which :func:`_chunk_windows` honours)."""
    srcs = [c for c in sources if "state" in c.partials]
    rest = [c for c in sources if "state" not in c.partials]
    if rest:
        srcs.append(Chunk(pl.concat([c.df.select(_CORE) for c in rest]) if len(rest) > 1 else rest[0].df, rest[0].first_row))
    states = [_chunk_state(c) for c in srcs]
    total = _sum_states(states, digests)
    if users is None and all(s.users is not None for s in states):
        users = _summed([s.users for s in states if s.users is not None])
        if users is None:
            users = pl.DataFrame(schema={"code": pl.UInt32, "count": pl.Int64})
    total.users = users
    for w, lo in _WINDOWS_ASKED.get(store, {}).items():
        parts: list[pl.DataFrame] = []
        complete_from: int | None = None
        for c, s in zip(srcs, states):
            if s.last_ts is None:
                continue
            has = f"windows:{w}" in c.partials
            if not has and lo is not None and s.last_ts < lo:
                edge = (s.last_ts // w + 1) * w
                complete_from = edge if complete_from is None else max(complete_from, edge)
                continue
            parts.append(_chunk_windows(c, w, lo))
            edge = c.partials.get(f"windows_from:{w}")
            if edge is not None:
                complete_from = edge if complete_from is None else max(complete_from, edge)
        if not parts or not all(all(p.select(pl.col(f"{m}__sum").is_finite().all() for m in MEASURES).row(0)) for p in parts):
            continue  # nothing to merge, or NaN/±inf: grouped from the rows when asked
        merged = _merge_windows(parts)
        target.partials[f"windows:{w}"] = merged.select(pl.col(n).cast(t) for n, t in parts[0].schema.items())
        if complete_from is not None:
            target.partials[f"windows_from:{w}"] = complete_from
    target.partials["state"] = total
    target.partials["ts"] = (total.first_ts, total.last_ts)


def _bounds(f: Filter) -> tuple[int | None, int | None]:
    """``f``'s time range as whole milliseconds [lo, hi) (None: unbounded)."""
    return (None if f.start is None else math.ceil(f.start), None if f.end is None else math.ceil(f.end))


def _between(column: str, lo: int | None, hi: int | None) -> pl.Expr:
    """``column`` in [lo, hi) (None: unbounded)."""
    inside = pl.lit(True)
    if lo is not None:
        inside &= pl.col(column) >= lo
    if hi is not None:
        inside &= pl.col(column) < hi
    return inside


def _reaching(store: EventStore, lo: int | None, hi: int | None, upto: int | None) -> Iterator[tuple[Chunk, int | None]]:
    """The chunks with rows below ``upto`` whose timestamps reach into [lo, hi), each with how
    many of its rows ``upto`` leaves when it cuts the chunk (None: all of them)."""
    for c in store.held_chunks():
        if upto is not None and c.first_row >= upto:
            break
        first, last = _ts_range(c)
        if first is None or last is None or (lo is not None and last < lo) or (hi is not None and first >= hi):
            continue
        yield c, (upto - c.first_row if upto is not None and c.end_row > upto else None)


def _names(dtype: pl.DataType, codes: pl.Series) -> pl.Series:
    """The strings of dictionary ``codes`` (UInt32) of the Categorical ``dtype``.

    ``Categories.to_series()`` builds the whole mapping in a Python loop (~0.35 µs per value:
    ~6 ms for 17,000 users, ~90 ms for 250,000), so a handful of codes are looked up one by one
    with what that loop calls (``Categories.__iter__`` in polars 1.44); else the whole mapping."""
    assert isinstance(dtype, pl.Categorical)
    lookup = getattr(getattr(dtype.categories, "_categories", None), "cat_to_str", None)
    if lookup is None or codes.len() > 1_000:
        return category_strings(dtype).gather(codes)
    return pl.Series([lookup(int(c)) for c in codes], dtype=pl.String)


def _no_filter(f: Filter) -> bool:
    return f == Filter()


def _time_only(f: Filter) -> bool:
    return f.event_types is None and f.user_ids is None and f.dimensions is None and (f.start is not None or f.end is not None)


class Request:
    """One query(-many) request's cached answers: the combination is made once for every plan
    of the request that reads it, per ``rows_upto``."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._combined: dict[int | None, _Combined] = {}

    def _get(self, upto: int | None) -> _Combined:
        c = self._combined.get(upto)
        if c is None:
            c = self._combined[upto] = _combine(self.store, upto)
        return c

    def answer(self, plan: Any, upto: int | None) -> pl.DataFrame | None:
        """``plan``'s partial from cached partials; None when ``plan`` is not one answered here
        (or the cache is off): run it over the rows."""
        if not ENABLED:
            return None
        if isinstance(plan, summary_op.SummaryPlan) and _no_filter(plan.filter):
            return self._summary(plan, upto)
        if isinstance(plan, aggregate_op.AggregatePlan) and plan.max_cells is None and not plan.finish:
            if plan.group_by == ("event_type",) and not plan.metrics and _no_filter(plan.filter):
                return self._types(upto)
            if plan.group_by and set(plan.group_by) <= {"window", "event_type", "user_id"} and _time_only(plan.filter):
                if plan.group_by == ("window", "event_type") and plan.window_ms is not None:
                    out = self._windows(plan, upto)
                    if out is not None:
                        return out
                return aggregate_op.run(plan, self._time_pruned(plan.filter, upto))
        if (
            isinstance(plan, percentiles_op.PercentilesPlan)
            and plan.group_by is None
            and not plan.exact
            and plan.compression == DEFAULT_COMPRESSION
            and plan.max_cells is None
            and _no_filter(plan.filter)
        ):
            return self._digest(plan, upto)
        if (
            isinstance(plan, topn_op.TopNPlan)
            and plan.group_by == "user_id"
            and plan.agg == "count"
            and plan.metric is None
            and plan.shard_top
            and plan.order == "desc"
            and _no_filter(plan.filter)
        ):
            return self._top_users(plan, upto)
        return None

    def _summary(self, plan: summary_op.SummaryPlan, upto: int | None) -> pl.DataFrame | None:
        c = self._get(upto)
        s = c.state
        if not all(s.moments[m].finite for m in plan.columns):
            return None  # NaN or ±inf among the values: the cold path's arithmetic, not Chan's
        row: dict[str, Any] = {
            "count": s.rows,
            "rows_held": s.rows,
            "distinct_users": int((c.users > 0).sum()),
            "first_timestamp": s.first_ts,
            "last_timestamp": s.last_ts,
        }
        for m in plan.columns:
            mo = s.moments[m]
            row[f"{m}__count"] = mo.count
            row[f"{m}__null_count"] = mo.nulls
            for k in MOMENTS:
                row[f"{m}__{k}"] = getattr(mo, k) if mo.count else None
        return pl.DataFrame([row], schema=summary_op.partial_schema(plan))

    def _types(self, upto: int | None) -> pl.DataFrame:
        types = self._get(upto).state.types.filter(pl.col("count") > 0)
        return (
            types.select(_names(self.store.event_types.dtype, types["code"]).alias("event_type"), pl.col("count").cast(pl.Int64))
            .sort("event_type")
        )

    def _digest(self, plan: percentiles_op.PercentilesPlan, upto: int | None) -> pl.DataFrame:
        out = percentiles_op.centroid_rows(self._get(upto).digests[plan.column])
        return out.select(pl.col(n).cast(t) for n, t in percentiles_op.partial_schema(plan).items())

    def _top_users(self, plan: topn_op.TopNPlan, upto: int | None) -> pl.DataFrame:
        users = self._get(upto).users
        schema = topn_op.partial_schema(plan)
        if users.len() == 0 or plan.n == 0:
            return pl.DataFrame(schema=schema)
        # Every user whose count reaches the n-th largest (at least 1), then ties broken by the
        # user id; on the dense counts themselves (a frame with row index over every user code
        # cost ~0.5 ms a request).
        threshold = max(int(users.top_k(plan.n).min()), 1)  # type: ignore[arg-type]
        codes = (users >= threshold).arg_true()
        if codes.len() == 0:
            return pl.DataFrame(schema=schema)
        top = pl.DataFrame({"code": codes.cast(pl.UInt32), "count": users.gather(codes)})
        return (
            top.select(_names(self.store.users.dtype, top["code"]).alias("user_id"), pl.col("count").cast(pl.Int64))
            .sort(["count", "user_id"], descending=[True, False])
            .head(plan.n)
        )

    def _windows(self, plan: aggregate_op.AggregatePlan, upto: int | None) -> pl.DataFrame | None:
        """The window × event type partial from the chunks whose time range reaches into the
        filter's: a cached chunk's kept groups, the others' (and a cut chunk's) rows grouped
        afresh. ``None`` when the range's ends are not window edges (then a window would hold
        only part of its rows; the pruned frame is grouped instead)."""
        assert plan.window_ms is not None
        w = plan.window_ms
        lo, hi = _bounds(plan.filter)
        asked = _WINDOWS_ASKED.setdefault(self.store, {})
        if (lo is not None and lo % w) or (hi is not None and hi % w) or (w not in asked and len(asked) >= _WINDOW_SIZES):
            return None
        asked[w] = lo
        parts: list[pl.LazyFrame] = []
        fresh: list[pl.LazyFrame] = []
        for c, seen in _reaching(self.store, lo, hi, upto):
            if seen is not None:
                fresh.append(c.df.slice(0, seen).lazy().select(_CORE))
            elif _cacheable(c):
                parts.append(_chunk_windows(c, w, lo).lazy())
            else:
                fresh.append(c.df.lazy().select(_CORE))
        if fresh:
            rows = fresh[0] if len(fresh) == 1 else pl.concat(fresh)
            parts.append(_windowed_lazy(rows.filter(_between("timestamp", lo, hi)), w))
        schema = aggregate_op.partial_schema(plan)
        if not parts:
            return pl.DataFrame(schema=schema)
        # Every part's groups in range merged in one query (a filter and a merge per part cost
        # ~0.2 ms of polars' fixed cost each: ~5 ms a dashboard at 10 parts).
        merged = _merged_windows_lazy(parts).filter(_between("window_start", lo, hi)).collect()
        if not all(merged.select(pl.col(f"{m}__sum").is_finite().all() for m in MEASURES).row(0)):
            return None  # NaN or ±inf among the values: the cold path's arithmetic, not Chan's
        names = _names(self.store.event_types.dtype, merged["code"]).alias("event_type")
        return (
            merged.lazy()
            .with_columns(names)
            .sort(["window_start", "event_type"])
            .select(pl.col(n).cast(t) for n, t in schema.items())
            .collect()
        )

    def _time_pruned(self, f: Filter, upto: int | None) -> pl.LazyFrame:
        """The rows below ``upto`` of the chunks whose timestamps reach into ``f``'s range."""
        parts = [
            (c.df if seen is None else c.df.slice(0, seen)).select(_CORE).lazy()
            for c, seen in _reaching(self.store, *_bounds(f), upto)
        ]
        if not parts:
            return self.store.frame(0)
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical", rechunk=False)


def cached_bytes(store: EventStore) -> int:
    """Bytes the cached partials of ``store`` take (estimated: frames' buffers, 16 per centroid)."""
    total = 0
    for c in store.held_chunks():
        for key, kept in c.partials.items():
            if key == "state":
                total += kept.nbytes()
            elif key.startswith("windows:"):
                total += int(kept.estimated_size())
    users = _USERS.get(store)
    return total + (users.nbytes() if users is not None else 0)
