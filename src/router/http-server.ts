/**
 * The Node HTTP server under each Hono app: socket timeouts from config and a per-port
 * connection cap. Owns sockets, never requests: what a request means is the apps' business.
 */
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

// Sent to a connection refused at the cap (every open socket has a request in progress).
const REFUSED_BODY = '{"error":"TOO_MANY_CONNECTIONS","message":"every connection slot has a request in progress"}';
const REFUSED = Buffer.from(
  'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n' +
    `Content-Length: ${Buffer.byteLength(REFUSED_BODY)}\r\n\r\n${REFUSED_BODY}`,
);

/**
 * Keeps at most `max` sockets open on one server. A new connection at the cap closes the socket
 * that has been idle longest (no request in progress: a fresh or keep-alive socket, or one still
 * dribbling its headers) to make room; when every socket is busy, the new one is refused.
 *
 * Two insertion-ordered collections make both steps O(1): `idle` is ordered by when a socket
 * last became idle, so its first entry is the one to evict; `busy` counts requests in progress.
 */
export class ConnectionCap {
  private readonly idle = new Set<Socket>();
  private readonly busy = new Map<Socket, number>();
  evicted = 0;
  refused = 0;

  constructor(readonly max: number) {}

  get open(): number {
    return this.idle.size + this.busy.size;
  }

  /** Sockets with a request in progress. */
  get busySockets(): number {
    return this.busy.size;
  }

  /** Registers on `server`; call before it listens. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.onConnection(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req.socket, res));
  }

  private onConnection(socket: Socket): void {
    if (this.open >= this.max) {
      const oldest = this.idle.values().next();
      if (oldest.done) {
        this.refused++;
        // Destroyed in the same tick as the accept, so the HTTP parser never reads a request from it.
        socket.write(REFUSED);
        socket.destroy();
        return;
      }
      this.evicted++;
      this.forget(oldest.value);
      oldest.value.destroy();
    }
    this.idle.add(socket);
    socket.once('close', () => this.forget(socket));
  }

  private onRequest(socket: Socket, res: ServerResponse): void {
    const n = this.busy.get(socket) ?? 0;
    if (n === 0) {
      // A socket refused or evicted at accept is not tracked; nothing to count.
      if (!this.idle.delete(socket)) return;
    }
    this.busy.set(socket, n + 1);
    res.once('close', () => {
      const left = (this.busy.get(socket) ?? 0) - 1;
      if (left > 0) return void this.busy.set(socket, left);
      if (!this.busy.delete(socket)) return;
      if (!socket.destroyed) this.idle.add(socket);
    });
  }

  private forget(socket: Socket): void {
    this.idle.delete(socket);
    this.busy.delete(socket);
  }
}

/**
 * How often Node sweeps connections for `headersTimeout` / `requestTimeout`: Node's default is
 * 30 s, which held a socket with partial headers for 66 s. A quarter of the shorter timeout,
 * between 50 ms and 1 s, closes a slow socket within about a second after its deadline.
 */
export function checkingIntervalMs(limits: ServerLimits): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
}

export interface ListeningServer {
  server: Server;
  connections: ConnectionCap;
}

/** Creates the server for `app` with the timeouts and the connection cap, and listens. */
export async function listen(app: Hono, host: string, port: number, limits: ServerLimits, logger?: Logger): Promise<ListeningServer> {
  // Node refuses headersTimeout > requestTimeout: the whole request cannot take less than its headers.
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  if (headersTimeout < limits.headersTimeoutMs) {
    logger?.warn({ headersTimeoutMs: limits.headersTimeoutMs, requestTimeoutMs: limits.requestTimeoutMs }, 'headersTimeoutMs > requestTimeoutMs; using requestTimeoutMs for both');
  }
  const server = createAdaptorServer({
    fetch: app.fetch,
    hostname: host,
    port,
    serverOptions: {
      headersTimeout,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(limits),
    },
  }) as Server;
  // Set again as properties: the constructor option only exists on newer Node 20 releases.
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  const connections = new ConnectionCap(limits.maxConnections);
  connections.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, connections };
}
