/**
 * Arrow IPC stream framing, shared by the shards' sealed batches (src/shards/column-builder.ts)
 * and the merge's Arrow answers (src/merge/arrow-ipc.ts), which both write their messages
 * themselves: the continuation word, the metadata's padded length, the flatbuffer, zero padding.
 */

/** `n` rounded up to a multiple of 8 (Arrow's buffer and message alignment). */
export const pad8 = (n: number): number => (n + 7) & ~7;

/** One IPC stream message's framed metadata: `0xFFFFFFFF`, its padded length, `flatbuffer`, zero padding to 8 bytes. */
export function framedMessage(flatbuffer: Uint8Array): Uint8Array {
  const size = pad8(8 + flatbuffer.byteLength);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setInt32(0, -1, true);
  view.setInt32(4, size - 8, true);
  out.set(flatbuffer, 8);
  return out;
}
