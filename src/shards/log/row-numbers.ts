/**
 * Absolute row numbers of a shard: its event rows numbered in log order from 0, across engine
 * restarts and polars restores. Every sealed batch is logged with the number of its first row
 * (NUMBERED_BATCH), so a replay hands polars the same numbers the rows had the first time, and a
 * query's cut (`rows_upto`) means the same rows in every process that serves the shard.
 *
 * Logs written before rows were numbered hold EVENT_BATCH records: their rows are numbered by
 * counting from the record before (such logs were never truncated, so counting starts at 0).
 */
import { LogRecordType, decodeNumberedBatch, ipcRowCount, type LogRecord, type ShardLog } from './shard-log.js';

/**
 * Numbers the event batches of a replay: `next(record)` gives a batch record's first row and
 * moves past its rows; other records get null.
 */
export class RowNumbering {
  constructor(private nextRow = 0) {}

  next(rec: Pick<LogRecord, 'type' | 'payload'>): number | null {
    if (rec.type === LogRecordType.NUMBERED_BATCH) {
      const { firstRow, rows } = decodeNumberedBatch(rec.payload);
      this.nextRow = firstRow + rows;
      return firstRow;
    }
    if (rec.type === LogRecordType.EVENT_BATCH) {
      const first = this.nextRow;
      this.nextRow += ipcRowCount(rec.payload);
      return first;
    }
    return null;
  }

  get row(): number {
    return this.nextRow;
  }
}

/**
 * The number the next sealed row gets: one past the last batch in the log (0 for an empty log).
 * Reads one record, unless the log ends with batches written before rows were numbered.
 */
export async function nextRowOf(log: ShardLog): Promise<number> {
  const numbered = await log.last(LogRecordType.NUMBERED_BATCH);
  const legacy = await log.last(LogRecordType.EVENT_BATCH);
  if (legacy === null || (numbered !== null && numbered.position > legacy.position)) {
    if (numbered === null) return 0;
    const { firstRow, rows } = decodeNumberedBatch(numbered.payload);
    return firstRow + rows;
  }
  const numbering = new RowNumbering();
  for await (const rec of log.readFrom(log.start)) numbering.next(rec);
  return numbering.row;
}
