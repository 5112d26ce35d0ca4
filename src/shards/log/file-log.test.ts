import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileShardLog, RECORD_HEADER_BYTES, type LogCut } from './file-log.js';
import { LogRecordType, decodeEnrichDrop, decodeEnrichUpsert, encodeEnrichDrop, encodeEnrichUpsert, type LogRecord } from './shard-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shard-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

async function readAll(log: FileShardLog, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of log.readFrom(from)) out.push(r);
  return out;
}

describe('FileShardLog', () => {
  it('reads back what was appended, in order, with positions that chain', async () => {
    const log = await FileShardLog.open({ dir });
    const a = log.append(LogRecordType.EVENT_BATCH, bytes(10, 1));
    const b = log.append(LogRecordType.ENRICH_UPSERT, encodeEnrichUpsert('plans', bytes(5, 2)));
    const c = log.append(LogRecordType.ENRICH_DROP, encodeEnrichDrop('plans'));
    await log.sync();
    const records = await readAll(log);
    expect(records.map((r) => r.position)).toEqual([a, b, c]);
    expect(records.map((r) => r.type)).toEqual([1, 2, 3]);
    expect(a).toBe(0);
    expect(records[0]!.next).toBe(b);
    expect(records[2]!.next).toBe(log.end);
    expect(records[0]!.payload).toEqual(bytes(10, 1));
    expect(decodeEnrichUpsert(records[1]!.payload)).toEqual({ table: 'plans', ipc: bytes(5, 2) });
    expect(decodeEnrichDrop(records[2]!.payload)).toEqual({ table: 'plans' });
    expect((await readAll(log, b)).map((r) => r.position)).toEqual([b, c]);
    expect(log.stats()).toMatchObject({ records: 3, bytes: log.end, tornRecordsCut: 0 });
    await log.close();
  });

  it('reopens with every record and appends after them', async () => {
    let log = await FileShardLog.open({ dir });
    for (let i = 0; i < 5; i++) log.append(LogRecordType.EVENT_BATCH, bytes(100 + i, i));
    await log.sync();
    const end = log.end;
    await log.close();
    log = await FileShardLog.open({ dir });
    expect(log.end).toBe(end);
    log.append(LogRecordType.EVENT_BATCH, bytes(3, 9));
    const records = await readAll(log);
    expect(records.map((r) => r.payload.length)).toEqual([100, 101, 102, 103, 104, 3]);
    await log.close();
  });

  it('rolls files at maxFileBytes and truncates whole files before a position', async () => {
    const log = await FileShardLog.open({ dir, maxFileBytes: 250 });
    const positions = Array.from({ length: 10 }, (_, i) => log.append(LogRecordType.EVENT_BATCH, bytes(100, i)));
    expect(readdirSync(dir).length).toBe(5); // two 109-byte records per file
    await log.truncateBefore(positions[5]!);
    expect(readdirSync(dir).length).toBe(3);
    expect(log.start).toBe(positions[4]);
    const records = await readAll(log);
    expect(records.map((r) => r.payload[0])).toEqual([4, 5, 6, 7, 8, 9]);
    await log.close();
    const reopened = await FileShardLog.open({ dir, maxFileBytes: 250 });
    expect((await readAll(reopened)).length).toBe(6);
    expect(reopened.start).toBe(positions[4]);
    await reopened.close();
  });

  it('reads only up to the end as it was when reading started', async () => {
    const log = await FileShardLog.open({ dir });
    log.append(LogRecordType.EVENT_BATCH, bytes(4, 1));
    const seen: number[] = [];
    for await (const r of log.readFrom(0)) {
      seen.push(r.payload[0]!);
      log.append(LogRecordType.EVENT_BATCH, bytes(4, 2));
    }
    expect(seen).toEqual([1]);
    expect((await readAll(log)).length).toBe(2);
    await log.close();
  });

  it.each([
    ['half a header after the last record', 4, (f: string) => appendFileSync(f, Buffer.from([1, 2, 3]))],
    ['the last record cut in its payload', 3, (f: string) => truncateSync(f, statSync(f).size - 7)],
    ['garbage after the last record', 4, (f: string) => appendFileSync(f, Buffer.from('garbage garbage garbage'))],
    [
      'a flipped bit in the last payload',
      3,
      (f: string) => {
        const b = readFileSync(f);
        b[b.length - 1]! ^= 0x10;
        writeFileSync(f, b);
      },
    ],
  ])('cuts a torn tail (%s) at the last good record, reports and counts it', async (_name, expectedGood, damage) => {
    let log = await FileShardLog.open({ dir });
    for (let i = 0; i < 3; i++) log.append(LogRecordType.EVENT_BATCH, bytes(50, i));
    const goodEnd = log.end;
    log.append(LogRecordType.EVENT_BATCH, bytes(50, 3));
    await log.close();
    const file = join(dir, readdirSync(dir)[0]!);
    damage(file);
    const cuts: LogCut[] = [];
    log = await FileShardLog.open({ dir, onCut: (c) => cuts.push(c) });
    expect(cuts).toHaveLength(1);
    expect(log.stats().tornRecordsCut).toBe(1);
    const records = await readAll(log);
    expect(records.length).toBe(expectedGood);
    expect(log.end).toBe(expectedGood === 4 ? goodEnd + RECORD_HEADER_BYTES + 50 : goodEnd);
    expect(statSync(file).size).toBe(log.end);
    // appends after a cut read back fine
    log.append(LogRecordType.EVENT_BATCH, bytes(8, 7));
    await log.close();
    log = await FileShardLog.open({ dir, onCut: (c) => cuts.push(c) });
    expect(cuts).toHaveLength(1);
    expect((await readAll(log)).map((r) => r.payload[0])).toEqual([...Array.from({ length: expectedGood }, (_, i) => i), 7]);
    await log.close();
  });

  it('cuts at a corrupt record in an earlier file and deletes the files after it', async () => {
    let log = await FileShardLog.open({ dir, maxFileBytes: 250 });
    for (let i = 0; i < 6; i++) log.append(LogRecordType.EVENT_BATCH, bytes(100, i));
    await log.close();
    const files = readdirSync(dir).sort();
    expect(files.length).toBe(3);
    const second = join(dir, files[1]!);
    const b = readFileSync(second);
    b[RECORD_HEADER_BYTES + 109 + 5]! ^= 1; // the second record of the second file
    writeFileSync(second, b);
    const cuts: LogCut[] = [];
    log = await FileShardLog.open({ dir, maxFileBytes: 250, onCut: (c) => cuts.push(c) });
    expect(cuts[0]).toMatchObject({ filesDeleted: 1, offset: 109 });
    expect((await readAll(log)).map((r) => r.payload[0])).toEqual([0, 1, 2]);
    expect(readdirSync(dir).length).toBe(2);
    await log.close();
  });
});
