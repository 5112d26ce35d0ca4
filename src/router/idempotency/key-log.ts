/**
 * Main thread: the idempotency keys' own log, `dataDir/idempotency/keys.log`. Each answered
 * keyed request (and each request known to be stored on some of its shards only) is one record:
 *
 *   u32 LE payloadBytes | u32 LE CRC-32C(payload) | payload: JSON KeyRecord
 *
 * Appends are group-committed: records queued while a write and its fdatasync run go out
 * together in the next one, and `append` resolves once its record is durable (fsync "off":
 * written). I/O is asynchronous (libuv pool): this is the HTTP thread. Opening reads every record
 * and cuts a torn or corrupt tail, as the shard log does. `compact` rewrites the file with the
 * live records only (temporary file, fdatasync, rename, directory fsync), in the same queue, so
 * no append is lost or reordered around it.
 */
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../../shards/log/crc32c.js';

export interface KeyRecord {
  /** the Idempotency-Key */
  k: string;
  /** SHA-256 of route + body, base64url */
  h: string;
  /** expires at, epoch ms */
  e: number;
  /** answered: status and body (JSON text) */
  s?: number;
  b?: string;
  /** stored on these shards only (a 507, or a crash in the middle): a retry writes the others */
  p?: number[];
}

const HEAD = 8;
const FILE = 'keys.log';

type OpBody = { kind: 'append'; bytes: Uint8Array } | { kind: 'compact'; records: KeyRecord[] };
type Op = OpBody & { resolve: () => void; reject: (e: Error) => void };

function frame(rec: KeyRecord): Uint8Array {
  const payload = Buffer.from(JSON.stringify(rec));
  const out = Buffer.allocUnsafe(HEAD + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32c(payload), 4);
  payload.copy(out, HEAD);
  return out;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class KeyLog {
  private queue: Op[] = [];
  private flushing = false;
  private closed = false;
  /** records in the file (live or not): `compact` is due when far more than the live keys */
  records: number;

  private constructor(
    private readonly dir: string,
    private fh: FileHandle,
    private size: number,
    records: number,
    private readonly fsync: boolean,
  ) {
    this.records = records;
  }

  /**
   * Opens (creating) the key log in `dir`, reading every record; a torn or corrupt tail is cut.
   * @returns the log and its records in order (later records supersede earlier ones), plus what was cut.
   */
  static async open(dir: string, opts: { fsync: boolean }): Promise<{ log: KeyLog; records: KeyRecord[]; cutBytes: number }> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, FILE);
    const fh = await open(path, 'a+');
    const data = await fh.readFile();
    const records: KeyRecord[] = [];
    let offset = 0;
    while (offset + HEAD <= data.length) {
      const length = data.readUInt32LE(offset);
      if (offset + HEAD + length > data.length) break;
      const payload = data.subarray(offset + HEAD, offset + HEAD + length);
      if (crc32c(payload) !== data.readUInt32LE(offset + 4)) break;
      try {
        records.push(JSON.parse(payload.toString('utf8')) as KeyRecord);
      } catch {
        break;
      }
      offset += HEAD + length;
    }
    const cutBytes = data.length - offset;
    await fh.close();
    // 'r+' from here on: writes go at explicit positions (an 'a' handle ignores them on Linux).
    const rw = await open(path, 'r+');
    if (cutBytes > 0) {
      await rw.truncate(offset);
      await rw.sync();
    }
    return { log: new KeyLog(dir, rw, offset, records.length, opts.fsync), records, cutBytes };
  }

  /** Appends `rec`; resolves once it is durable (group commit), rejects if the write or sync fails. */
  append(rec: KeyRecord): Promise<void> {
    return this.enqueue({ kind: 'append', bytes: frame(rec) });
  }

  /** Rewrites the file with `records` only (the live keys), after every append queued before it. */
  compact(records: KeyRecord[]): Promise<void> {
    return this.enqueue({ kind: 'compact', records });
  }

  /** Bytes in the file. */
  get bytes(): number {
    return this.size;
  }

  /** Waits for queued appends, then closes. */
  async close(): Promise<void> {
    await this.enqueue({ kind: 'append', bytes: new Uint8Array(0) }).catch(() => undefined);
    this.closed = true;
    await this.fh.close();
  }

  private enqueue(op: OpBody): Promise<void> {
    if (this.closed) return Promise.reject(new Error('idempotency key log is closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...op, resolve, reject } as Op);
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        if (this.queue[0]!.kind === 'compact') {
          const op = this.queue.shift() as Extract<Op, { kind: 'compact' }>;
          await this.rewrite(op.records).then(op.resolve, op.reject);
          continue;
        }
        // every append up to the next compaction: one write, one sync
        let n = 0;
        while (n < this.queue.length && this.queue[n]!.kind === 'append') n++;
        const batch = this.queue.splice(0, n) as Array<Extract<Op, { kind: 'append' }>>;
        const bytes = Buffer.concat(batch.map((op) => op.bytes));
        try {
          if (bytes.length > 0) {
            await this.fh.write(bytes, 0, bytes.length, this.size);
            if (this.fsync) await this.fh.datasync();
            this.size += bytes.length;
            this.records += batch.filter((op) => op.bytes.length > 0).length;
          }
          for (const op of batch) op.resolve();
        } catch (err) {
          // leave no half record behind: the next append would land after it
          await this.fh.truncate(this.size).catch(() => undefined);
          for (const op of batch) op.reject(err as Error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async rewrite(records: KeyRecord[]): Promise<void> {
    const path = join(this.dir, FILE);
    const tmp = `${path}.tmp`;
    const out = await open(tmp, 'w');
    let size = 0;
    try {
      const chunks = records.map(frame);
      const bytes = Buffer.concat(chunks);
      await out.write(bytes, 0, bytes.length, 0);
      await out.datasync();
      size = bytes.length;
    } finally {
      await out.close();
    }
    await rename(tmp, path);
    await syncDir(this.dir);
    await this.fh.close();
    this.fh = await open(path, 'r+');
    this.size = size;
    this.records = records.length;
  }
}
