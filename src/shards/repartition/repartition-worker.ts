/**
 * Worker-thread entry of a re-partitioning (repartition.ts): runs it off the HTTP thread, posts
 * progress, then the result or the error. Never imports main-thread modules.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { repartition, type RepartitionOptions, type RepartitionProgress, type RepartitionResult } from './repartition.js';

export type RepartitionWorkerData = Omit<RepartitionOptions, 'onProgress' | 'onWarning'> & { entry: string };

export type RepartitionMessage =
  | { type: 'progress'; progress: RepartitionProgress }
  | { type: 'warning'; message: string }
  | { type: 'done'; result: RepartitionResult }
  | { type: 'error'; message: string };

const data = workerData as RepartitionWorkerData;
const port = parentPort!;
const post = (m: RepartitionMessage) => port.postMessage(m);

repartition({ ...data, onProgress: (progress) => post({ type: 'progress', progress }), onWarning: (message) => post({ type: 'warning', message }) }).then(
  (result) => post({ type: 'done', result }),
  (err: unknown) => post({ type: 'error', message: err instanceof Error ? `${err.message}` : String(err) }),
);
