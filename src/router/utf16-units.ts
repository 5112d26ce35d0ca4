/** UTF-16 code units of well-formed UTF-8 `b[s..e)`: every byte that is not a continuation byte, plus one per 4-byte sequence. */
export function utf16Units(b: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if ((c & 0xc0) !== 0x80) n += c >= 0xf0 ? 2 : 1;
  }
  return n;
}
