/**
 * npm run bench:rss [-- --events 1000000 --shards N --json out.json]
 *
 * Starts the engine with its defaults, measures the RSS of the whole engine (the node process
 * plus every polars process) when idle, ingests exactly --events events through /ingest/batch,
 * waits until they are all queryable, and measures again. Prints both and bytes per event.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, parseArgs, printTable, spawnServer, writeJson } from './bench-util.js';

const args = parseArgs(process.argv.slice(2));
const total = Number(args.events ?? 1_000_000);
const shardsArg = args.shards ? ['--shards', String(args.shards)] : [];

function rssOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

/** RSS of a process and all its descendants. */
function treeRss(root: number): { bytes: number; processes: number } {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // process went away
    }
  }
  let bytes = 0;
  let processes = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    bytes += rssOf(pid);
    processes++;
    stack.push(...(children.get(pid) ?? []));
  }
  return { bytes, processes };
}

const eng = await spawnServer(join(ROOT, 'src/main.ts'), ['--ingest-port', '0', '--query-port', '0', ...shardsArg], (l) => l.msg === 'engine listening');
const { ingestUrl, queryUrl } = eng.line as { ingestUrl: string; queryUrl: string };
const pid = eng.server.child.pid!;
const idle = treeRss(pid);

let s = 12345;
const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
const types = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'];
const started = performance.now();
for (let sent = 0; sent < total; ) {
  const n = Math.min(5000, total - sent);
  const events = Array.from({ length: n }, () => ({
    timestamp: 1_795_000_000_000 + Math.floor(rand() * 86_400_000),
    event_type: types[Math.floor(rand() * types.length)],
    user_id: `user-${Math.floor(rand() * 100_000)}`,
    value: Math.round(rand() * 10_000) / 100,
    ...(rand() < 0.2 ? { metadata: { plan: rand() < 0.5 ? 'free' : 'pro' } } : {}),
  }));
  const res = await fetch(`${ingestUrl}/ingest/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
  if (res.status === 503) {
    await new Promise((r) => setTimeout(r, 50));
    continue;
  }
  if (res.status !== 202) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
  sent += n;
}
let stored = 0;
while (stored < total) {
  const res = await fetch(`${queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  stored = ((await res.json()) as { results: Array<{ count: number }> }).results[0]!.count;
}
const seconds = (performance.now() - started) / 1000;
const loaded = treeRss(pid);
await eng.server.stop();

const row = {
  events: total,
  processes: loaded.processes,
  idle_rss_mb: Math.round(idle.bytes / 1048576),
  loaded_rss_mb: Math.round(loaded.bytes / 1048576),
  bytes_per_event: Math.round((loaded.bytes - idle.bytes) / total),
  ingest_seconds: seconds,
};
console.log(`\nbench:rss — whole engine (node + polars processes) before and after ${total.toLocaleString('en-US')} events\n`);
printTable([row]);
if (typeof args.json === 'string') writeJson(args.json, row);
