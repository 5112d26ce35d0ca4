/**
 * `npm run bench:validate`: ingest validation, hand-written (src/router/validate-event.ts, what
 * the engine runs) against the same rules as a zod 4 schema, on the same 1,000-event batches, in
 * one process. Decides whether ingest moves to the schema library like the query kinds did:
 * it stays hand-written while the schema is slower (docs/ARCHITECTURE.md).
 *
 *   npm run bench:validate -- [--batches 300] [--json out.json]
 */
import { z } from 'zod';
import { validateBatch } from '../src/router/validate-event.js';
import { printTable, writeJson } from './bench-util.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const jsonAt = process.argv.indexOf('--json');
const BATCHES = arg('batches', 300);
const BATCH = 1000;

const wellFormed = (min: number, max: number) => z.string().min(min).max(max).refine((s) => s.isWellFormed());
const event = z.strictObject({
  timestamp: z.union([z.int().min(-62135596800000).max(253402300799999), z.iso.datetime({ offset: true, local: true }), z.iso.date()]).optional(),
  event_type: wellFormed(1, 64),
  user_id: wellFormed(1, 128),
  value: z.number().nullish(),
  metadata: z
    .record(z.string(), z.unknown())
    .nullish()
    .refine((m) => m == null || Buffer.byteLength(JSON.stringify(m)) <= 4096),
});
const batch = z.array(event);

const TYPES = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'];
const batches = Array.from({ length: BATCHES }, (_, b) =>
  Array.from({ length: BATCH }, (_, i) => ({
    timestamp: 1_795_000_000_000 + b * BATCH + i,
    event_type: TYPES[i % TYPES.length],
    user_id: `user-${(b * 7919 + i * 104729) % 300_000}`,
    value: (i % 97) / 3,
    ...(i % 3 === 0 ? { metadata: { plan: i % 2 ? 'pro' : 'free', page: `/p/${i % 50}` } } : {}),
  })),
);

function run(name: string, fn: (events: unknown[]) => boolean): { name: string; events_per_s: number } {
  for (const events of batches.slice(0, 20)) fn(events); // warm-up
  const started = performance.now();
  for (const events of batches) if (!fn(events)) throw new Error(`${name} rejected a good batch`);
  const seconds = (performance.now() - started) / 1000;
  return { name, events_per_s: Math.round((BATCHES * BATCH) / seconds) };
}

const hand = run('hand-written (engine)', (events) => 'events' in validateBatch(events, Date.now()));
const schema = run('zod 4 schema', (events) => batch.safeParse(events).success);
const rows = [hand, schema].map((r) => ({ validator: r.name, events_per_s: r.events_per_s.toLocaleString('en'), ratio_to_hand_written: (r.events_per_s / hand.events_per_s).toFixed(2) }));
printTable(rows);
if (jsonAt >= 0) writeJson(process.argv[jsonAt + 1]!, { batches: BATCHES, batch: BATCH, results: [hand, schema] });
