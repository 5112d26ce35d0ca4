/** bundleToCache under contention: engines started side by side bundle into one cache. */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../paths.js';
import { STALE_BUNDLE_MS, bundleToCache } from './bundle-file.mjs';

const run = promisify(execFile);

describe('bundleToCache', () => {
  it('six processes bundling the same entry at once all get one whole file, and no temporary file is left', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bundle-race-'));
    try {
      symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
      writeFileSync(join(root, 'package.json'), '{"name":"bundle-race","type":"module"}');
      mkdirSync(join(root, 'src'));
      // big enough that the writes overlap: ~2 MB of code
      const lines = Array.from({ length: 40_000 }, (_, i) => `export const v${i}: number = ${i} * 2;`);
      writeFileSync(join(root, 'src', 'entry.ts'), `${lines.join('\n')}\nexport const total: number = ${lines.length};\n`);
      const script = `import { bundleToCache } from ${JSON.stringify(join(ROOT, 'src/workers/bundle-file.mjs'))};
        const url = bundleToCache({ root: ${JSON.stringify(root)}, dir: 'race', name: 'entry', entry: ${JSON.stringify(join(root, 'src', 'entry.ts'))} });
        const m = await import(url.href);
        console.log(JSON.stringify({ url: url.href, total: m.total, last: m.v39999 }));`;
      const outs = await Promise.all(Array.from({ length: 6 }, () => run(process.execPath, ['--input-type=module', '-e', script], { cwd: root })));
      const answers = outs.map((o) => JSON.parse(o.stdout) as { url: string; total: number; last: number });
      expect(new Set(answers.map((a) => a.url)).size).toBe(1);
      for (const a of answers) expect([a.total, a.last]).toEqual([40_000, 79_998]);
      const files = readdirSync(join(root, '.cache', 'race'));
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^entry\.[0-9a-f]{16}\.mjs$/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);

  it('deletes bundles of the same name unused for a day, keeps recent ones and other names, and touches the one it reuses', () => {
    const root = mkdtempSync(join(tmpdir(), 'bundle-prune-'));
    try {
      symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
      writeFileSync(join(root, 'package.json'), '{"name":"bundle-prune","type":"module"}');
      mkdirSync(join(root, 'src'));
      writeFileSync(join(root, 'src', 'entry.ts'), 'export const answer: number = 42;\n');
      const dir = join(root, '.cache', 'prune');
      mkdirSync(dir, { recursive: true });
      const old = (Date.now() - STALE_BUNDLE_MS - 3600_000) / 1000;
      const recent = (Date.now() - STALE_BUNDLE_MS / 2) / 1000;
      const plant = (name: string, at: number) => {
        writeFileSync(join(dir, name), '// planted\n');
        utimesSync(join(dir, name), at, at);
      };
      plant('entry.00000000000000aa.mjs', old);
      plant('entry.00000000000000bb.mjs.1234.tmp', old);
      plant('entry.00000000000000cc.mjs', recent);
      plant('other.00000000000000dd.mjs', old);
      plant('entry.notahash.mjs', old);
      const bundle = () => bundleToCache({ root, dir: 'prune', name: 'entry', entry: join(root, 'src', 'entry.ts') });
      const first = bundle().pathname.split('/').at(-1)!;
      expect(readdirSync(dir).sort()).toEqual([first, 'entry.00000000000000cc.mjs', 'entry.notahash.mjs', 'other.00000000000000dd.mjs'].sort());
      // Reused a day later: touched, so the next prune keeps it.
      utimesSync(join(dir, first), old, old);
      expect(bundle().pathname.split('/').at(-1)).toBe(first);
      expect(statSync(join(dir, first)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
      expect(readdirSync(dir)).toContain(first);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
