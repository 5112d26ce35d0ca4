"""Segment files: a shard's sealed events on disk, and the manifest that says which ones count.

Layout (``<shard dir>/segments/``)::

    manifest.json                    the commit record (below), replaced atomically
    seg-<first row, 20 digits>.arrow one segment: an Arrow IPC file (zstd), immutable
    tables-<log position, 20 digits>.bin  the enrichment tables as of the manifest's position

``manifest.json``::

    {"format": 1, "log_position": P, "next_row": R, "max_timestamp": T | null,
     "segments": [{"file", "first_row", "rows", "min_ts", "max_ts", "bytes", "crc32",
                   "log_from", "log_to"}, ...],
     "tables": {"file", "bytes", "crc32"} | null, "meta_keys": ["plan", "page", ...]}

Everything before log position ``P`` is in the segments and the tables snapshot, so the shard
replays its log from ``P``; its rows are numbered from ``R``. Every file is written to a
``.tmp`` name, fsynced and renamed, and the manifest last (then the directory is fsynced), so a
crash at any point leaves either the old manifest (the new files are orphans, deleted at the
next open, and the log still holds their records) or the new one. Only then does the shard
worker truncate its log before ``P``. ``meta_keys`` is the store's metadata key order
(``metadata.py``: the keys in the order first registered, append-only), which renders the
objects whose shape is implied; a manifest written before it has none (see
``EventStore.open_dir``). A file that does not match its size and CRC-32 in the
manifest is refused at open (renamed ``*.corrupt``, logged); see ``EventStore.open_dir``.

A segment's columns (written and read by polars): ``timestamp`` int64, ``value`` double,
``event_type``/``user_id``, the shape and the string metadata columns as Arrow dictionary arrays
(``uint8``/``uint16``/``uint32`` indices), ``__meta:<key>`` double/bool, ``__meta_raw`` string
(see ``metadata.py``). The tables snapshot holds one Arrow IPC stream per table.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import time
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

__all__ = [
    "ROLL_FAULT_ENV",
    "FileInfo",
    "Manifest",
    "SegmentCorrupt",
    "SegmentInfo",
    "read_manifest",
    "read_segment",
    "read_tables",
    "remove_unlisted",
    "write_manifest",
    "write_segment",
    "write_tables",
    "fault_point",
    "lock_dir",
]

FORMAT = 1
MANIFEST = "manifest.json"
LOCK = "LOCK"
_COMPRESSION = "zstd"
#: How long `lock_dir` waits for a previous process (an orphan of a killed engine finishing a
#: roll before it reads the end of its stdin) to let go of the directory.
_LOCK_WAIT_S = 60.0

#: TEST ONLY, like the shard log's ``SHARDLYTICS_TEST_LOG_FAULTS``: names a file holding
#: ``crash:<stage>`` or ``pause:<stage>:<ms>``. The first roll to reach ``<stage>``
#: (``segment_written``: the temp file is written and synced; ``segment_renamed``: the segment
#: has its name but no manifest names it; ``manifest_written``: committed, not yet answered)
#: deletes the file and then exits at once (as ``kill -9`` would) or sleeps.
ROLL_FAULT_ENV = "SHARDLYTICS_TEST_ROLL_FAULT"


def fault_point(stage: str) -> None:
    path = os.environ.get(ROLL_FAULT_ENV)
    if not path:
        return
    try:
        with open(path) as f:
            action, _, rest = f.read().strip().partition(":")
    except OSError:
        return
    name, _, ms = rest.partition(":")
    if name != stage:
        return
    os.unlink(path)
    if action == "crash":
        os._exit(137)
    time.sleep(int(ms or "0") / 1000)


def lock_dir(directory: str) -> int:
    """Takes the directory's lock (an exclusive ``flock`` on ``LOCK``, held until the process
    exits), so two processes never roll into one directory: a polars process orphaned by a
    killed engine finishes the roll it is in, then sees its stdin end and exits, and only then
    may its successor load the files. Raises ``SegmentCorrupt`` after a minute of waiting."""
    fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise SegmentCorrupt(f"{directory} is locked by another process (another engine on this data dir?)") from None
            time.sleep(0.05)


class SegmentCorrupt(Exception):
    """A segment or snapshot file that does not match what the manifest says of it."""


@dataclass(frozen=True)
class FileInfo:
    file: str
    bytes: int
    crc32: int


@dataclass(frozen=True)
class SegmentInfo:
    file: str
    first_row: int
    rows: int
    min_ts: int
    max_ts: int
    bytes: int
    crc32: int
    #: the log records [log_from, log_to) hold this segment's rows
    log_from: int
    log_to: int


@dataclass
class Manifest:
    log_position: int = 0
    next_row: int = 0
    max_timestamp: int | None = None
    segments: list[SegmentInfo] = field(default_factory=list)
    tables: FileInfo | None = None
    #: the metadata key order when written (None: a manifest from before key orders)
    meta_keys: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "log_position": self.log_position,
            "next_row": self.next_row,
            "max_timestamp": self.max_timestamp,
            "segments": [asdict(s) for s in self.segments],
            "tables": None if self.tables is None else asdict(self.tables),
        }
        if self.meta_keys is not None:
            out["meta_keys"] = list(self.meta_keys)
        return out


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(directory: str, name: str, data: bytes) -> FileInfo:
    """Writes ``name`` by temp file + fsync + rename (the directory is fsynced by the manifest)."""
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if name.startswith("seg-"):
        fault_point("segment_written")
    os.replace(tmp, os.path.join(directory, name))
    if name.startswith("seg-"):
        fault_point("segment_renamed")
    return FileInfo(name, len(data), zlib.crc32(data))


def _read_checked(directory: str, info: FileInfo | SegmentInfo) -> bytes:
    path = os.path.join(directory, info.file)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SegmentCorrupt(f"{info.file}: cannot read: {exc.strerror or exc}") from None
    if len(data) != info.bytes:
        raise SegmentCorrupt(f"{info.file}: {len(data)} bytes, the manifest says {info.bytes}")
    crc = zlib.crc32(data)
    if crc != info.crc32:
        raise SegmentCorrupt(f"{info.file}: CRC-32 0x{crc:08x}, the manifest says 0x{info.crc32:08x}")
    return data


def read_manifest(directory: str) -> Manifest | None:
    """The manifest, or None when there is none yet. Raises ``SegmentCorrupt`` when unreadable."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, "rb") as f:
            raw = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SegmentCorrupt(f"{MANIFEST}: unreadable: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SegmentCorrupt(f"{MANIFEST}: expected format {FORMAT}, got {str(raw)[:200]}")
    try:
        return Manifest(
            log_position=int(raw["log_position"]),
            next_row=int(raw["next_row"]),
            max_timestamp=raw.get("max_timestamp"),
            segments=[SegmentInfo(**s) for s in raw["segments"]],
            tables=None if raw.get("tables") is None else FileInfo(**raw["tables"]),
            meta_keys=_meta_keys(raw.get("meta_keys")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SegmentCorrupt(f"{MANIFEST}: malformed: {exc}") from None


def _meta_keys(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw) or len(set(raw)) != len(raw):
        raise ValueError(f"meta_keys: expected a list of distinct strings, got {str(raw)[:200]}")
    return raw


def write_manifest(directory: str, manifest: Manifest) -> None:
    """Replaces the manifest atomically and durably (this is the commit point)."""
    data = (json.dumps(manifest.to_json(), separators=(",", ":")) + "\n").encode()
    _write_durably(directory, MANIFEST, data)
    _fsync_dir(directory)


def remove_unlisted(directory: str, manifest: Manifest) -> list[str]:
    """Deletes what the manifest does not name: temp files and orphans of an interrupted roll."""
    keep = {MANIFEST, LOCK, *(s.file for s in manifest.segments)}
    if manifest.tables is not None:
        keep.add(manifest.tables.file)
    removed = []
    for name in sorted(os.listdir(directory)):
        if name in keep or name.endswith(".corrupt"):
            continue
        if name.endswith(".tmp") or name.startswith(("seg-", "tables-")):
            os.unlink(os.path.join(directory, name))
            removed.append(name)
    return removed


def write_segment(directory: str, df: pl.DataFrame, first_row: int, log_from: int, log_to: int) -> SegmentInfo:
    """Writes ``df`` (a store chunk) as ``seg-<first_row>.arrow``; returns what the manifest keeps.

    Written by polars itself (no pyarrow buffers: its allocator kept a segment's worth of
    memory after every roll); a Categorical column becomes an Arrow dictionary array."""
    ts = df["timestamp"]
    min_ts, max_ts = int(ts.min()), int(ts.max())  # type: ignore[arg-type]
    sink = io.BytesIO()
    df.write_ipc(sink, compression=_COMPRESSION)
    f = _write_durably(directory, f"seg-{first_row:020d}.arrow", sink.getvalue())
    return SegmentInfo(f.file, first_row, df.height, min_ts, max_ts, f.bytes, f.crc32, log_from, log_to)


def read_segment(directory: str, info: SegmentInfo) -> dict[str, pl.Series | tuple[pl.Series, pl.Series]]:
    """A segment's columns, checked against the manifest: plain columns as Series, dictionary
    columns as (their strings, a String Series in code order; their codes, UInt32) for the store
    to encode with its own dictionaries. Raises ``SegmentCorrupt``."""
    data = _read_checked(directory, info)
    try:
        df = pl.read_ipc(io.BytesIO(data), memory_map=False)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise SegmentCorrupt(f"{info.file}: not a readable Arrow IPC file: {exc}") from None
    del data
    if df.height != info.rows:
        raise SegmentCorrupt(f"{info.file}: {df.height} rows, the manifest says {info.rows}")
    out: dict[str, pl.Series | tuple[pl.Series, pl.Series]] = {}
    for name in df.columns:
        column = df[name]
        if isinstance(column.dtype, pl.Categorical):
            out[name] = (column.dtype.categories.to_series().alias(name), column.to_physical().cast(pl.UInt32))
        else:
            out[name] = column
    return out


def write_tables(directory: str, tables: Mapping[str, pl.DataFrame], log_position: int) -> FileInfo:
    """The enrichment tables as ``tables-<position>.bin``: ``u32 LE header bytes | header JSON
    {"tables": [{"name", "bytes"}]} | one Arrow IPC stream per table, in header order``."""
    streams = []
    for name in sorted(tables):
        sink = io.BytesIO()
        tables[name].write_ipc_stream(sink)
        streams.append((name, sink.getvalue()))
    header = json.dumps({"tables": [{"name": n, "bytes": len(b)} for n, b in streams]}).encode()
    data = len(header).to_bytes(4, "little") + header + b"".join(b for _, b in streams)
    return _write_durably(directory, f"tables-{log_position:020d}.bin", data)


def read_tables(directory: str, info: FileInfo) -> dict[str, pl.DataFrame]:
    data = _read_checked(directory, info)
    try:
        size = int.from_bytes(data[:4], "little")
        header = json.loads(data[4 : 4 + size])
        at = 4 + size
        tables = {}
        for t in header["tables"]:
            tables[t["name"]] = pl.read_ipc_stream(data[at : at + t["bytes"]])
            at += t["bytes"]
    except (KeyError, TypeError, ValueError, pl.exceptions.PolarsError, OSError) as exc:
        raise SegmentCorrupt(f"{info.file}: unreadable tables snapshot: {exc}") from None
    return tables
