/**
 * `npm start`: load config (default.json → <env>.json → ENGINE_* env → CLI flags), start the
 * engine, stop it cleanly on SIGTERM/SIGINT.
 */
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/schema.js';
import { Engine } from './engine.js';
import { makeLogger } from './logger.js';

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
  const engine = new Engine(config, logger);
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
  try {
    await engine.start();
  } catch (err) {
    logger.error({ err }, 'engine failed to start');
    logger.flush();
    process.exitCode = 1;
  }
}

void main();
