/**
 * Connection limits on a real engine: sockets that dribble their headers or body, or sit idle
 * after an answer, are closed by the server (no hang), and 20,000 idle connections held by
 * another process do not stop /health from answering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { ROOT, startMain, type MainProcess } from '../helpers/main-process.js';

interface Probe {
  socket: Socket;
  received: () => string;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
}

function probe(url: string, send?: string): Probe {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let data = '';
  socket.on('data', (d) => (data += d.toString()));
  socket.on('error', () => undefined);
  if (send) socket.write(send);
  return { socket, received: () => data, closed: new Promise((r) => socket.once('close', () => r())) };
}

describe('server timeouts', () => {
  let engine: RunningEngine;
  beforeAll(async () => {
    engine = await startEngine({ shards: 1, headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 300 });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('closes a socket that sends partial headers and stalls, answering 408', async () => {
    const p = probe(engine.ingestUrl, 'POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: appl');
    await p.closed;
    expect(p.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a socket that connects and never sends a byte', async () => {
    const p = probe(engine.queryUrl);
    await p.closed;
    expect(p.received()).toMatch(/^(HTTP\/1\.1 408 |$)/);
  });

  it('closes a socket whose body stalls after its headers, and stores nothing of it', async () => {
    const before = (await (await fetch(`${engine.ingestUrl}/metrics/ingestion`)).json()) as { total_events: number };
    const p = probe(engine.ingestUrl, 'POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"event_type":');
    await p.closed;
    expect(p.received()).toMatch(/^HTTP\/1\.1 408 /);
    const after = (await (await fetch(`${engine.ingestUrl}/metrics/ingestion`)).json()) as { total_events: number };
    expect(after.total_events).toBe(before.total_events);
  });

  it('closes an idle keep-alive socket after keepAliveTimeoutMs, having answered its request', async () => {
    const p = probe(engine.queryUrl, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await p.closed;
    expect(p.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: keep-alive[\s\S]*"status":"healthy"/);
  });
});

interface HoldReport {
  connected: number;
  failed: number;
  closedByServer: number;
}

/**
 * Opens `count` idle connections from separate processes of `perProcess` each (this process
 * and the engine keep their 20,000-descriptor limit; it cannot be raised here), and resolves
 * when every process has opened all of its own and holds them.
 */
function holdConnections(url: string, count: number, perProcess = 5000): { report: Promise<HoldReport>; kill: () => void } {
  const { hostname, port } = new URL(url);
  const script = join(ROOT, 'test/helpers/hold-connections.mjs');
  const children = Array.from({ length: Math.ceil(count / perProcess) }, (_, i) =>
    spawn(process.execPath, [script, hostname, port, String(Math.min(perProcess, count - i * perProcess))], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const reports = children.map(
    (child) =>
      new Promise<HoldReport>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
        });
        child.on('exit', (code) => reject(new Error(`hold-connections exited with ${code}: ${err}`)));
      }),
  );
  const report = Promise.all(reports).then((rs) => ({
    connected: rs.reduce((n, r) => n + r.connected, 0),
    failed: rs.reduce((n, r) => n + r.failed, 0),
    closedByServer: rs.reduce((n, r) => n + r.closedByServer, 0),
  }));
  return { report, kill: () => children.forEach((c) => c.kill('SIGKILL')) };
}

describe('20,000 idle connections', () => {
  let main: MainProcess;
  beforeAll(async () => {
    // Timeouts longer than the test, so only the connection cap (default 4096 per port) protects.
    main = await startMain(['--shards', '1', '--headers-timeout-ms', '300000', '--request-timeout-ms', '300000']);
  });
  afterAll(async () => {
    main?.child.kill('SIGTERM');
    await main?.exited;
  });

  it('do not stop /health from answering on either port, and the engine holds at most maxConnections per port', async () => {
    const holder = holdConnections(main.queryUrl, 20_000);
    try {
      const report = await holder.report;
      expect(report.connected + report.failed).toBe(20_000);
      // Every connection was accepted; the cap closed the older idle ones to admit the newer.
      expect(report.failed).toBe(0);
      for (const url of [main.queryUrl, main.ingestUrl]) {
        const res = await fetch(`${url}/health`);
        expect(res.status).toBe(200);
        expect(((await res.json()) as { status: string }).status).toBe('healthy');
      }
      // Sockets plus the engine's own pipes, workers and files: far below 20,000.
      const fds = readdirSync(`/proc/${main.enginePid}/fd`).length;
      expect(fds).toBeLessThan(4096 + 1000);
    } finally {
      holder.kill();
    }
  });
});
