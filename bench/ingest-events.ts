/** Bench data: deterministic events, ingested through /ingest/batch with retry on 503. */

export interface IngestOptions {
  total: number;
  users?: number;
  spanMs?: number;
  seed?: number;
}

const TYPES = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'];

export async function ingestEvents(ingestUrl: string, opts: IngestOptions): Promise<void> {
  let s = opts.seed ?? 12345;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const users = opts.users ?? 100_000;
  const span = opts.spanMs ?? 86_400_000;
  const start = 1_795_000_000_000;
  for (let sent = 0; sent < opts.total; ) {
    const n = Math.min(5000, opts.total - sent);
    const events = Array.from({ length: n }, () => ({
      timestamp: start + Math.floor(rand() * span),
      // Funnel-shaped: most users view, fewer go further.
      event_type: TYPES[Math.min(TYPES.length - 1, Math.floor(-Math.log(1 - rand() * 0.99) * 1.2))],
      user_id: `user-${Math.floor(rand() * rand() * users)}`,
      value: rand() < 0.05 ? null : Math.round(rand() * 10_000) / 100,
      ...(rand() < 0.3 ? { metadata: { plan: rand() < 0.5 ? 'free' : 'pro', page: `/p/${Math.floor(rand() * 50)}` } } : {}),
    }));
    const res = await fetch(`${ingestUrl}/ingest/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    if (res.status === 503) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (res.status !== 202) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
    sent += n;
  }
}
