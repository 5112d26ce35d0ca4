/**
 * Re-partitioning an old shard whose segment store (`<shard dir>/segments/`, written by its polars
 * process: python/engine_polars/segments.py) holds rows its log no longer has.
 *
 * Segment files are Arrow IPC files with zstd bodies and dictionary-encoded, metadata-extracted
 * columns, which only the polars side reads back to events. So the rows come through a polars
 * process, over its ordinary protocol: `open` loads the shard's segments (as at any start; it
 * answers the log position the segments cover and how many rows it loaded), then `export` pages
 * (the same plan as GET /query/export: every event with its original metadata, in timestamp order,
 * keyed pages) hand them over until a short page; their count must equal what `open` loaded.
 * The enrichment tables of the segments are the snapshot file the manifest names
 * (`u32 LE header bytes | header JSON {"tables": [{name, bytes}]} | one Arrow IPC stream per
 * table`, CRC-32 in the manifest), read here as upserts. The caller then reads the log from the
 * covered position on, as for a shard without segments.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { tableFromIPC } from 'apache-arrow';
import { PolarsProcess } from '../polars-process.js';
import type { EnrichmentState } from './enrichment-state.js';

interface Manifest {
  segments?: unknown[];
  tables?: { file: string; bytes: number; crc32: number } | null;
}

const OPEN_TIMEOUT_MS = 15 * 60_000;
const PAGE_TIMEOUT_MS = 5 * 60_000;

function manifestOf(shardDir: string): Manifest | null {
  const path = join(shardDir, 'segments', 'manifest.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Manifest) : null;
}

/** Whether an old shard has segment files or an enrichment snapshot (else its log has everything). */
export function hasSegments(shardDir: string): boolean {
  const m = manifestOf(shardDir);
  return m !== null && ((m.segments?.length ?? 0) > 0 || !!m.tables);
}

/** The enrichment snapshot as upserts into `state`; false when it fails its check (polars drops it too). */
function readTablesSnapshot(shardDir: string, state: EnrichmentState): boolean {
  const info = manifestOf(shardDir)?.tables;
  if (!info) return true;
  const data = readFileSync(join(shardDir, 'segments', info.file));
  if (data.length !== info.bytes || crc32(data) !== info.crc32) return false;
  const size = data.readUInt32LE(0);
  const header = JSON.parse(data.subarray(4, 4 + size).toString('utf8')) as { tables: Array<{ name: string; bytes: number }> };
  let at = 4 + size;
  for (const t of header.tables) {
    state.upsert(t.name, data.subarray(at, at + t.bytes));
    at += t.bytes;
  }
  return true;
}

/** Last timestamp of a page and how many of its rows, at the end, have it. */
function pageEnd(ipc: Uint8Array): { last: number; run: number } | null {
  const ts = tableFromIPC(ipc).getChild('timestamp');
  if (!ts || ts.length === 0) return null;
  const last = Number(ts.get(ts.length - 1));
  let run = 0;
  for (let i = ts.length - 1; i >= 0 && Number(ts.get(i)) === last; i--) run++;
  return { last, run };
}

export interface SegmentsRead {
  /** the log holds everything from here on that the segments do not */
  logPosition: number;
  rows: number;
  tablesLost: boolean;
}

/**
 * Reads an old shard's segment rows through a polars process (`route` takes each page's Arrow
 * IPC and returns its rows) and its enrichment snapshot into `state`.
 */
export async function readSegments(
  shardDir: string,
  logStart: number,
  pageRows: number,
  route: (ipc: Uint8Array) => number,
  state: EnrichmentState,
  say: (msg: string) => void,
): Promise<SegmentsRead> {
  const proc = new PolarsProcess({ shard: -1, timeoutMs: PAGE_TIMEOUT_MS, onExit: () => undefined, onStderr: (line) => say(line) });
  try {
    await proc.request('ping', undefined, undefined, { timeoutMs: 60_000 });
    const opened = (await proc.request('open', { dir: resolve(shardDir), log_start: logStart }, undefined, { timeoutMs: OPEN_TIMEOUT_MS })).header;
    const loaded = Number(opened.rows);
    if (Number(opened.rows_lost ?? 0) > 0) say(`segments of ${shardDir}: ${String(opened.rows_lost)} rows were refused at open (their files failed their checks) and are lost`);
    let rows = 0;
    let after: { timestamp: number; skip: number } | null = null;
    for (;;) {
      const reply = await proc.request('query', { kind: 'export', filter: {}, limit: pageRows, after });
      const n = route(reply.body);
      rows += n;
      if (n < pageRows) break;
      const end = pageEnd(reply.body)!;
      after = { timestamp: end.last, skip: end.run + (after !== null && end.run === n && after.timestamp === end.last ? after.skip : 0) };
    }
    if (rows !== loaded) throw new Error(`${shardDir}: exported ${rows} rows of the ${loaded} its segments hold`);
    const tablesLost = !readTablesSnapshot(shardDir, state);
    return { logPosition: Number(opened.log_position), rows, tablesLost };
  } finally {
    await proc.shutdown(60_000).catch(() => proc.kill('re-partitioning read its segments'));
  }
}
