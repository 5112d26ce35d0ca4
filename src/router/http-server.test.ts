/**
 * The connection cap on a real Node HTTP server (a tiny app, real sockets): the oldest idle
 * socket makes room for a new one; when every socket has a request in progress, a new one is
 * refused with a 503 and closed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { checkingIntervalMs, listen, type ListeningServer } from './http-server.js';

const LIMITS = { headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000 };
let running: ListeningServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  running?.server.closeAllConnections();
  await new Promise((r) => running?.server.close(r) ?? r(undefined));
  running = undefined;
});

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

async function start(maxConnections: number, hold: Promise<void>): Promise<{ port: number; cap: ListeningServer['connections'] }> {
  const app = new Hono().get('/hold', async (c) => {
    await hold;
    return c.text('held');
  });
  app.get('/quick', (c) => c.text('quick'));
  running = await listen(app, '127.0.0.1', 0, { ...LIMITS, maxConnections });
  return { port: (running.server.address() as AddressInfo).port, cap: running.connections };
}

/** A raw TCP socket that records what it receives and resolves `closed` when the server closes it. */
function open(port: number, send?: string): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  socket.on('data', (d) => (data += d.toString()));
  socket.on('error', () => undefined);
  if (send) socket.write(send);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, received: () => data, closed };
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('connection cap', () => {
  it('closes the socket idle longest to admit a new connection at the cap', async () => {
    const { port, cap } = await start(4, Promise.resolve());
    const idle = [open(port), open(port), open(port), open(port)];
    await until(() => cap.open === 4);
    const res = await fetch(`http://127.0.0.1:${port}/quick`);
    expect(await res.text()).toBe('quick');
    await idle[0]!.closed;
    expect(cap.evicted).toBeGreaterThanOrEqual(1);
    expect(idle.slice(1).every((s) => !s.socket.destroyed)).toBe(true);
    expect(cap.open).toBeLessThanOrEqual(4);
  });

  it('evicts a keep-alive socket that finished its request before one that never sent anything newer', async () => {
    const { port, cap } = await start(3, Promise.resolve());
    const a = open(port);
    await until(() => cap.open === 1);
    const b = open(port, 'GET /quick HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => b.received().includes('quick'));
    const c = open(port);
    await until(() => cap.open === 3);
    // Idle since: a (connect), then b (answer finished), then c (connect): a goes first, then b.
    open(port);
    await a.closed;
    open(port);
    await b.closed;
    expect(c.socket.destroyed).toBe(false);
  });

  it('refuses a new connection with 503 when every socket has a request in progress', async () => {
    const held = gate();
    const { port, cap } = await start(4, held.wait);
    const busy = Array.from({ length: 4 }, () => open(port, 'GET /hold HTTP/1.1\r\nHost: x\r\n\r\n'));
    // Every socket's request must have reached the app before the next connection arrives.
    await until(() => cap.busySockets === 4);
    const refused = open(port);
    await refused.closed;
    expect(cap.refused).toBe(1);
    expect(refused.received()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*Retry-After: 1[\s\S]*TOO_MANY_CONNECTIONS/);
    held.open();
    await until(() => busy.every((b) => b.received().includes('held')));
    // Answered, the four are idle again: a new connection now evicts one instead of being refused.
    const res = await fetch(`http://127.0.0.1:${port}/quick`);
    expect(res.status).toBe(200);
    expect(cap.refused).toBe(1);
  });

  it('sweeps connections about four times per timeout, between 50 ms and 1 s', () => {
    expect(checkingIntervalMs({ ...LIMITS, maxConnections: 1, headersTimeoutMs: 10_000 })).toBe(1000);
    expect(checkingIntervalMs({ ...LIMITS, maxConnections: 1, headersTimeoutMs: 400 })).toBe(100);
    expect(checkingIntervalMs({ ...LIMITS, maxConnections: 1, headersTimeoutMs: 100 })).toBe(50);
  });
});
