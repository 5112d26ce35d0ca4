/**
 * What the ports serve while the engine re-partitions its stored data for a new shard count
 * (src/shards/repartition/), before any shard has opened its log: the routes every port has
 * (`/ready` answers 503 until the shards are ready, `/health`, `/stats/shards`, `/metrics`), and
 * 503 + Retry-After for ingest, queries and enrichment. Once the shards are ready the engine
 * swaps in the real apps behind the same listening sockets (`SwappableApp`).
 */
import { Hono } from 'hono';
import { unavailable } from './http-error.js';

const WAIT = 'the engine is re-partitioning its stored data for a new shard count; retry shortly (GET /ready says when it serves)';

export function makeStartingApp(): Hono {
  const app = new Hono();
  for (const path of ['/ingest', '/ingest/*', '/query/*', '/enrichment', '/enrichment/*', '/dashboard/*']) {
    app.all(path, () => {
      throw unavailable(WAIT, 5);
    });
  }
  return app;
}

/** A front app whose requests go to whichever app is current: lets a listening port change apps. */
export class SwappableApp {
  readonly front = new Hono();

  constructor(private current: Hono) {
    // The node adapter's bindings (the raw IncomingMessage the body reader uses) travel in `env`.
    this.front.all('*', (c) => this.current.fetch(c.req.raw, c.env));
  }

  swap(next: Hono): void {
    this.current = next;
  }
}
