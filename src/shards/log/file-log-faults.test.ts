/**
 * The file log after a failed write or sync: `discardFrom` takes back what was appended since the
 * last good sync (records, files, counts), and `probe` tells when the disk takes writes again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileShardLog } from './file-log.js';
import { LogRecordType } from './shard-log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function readAll(log: FileShardLog): Promise<number[]> {
  const out: number[] = [];
  for await (const r of log.readFrom(log.start)) out.push(r.payload[0]!);
  return out;
}

describe('FileShardLog after a failure', () => {
  it('discards the records appended since the last sync, across a roll, and appends after them again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-discard-'));
    dirs.push(dir);
    const log = await FileShardLog.open({ dir, maxFileBytes: 64 });
    const rec = (n: number) => new Uint8Array(20).fill(n);
    log.append(LogRecordType.EVENT_BATCH, rec(1));
    log.append(LogRecordType.EVENT_BATCH, rec(2));
    await log.sync();
    const durable = log.end;
    log.append(LogRecordType.EVENT_BATCH, rec(3)); // rolls into a second file
    log.append(LogRecordType.ENRICH_DROP, rec(4));
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal'))).toHaveLength(2);
    await log.discardFrom(durable);
    expect(log.end).toBe(durable);
    expect(log.stats().records).toBe(2);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal'))).toHaveLength(1);
    expect(await readAll(log)).toEqual([1, 2]);
    expect(await log.last(LogRecordType.ENRICH_DROP)).toBeNull();
    log.append(LogRecordType.EVENT_BATCH, rec(5));
    await log.sync();
    await log.probe();
    expect(readdirSync(dir).some((f) => f.startsWith('probe'))).toBe(false);
    await log.close();
    const reopened = await FileShardLog.open({ dir });
    expect(await readAll(reopened)).toEqual([1, 2, 5]);
    expect(reopened.stats().tornRecordsCut).toBe(0);
    await reopened.close();
  });
});
