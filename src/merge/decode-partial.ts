/**
 * Arrow IPC partial → plain column arrays. Int64 columns become numbers (counts stay far below
 * 2^53), nulls become null. Used by the merge task; pure apart from decoding.
 */
import { tableFromIPC, type Table } from 'apache-arrow';

export type Column = Array<number | string | null>;

export interface DecodedPartial {
  rows: number;
  columns: Map<string, Column>;
}

export function decodePartial(ipc: Uint8Array): DecodedPartial {
  const table: Table = tableFromIPC(ipc);
  const columns = new Map<string, Column>();
  for (const field of table.schema.fields) {
    const vector = table.getChild(field.name)!;
    const out: Column = new Array(table.numRows);
    for (let i = 0; i < table.numRows; i++) {
      const v = vector.get(i) as unknown;
      out[i] = v === null || v === undefined ? null : typeof v === 'bigint' ? Number(v) : (v as number | string);
    }
    columns.set(field.name, out);
  }
  return { rows: table.numRows, columns };
}

/** A column that must exist, with a message naming it. */
export function requireColumn(p: DecodedPartial, name: string): Column {
  const c = p.columns.get(name);
  if (!c) throw new Error(`partial is missing column \`${name}\`; has ${[...p.columns.keys()].join(', ')}`);
  return c;
}
