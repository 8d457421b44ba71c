/**
 * Logs: JSON lines when stdout is not a terminal (log shippers, CI), readable lines on a TTY,
 * LOG_FORMAT forces either. Real pino and pino-pretty writing to a stream.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';

function capture(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  Object.assign(stream, { isTTY });
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('createLogger', () => {
  it('writes JSON lines when the stream is not a terminal (LOG_FORMAT=auto)', () => {
    const out = capture(false);
    createLogger(loadConfig({}), out.stream).info({ lifecycleId: 'msg-1' }, 'email sent');
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'email sent', lifecycleId: 'msg-1', level: 30 });
  });

  it('writes readable lines on a terminal, JSON when LOG_FORMAT=json, readable when LOG_FORMAT=pretty', () => {
    const tty = capture(true);
    createLogger(loadConfig({}), tty.stream).info({ lifecycleId: 'msg-2' }, 'email sent');
    const text = tty.text();
    expect(() => JSON.parse(text.trim()) as unknown).toThrow();
    expect(text).toContain('email sent');
    expect(text).toContain('INFO');
    expect(text).toContain('msg-2');

    const forcedJson = capture(true);
    createLogger(loadConfig({ LOG_FORMAT: 'json' }), forcedJson.stream).warn('careful');
    expect(JSON.parse(forcedJson.text().trim())).toMatchObject({ msg: 'careful', level: 40 });

    const forcedPretty = capture(false);
    createLogger(loadConfig({ LOG_FORMAT: 'pretty' }), forcedPretty.stream).error('broken');
    expect(forcedPretty.text()).toMatch(/ERROR.*broken/);
  });

  it('refuses an unknown LOG_FORMAT naming the variable', () => {
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT/);
  });
});
