// Worker bootstrap: worker threads do not inherit tsx's loader hooks on Node 20, so every worker
// (shard actors and the piscina merge pool) starts here, registers tsx, and then imports its real
// TypeScript entry named in workerData.entry. Piscina reads the default export.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const mod = await import(workerData.entry);
export default mod.default;
