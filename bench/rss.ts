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
import { ingestEvents } from './ingest-events.js';

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

const started = performance.now();
await ingestEvents(ingestUrl, { total });
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
