/**
 * The shard log as files: `<dir>/<base position, 20 digits>.wal`, each a run of records
 *
 *   u32 LE payloadBytes | u32 LE CRC-32C(type byte + payload) | u8 type | payload
 *
 * Positions are byte offsets over the whole log: a file named by its base position holds the
 * bytes from there on, so the next file's base is this one's base plus its size. A file is
 * rolled at `maxFileBytes`, so `truncateBefore` (issue 7: after a segment is written) deletes
 * whole files and never rewrites one.
 *
 * Opening scans every record and checks its checksum. The first torn or corrupt record (a crash
 * in the middle of a write, a flipped bit) and everything after it are cut: the file is
 * truncated there and later files are deleted, the cut is reported through `onCut` and counted,
 * and the log opens. Only a bad record found later, while reading, is an error.
 *
 * All I/O is synchronous on purpose. The log lives in its shard's worker thread, where blocking
 * for a write or an fdatasync is the natural backpressure (the shard stops draining its ring),
 * and the libuv pool an async fdatasync would use is shared by every shard of the process, so
 * it would serialize them behind each other while adding the hazard of an fd closed at a roll
 * while a pool thread still syncs it.
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, readdirSync, statSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import { injectLogFault } from './fault-injection.js';
import { LogRecordType, isLogRecordType, type LogRecord, type LogRecordTypeValue, type ShardLog, type ShardLogStats } from './shard-log.js';

export const RECORD_HEADER_BYTES = 9;
const FILE_NAME = /^(\d{20})\.wal$/;
const DEFAULT_MAX_FILE_BYTES = 128 * 1024 * 1024;

export interface LogCut {
  file: string;
  /** offset in that file where the cut was made */
  offset: number;
  /** why the record there was not accepted */
  reason: string;
  bytesCut: number;
  filesDeleted: number;
}

export interface FileShardLogOptions {
  dir: string;
  /** A file is rolled once it would grow past this (default 128 MiB). */
  maxFileBytes?: number;
  /** Told about a torn or corrupt tail cut at open. */
  onCut?: (cut: LogCut) => void;
  /** Told about every good record the open scan reads (e.g. to collect idempotency keys), in log order. */
  onRecord?: (type: LogRecordTypeValue, payload: Uint8Array, position: number) => void;
}

interface LogFile {
  base: number;
  size: number;
  records: number;
  path: string;
}

export class LogCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogCorruptError';
  }
}

/** Records appended and not yet synced that `discardFrom` can take back exactly (older: rescan). */
const MAX_TRACKED_UNSYNCED = 10_000;
const PROBE_BYTES = 256 * 1024;

const fileName = (base: number) => `${String(base).padStart(20, '0')}.wal`;

