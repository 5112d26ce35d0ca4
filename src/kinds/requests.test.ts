/**
 * Request parsing of every kind, without an engine: each schema against good and bad input, the
 * message naming the field, and the configured bounds (filter values, groupBy keys) enforced.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import aggregate from './aggregate.js';
import anomalies from './anomalies.js';
import funnel from './funnel.js';
import type { QueryKind } from './kind.js';
import type { RequestLimits } from './limits.js';
import { parseWith } from './parse-request.js';
import percentiles from './percentiles.js';
import { RequestError } from './request-error.js';
import topn from './topn.js';
import window from './window.js';

const LIMITS: RequestLimits = {
  maxFilterValues: 5,
  maxGroupByKeys: 2,
  maxResultCells: 1000,
  maxPlanBytes: 4096,
  maxResponseBytes: 1 << 20,
  maxJsonDepth: 32,
  queryTimeoutMs: 1000,
};

function parse(kind: QueryKind, raw: unknown): any {
  return parseWith(kind.schema(LIMITS) as z.ZodType, raw);
}

/** The RequestError `raw` is rejected with; fails the test when it is accepted. */
function rejection(kind: QueryKind, raw: unknown): RequestError {
  try {
    parse(kind, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(RequestError);
    return err as RequestError;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

function expectField(kind: QueryKind, raw: unknown, field: string): void {
  const err = rejection(kind, raw);
  const named = err.problems.some((p) => p.field === field) || err.message.includes(`\`${field}\``);
  expect(named, `${JSON.stringify(raw)} → ${err.message}`).toBe(true);
}

describe('aggregate request', () => {
  it('keeps the seed shape and adds the bound on result cells', () => {
    expect(parse(aggregate, { groupBy: ['event_type'], metrics: ['value'] })).toEqual({
      kind: 'aggregate',
      filter: {},
      group_by: ['event_type'],
      metrics: ['value'],
      max_cells: 1000,
      format: 'json',
    });
    expect(parse(aggregate, { format: 'arrow' }).format).toBe('arrow');
    expect(parse(aggregate, {}).group_by).toEqual([]);
    expect(parse(aggregate, { groupBy: 'user_id' }).group_by).toEqual(['user_id']);
  });

  it('names the field of every bad input', () => {
    expectField(aggregate, { groupBy: ['nope'] }, 'groupBy[0]');
    expectField(aggregate, { groupBy: ['event_type', 'event_type'] }, 'groupBy[1]');
    expectField(aggregate, { groupBy: ['event_type', 'user_id', 'metadata.plan'] }, 'groupBy');
    expectField(aggregate, { metrics: ['price'] }, 'metrics[0]');
    expectField(aggregate, { foo: 1 }, 'foo');
    expectField(aggregate, { format: 'csv' }, 'format');
    expectField(aggregate, { groupBy: ['window'] }, 'windowSize');
    expectField(aggregate, { windowSize: '1h' }, 'windowSize');
    expectField(aggregate, { groupBy: ['window'], windowSize: '1 hour' }, 'windowSize');
    expectField(aggregate, { filter: { from: 10, to: 5 } }, 'filter.from');
    expectField(aggregate, { filter: { bogus: 1 } }, 'filter.bogus');
    expectField(aggregate, { filter: { user_id: [] } }, 'filter.user_id');
    expectField(aggregate, { filter: { event_type: 7 } }, 'filter.event_type');
  });

  it('names maxGroupByKeys and maxFilterValues when a list is over the bound', () => {
    expect(rejection(aggregate, { groupBy: ['event_type', 'user_id', 'metadata.plan'] }).message).toMatch(/maxGroupByKeys/);
    expect(rejection(aggregate, { filter: { user_id: ['a', 'b', 'c', 'd', 'e', 'f'] } }).message).toMatch(/maxFilterValues/);
  });

  it('refuses strings with a lone surrogate in filters', () => {
    expectField(aggregate, { filter: { user_id: 'a\ud800' } }, 'filter.user_id');
    expectField(aggregate, { filter: { user_id: ['ok', 'a\udc00'] } }, 'filter.user_id[1]');
    expectField(aggregate, { filter: { dimensions: { 'metadata.page': ['\ud800'] } } }, 'filter.dimensions.metadata.page[0]');
  });

  it('refuses dates that do not exist in filters', () => {
    expectField(aggregate, { filter: { from: '2026-02-31T00:00:00Z' } }, 'filter.from');
  });

  it('counts the windows of a filter range before any shard is asked', () => {
    expectField(aggregate, { groupBy: ['window'], windowSize: '1ms', filter: { from: 0, to: 1_000_000 } }, 'windowSize');
    expect(parse(aggregate, { groupBy: ['window'], windowSize: '1s', filter: { from: 0, to: 1_000_000 } }).window_ms).toBe(1000);
  });
});

describe('window request', () => {
  it('turns windowSize and slide into panes', () => {
    const r = parse(window, { windowSize: '1h', slide: '15m', aggFunc: 'p95', groupBy: ['event_type'] });
    expect(r.plan).toMatchObject({ pane_ms: 900_000, panes_per_window: 4, group_by: 'event_type', digest: true, max_cells: 250 });
    // Not a percentile: the bound is maxResultCells itself.
    expect(parse(window, { windowSize: '1h', slide: '15m', aggFunc: 'sum' }).plan.max_cells).toBe(1000);
  });

  it('names the field of every bad input', () => {
    expectField(window, {}, 'windowSize');
    expectField(window, { windowSize: '1h', slide: '2h' }, 'slide');
    expectField(window, { windowSize: '1h', slide: '7m' }, 'windowSize');
    expectField(window, { windowSize: '2s', slide: '1ms' }, 'slide');
    expectField(window, { windowSize: '1h', aggFunc: 'median' }, 'aggFunc');
    expectField(window, { windowSize: '1h', groupBy: ['event_type', 'user_id'] }, 'groupBy');
  });
});

describe('query-string kinds read the filter with the same rules as bodies', () => {
  it('percentiles: comma lists, digit-only bounds as epoch ms, duplicates collapsed', () => {
    const r = parse(percentiles, { percentiles: '0.5,0.50,0.99,0.995', event_type: 'a,b', from: '5', to: '2026-01-01T00:00:00Z' });
    expect(r.percentiles).toEqual([0.5, 0.99, 0.995]);
    expect(r.plan.filter).toEqual({ from: 5, to: Date.UTC(2026, 0, 1), event_types: ['a', 'b'] });
  });

  it('percentiles: names the parameter of every bad input', () => {
    for (const bad of ['0.5,1.5', '-0.1', 'abc', '0.5,,0.9', 'NaN', 'Infinity', '']) {
      expect(rejection(percentiles, { percentiles: bad }).problems[0]!.field, bad).toMatch(/^percentiles(\[\d+\])?$/);
    }
    expectField(percentiles, { from: '2026-13-01' }, 'from');
    expectField(percentiles, { from: '10', to: '5' }, 'from');
    expectField(percentiles, { user_id: 'a,,b' }, 'user_id[1]');
    expectField(percentiles, { exact: 'maybe' }, 'exact');
    expectField(percentiles, { nope: '1' }, 'nope');
  });

  it('anomalies: bounds on threshold and limit', () => {
    expect(parse(anomalies, {})).toMatchObject({ column: 'value', threshold: 3, limit: 100, groupBy: null, ddof: 1 });
    expectField(anomalies, { threshold: '0' }, 'threshold');
    expectField(anomalies, { limit: '100001' }, 'limit');
    expectField(anomalies, { ddof: '2' }, 'ddof');
  });
});

describe('top-n and funnel requests', () => {
  it('top-n: groupBy required, n bounded, a numeric string is not a number', () => {
    expect(parse(topn, { groupBy: 'user_id', n: 3 })).toMatchObject({ group_by: 'user_id', n: 3, shard_top: true, agg: 'sum', metric: 'value' });
    expect(parse(topn, { groupBy: 'event_type', aggFunc: 'count' })).toMatchObject({ metric: null, shard_top: false, max_cells: 1000 });
    expectField(topn, {}, 'groupBy');
    expectField(topn, { groupBy: 'user_id', n: '5' }, 'n');
    expectField(topn, { groupBy: 'user_id', n: 0 }, 'n');
    expectField(topn, { groupBy: 'user_id', n: 1.5 }, 'n');
  });

  it('funnel: steps or eventSequence, not both; window only when ordered', () => {
    expect(parse(funnel, { eventSequence: ['a', 'b'] })).toMatchObject({ steps: ['a', 'b'], mode: 'ordered', window_ms: null });
    expectField(funnel, {}, 'steps');
    expectField(funnel, { steps: ['a'] }, 'steps');
    expectField(funnel, { steps: ['a', 'b'], eventSequence: ['a', 'b'] }, 'eventSequence');
    expectField(funnel, { steps: ['a', 'b'], mode: 'unordered', window: '1h' }, 'window');
    expectField(funnel, { steps: ['a', ''] }, 'steps[1]');
  });
});
