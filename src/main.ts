/**
 * `npm start`: load config (default.json → <env>.json → ENGINE_* env → CLI flags), start the
 * engine, stop it cleanly on SIGTERM/SIGINT/SIGHUP or when the process that launched it is gone.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/schema.js';
import { Engine } from './engine.js';
import { makeLogger } from './logger.js';
import { releaseSemiSpaceFlag } from './workers/young-generation.js';

/**
 * Whether `original` is still this process's parent. Node 20's `process.ppid` is read once at
 * start-up, so on Linux the parent is read from /proc; elsewhere `original` is probed with
 * signal 0 (ESRCH once it is gone).
 */
function parentAlive(original: number): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the `(comm)`: state, ppid, …; comm may itself contain spaces and parentheses.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === original;
  } catch {
    try {
      process.kill(original, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ESRCH';
    }
  }
}

/**
 * Calls `onGone` once the launcher (npm, a shell, a supervisor) has exited. A killed parent sends
 * its child no signal: the child is re-parented to init or a subreaper, so its parent pid changes.
 * Checking once a second costs one small /proc read; without it `npm start` stopped with SIGKILL
 * left the engine running and holding its ports.
 */
function watchParent(onGone: () => void, everyMs = 1000): void {
  const parent = process.ppid;
  // Started directly by init (a container's entry point): there is no launcher to outlive.
  if (parent <= 1) return;
  const timer = setInterval(() => {
    if (!parentAlive(parent)) {
      clearInterval(timer);
      onGone();
    }
  }, everyMs);
  timer.unref();
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig({ argv: process.argv.slice(2) });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = makeLogger(config.logLevel);
  let engine: Engine;
  try {
    // Each worker sizes its own young generation from here on (workers/young-generation.ts).
    releaseSemiSpaceFlag();
    engine = new Engine(config, logger);
  } catch (err) {
    // e.g. the data dir is in use by another engine, or was written in another format
    logger.error({ err }, 'engine failed to start');
    logger.flush();
    process.exitCode = 1;
    return;
  }
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'shutdown requested');
    engine.stop().then(
      (report) => {
        const failed = report.shards.some((s) => 'error' in s);
        logger.flush();
        process.exitCode = failed ? 1 : 0;
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  watchParent(() => shutdown('parent exited'));
  try {
    await engine.start();
  } catch (err) {
    logger.error({ err }, 'engine failed to start');
    logger.flush();
    process.exitCode = 1;
  }
}

void main();
