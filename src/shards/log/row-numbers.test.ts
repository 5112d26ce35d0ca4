import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { FileShardLog } from './file-log.js';
import { nextRowOf, RowNumbering } from './row-numbers.js';
import { LogRecordType, decodeNumberedBatch, encodeEnrichDrop, encodeNumberedBatch, ipcRowCount } from './shard-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'row-numbers-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ipcOf = (rows: number) => tableToIPC(tableFromArrays({ timestamp: Float64Array.from({ length: rows }, (_, i) => i) }), 'stream');

describe('row numbers in the shard log', () => {
  it('a numbered batch record keeps its first row, row count and IPC bytes', () => {
    const ipc = ipcOf(7);
    const decoded = decodeNumberedBatch(encodeNumberedBatch(2 ** 40 + 3, 7, ipc));
    expect(decoded.firstRow).toBe(2 ** 40 + 3);
    expect(decoded.rows).toBe(7);
    expect(decoded.ipc).toEqual(ipc);
    expect(ipcRowCount(decoded.ipc)).toBe(7);
  });

  it('an empty log starts at row 0; otherwise one past its last batch, enrichment records after it aside', async () => {
    let log = await FileShardLog.open({ dir });
    expect(await nextRowOf(log)).toBe(0);
    log.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(0, 5, ipcOf(5)));
    log.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(5, 3, ipcOf(3)));
    log.append(LogRecordType.ENRICH_DROP, encodeEnrichDrop('plans'));
    expect(await nextRowOf(log)).toBe(8);
    await log.close();
    log = await FileShardLog.open({ dir });
    expect(await nextRowOf(log)).toBe(8);
    await log.close();
  });

  it('numbers batches written before rows were numbered by counting, and carries on after them', async () => {
    const log = await FileShardLog.open({ dir });
    log.append(LogRecordType.EVENT_BATCH, ipcOf(4));
    log.append(LogRecordType.EVENT_BATCH, ipcOf(6));
    expect(await nextRowOf(log)).toBe(10);
    log.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(10, 2, ipcOf(2)));
    expect(await nextRowOf(log)).toBe(12);
    const numbering = new RowNumbering();
    const firsts: Array<number | null> = [];
    for await (const rec of log.readFrom(log.start)) firsts.push(numbering.next(rec));
    expect(firsts).toEqual([0, 4, 10]);
    await log.close();
  });

  it('truncation keeps the file holding the last numbered batch, so the next row number survives', async () => {
    const log = await FileShardLog.open({ dir, maxFileBytes: 400 });
    let row = 0;
    for (let i = 0; i < 6; i++) {
      const ipc = ipcOf(10);
      log.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(row, 10, ipc));
      row += 10;
    }
    // then only enrichment records, filling files of their own
    for (let i = 0; i < 30; i++) log.append(LogRecordType.ENRICH_DROP, encodeEnrichDrop(`table_${'x'.repeat(80)}_${i}`));
    const files = readdirSync(dir).length;
    expect(files).toBeGreaterThan(3);
    await log.truncateBefore(log.end);
    expect(readdirSync(dir).length).toBeGreaterThan(1);
    expect(readdirSync(dir).length).toBeLessThan(files);
    expect(await nextRowOf(log)).toBe(60);
    await log.close();
  });
});
