/**
 * The product's logger: pino, as JSON lines (one object per line, for log shippers) or, on a
 * terminal, as readable colored lines through pino-pretty (synchronously, no worker thread).
 * `LOG_FORMAT=json|pretty` forces one; the default `auto` picks pretty only when stdout is a TTY.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config';

/** Creates the logger `dev`, `worker` and `webhook` use. */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>, stream: NodeJS.WriteStream = process.stdout): Logger {
  const wantPretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && stream.isTTY === true);
  if (!wantPretty) return pino({ level: config.logLevel }, stream);
  return pino(
    { level: config.logLevel },
    pretty({ destination: stream, sync: true, colorize: stream.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
  );
}
