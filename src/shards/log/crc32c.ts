/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every shard-log record.
 * Castagnoli rather than zlib's CRC-32: it detects more error patterns in the record sizes we
 * write, and it is what other logs (iSCSI, ext4, RocksDB, Kafka) use, so tools can check ours.
 *
 * Slice-by-16: sixteen 256-entry tables (one Int32Array) let the loop consume 16 bytes per step,
 * read as four little-endian words (about 1.5 GB/s in V8, against ~0.8 GB/s for slice-by-8 with
 * byte loads and ~350 MB/s for the one-table byte loop). It runs over every byte the shards log,
 * once per sealed batch, on the ingest path.
 */

const POLY = 0x82f63b78;

/** Table t (0..15) at [256·t, 256·t + 256): the CRC of byte n followed by t zero bytes. */
function makeTables(): Int32Array {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]! >>> 0;
    for (let k = 1; k < 16; k++) {
      c = (t[c & 0xff]! >>> 0) ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

const T = makeTables();

/**
 * Continues a CRC-32C over `bytes`; start with `crc = 0`. Feeding a message in pieces gives the
 * same value as feeding it whole.
 *
 * @example crc32c(new TextEncoder().encode('123456789')) === 0xe3069283
 */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc | 0;
  let i = 0;
  const n = bytes.length;
  const words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end16 = n - (n % 16);
  while (i < end16) {
    const a = c ^ words.getInt32(i, true);
    const b = words.getInt32(i + 4, true);
    const d = words.getInt32(i + 8, true);
    const e = words.getInt32(i + 12, true);
    c =
      T[3840 + (a & 0xff)]! ^
      T[3584 + ((a >>> 8) & 0xff)]! ^
      T[3328 + ((a >>> 16) & 0xff)]! ^
      T[3072 + (a >>> 24)]! ^
      T[2816 + (b & 0xff)]! ^
      T[2560 + ((b >>> 8) & 0xff)]! ^
      T[2304 + ((b >>> 16) & 0xff)]! ^
      T[2048 + (b >>> 24)]! ^
      T[1792 + (d & 0xff)]! ^
      T[1536 + ((d >>> 8) & 0xff)]! ^
      T[1280 + ((d >>> 16) & 0xff)]! ^
      T[1024 + (d >>> 24)]! ^
      T[768 + (e & 0xff)]! ^
      T[512 + ((e >>> 8) & 0xff)]! ^
      T[256 + ((e >>> 16) & 0xff)]! ^
      T[e >>> 24]!;
    i += 16;
  }
  while (i < n) c = T[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
