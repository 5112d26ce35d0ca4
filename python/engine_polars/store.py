"""The shard's events: immutable segments (also on disk) plus the open chunks appended since.

Each appended batch becomes one *open chunk* (no copy of what is already held);
:meth:`EventStore.compact` merges open chunks between frames so queries never scan hundreds of
tiny ones. :meth:`EventStore.roll` seals every open chunk into one *segment*: written to a file
(``segments.py``), then held in memory as one chunk that is never merged or copied again.
:meth:`EventStore.retain` drops whole segments past the retention; :meth:`EventStore.open_dir`
loads the segments of a data dir at start-up.

Rows are numbered: every chunk knows the absolute index of its first row on this shard (rows
are counted in log order from 0, across restarts; appends may say it with ``first_row``), so
``frame(upto)`` (the rows with index < ``upto``, a plan's ``rows_upto``) is a slice of at most
one chunk, and a batch replayed twice is recognised and skipped.

Columns held (``stored_schema``): ``timestamp`` Int64 (epoch ms), ``event_type`` and
``user_id`` Categorical (store-owned dictionaries, see ``dictionary.py``), ``value`` Float64,
and the metadata columns of ``metadata.py``. A chunk holds only the metadata columns it uses;
:meth:`EventStore.frame` fills the others with nulls (only when a query reads them).
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine_polars import enrichment_tables, metadata, segments
from engine_polars._utils.ipc import read_ipc_body
from engine_polars._utils.log import log
from engine_polars.dictionary import Dictionary
from engine_polars.errors import BadFrame, BadPlan, names

__all__ = ["DIMENSIONS", "EVENT_SCHEMA", "MAX_CHUNKS", "MEASURES", "Chunk", "EventStore", "RollJob", "Segment", "event_columns"]

#: The events as they arrive and as partials carry them, in order: ``timestamp`` is epoch ms,
#: ``metadata`` the JSON object text.
EVENT_SCHEMA = pl.Schema(
    {
        "timestamp": pl.Int64,
        "event_type": pl.String,
        "user_id": pl.String,
        "value": pl.Float64,
        "metadata": pl.String,
    }
)
#: String columns a query may group by.
DIMENSIONS: tuple[str, ...] = ("event_type", "user_id")
#: Numeric columns a query may aggregate.
MEASURES: tuple[str, ...] = ("value",)

#: Types accepted in an appended batch. Timestamps arrive as Int64 epoch ms (the stored type;
#: the shard converts the integral epoch ms both ingest routes give it), or as Float64, checked
#: here: batches logged before the shard sent Int64, and a batch with a timestamp that is not a
#: safe integer (src/shards/column-builder.ts).
_INCOMING_TYPES: dict[str, tuple[pl.DataType, ...]] = {
    "timestamp": (pl.Float64(), pl.Int64()),
    "event_type": (pl.String(),),
    "user_id": (pl.String(),),
    "value": (pl.Float64(),),
    "metadata": (pl.String(),),
}
_NOT_NULL = ("timestamp", "event_type", "user_id")
#: Beyond 2^53 a double no longer holds every integer, so such a "timestamp" is not one.
_MAX_SAFE_INTEGER = 2**53 - 1

#: More open chunks than this triggers a compaction. Every query reads all the chunks (a lazy
#: concat, each chunk an input of its own): at 600,000 rows, the dashboard's plans took ~8 % less
#: CPU over 8 chunks than over 25 (a live feed's 500-row appends), while compacting that much more
#: often cost ~0.03 ms per append (the merged suffixes are the small chunks).
MAX_CHUNKS = 8


def event_columns(schema: pl.Schema) -> list[pl.Expr]:
    """The five event columns with :data:`EVENT_SCHEMA`'s names and types, from a store frame
    (the metadata text is rebuilt: select them after cutting the rows down) or a plain one."""
    return [
        pl.col("timestamp").cast(pl.Int64),
        pl.col("event_type").cast(pl.String),
        pl.col("user_id").cast(pl.String),
        pl.col("value").cast(pl.Float64),
        metadata.text(schema).cast(pl.String).alias("metadata"),
    ]


#: Chunk tokens: a new one for every chunk built and for every chunk whose frame is replaced.
_tokens = itertools.count(1)


@dataclass
class Chunk:
    df: pl.DataFrame
    first_row: int
    #: Names these rows for cached partials (``partial_cache.py``): an append, a compaction's merge
    #: and a roll's segment are new chunks with new tokens, and :meth:`EventStore._recode` gives the
    #: chunks it re-encodes new ones, so a token never stands for two different frames.
    token: int = field(default_factory=lambda: next(_tokens), init=False, compare=False)
    #: What ``partial_cache.py`` keeps about these rows (emptied with a new token).
    partials: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return self.df.height

    @property
    def end_row(self) -> int:
        return self.first_row + self.df.height


@dataclass
class Segment(Chunk):
    info: segments.SegmentInfo = field(default=None)  # type: ignore[assignment]


@dataclass
class RollJob:
    """A roll's files (``EventStore.begin_roll``): what they hold, then what :meth:`write` made."""

    directory: str
    log_position: int
    #: the previous roll's log position: the segment's records start there
    log_from: int
    chunks: list[Chunk]
    #: the chunks' tokens at the start (a re-encoding while the files are written changes them)
    tokens: list[int]
    next_row: int
    max_ts: int | None
    tables_version: int
    #: the enrichment tables to snapshot (None: unchanged since the last roll)
    tables: dict[str, pl.DataFrame] | None
    #: run on the merged rows by :meth:`write`, its result kept in ``extra`` (cached partials)
    on_merged: Any = None
    started: float = field(default_factory=time.perf_counter)
    merged: pl.DataFrame | None = None
    info: segments.SegmentInfo | None = None
    tables_file: segments.FileInfo | None = None
    extra: Any = None
    error: BaseException | None = None

    def write(self) -> None:
        """Writes the segment and the tables snapshot (durably; no manifest names them yet).
        Reads only the job: safe on another thread. A failure is kept in ``error``."""
        try:
            if self.chunks:
                self.merged = _concat([c.df for c in self.chunks])
                self.info = segments.write_segment(self.directory, self.merged, self.chunks[0].first_row, self.log_from, self.log_position)
                if self.on_merged is not None:
                    self.extra = self.on_merged(self.merged)
            if self.tables is not None:
                self.tables_file = segments.write_tables(self.directory, self.tables, self.log_position) if self.tables else None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # e.g. a full disk: the roll fails, the store goes on
            self.error = exc


