/**
 * The data directory: `meta.json` (what the stored data was written for) and one
 * `shard-<i>/` per shard holding its log. Every shard worker checks `meta.json` before opening
 * its log; the first to start writes it (atomically, by rename, so workers starting side by side
 * cannot leave a half-written file, and they would all write the same shard count anyway).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DATA_DIR_FORMAT = 1;

export interface DataDirMeta {
  format: number;
  shards: number;
}

export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

export const shardDir = (dataDir: string, shard: number): string => join(dataDir, `shard-${shard}`);

function readMeta(path: string): DataDirMeta | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const meta = JSON.parse(text) as Partial<DataDirMeta>;
  if (typeof meta.shards !== 'number' || typeof meta.format !== 'number') throw new DataDirError(`${path}: expected {format, shards}, got ${text.slice(0, 200)}`);
  return meta as DataDirMeta;
}

/**
 * Makes sure `dataDir` holds data for `shards` shards (or nothing yet, then records it).
 * Throws a DataDirError naming `shards` when the stored data was written with another count:
 * events are placed by a hash of the shard count, so serving them with another would put users
 * on the wrong shard (re-partitioning is a later issue).
 */
export function checkDataDir(dataDir: string, shards: number, shard: number): void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'meta.json');
  let meta = readMeta(path);
  if (!meta) {
    const tmp = `${path}.${shard}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ format: DATA_DIR_FORMAT, shards } satisfies DataDirMeta) + '\n');
    renameSync(tmp, path);
    meta = readMeta(path)!;
  }
  if (meta.format !== DATA_DIR_FORMAT) {
    throw new DataDirError(`data dir ${resolve(dataDir)} has format ${meta.format}; this engine reads format ${DATA_DIR_FORMAT}`);
  }
  if (meta.shards !== shards) {
    throw new DataDirError(
      `config \`shards\` is ${shards} but the data in ${resolve(dataDir)} was written by ${meta.shards} shards; ` +
        `start with \`shards\` = ${meta.shards} (--shards ${meta.shards}) or point \`dataDir\` elsewhere (re-partitioning stored data is not supported yet)`,
    );
  }
}
