/**
 * Loads the config: config/default.json, then config/<env>.json (NODE_ENV=production or
 * `--env production`), then ENGINE_* environment variables, then CLI flags, then overrides
 * passed in code (tests). Every layer is validated; the first bad key stops start-up, and so
 * does a non-loopback `host` without `tokens` (./exposure.ts).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fromRoot } from '../paths.js';
import { checkExposure } from './exposure.js';
import { CONFIG_KEYS, ConfigError, envName, flagName, type EngineConfig } from './schema.js';

const CONFIG_DIR = fromRoot('config');

export interface LoadOptions {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  overrides?: Partial<Record<keyof EngineConfig, unknown>>;
  configDir?: string;
}

function readJson(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(path, `cannot read JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(path, 'expected a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function checkKnown(layer: Record<string, unknown>, where: string): void {
  for (const key of Object.keys(layer)) {
    if (!(key in CONFIG_KEYS)) {
      throw new ConfigError(key, `unknown key in ${where}; known keys: ${Object.keys(CONFIG_KEYS).join(', ')}`);
    }
  }
}

/** Parses `--key value` / `--key=value` flags into a layer; unknown flags are errors. */
export function parseFlags(argv: string[]): { layer: Record<string, unknown>; env?: string } {
  const byFlag = new Map(Object.keys(CONFIG_KEYS).map((k) => [flagName(k), k]));
  const layer: Record<string, unknown> = {};
  let env: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(arg, 'unexpected argument; flags look like --shards 4');
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(flag, 'flag needs a value');
    if (flag === '--env') {
      env = value;
      continue;
    }
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(flag, `unknown flag; known flags: --env, ${[...byFlag.keys()].join(', ')}`);
    layer[key] = value;
  }
  return env === undefined ? { layer } : { layer, env };
}

export function loadConfig(options: LoadOptions = {}): EngineConfig {
  const env = options.env ?? process.env;
  const dir = options.configDir ?? CONFIG_DIR;
  const flags = parseFlags(options.argv ?? []);
  const merged: Record<string, unknown> = {};

  const base = readJson(join(dir, 'default.json'));
  checkKnown(base, 'default.json');
  Object.assign(merged, base);

  const envFile = flags.env ?? env.NODE_ENV;
  if (envFile && envFile !== 'development' && envFile !== 'test') {
    const path = join(dir, `${envFile}.json`);
    if (!existsSync(path)) throw new ConfigError('env', `no config file ${path}`);
    const layer = readJson(path);
    checkKnown(layer, `${envFile}.json`);
    Object.assign(merged, layer);
  }
  for (const key of Object.keys(CONFIG_KEYS)) {
    const v = env[envName(key)];
    if (v !== undefined) merged[key] = v;
  }
  Object.assign(merged, flags.layer);
  if (options.overrides) {
    checkKnown(options.overrides, 'overrides');
    Object.assign(merged, options.overrides);
  }

  const out: Record<string, unknown> = {};
  for (const [key, parse] of Object.entries(CONFIG_KEYS)) {
    if (!(key in merged)) throw new ConfigError(key, 'missing (no default)');
    out[key] = (parse as (raw: unknown, key: string) => unknown)(merged[key], key);
  }
  const config = out as unknown as EngineConfig;
  if (config.maxAnswerBytesInFlight < config.maxResponseBytes) {
    throw new ConfigError('maxAnswerBytesInFlight', `${config.maxAnswerBytesInFlight} is below maxResponseBytes (${config.maxResponseBytes}): one whole answer must fit`);
  }
  // Checked after every layer: a token from the environment makes a production host fine.
  checkExposure(config);
  return config;
}
