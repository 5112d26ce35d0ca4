/**
 * An Arrow IPC stream written column by column into its final bytes, for answers of hundreds of
 * MB (the Arrow answer of a by-user aggregate, aggregate-arrow.ts): each record batch is one
 * buffer, its message metadata then its body, and the merge gathers values straight into the
 * body's buffers, where apache-arrow's writer would copy every built column once more.
 *
 * Columns are `Utf8` (32-bit offsets, as the export's documented schema), `Int64` or `Float64`.
 * Every field's buffers are in the body in the spec's order (validity, then offsets and bytes, or
 * values), each starting at a multiple of 8 bytes; a non-nullable field's validity is empty. The
 * schema message is apache-arrow's own encoding; a batch's metadata is a flatbuffer of fixed
 * size for a given schema (every value in it is a fixed-width struct field), written after the
 * body is filled, when the null counts are known.
 */
import { Builder } from 'flatbuffers';
import { Field, Float64, Int64, Message, MessageHeader, MetadataVersion, Schema, Utf8, type DataType } from 'apache-arrow';
import { framedMessage, pad8 } from '../arrow-frame.js';
import { ARROW_EOS } from './export.js';

export type ColumnKind = 'utf8' | 'int64' | 'float64';

export interface ColumnSpec {
  name: string;
  kind: ColumnKind;
  nullable: boolean;
}



function arrowType(kind: ColumnKind): DataType {
  return kind === 'utf8' ? new Utf8() : kind === 'int64' ? new Int64() : new Float64();
}

/** The schema message of `columns` (apache-arrow's encoding). */
export function schemaMessage(columns: readonly ColumnSpec[]): Uint8Array {
  const schema = new Schema(columns.map((c) => new Field(c.name, arrowType(c.kind), c.nullable)));
  return framedMessage(Message.encode(Message.from(schema)));
}

/** One record batch being filled: its message (metadata space, then body) and views of the body's buffers, by column. */
export interface BatchBuffers {
  readonly rows: number;
  /** The whole message: its own ArrayBuffer (transferable). */
  readonly message: Uint8Array;
  /** Validity bits (zeroed: set the valid rows' bits), by column; null for a non-nullable column. */
  readonly validity: Array<Uint8Array | null>;
  /** Utf8 columns: `rows + 1` offsets; null for the others. */
  readonly offsets: Array<Int32Array | null>;
  /** Utf8 columns: the string bytes; null for the others. */
  readonly bytes: Array<Uint8Array | null>;
  /** Int64 and Float64 columns: the values as two little-endian 32-bit words each; null for Utf8. */
  readonly words: Array<Int32Array | null>;
  /** [offset, length] of every buffer in the body, in order. */
  readonly regions: number[];
  readonly bodyAt: number;
}

function recordBatchMetadata(rows: number, nulls: readonly number[], regions: readonly number[], bodyLength: number): Uint8Array {
  const b = new Builder(256 + 32 * regions.length);
  // structs of a vector are written last to first
  b.startVector(16, nulls.length, 8);
  for (let i = nulls.length - 1; i >= 0; i--) {
    b.prep(8, 16);
    b.writeInt64(BigInt(nulls[i]!));
    b.writeInt64(BigInt(rows));
  }
  const nodes = b.endVector();
  b.startVector(16, regions.length / 2, 8);
  for (let i = regions.length - 2; i >= 0; i -= 2) {
    b.prep(8, 16);
    b.writeInt64(BigInt(regions[i + 1]!));
    b.writeInt64(BigInt(regions[i]!));
  }
  const buffers = b.endVector();
  // RecordBatch: length (0), nodes (1), buffers (2)
  b.startObject(5);
  b.addFieldInt64(0, BigInt(rows), 0n);
  b.addFieldOffset(1, nodes, 0);
  b.addFieldOffset(2, buffers, 0);
  const header = b.endObject();
  // Message: version (0), header_type (1), header (2), bodyLength (3)
  b.startObject(5);
  b.addFieldInt16(0, MetadataVersion.V5, MetadataVersion.V1);
  b.addFieldInt8(1, MessageHeader.RecordBatch, MessageHeader.NONE);
  b.addFieldOffset(2, header, 0);
  b.addFieldInt64(3, BigInt(bodyLength), 0n);
  b.finish(b.endObject());
  return b.asUint8Array();
}

