/**
 * The data directory: `meta.json` (what the stored data was written for) and one `shard-<i>/`
 * per shard holding its log (and segments), either directly in the data dir (the layout every
 * data dir starts with) or in a layout directory `meta.json` names:
 *
 *   dataDir/meta.json            {"format": 1, "shards": N[, "layout": "layout-<N>-<ms>"]}
 *   dataDir/shard-<i>/           without `layout`
 *   dataDir/<layout>/shard-<i>/  with it (written by a re-partitioning, src/shards/repartition/)
 *
 * `meta.json` is the commit point of a re-partitioning: it is replaced atomically (written to a
 * temporary file, fsynced, renamed over, directory fsynced) only once the new layout is complete
 * and durable, so a crash leaves either the old layout referenced and intact or the new one.
 * Whatever it does not reference (a half-written `*.tmp` layout, an old layout not yet deleted)
 * is garbage, removed at the next start (`removeUnreferenced`).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DATA_DIR_FORMAT = 1;

export interface DataDirMeta {
  format: number;
  shards: number;
  /** directory (in the data dir) holding the `shard-<i>/` directories; absent: the data dir itself */
  layout?: string;
}

export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

const LAYOUT_NAME = /^layout-\d+-\d+$/;
const SHARD_DIR = /^shard-\d+$/;

/** `shard-<i>` in the data dir itself (the layout without a `layout` field). */
export const shardDir = (dataDir: string, shard: number): string => join(dataDir, `shard-${shard}`);

/** The directory holding the shard directories of `meta`. */
export const layoutRoot = (dataDir: string, meta: DataDirMeta): string => (meta.layout ? join(dataDir, meta.layout) : dataDir);

export const metaPath = (dataDir: string): string => join(dataDir, 'meta.json');

export function readMeta(dataDir: string): DataDirMeta | null {
  const path = metaPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const meta = JSON.parse(text) as Partial<DataDirMeta>;
  if (typeof meta.shards !== 'number' || typeof meta.format !== 'number') throw new DataDirError(`${path}: expected {format, shards}, got ${text.slice(0, 200)}`);
  if (meta.layout !== undefined && (typeof meta.layout !== 'string' || !LAYOUT_NAME.test(meta.layout))) {
    throw new DataDirError(`${path}: \`layout\` must name a layout-<shards>-<ms> directory, got ${JSON.stringify(meta.layout)}`);
  }
  if (meta.format !== DATA_DIR_FORMAT) {
    throw new DataDirError(`data dir ${resolve(dataDir)} has format ${meta.format}; this engine reads format ${DATA_DIR_FORMAT}`);
  }
  return meta as DataDirMeta;
}

export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `meta.json` atomically and durably: temporary file, fsync, rename, directory fsync.
 * `tag` keeps writers side by side (shard workers starting at once) off each other's temp file.
 */
export function writeMeta(dataDir: string, meta: DataDirMeta, tag = `${process.pid}`): void {
  const path = metaPath(dataDir);
  const tmp = `${path}.${tag}.tmp`;
  writeFileSync(tmp, JSON.stringify(meta) + '\n');
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dataDir);
}

/**
 * Makes sure `dataDir` holds data for `shards` shards (or nothing yet, then records it) and
 * returns the directory of `shard`. Throws a DataDirError naming `shards` when the stored data
 * was written with another count: the engine re-partitions it before any shard starts
 * (src/shards/repartition/), so a shard that still finds another count was started without it.
 */
export function checkDataDir(dataDir: string, shards: number, shard: number): string {
  mkdirSync(dataDir, { recursive: true });
  let meta = readMeta(dataDir);
  if (!meta) {
    // Workers starting side by side would all write the same thing; each uses its own temp file.
    writeMeta(dataDir, { format: DATA_DIR_FORMAT, shards }, `${shard}.${process.pid}`);
    meta = readMeta(dataDir)!;
  }
  if (meta.shards !== shards) {
    throw new DataDirError(
      `config \`shards\` is ${shards} but the data in ${resolve(dataDir)} was written by ${meta.shards} shards ` +
        `and has not been re-partitioned (the engine does that at start, before any shard opens its log)`,
    );
  }
  return join(layoutRoot(dataDir, meta), `shard-${shard}`);
}

/**
 * Removes what `meta` does not reference: `*.tmp` layouts (a re-partitioning that did not
 * finish), layout directories other than the current one, and, when a layout is current, the
 * `shard-<i>` directories left in the data dir itself. Returns what it removed.
 */
export function removeUnreferenced(dataDir: string, meta: DataDirMeta): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dataDir)) {
    const stale =
      (name.startsWith('layout-') && name.endsWith('.tmp')) ||
      (LAYOUT_NAME.test(name) && name !== meta.layout) ||
      (meta.layout !== undefined && SHARD_DIR.test(name));
    if (!stale) continue;
    rmSync(join(dataDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length > 0) syncDir(dataDir);
  return removed;
}
