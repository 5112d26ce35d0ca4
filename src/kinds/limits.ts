/**
 * Bounds on query requests. Two sources:
 * - `BUILTIN`: fixed limits both languages enforce, read from config/limits.json (the Python side
 *   reads the same file in python/engine_polars/limits.py, so they cannot drift);
 * - `RequestLimits`: the operator's bounds from config (defaults in config/default.json).
 */
import { readFileSync } from 'node:fs';
import { fromRoot } from '../paths.js';
import type { EngineConfig } from '../config/schema.js';

export interface BuiltinLimits {
  maxFrameHeaderBytes: number;
  maxSubplans: number;
  maxWindowMs: number;
  maxWindows: number;
  maxPanesPerWindow: number;
  anomaliesMaxLimit: number;
  topnMaxN: number;
  funnelMinSteps: number;
  funnelMaxSteps: number;
  exportMinPage: number;
  exportMaxPage: number;
  customMaxParamsBytes: number;
  customMaxTopN: number;
  enrichmentMaxColumns: number;
  maxPercentiles: number;
}

export const BUILTIN: BuiltinLimits = JSON.parse(readFileSync(fromRoot('config', 'limits.json'), 'utf8')) as BuiltinLimits;

/** The configured bounds every request is checked against before it fans out. */
export type RequestLimits = Pick<
  EngineConfig,
  'maxFilterValues' | 'maxGroupByKeys' | 'maxResultCells' | 'maxPlanBytes' | 'maxResponseBytes' | 'maxJsonDepth' | 'queryTimeoutMs'
>;
