import { describe, expect, it } from 'vitest';
import { makeLogger } from './logger.js';

function sink(): { lines: string[]; write(text: string): void } {
  const lines: string[] = [];
  return { lines, write: (text: string) => void lines.push(text) };
}

describe('engine logger', () => {
  it('writes JSON lines when not pretty (stdout piped: tests, CI)', () => {
    const out = sink();
    makeLogger('info', false, out).info({ request_id: 'r-1', status: 404 }, 'request rejected');
    const line = JSON.parse(out.lines.join(''));
    expect(line).toMatchObject({ level: 30, msg: 'request rejected', request_id: 'r-1', status: 404 });
  });

  it('writes readable lines at once, in this thread, when pretty (a terminal)', () => {
    const out = sink();
    const logger = makeLogger('info', true, out);
    logger.warn({ shard: 1, request_id: 'r-2' }, 'shard answered late');
    logger.debug('below the level');
    // Synchronous: the line is there before the call returns (nothing to lose at exit).
    expect(out.lines).toHaveLength(1);
    const text = out.lines[0]!;
    expect(() => JSON.parse(text)).toThrow();
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: shard answered late\n/);
    expect(text).toContain('request_id: "r-2"');
    expect(text).not.toContain('hostname');
  });
});
