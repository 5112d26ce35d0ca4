/**
 * lockDataDir under contention: engines started side by side on one data dir, fresh or with a
 * stale lock left by a dead engine, on a filesystem with hard links and on one without (link()
 * fails with EPERM, as on vfat or some network and FUSE mounts). Exactly one of them may hold the
 * lock.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCK_FILE } from './data-dir-lock.js';

const MODULE = fileURLToPath(new URL('./data-dir-lock.ts', import.meta.url));

/**
 * Each contender says `ready` once loaded, waits for `go` (a file), takes the lock and says
 * `held` or `refused`; one that holds it keeps it until `done` (a file written once every
 * contender of the round has answered), so every other one finds it live however late it runs.
 */
function contender(dir: string, go: string, done: string, noLinks: boolean, onLine: (line: string) => void): Promise<void> {
  // without hard links: node:fs's linkSync fails as such a filesystem's link() does
  const patch = noLinks
    ? `const fs = createRequire(import.meta.url)('node:fs');
       fs.linkSync = () => { throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }); };
       syncBuiltinESMExports();`
    : '';
  const script = `
    import { existsSync } from 'node:fs';
    import { createRequire, syncBuiltinESMExports } from 'node:module';
    ${patch}
    const { lockDataDir } = await import(${JSON.stringify(MODULE)});
    console.log('ready');
    while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1));
    let lock;
    try { lock = lockDataDir(${JSON.stringify(dir)}); } catch (err) { console.log(/in use/.test(err.message) ? 'refused' : 'error ' + err.message); process.exit(0); }
    console.log('held');
    while (!existsSync(${JSON.stringify(done)})) await new Promise((r) => setTimeout(r, 5));
    lock.release();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        onLine(out.slice(0, nl).trim());
        out = out.slice(nl + 1);
      }
    });
    child.on('error', reject);
    child.on('exit', () => resolve());
  });
}

async function round(stale: boolean, noLinks: boolean): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lock-race-'));
  try {
    // a lock left by an engine that is gone: a pid that cannot be running
    if (stale) writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid: 2 ** 22 + 1, pidStart: '1', host: hostname(), startedAt: 'then' })}\n`);
    const go = join(dir, 'go');
    const done = join(dir, 'done');
    const N = 5;
    let ready = 0;
    const answers: string[] = [];
    const runs = Array.from({ length: N }, () =>
      contender(dir, go, done, noLinks, (line) => {
        if (line === 'ready') {
          // every contender loaded and polling: go at once
          if (++ready === N) writeFileSync(go, '');
        } else if (answers.push(line) === N) writeFileSync(done, '');
      }),
    );
    await Promise.all(runs);
    return answers.sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('lockDataDir, contended', () => {
  for (const noLinks of [false, true]) {
    for (const stale of [false, true]) {
      it(`lets exactly one of five engines started at once hold the lock (${stale ? 'a stale lock left behind' : 'fresh data dir'}${noLinks ? ', no hard links' : ''})`, async () => {
        for (let r = 0; r < 3; r++) {
          expect(await round(stale, noLinks)).toEqual(['held', 'refused', 'refused', 'refused', 'refused']);
        }
      }, 120_000);
    }
  }
});
