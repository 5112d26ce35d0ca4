/**
 * `npm start` leaves no orphan: stopping npm (SIGTERM, or SIGKILL which it cannot pass on) stops
 * the engine it launched, which drains, stops its polars processes and frees its ports.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getJson } from '../helpers/engine-harness.js';
import { processRunning, startMain } from '../helpers/main-process.js';

function refusesConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function untilGone(pid: number): Promise<void> {
  while (processRunning(pid)) await new Promise((r) => setTimeout(r, 50));
}

describe('npm start', () => {
  it.each([
    ['SIGTERM', 'SIGTERM'],
    ['SIGKILL', 'parent exited'],
  ] as const)('the engine exits when npm gets %s, draining first, and its ports refuse connections', async (signal, reason) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'npm-start-'));
    try {
      const main = await startMain(['--shards', '1', '--data-dir', dataDir], { npm: true });
      // npm runs the script through `sh -c "exec node …"`: the engine is npm's direct child.
      expect(main.enginePid).not.toBe(main.child.pid);
      const polarsPid = (await getJson(`${main.queryUrl}/stats/shards`)).body.shards[0].polars_pid as number;
      main.child.kill(signal);
      await untilGone(main.enginePid);
      expect(processRunning(polarsPid)).toBe(false);
      expect(await refusesConnections(main.ingestUrl)).toBe(true);
      expect(await refusesConnections(main.queryUrl)).toBe(true);
      expect(main.logs.find((l) => l.msg === 'shutdown requested')).toMatchObject({ signal: reason });
      expect(main.logs.some((l) => l.msg === 'stopped: every shard flushed to polars')).toBe(true);
      await main.exited;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