/**
 * Writes the record batches of one schema. `begin` lays a batch out (its string bytes per Utf8
 * column must be known), the caller fills the buffers, `end` writes the metadata.
 */
export class BatchWriter {
  /** The framed metadata's size: the same for every batch of this schema (checked in `end`). */
  private readonly metadataBytes: number;

  constructor(readonly columns: readonly ColumnSpec[]) {
    const regions = columns.flatMap((c) => (c.kind === 'utf8' ? [0, 1, 0, 1, 0, 1] : [0, 1, 0, 1]));
    this.metadataBytes = pad8(8 + recordBatchMetadata(1, columns.map(() => 0), regions, 8).length);
  }

  /**
   * A zeroed batch of `rows` rows; `stringBytes[c]`: the bytes of Utf8 column c's strings (0
   * for the other columns).
   */
  begin(rows: number, stringBytes: readonly number[]): BatchBuffers {
    const { layout, regions, body } = this.layout(rows, stringBytes);
    const bodyAt = this.metadataBytes;
    const message = new Uint8Array(new ArrayBuffer(bodyAt + body));
    const buffer = message.buffer;
    return {
      rows,
      message,
      regions,
      bodyAt,
      validity: this.columns.map((c, i) => (c.nullable ? message.subarray(bodyAt + layout[i]!.validity, bodyAt + layout[i]!.validity + ((rows + 7) >> 3)) : null)),
      offsets: this.columns.map((c, i) => (c.kind === 'utf8' ? new Int32Array(buffer, bodyAt + layout[i]!.offsets, rows + 1) : null)),
      bytes: this.columns.map((c, i) => (c.kind === 'utf8' ? message.subarray(bodyAt + layout[i]!.data, bodyAt + layout[i]!.data + stringBytes[i]!) : null)),
      words: this.columns.map((c, i) => (c.kind === 'utf8' ? null : new Int32Array(buffer, bodyAt + layout[i]!.data, 2 * rows))),
    };
  }

  /** The length of the message `begin(rows, stringBytes)` lays out, without making it. */
  messageBytes(rows: number, stringBytes: readonly number[]): number {
    return this.metadataBytes + this.layout(rows, stringBytes).body;
  }

  /** Where each column's buffers start in the body, the body's [offset, length] regions, and its length. */
  private layout(rows: number, stringBytes: readonly number[]) {
    const regions: number[] = [];
    let body = 0;
    const region = (length: number) => {
      regions.push(body, length);
      const at = body;
      body += pad8(length);
      return at;
    };
    const layout = this.columns.map((c, i) => {
      const validity = region(c.nullable ? (rows + 7) >> 3 : 0);
      if (c.kind === 'utf8') return { validity, offsets: region(4 * (rows + 1)), data: region(stringBytes[i]!) };
      return { validity, offsets: -1, data: region(8 * rows) };
    });
    return { layout, regions, body };
  }

  /** Writes the batch's metadata, given each column's null count. */
  end(batch: BatchBuffers, nulls: readonly number[]): Uint8Array {
    const metadata = framedMessage(recordBatchMetadata(batch.rows, nulls, batch.regions, batch.message.length - batch.bodyAt));
    if (metadata.length !== this.metadataBytes) throw new Error(`arrow batch: expected ${this.metadataBytes} bytes of metadata, got ${metadata.length}`);
    batch.message.set(metadata, 0);
    return batch.message;
  }
}

/** A stream's pieces (schema, batches, end marker) and their total length. */
export interface IpcPieces {
  pieces: Uint8Array[];
  bytes: number;
}

export function ipcPieces(schema: Uint8Array, batches: Uint8Array[]): IpcPieces {
  // (a copy: the pieces' buffers are moved out of the merge pool)
  const pieces = [schema, ...batches, ARROW_EOS.slice()];
  return { pieces, bytes: pieces.reduce((n, p) => n + p.length, 0) };
}
