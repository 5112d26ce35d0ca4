import { describe, expect, it } from 'vitest';
import { Float64, Int64, LargeUtf8, Table, Utf8, makeVector, tableToIPC, vectorFromArray } from 'apache-arrow';
import { decodePartial } from './decode-partial.js';

describe('partial decoding', () => {
  it('decodes strings (ASCII and not), nullable floats and Int64 exactly like the generic accessor', () => {
    const keys = ['a', null, 'ünïcode ✓', '', 'zz'];
    const table = new Table({
      k: vectorFromArray(keys, new Utf8()),
      big: vectorFromArray(keys, new LargeUtf8()),
      f: vectorFromArray([1.5, null, -2, 0, 1e300], new Float64()),
      n: makeVector({ type: new Int64(), data: new BigInt64Array([1n, 2n, 3n, 2n ** 40n, 0n]) } as never),
    });
    const decoded = decodePartial(tableToIPC(table, 'stream'));
    expect(decoded.rows).toBe(5);
    expect(decoded.columns.get('k')).toEqual(keys);
    expect(decoded.columns.get('big')).toEqual(keys);
    expect(decoded.columns.get('f')).toEqual([1.5, null, -2, 0, 1e300]);
    expect(decoded.columns.get('n')).toEqual([1, 2, 3, 2 ** 40, 0]);
  });

  it('decodes multi-batch tables in order', () => {
    const a = new Table({ k: vectorFromArray(['a', 'b'], new Utf8()) });
    const b = new Table({ k: vectorFromArray([null, 'd'], new Utf8()) });
    const decoded = decodePartial(tableToIPC(a.concat(b), 'stream'));
    expect(decoded.columns.get('k')).toEqual(['a', 'b', null, 'd']);
  });

  it('decodes LargeUtf8 strings (as polars writes them) across batches, nulls and non-ASCII included', () => {
    const a = new Table({ k: vectorFromArray(['ab', 'ç'], new LargeUtf8()) });
    const b = new Table({ k: vectorFromArray([null, 'ünï', 'd'], new LargeUtf8()) });
    const decoded = decodePartial(tableToIPC(a.concat(b), 'stream'));
    expect(decoded.columns.get('k')).toEqual(['ab', 'ç', null, 'ünï', 'd']);
  });
});
