/**
 * Who can reach the engine: without tokens it serves loopback only. A `host` that other machines
 * can reach (0.0.0.0, ::, a LAN address, a host name) with no `tokens` would let anyone who
 * reaches the port ingest, read and drop enrichment tables, so start-up refuses it unless the
 * operator says so with `allowUnauthenticated: true`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError, type EngineConfig } from './schema.js';

/** 127.0.0.0/8, ::1 (also as `[::1]` and IPv4-mapped `::ffff:127.x.y.z`) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    if (h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * Throws ConfigError naming `host`, `tokens` and `allowUnauthenticated` when the engine would
 * serve a non-loopback address without authentication.
 */
export function checkExposure(config: Pick<EngineConfig, 'host' | 'tokens' | 'allowUnauthenticated'>): void {
  if (config.tokens.length > 0 || config.allowUnauthenticated || isLoopbackHost(config.host)) return;
  throw new ConfigError(
    'host',
    `${JSON.stringify(config.host)} is not a loopback address and no \`tokens\` are configured, so anyone who reaches the port could ingest, query and drop data. ` +
      'Configure `tokens` (e.g. ENGINE_TOKENS=\'[{"token":"<16+ characters>","scopes":["admin"]}]\'), bind a loopback `host` (127.0.0.1), ' +
      'or set `allowUnauthenticated` to true (ENGINE_ALLOW_UNAUTHENTICATED=true) to serve it open on purpose',
  );
}
