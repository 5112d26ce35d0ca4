/**
 * The engine's pino logger: JSON lines, or readable coloured lines when stdout is a terminal.
 * Tests, CI and log shippers read stdout through a pipe, so they always get JSON.
 *
 * Pretty printing runs in this thread, synchronously (pino-pretty's `prettyFactory` formats each
 * line as pino writes it), not as a pino transport: a transport is a worker thread that can drop
 * its last lines when the process exits, exactly the lines about why it stopped.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

interface LineSink {
  write(text: string): unknown;
}

/**
 * @param pretty readable lines instead of JSON (default: stdout is a terminal)
 * @param out where lines go (default: stdout)
 */
export function makeLogger(level: string, pretty = process.stdout.isTTY === true, out: LineSink = process.stdout): Logger {
  if (!pretty) return out === process.stdout ? pino({ level }) : pino({ level }, out as DestinationStream);
  const format = prettyFactory({ colorize: out === process.stdout ? process.stdout.hasColors?.() === true : false, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return pino({ level }, { write: (line: string) => void out.write(format(line)) });
}
