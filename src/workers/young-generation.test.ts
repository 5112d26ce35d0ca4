import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { POOL_YOUNG_MB, SHARD_YOUNG_MB } from './young-generation.js';

const MODULE = fileURLToPath(new URL('./young-generation.ts', import.meta.url));

/**
 * A node started as `npm start` starts it (`--max-semi-space-size=4`) makes garbage on its main
 * thread and in workers started with each size, after `releaseSemiSpaceFlag` or not, and prints
 * the new space's size in MB per thread.
 */
function newSpaces(release: boolean): Record<string, number> {
  const worker = `
    import v8 from 'node:v8';
    import { parentPort } from 'node:worker_threads';
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = []; }
    parentPort.postMessage(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576);`;
  const main = `
    import { Worker } from 'node:worker_threads';
    import v8 from 'node:v8';
    import { releaseSemiSpaceFlag } from ${JSON.stringify(MODULE)};
    if (${release}) releaseSemiSpaceFlag();
    const sizes = {};
    for (const [name, mb] of [['shard', ${SHARD_YOUNG_MB}], ['pool', ${POOL_YOUNG_MB}]]) {
      const w = new Worker(${JSON.stringify(worker)}, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: mb } });
      sizes[name] = await new Promise((resolve) => w.once('message', resolve));
    }
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = []; }
    sizes.main = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
    console.log(JSON.stringify(sizes));`;
  const r = spawnSync(process.execPath, ['--max-semi-space-size=4', '--import', 'tsx', '--input-type=module', '-e', main], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

describe('young generations per thread', () => {
  it('lets each worker size its own once the start flag is released; the main thread keeps the flag', () => {
    const held = newSpaces(false);
    const released = newSpaces(true);
    // The flag wins over resourceLimits: every thread has the flag's two 4 MB semi-spaces.
    expect(held).toEqual({ shard: 8, pool: 8, main: 8 });
    // Released: a shard worker's young generation of 3 MB is two 1 MB semi-spaces; the main
    // thread's heap was configured before the release.
    expect(released.shard).toBeLessThanOrEqual(2);
    expect(released.pool).toBe(8);
    expect(released.main).toBe(8);
  });
});
