/**
 * Baseline for bench:ingest: a bare Hono server on @hono/node-server that only JSON-parses the
 * same bodies (Arrow bodies: reads their record batches with apache-arrow) and answers 202. The
 * engine's ratio to this is the cost of validation, routing, rings, shards and polars on top of
 * HTTP + parsing.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { RecordBatchReader } from 'apache-arrow';

const app = new Hono();
app.post('/ingest/batch', async (c) => {
  const body = (await c.req.json()) as { events: unknown[] };
  return c.json({ accepted: body.events.length, buffered: 0, timestamp: new Date().toISOString() }, 202);
});
app.post('/ingest/arrow', async (c) => {
  let rows = 0;
  for (const batch of RecordBatchReader.from(new Uint8Array(await c.req.arrayBuffer()))) rows += batch.numRows;
  return c.json({ accepted: rows, buffered: 0, timestamp: new Date().toISOString() }, 202);
});
app.post('/ingest', async (c) => {
  await c.req.json();
  return c.json({ accepted: 1, buffered: 0, timestamp: new Date().toISOString() }, 202);
});

serve({ fetch: app.fetch, port: Number(process.argv[2] ?? 0), hostname: '127.0.0.1' }, (info) => {
  console.log(JSON.stringify({ msg: 'baseline listening', port: info.port }));
});
process.on('SIGTERM', () => process.exit(0));
