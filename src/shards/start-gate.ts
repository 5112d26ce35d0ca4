/**
 * A start gate: shard workers spawn at once (their rings exist, so ingest is taken into them from
 * the first moment) but open their logs only when the gate opens, after the engine has
 * re-partitioned the data dir for a new shard count (src/shards/repartition/). One Int32 word on
 * a SharedArrayBuffer, shared by both sides: WAIT, then OPEN or FAILED, with Atomics.notify.
 */
export const GATE_WAIT = 0;
export const GATE_OPEN = 1;
export const GATE_FAILED = 2;

export function makeStartGate(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** Main side: lets every waiting worker through (`ok`), or tells them the start failed. */
export function openStartGate(gate: SharedArrayBuffer, ok: boolean): void {
  const word = new Int32Array(gate);
  Atomics.store(word, 0, ok ? GATE_OPEN : GATE_FAILED);
  Atomics.notify(word, 0);
}

/** Worker side: resolves true once the gate opens, false if the start failed (no busy waiting). */
export async function passStartGate(gate: SharedArrayBuffer): Promise<boolean> {
  const word = new Int32Array(gate);
  for (;;) {
    const state = Atomics.load(word, 0);
    if (state !== GATE_WAIT) return state === GATE_OPEN;
    const waited = Atomics.waitAsync(word, 0, GATE_WAIT);
    if (waited.async) await waited.value;
  }
}