function recordCrc(type: number, payload: Uint8Array): number {
  return crc32c(payload, crc32c(Uint8Array.of(type)));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, into: Uint8Array, position: number): number {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * Reads and checks the record at `offset` of an open file of `size` bytes.
 * @returns the record, or why it is torn or corrupt.
 */
function readRecordAt(fd: number, offset: number, size: number, head: Uint8Array): { type: LogRecordTypeValue; payload: Uint8Array } | { bad: string } {
  if (size - offset < RECORD_HEADER_BYTES) return { bad: `torn header: ${size - offset} of ${RECORD_HEADER_BYTES} bytes` };
  if (readFully(fd, head, offset) < RECORD_HEADER_BYTES) return { bad: 'file shrank while reading' };
  const view = new DataView(head.buffer, head.byteOffset, RECORD_HEADER_BYTES);
  const length = view.getUint32(0, true);
  const crc = view.getUint32(4, true);
  const type = head[8]!;
  if (length > size - offset - RECORD_HEADER_BYTES) {
    return { bad: `torn record: header says ${length} payload bytes, ${size - offset - RECORD_HEADER_BYTES} follow` };
  }
  if (!isLogRecordType(type)) return { bad: `unknown record type ${type}` };
  const payload = new Uint8Array(length);
  if (readFully(fd, payload, offset + RECORD_HEADER_BYTES) < length) return { bad: 'file shrank while reading' };
  const actual = recordCrc(type, payload);
  if (actual !== crc) return { bad: `checksum mismatch: stored 0x${crc.toString(16)}, computed 0x${actual.toString(16)}` };
  return { type, payload };
}

export class FileShardLog implements ShardLog {
  private readonly dir: string;
  private readonly maxFileBytes: number;
  private readonly files: LogFile[];
  private fd: number;
  private readonly head = new Uint8Array(RECORD_HEADER_BYTES);
  private readonly counters = { tornRecordsCut: 0, tornBytesCut: 0, lastSyncMs: null as number | null };
  /** record type → position of the last record of that type (found by the open scan, then appends) */
  private readonly lastOfType = new Map<number, number>();
  /** appended since the last sync, oldest first: what `discardFrom` takes back */
  private unsynced: Array<{ position: number; type: number; prevOfType: number | undefined; file: LogFile }> = [];
  private closed = false;

  /** Opens (creating if needed) the log in `options.dir`, cutting a torn or corrupt tail. */
  static async open(options: FileShardLogOptions): Promise<FileShardLog> {
    return new FileShardLog(options);
  }

  private constructor(options: FileShardLogOptions) {
    this.dir = options.dir;
    this.maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    mkdirSync(this.dir, { recursive: true });
    this.files = this.scan(options.onCut, options.onRecord);
    if (this.files.length === 0) {
      this.files.push({ base: 0, size: 0, records: 0, path: join(this.dir, fileName(0)) });
      closeSync(openSync(this.files[0]!.path, 'w'));
      syncDir(this.dir);
    }
    this.fd = openSync(this.current.path, 'r+');
  }

  get start(): number {
    return this.files[0]!.base;
  }

  get end(): number {
    const f = this.current;
    return f.base + f.size;
  }

  private get current(): LogFile {
    return this.files[this.files.length - 1]!;
  }

  append(type: LogRecordTypeValue, payload: Uint8Array): number {
    if (this.closed) throw new Error('shard log is closed');
    const recordBytes = RECORD_HEADER_BYTES + payload.byteLength;
    if (this.current.size > 0 && this.current.size + recordBytes > this.maxFileBytes) this.roll();
    const f = this.current;
    const header = new Uint8Array(RECORD_HEADER_BYTES);
    const view = new DataView(header.buffer);
    view.setUint32(0, payload.byteLength, true);
    view.setUint32(4, recordCrc(type, payload), true);
    header[8] = type;
    const position = f.base + f.size;
    try {
      injectLogFault('append', this.dir);
      let written = writevSync(this.fd, [header, payload], f.size);
      // A short write (a nearly full disk takes what fits): write the rest, so the error that
      // stops it is the real one (ENOSPC), not a byte count.
      while (written < recordBytes) {
        const n = written < RECORD_HEADER_BYTES ? writevSync(this.fd, [header.subarray(written), payload], f.size + written) : writeSync(this.fd, payload, written - RECORD_HEADER_BYTES, recordBytes - written, f.size + written);
        if (n === 0) throw new Error(`short write: ${written} of ${recordBytes} bytes`);
        written += n;
      }
    } catch (err) {
      // Leave no half record behind: the next append would land after it and be unreadable.
      try {
        ftruncateSync(this.fd, f.size);
      } catch {
        // the open-time scan cuts it instead
      }
      throw err;
    }
    f.size += recordBytes;
    f.records++;
    this.unsynced.push({ position, type, prevOfType: this.lastOfType.get(type), file: f });
    if (this.unsynced.length > MAX_TRACKED_UNSYNCED) this.unsynced.shift();
    this.lastOfType.set(type, position);
    return position;
  }

  async sync(): Promise<void> {
    if (this.closed) return;
    const started = performance.now();
    injectLogFault('sync', this.dir);
    fdatasyncSync(this.fd);
    this.unsynced = [];
    this.counters.lastSyncMs = performance.now() - started;
  }

  async *readFrom(position: number): AsyncGenerator<LogRecord> {
    const endAt = this.end;
    let pos = Math.max(position, this.start);
    const head = new Uint8Array(RECORD_HEADER_BYTES);
    while (pos < endAt) {
      const file = this.fileAt(pos);
      if (!file) throw new LogCorruptError(`${this.dir}: no log file holds position ${pos}`);
      const fd = openSync(file.path, 'r');
      try {
        const fileEnd = Math.min(file.size, endAt - file.base);
        let offset = pos - file.base;
        while (offset < fileEnd) {
          const rec = readRecordAt(fd, offset, fileEnd, head);
          if ('bad' in rec) throw new LogCorruptError(`${file.path} at offset ${offset}: ${rec.bad}`);
          const next = offset + RECORD_HEADER_BYTES + rec.payload.length;
          yield { position: file.base + offset, next: file.base + next, type: rec.type, payload: rec.payload };
          offset = next;
        }
        if (file.base + offset === pos) throw new LogCorruptError(`${file.path}: no record at position ${pos} (file ends at ${file.base + file.size})`);
        pos = file.base + offset;
      } finally {
        closeSync(fd);
      }
    }
  }

  async truncateBefore(position: number): Promise<void> {
    let removed = 0;
    // The file holding the last numbered batch stays: the next row number is read from it.
    const keep = this.lastOfType.get(LogRecordType.NUMBERED_BATCH) ?? Infinity;
    while (this.files.length > 1 && this.files[0]!.base + this.files[0]!.size <= position && this.files[0]!.base + this.files[0]!.size <= keep) {
      unlinkSync(this.files.shift()!.path);
      removed++;
    }
    if (removed > 0) syncDir(this.dir);
  }

  async discardFrom(position: number): Promise<void> {
    if (this.closed) throw new Error('shard log is closed');
    if (position >= this.end) return;
    if (position < this.start) throw new Error(`cannot discard from ${position}: the log starts at ${this.start}`);
    let removed = 0;
    while (this.files.length > 1 && this.current.base >= position) {
      const gone = this.files.pop()!;
      closeSync(this.fd);
      unlinkSync(gone.path);
      removed++;
      this.fd = openSync(this.current.path, 'r+');
    }
    const f = this.current;
    ftruncateSync(this.fd, position - f.base);
    fdatasyncSync(this.fd);
    if (removed > 0) syncDir(this.dir);
    f.size = position - f.base;
    const tracked = this.unsynced.length > 0 && this.unsynced[0]!.position <= position;
    while (this.unsynced.length > 0 && this.unsynced[this.unsynced.length - 1]!.position >= position) {
      const u = this.unsynced.pop()!;
      u.file.records--;
      if (u.prevOfType === undefined) this.lastOfType.delete(u.type);
      else this.lastOfType.set(u.type, u.prevOfType);
    }
    if (!tracked) this.rescanCurrent();
  }

  async probe(): Promise<void> {
    if (this.closed) throw new Error('shard log is closed');
    injectLogFault('probe', this.dir);
    const path = join(this.dir, 'probe.tmp');
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, new Uint8Array(PROBE_BYTES));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
      unlinkSync(path);
    }
  }

  async last(type: LogRecordTypeValue): Promise<LogRecord | null> {
    const position = this.lastOfType.get(type);
    if (position === undefined || position < this.start) return null;
    for await (const rec of this.readFrom(position)) return rec;
    return null;
  }

  stats(): ShardLogStats {
    let records = 0;
    for (const f of this.files) records += f.records;
    return { bytes: this.end - this.start, records, ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private fileAt(pos: number): LogFile | undefined {
    for (let i = this.files.length - 1; i >= 0; i--) if (this.files[i]!.base <= pos) return this.files[i];
    return undefined;
  }

  /**
   * Closes the current file durably and starts the next one at the current end. The new file is
   * opened first, so a failure (no space for it, a failed sync) leaves the log as it was.
   */
  private roll(): void {
    const base = this.end;
    const file = { base, size: 0, records: 0, path: join(this.dir, fileName(base)) };
    const fd = openSync(file.path, 'w+');
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      closeSync(fd);
      unlinkSync(file.path);
      throw err;
    }
    closeSync(this.fd);
    this.fd = fd;
    this.files.push(file);
    this.unsynced = [];
    syncDir(this.dir);
  }

  /** Recounts the current file's records (after a discard reached past what was tracked). */
  private rescanCurrent(): void {
    const f = this.current;
    f.records = 0;
    for (const [type, pos] of this.lastOfType) if (pos >= f.base) this.lastOfType.delete(type);
    let offset = 0;
    while (offset < f.size) {
      const rec = readRecordAt(this.fd, offset, f.size, this.head);
      if ('bad' in rec) break;
      this.lastOfType.set(rec.type, f.base + offset);
      offset += RECORD_HEADER_BYTES + rec.payload.length;
      f.records++;
    }
    this.unsynced = [];
  }

  /** Lists and checks every file; cuts at the first bad record. */
  private scan(onCut: FileShardLogOptions['onCut'], onRecord?: FileShardLogOptions['onRecord']): LogFile[] {
    const names = readdirSync(this.dir)
      .map((name) => FILE_NAME.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ base: Number(m[1]), path: join(this.dir, m[0]) }))
      .sort((a, b) => a.base - b.base);
    const files: LogFile[] = [];
    for (let i = 0; i < names.length; i++) {
      const { base, path } = names[i]!;
      const size = statSync(path).size;
      const expected = files.length === 0 ? base : files[files.length - 1]!.base + files[files.length - 1]!.size;
      if (base !== expected) {
        this.cut(names.slice(i), null, 0, `file starts at ${base}, the log before it ends at ${expected}`, onCut);
        break;
      }
      const file: LogFile = { base, size, records: 0, path };
      files.push(file);
      const fd = openSync(path, 'r');
      let bad: string | null = null;
      let offset = 0;
      try {
        while (offset < size) {
          const rec = readRecordAt(fd, offset, size, this.head);
          if ('bad' in rec) {
            bad = rec.bad;
            break;
          }
          this.lastOfType.set(rec.type, base + offset);
          onRecord?.(rec.type, rec.payload, base + offset);
          offset += RECORD_HEADER_BYTES + rec.payload.length;
          file.records++;
        }
      } finally {
        closeSync(fd);
      }
      if (bad !== null) {
        this.cut(names.slice(i + 1), file, offset, bad, onCut);
        file.size = offset;
        break;
      }
    }
    return files;
  }

  private cut(later: Array<{ path: string }>, file: LogFile | null, offset: number, reason: string, onCut: FileShardLogOptions['onCut']): void {
    let bytesCut = 0;
    if (file) {
      bytesCut += file.size - offset;
      const fd = openSync(file.path, 'r+');
      try {
        ftruncateSync(fd, offset);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const f of later) {
      bytesCut += statSync(f.path).size;
      unlinkSync(f.path);
    }
    syncDir(this.dir);
    this.counters.tornRecordsCut++;
    this.counters.tornBytesCut += bytesCut;
    onCut?.({ file: file?.path ?? later[0]?.path ?? this.dir, offset, reason, bytesCut, filesDeleted: later.length });
  }
}