class EventStore:
    """All events of one shard. Every method leaves the store unchanged when it raises."""

    def __init__(self) -> None:
        self.event_types = Dictionary(widest=pl.UInt32())
        self.users = Dictionary(start=pl.UInt16(), widest=pl.UInt32())
        self.meta = metadata.MetadataCodec()
        self._segments: list[Segment] = []
        self._open: list[Chunk] = []
        #: a roll begun and not finished: it writes the leading open chunks (compaction leaves them)
        self._roll: RollJob | None = None
        self._rows = 0
        self._next_row = 0
        self._max_ts: int | None = None
        #: ``<shard dir>/segments`` once :meth:`open_dir` ran; rolls need it
        self._dir: str | None = None
        self._manifest = segments.Manifest()
        self._tables_version = -1
        self._lock: int | None = None
        self.rows_dropped = 0

    # -- sizes -------------------------------------------------------------------------------

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def chunks(self) -> int:
        return len(self._segments) + len(self._open)

    @property
    def open_rows(self) -> int:
        return sum(c.rows for c in self._open)

    @property
    def next_row(self) -> int:
        """The absolute index the next appended row gets."""
        return self._next_row

    def segment_stats(self) -> dict[str, int]:
        return {
            "segments": len(self._segments),
            "segment_bytes": sum(s.info.bytes for s in self._segments),
            "rows_in_segments": sum(s.rows for s in self._segments),
            "open_rows": self.open_rows,
            "next_row": self._next_row,
        }

    def stored_schema(self) -> pl.Schema:
        """The columns every frame has (metadata columns only as far as some chunk has them)."""
        cols: dict[str, pl.DataType] = {
            "timestamp": pl.Int64(),
            "event_type": self.event_types.dtype,
            "user_id": self.users.dtype,
            "value": pl.Float64(),
        }
        for c in self._chunks():
            for name, dtype in c.df.schema.items():
                cols.setdefault(name, dtype)
        return pl.Schema({name: cols[name] for name in self._key_ordered(list(cols))})

    def _chunks(self) -> list[Chunk]:
        return [*self._segments, *self._open]

    def held_chunks(self) -> list[Chunk]:
        """The segments, then the open chunks, in row order (the list is a copy; the chunks are not)."""
        return self._chunks()

    # -- appends -----------------------------------------------------------------------------

    def append(self, ipc_bytes: bytes, first_row: int | None = None) -> int:
        """Adds the rows of one Arrow IPC stream; returns how many were new. Raises :class:`BadFrame`.

        ``first_row`` is the absolute index of the batch's first row; rows this store already
        holds (a batch replayed twice) are skipped. Without it rows are numbered on from the last.
        """
        batch = _validated(_read_stream(ipc_bytes))
        start = self._next_row if first_row is None else first_row
        skip = self._next_row - start
        if skip >= batch.height:
            return 0
        if skip > 0:
            batch = batch.slice(skip)
            start = self._next_row
        elif skip < 0:
            if self._open:
                log(f"append: first_row {first_row} leaves a gap after row {self._next_row}; numbering on from {self._next_row}")
                start = self._next_row
            else:
                log(f"append: rows {self._next_row}..{start - 1} are not held (lost); numbering on from {start}")
        if batch.height == 0:
            return 0
        chunk = self._encode(batch)
        self._open.append(Chunk(chunk, start))
        self._rows += chunk.height
        self._next_row = start + chunk.height
        self._note_max(chunk)
        return chunk.height

    def _note_max(self, df: pl.DataFrame) -> None:
        top = df["timestamp"].max()
        if top is not None and (self._max_ts is None or int(top) > self._max_ts):  # type: ignore[arg-type]
            self._max_ts = int(top)  # type: ignore[arg-type]

    def _encode(self, batch: pl.DataFrame) -> pl.DataFrame:
        """A validated batch in the stored layout (re-encoding held chunks if a dictionary widened)."""
        event_types, w_types, _ = self.event_types.encode(batch["event_type"])
        users, w_users, _ = self.users.encode(batch["user_id"])
        meta, widened = self.meta.encode(batch["metadata"])
        if w_types:
            widened.add("event_type")
        if w_users:
            widened.add("user_id")
        if widened:
            self._recode(widened)
        return pl.DataFrame(
            [batch["timestamp"], event_types.alias("event_type"), users.alias("user_id"), batch["value"]]
        ).hstack(meta)

    def _dictionary(self, column: str) -> Dictionary | None:
        if column == "event_type":
            return self.event_types
        if column == "user_id":
            return self.users
        return self.meta.dictionary(column)

    def _recode(self, columns: set[str]) -> None:
        """Re-encodes ``columns`` of every held chunk with their dictionaries' current dtypes."""
        chunks = self._chunks()
        recoded = []
        for c in chunks:
            exprs = []
            for name in columns & set(c.df.columns):
                d = self._dictionary(name)
                assert d is not None
                exprs.append(d.recode(c.df[name]))
            recoded.append(c.df.with_columns(exprs) if exprs else c.df)
        for c, df in zip(chunks, recoded):
            c.df = df
            c.token = next(_tokens)
            c.partials = {}

    # -- reads -------------------------------------------------------------------------------

    def frame(self, upto: int | None = None) -> pl.LazyFrame:
        """A lazy frame over the rows held (no copy); with ``upto``, only rows whose absolute
        index is below it (a slice of at most one chunk). Empty: :meth:`stored_schema`.

        Its ``__meta:`` columns are in the key order (``metadata.text`` renders implied shapes
        in the schema's order): a chunk's own order is its first batch's, and a diagonal concat
        lists columns by first appearance, so they are selected in order when they are not."""
        parts: list[pl.LazyFrame] = []
        columns: dict[str, None] = {}
        for c in self._chunks():
            if upto is not None:
                if c.first_row >= upto:
                    break
                if c.end_row > upto:
                    parts.append(c.df.slice(0, upto - c.first_row).lazy())
                    columns.update(dict.fromkeys(c.df.columns))
                    break
            parts.append(c.df.lazy())
            columns.update(dict.fromkeys(c.df.columns))
        if not parts:
            return pl.LazyFrame(schema=self.stored_schema())
        frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal", rechunk=False)
        natural = list(columns)
        wanted = self._key_ordered(natural)
        return frame if wanted == natural else frame.select(wanted)

    def _key_ordered(self, names: list[str]) -> list[str]:
        """``names`` with its ``__meta:`` columns permuted into the key order (in their slots)."""
        slots = [i for i, n in enumerate(names) if n.startswith(metadata.PREFIX)]
        position = self.meta.position
        keyed = sorted((names[i] for i in slots), key=lambda n: (position.get(n[len(metadata.PREFIX) :], len(position)), n))
        out = list(names)
        for i, n in zip(slots, keyed):
            out[i] = n
        return out

    def events(self, upto: int | None = None) -> pl.DataFrame:
        """The rows as they arrived (:data:`EVENT_SCHEMA`, metadata text rebuilt): tests, tools."""
        frame = self.frame(upto)
        return frame.select(event_columns(frame.collect_schema())).collect()

    # -- compaction --------------------------------------------------------------------------

    def compact(self) -> bool:
        """Merges open chunks when more than :data:`MAX_CHUNKS` are held; returns whether it did.

        Only a suffix is merged: from the first chunk that is no bigger than all the chunks after
        it together, to the end. Every chunk left in front is then bigger than everything behind
        it, so sizes at least double towards the front, the chunk count stays near log2(rows),
        and a row is copied O(log rows) times before its segment is rolled, where merging
        everything would copy every row at every compaction. Segments are never merged: the
        biggest copy is one segment's worth of rows. Nor are the open chunks a roll is writing.
        """
        rolling = 0 if self._roll is None else len(self._roll.chunks)
        if len(self._open) - rolling <= MAX_CHUNKS:
            return False
        sizes = [c.rows for c in self._open[rolling:]]
        after = sum(sizes)
        start = len(sizes) - 2
        for i, size in enumerate(sizes):
            after -= size
            if size <= after:
                start = min(i, start)
                break
        start += rolling
        merged = _concat([c.df for c in self._open[start:]])
        self._open[start:] = [Chunk(merged, self._open[start].first_row)]
        return True

    # -- segments ----------------------------------------------------------------------------

    def open_dir(self, shard_dir: str, log_start: int = 0) -> dict[str, Any]:
        """Loads the segments and enrichment tables of ``<shard_dir>/segments`` (creating it).

        Returns where the log replay starts (``log_position``) and the index of its first row
        (``next_row``). A segment that fails its checks is refused (renamed ``*.corrupt``): if
        the log still holds its records (``log_start`` <= where they start), the replay starts
        there instead and the segments after it are deleted (the replay rebuilds them);
        otherwise its rows are lost, and said so (``rows_lost``).
        """
        if self._chunks() or self._dir is not None:
            raise BadPlan("open: the store is not empty")
        directory = os.path.join(shard_dir, "segments")
        os.makedirs(directory, exist_ok=True)
        try:
            self._lock = segments.lock_dir(directory)
            manifest = segments.read_manifest(directory) or segments.Manifest()
        except segments.SegmentCorrupt as exc:
            raise BadFrame(f"open: {exc}") from None
        removed = segments.remove_unlisted(directory, manifest)
        if removed:
            log(f"open: removed {len(removed)} file(s) no manifest names (an interrupted roll): {', '.join(removed)}")
        tables: dict[str, pl.DataFrame] = {}
        if manifest.tables is not None:
            try:
                tables = segments.read_tables(directory, manifest.tables)
            except segments.SegmentCorrupt as exc:
                log(f"open: enrichment snapshot refused, the tables it held are lost: {exc}")
        self._dir = directory
        refused: list[tuple[segments.SegmentInfo, str]] = []
        for info in manifest.segments:
            try:
                columns = segments.read_segment(directory, info)
            except segments.SegmentCorrupt as exc:
                log(f"open: segment refused: {exc}")
                refused.append((info, str(exc)))
                continue
            # Appended as it loads: a dictionary widened by a later segment recodes earlier ones.
            self._segments.append(Segment(self._adopt(columns), info.first_row, info))
        # The key order (metadata.py): the manifest's; one written before key orders gets its
        # segments' keys in code-point order, which renders their implied shapes (the rule
        # then: keys in code-point order) as before. Any key no manifest lists goes after.
        self.meta.extend_order(manifest.meta_keys or ())
        self.meta.extend_order(sorted(self.meta.kinds))
        log_position, next_row = manifest.log_position, manifest.next_row
        rows_lost = 0
        if refused:
            first = min(refused, key=lambda r: r[0].first_row)[0]
            for info, _ in refused:
                os.replace(os.path.join(directory, info.file), os.path.join(directory, info.file + ".corrupt"))
            if log_start <= first.log_from:
                for s in self._segments:
                    if s.first_row > first.first_row:
                        os.unlink(os.path.join(directory, s.info.file))
                self._segments = [s for s in self._segments if s.first_row < first.first_row]
                log_position, next_row = first.log_from, first.first_row
                log(f"open: the log still holds the refused rows (from row {first.first_row}): replaying it from position {log_position}")
            else:
                rows_lost = sum(i.rows for i, _ in refused)
                log(f"open: {rows_lost} rows of refused segments are lost: the log no longer holds them")
            manifest = segments.Manifest(
                log_position, next_row, manifest.max_timestamp, [s.info for s in self._segments], manifest.tables, list(self.meta.order)
            )
            segments.write_manifest(directory, manifest)
        enrichment_tables.replace_all(tables)
        self._rows = sum(s.rows for s in self._segments)
        self._next_row = next_row
        self._max_ts = max((s.info.max_ts for s in self._segments), default=None)
        self._manifest = manifest
        self._tables_version = enrichment_tables.version()
        return {
            "log_position": log_position,
            "next_row": next_row,
            "rows": self._rows,
            "segments_refused": [r for _, r in refused],
            "rows_lost": rows_lost,
            **self.segment_stats(),
        }

    def close(self) -> None:
        """Lets go of the segment directory (a process exiting does so too)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _adopt(self, columns: dict[str, pl.Series | tuple[pl.Series, pl.Series]]) -> pl.DataFrame:
        """A segment read from disk in this store's dtypes (its dictionaries encode the values)."""
        out: list[pl.Series] = []
        for name, col in columns.items():
            if isinstance(col, tuple):
                dictionary_values, indices = col
                if name.startswith(metadata.PREFIX):
                    self.meta.adopt(name, pl.String())
                d = self._dictionary(name)
                if d is None:
                    raise BadFrame(f"segment column `{name}` is dictionary-encoded but has no dictionary here")
                encoded, widened, _ = d.encode(dictionary_values)
                if widened:
                    self._recode({name})
                out.append(encoded.gather(indices).alias(name))
            else:
                self.meta.adopt(name, col.dtype)
                out.append(col)
        return pl.DataFrame(out)

    def roll(self, log_position: int) -> dict[str, Any]:
        """Seals every open chunk into one segment file (if any rows are open), snapshots the
        enrichment tables (if they changed) and commits both in the manifest with
        ``log_position``: everything the log holds before it is now in files. The three steps of
        :meth:`begin_roll`, :meth:`RollJob.write` and :meth:`finish_roll` in a row."""
        job = self.begin_roll(log_position)
        job.write()
        return self.finish_roll(job)

    def begin_roll(self, log_position: int) -> RollJob:
        """Takes what a roll to ``log_position`` seals: the open chunks held now and the
        enrichment tables as they are now (when they changed since the last snapshot).

        The job's :meth:`RollJob.write` touches nothing of the store, so it may run on another
        thread while appends, compactions and queries go on (the server does so); the chunks it
        writes stay open chunks, and readable, until :meth:`finish_roll` commits it."""
        if self._dir is None:
            raise BadPlan("roll needs a data dir: send `open` first")
        if self._roll is not None:
            raise BadPlan("roll: the previous roll is not finished")
        if log_position < self._manifest.log_position:
            raise BadPlan(f"roll: log position {log_position} is before the last roll's {self._manifest.log_position}")
        version = enrichment_tables.version()
        job = RollJob(
            directory=self._dir,
            log_position=log_position,
            log_from=self._manifest.log_position,
            chunks=list(self._open),
            tokens=[c.token for c in self._open],
            next_row=self._next_row,
            max_ts=self._max_ts,
            tables_version=version,
            tables=dict(enrichment_tables.TABLES) if version != self._tables_version else None,
        )
        self._roll = job
        return job

    def finish_roll(self, job: RollJob) -> dict[str, Any]:
        """Commits a written ``job`` in the manifest and holds its rows as one segment; raises
        (the store unchanged but for the roll no longer pending) when its write failed."""
        try:
            if job.error is not None:
                raise job.error
            assert all(a is b for a, b in zip(job.chunks, self._open)), "the rolled chunks are the first open ones"
            manifest = segments.Manifest(
                job.log_position,
                job.next_row,
                job.max_ts,
                [*self._manifest.segments, *([job.info] if job.info else [])],
                job.tables_file if job.tables is not None else self._manifest.tables,
                # the key order now: it extends the one the segment's rows were encoded with
                list(self.meta.order),
            )
            old_tables = self._manifest.tables
            segments.write_manifest(job.directory, manifest)
            segments.fault_point("manifest_written")
        finally:
            self._roll = None
        # Committed: the store now holds the rolled rows as a segment.
        self._manifest = manifest
        self._tables_version = job.tables_version
        if job.merged is not None and job.info is not None:
            merged = job.merged
            if [c.token for c in job.chunks] != job.tokens:
                # re-encoded meanwhile (a dictionary widened): the chunks' frames are the current encoding
                merged = _concat([c.df for c in job.chunks])
            self._segments.append(Segment(merged, job.info.first_row, job.info))
            self._open = self._open[len(job.chunks) :]
        if old_tables is not None and (manifest.tables is None or manifest.tables.file != old_tables.file):
            _unlink_quietly(os.path.join(job.directory, old_tables.file))
        return {
            "segment": None if job.info is None else job.info.file,
            "rolled_rows": 0 if job.info is None else job.info.rows,
            "rolled_bytes": 0 if job.info is None else job.info.bytes,
            "ms": round((time.perf_counter() - job.started) * 1000, 3),
            **self.segment_stats(),
        }

    def retain(self, retention_ms: int, now_ms: int) -> dict[str, Any]:
        """Drops whole segments whose newest event is older than min(newest event held, now) −
        ``retention_ms`` (a far-future event cannot move the reference past now). Open chunks
        are never dropped."""
        if self._dir is None or self._max_ts is None:
            return {"rows_dropped": 0, "segments_dropped": 0, **self.segment_stats()}
        reference = min(self._max_ts, now_ms)
        cutoff = reference - retention_ms
        drop = [s for s in self._segments if s.info.max_ts < cutoff]
        if not drop:
            return {"rows_dropped": 0, "segments_dropped": 0, "cutoff": cutoff, **self.segment_stats()}
        gone = {s.info.file for s in drop}
        manifest = segments.Manifest(
            self._manifest.log_position,
            self._manifest.next_row,
            self._manifest.max_timestamp,
            [s for s in self._manifest.segments if s.file not in gone],
            self._manifest.tables,
            list(self.meta.order),  # kept whole: the open chunks' keys keep their places
        )
        segments.write_manifest(self._dir, manifest)
        self._manifest = manifest
        self._segments = [s for s in self._segments if s.info.file not in gone]
        rows = sum(s.rows for s in drop)
        self._rows -= rows
        self.rows_dropped += rows
        for name in gone:
            _unlink_quietly(os.path.join(self._dir, name))
        return {"rows_dropped": rows, "segments_dropped": len(drop), "cutoff": cutoff, **self.segment_stats()}


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:  # an orphan is removed at the next open
        log(f"could not delete {path}: {exc}")


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="diagonal", rechunk=True)


