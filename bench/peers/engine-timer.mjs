// bench:peers' client for the engine's timed runs, in a worker thread of its own: a run's time
// includes the client taking the whole answer (`res.text()`), and on the bench's own thread that
// client shared a heap with every answer kept for the cross-checks (three 1.36 M-row answers by
// the second mode at 10 M events), whose collections it paid for while it read 243 MB: Q1b took
// 5.6 s there against 2.5 s in the first mode. A user's client has no such heap.
// An Arrow answer is read whole and decoded with apache-arrow's `tableFromIPC` (its columns
// made, as DuckDB's peer materializes its result's).
import { parentPort, workerData } from 'node:worker_threads';
import { tableFromIPC } from 'apache-arrow';

const { queryUrl, requests, warmup, runs } = workerData;

/** The requests sent together; each answer's status and whole text. */
function once() {
  return Promise.all(
    requests.map(async (r) => {
      const init = r.method === 'POST' ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body ?? {}) } : {};
      const res = await fetch(queryUrl + r.path, init);
      if (r.arrow && res.status === 200) {
        const bytes = new Uint8Array(await res.arrayBuffer());
        const table = tableFromIPC(bytes);
        if (table.numCols === 0) throw new Error(`${r.path}: an Arrow answer without columns`);
        return { status: res.status, text: '', bytes };
      }
      return { status: res.status, text: await res.text() };
    }),
  );
}

const times = [];
let first = null;
for (let i = 0; i < warmup + runs; i++) {
  const t0 = performance.now();
  const answers = await once();
  const dt = performance.now() - t0;
  if (first === null) first = answers;
  if (i >= warmup) times.push(dt);
}
parentPort.postMessage({ times, first });
