/**
 * The live page on the analytics port: `GET /` (the HTML), `GET /dashboard/stream` (Server-Sent
 * Events, one `snapshot` per second) and its static assets — the page's own script and style, and
 * uPlot streamed from its npm package (node_modules/uplot/dist), so nothing comes from a CDN and
 * nothing is built. The page's files are read once, when the routes are registered.
 *
 * One LiveFeed per engine: every open page gets the same serialized snapshot, the engine computes
 * one per second only while a page is open, and at most MAX_STREAMS pages watch at once (503
 * with Retry-After beyond). A page that reads slower than one snapshot a second skips snapshots
 * instead of queueing them.
 */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Hono } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { EngineContext } from '../../engine-context.js';
import { unavailable } from '../http-error.js';
import { fromRoot } from '../../paths.js';
import { LiveFeed } from './live-feed.js';
import { makePageSnapshots } from './page-snapshot.js';

/** Most pages streaming at once per engine. */
export const MAX_STREAMS = 32;
/** One snapshot per second. */
export const TICK_MS = 1000;
/** What EventSource waits before reconnecting after a dropped stream. */
const RECONNECT_MS = 2000;

const pageFile = (name: string) => readFileSync(fromRoot('src', 'router', 'page', name), 'utf8');
const uplotFile = (name: string) => createRequire(fromRoot('package.json')).resolve(`uplot/dist/${name}`);

/** The feed of one engine (tests read its viewer and tick counts). */
const feeds = new WeakMap<EngineContext, LiveFeed>();

export function liveFeedOf(ctx: EngineContext): LiveFeed | undefined {
  return feeds.get(ctx);
}

function feedFor(ctx: EngineContext): LiveFeed {
  let feed = feeds.get(ctx);
  if (!feed) {
    const snapshots = makePageSnapshots(ctx);
    feed = new LiveFeed((viewers) => snapshots.next(viewers), {
      intervalMs: TICK_MS,
      maxViewers: MAX_STREAMS,
      onError: (err) => ctx.logger.warn({ err }, 'live page snapshot failed'),
    });
    feeds.set(ctx, feed);
  }
  return feed;
}

/** A file of the uplot package, streamed (it is versioned with the package, so cacheable). */
function serveUplot(app: Hono, route: string, file: string, contentType: string): void {
  const path = uplotFile(file);
  const size = statSync(path).size;
  app.get(route, (c) =>
    c.body(Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>, 200, {
      'content-type': contentType,
      'content-length': String(size),
      'cache-control': 'public, max-age=86400',
    }),
  );
}

export function registerPageRoutes(app: Hono, ctx: EngineContext): void {
  const html = pageFile('index.html');
  const script = pageFile('page.js');
  const style = pageFile('page.css');
  const noStore = { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };

  app.get('/', (c) => c.body(html, 200, { ...noStore, 'content-type': 'text/html; charset=utf-8' }));
  app.get('/assets/page.js', (c) => c.body(script, 200, { ...noStore, 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/assets/page.css', (c) => c.body(style, 200, { ...noStore, 'content-type': 'text/css; charset=utf-8' }));
  serveUplot(app, '/assets/uplot.min.js', 'uPlot.iife.min.js', 'text/javascript; charset=utf-8');
  serveUplot(app, '/assets/uplot.min.css', 'uPlot.min.css', 'text/css; charset=utf-8');

  app.get('/dashboard/stream', (c) => {
    if (ctx.stopping) throw unavailable('the engine is stopping', 5);
    const feed = feedFor(ctx);
    let stream: SSEStreamingApi | null = null;
    let writing = false;
    let first = true;
    let finish: () => void = () => undefined;
    const leave = feed.join((json, seq) => {
      // Skip a snapshot while the previous one is still being written to a slow reader.
      if (!stream || writing || stream.aborted || stream.closed) return;
      writing = true;
      const message = { event: 'snapshot', data: json, id: String(seq), ...(first ? { retry: RECONNECT_MS } : {}) };
      first = false;
      stream.writeSSE(message).then(
        () => (writing = false),
        () => finish(),
      );
    });
    if (!leave) throw unavailable(`the live page serves at most ${MAX_STREAMS} streams at once; close a page or try again later`, 5);
    return streamSSE(c, async (s) => {
      stream = s;
      await new Promise<void>((resolve) => {
        finish = resolve;
        s.onAbort(resolve);
      });
      leave();
    });
  });
}