def _read_stream(ipc_bytes: bytes) -> pl.DataFrame:
    batch = read_ipc_body(ipc_bytes, "append", "events")
    # One chunk per append, however many record batches the stream held: compaction and
    # scans count on chunks being appends.
    return batch.rechunk()


def _validated(batch: pl.DataFrame) -> pl.DataFrame:
    expected = list(EVENT_SCHEMA.names())
    for name in expected:
        if name not in batch.schema:
            raise BadFrame(f"missing column `{name}`; expected columns {names(expected)}")
    for name, dtype in batch.schema.items():
        allowed = _INCOMING_TYPES.get(name)
        if allowed is None:
            raise BadFrame(f"unexpected column `{name}`; expected columns {names(expected)}")
        if dtype not in allowed:
            want = " or ".join(f"`{t}`" for t in allowed)
            raise BadFrame(f"column `{name}` has type `{dtype}`; expected {want}")
    for name in _NOT_NULL:
        nulls = batch[name].null_count()
        if nulls:
            raise BadFrame(f"column `{name}` has {nulls} null(s); it must not be null")
    return batch.select(_timestamp_ms(batch["timestamp"]), *expected[1:])


def _timestamp_ms(ts: pl.Series) -> pl.Series:
    if ts.dtype == pl.Int64:
        return ts
    ok = ts.is_finite() & (ts.floor() == ts) & (ts.abs() <= _MAX_SAFE_INTEGER)
    if not ok.all():
        row = int(ok.not_().arg_max() or 0)
        raise BadFrame(
            f"column `timestamp` has {ts[row]!r} at row {row}; expected an integral number of epoch ms"
        )
    return ts.cast(pl.Int64)
