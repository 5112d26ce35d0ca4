/**
 * One engine per data dir: a second engine on a data dir in use refuses to start and touches
 * nothing; after a `kill -9` the lock is stale and the next engine takes it over; a clean stop
 * removes it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAndRestart, startMain, type MainProcess } from '../helpers/main-process.js';
import { getJson, postJson } from '../helpers/engine-harness.js';
import { lockDataDir, LOCK_FILE, TORN_LOCK_GRACE_MS } from '../../src/shards/log/data-dir-lock.js';

const dirs: string[] = [];
const running: MainProcess[] = [];

afterAll(async () => {
  for (const m of running) {
    m.child.kill('SIGTERM');
    await m.exited;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dir-lock-'));
  dirs.push(d);
  return d;
}

async function count(queryUrl: string): Promise<number> {
  const { body } = await postJson(`${queryUrl}/query/aggregate`, {});
  return body.results[0].count as number;
}

const events = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ timestamp: 1_700_000_000_000 + i, event_type: 'view', user_id: `${tag}-${i % 7}`, value: i }));

describe('data dir lock', () => {
  it('refuses a second engine on a data dir in use, without touching its files; takes a stale lock over after kill -9; a clean stop removes it', async () => {
    const dir = dataDir();
    const args = ['--data-dir', dir, '--shards', '2'];
    const first = await startMain(args);
    running.push(first);
    expect((await postJson(`${first.ingestUrl}/ingest/batch?wait=true`, { events: events(300, 'a') })).status).toBe(200);
    const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    expect(lock.pid).toBe(first.enginePid);
    const shardLogs = join(dir, 'shard-0');
    const before = statSync(shardLogs).mtimeMs;

    // the second engine exits 1 before it opens anything, naming the holder
    await expect(startMain(args)).rejects.toThrow(new RegExp(`in use by another engine \\(pid ${first.enginePid}`));
    expect(statSync(shardLogs).mtimeMs).toBe(before);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(first.enginePid);
    // and the first goes on serving, everything it acknowledged intact
    expect((await postJson(`${first.ingestUrl}/ingest/batch?wait=true`, { events: events(200, 'b') })).status).toBe(200);
    expect(await count(first.queryUrl)).toBe(500);

    // kill -9: the lock stays behind, names a dead pid, and is taken over
    const second = await killAndRestart(first, args, running);
    expect(second.logs.some((l) => l.msg?.startsWith('data dir lock was stale') && l.holder?.pid === first.enginePid)).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(second.enginePid);
    expect(await count(second.queryUrl)).toBe(500);
    expect((await getJson(`${second.queryUrl}/ready`)).status).toBe(200);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    running.splice(running.indexOf(second), 1);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 120_000);

  it('in one process: a second lock on the same dir is refused until the first is released', () => {
    const dir = dataDir();
    const a = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(/in use by another engine \(pid \d+/);
    a.release();
    const b = lockDataDir(dir);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    a.release(); // a stale handle does not remove another holder's lock
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    b.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('takes over a lock naming a pid that runs but started at another time (a reused pid), and one that was never written whole', () => {
    const dir = dataDir();
    const file = join(dir, LOCK_FILE);
    // our own pid with another start time: a process that reused the pid of a dead engine
    rmSync(file, { force: true });
    const stale: unknown[] = [];
    writeFileSync(file, JSON.stringify({ pid: process.pid, pidStart: '1', host: hostname(), startedAt: 'then' }));
    const a = lockDataDir(dir, (h) => stale.push(h));
    expect(stale).toHaveLength(1);
    a.release();
    // torn: taken over once it is TORN_LOCK_GRACE_MS old (younger, it may be one being written)
    writeFileSync(file, '{"pid": 12');
    const written = statSync(file).mtimeMs;
    const b = lockDataDir(dir, (h) => stale.push(h));
    expect(Date.now() - written).toBeGreaterThanOrEqual(TORN_LOCK_GRACE_MS);
    expect(stale).toHaveLength(2);
    expect(stale[1]).toBeNull();
    b.release();
    // empty and old: taken over
    writeFileSync(file, '');
    utimesSync(file, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const c = lockDataDir(dir, (h) => stale.push(h));
    expect(stale).toHaveLength(3);
    c.release();
  });

  it('waits for a lock that another engine created and is still writing (a filesystem without hard links), and refuses it once written', async () => {
    const dir = dataDir();
    const file = join(dir, LOCK_FILE);
    // created empty, written 300 ms later, then held for 5 s: what an engine does without link()
    const script = `
      const fs = require('node:fs');
      fs.writeFileSync(${JSON.stringify(file)}, '', { flag: 'wx' });
      setTimeout(() => fs.writeFileSync(${JSON.stringify(file)}, JSON.stringify({ pid: process.pid, pidStart: null, host: require('node:os').hostname(), startedAt: 'now' }) + '\\n'), 300);
      setTimeout(() => {}, 5000);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    try {
      while (!existsSync(file)) await new Promise((r) => setTimeout(r, 5));
      const stale: unknown[] = [];
      expect(() => lockDataDir(dir, (h) => stale.push(h))).toThrow(new RegExp(`in use by another engine \\(pid ${child.pid},`));
      expect(stale).toEqual([]);
      expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(child.pid);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
