/**
 * App callbacks (signed, retried, deduplicable) and the Prometheus endpoint, on the real stack:
 * sandbox SES → signed SNS → webhook → Temporal → worker → callback POSTs to a local app.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CALLBACK_HEADERS, signCallback, verifyCallbackSignature } from '../src/callbacks';
import { loadConfig } from '../src/config';
import type { CallbackPayload } from '../src/definitions';
import { startStack, type RunningStack } from '../src/stack';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';

const SECRET = 'test-secret-0123456789abcdef';
const received: { headers: http.IncomingHttpHeaders; body: string; status: number }[] = [];
let failFirst = 1;
let app: http.Server;
let appUrl = '';
let stack: RunningStack;

beforeAll(async () => {
  app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = failFirst-- > 0 ? 503 : 200; // the first POST fails: Temporal must retry it
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/ses-events`;
  quietRuntime();
  stack = await startStack({
    config: loadConfig({ LOG_LEVEL: 'silent', SES_CONFIGURATION_SET: 'callbacks', CALLBACK_URL: appUrl, CALLBACK_SECRET: SECRET, CALLBACK_ALLOWED_HOSTS: '127.0.0.1' }),
    temporal: { address: getTestAddress(), namespace: getTestNamespace() },
    taskQueue: uniqueTaskQueue('cb'),
    webhookPort: 0,
    sandbox: { port: 0, httpsPort: 0 },
    workflowBundle: { codePath: inject('workflowBundlePath') },
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  await stack?.stop();
  await new Promise((r) => app?.close(r));
});

describe('callback signatures', () => {
  it('verifies a genuine signature and refuses tampering, wrong secrets and stale timestamps', () => {
    const body = '{"a":1}';
    const ts = Math.floor(Date.now() / 1000);
    const headers = { [CALLBACK_HEADERS.timestamp]: String(ts), [CALLBACK_HEADERS.signature]: signCallback(SECRET, ts, body) };
    expect(verifyCallbackSignature(SECRET, headers, body)).toBe(true);
    expect(verifyCallbackSignature(SECRET, headers, '{"a":2}')).toBe(false);
    expect(verifyCallbackSignature('another-secret-0123456789', headers, body)).toBe(false);
    expect(verifyCallbackSignature(SECRET, headers, body, { now: (ts + 600) * 1000 })).toBe(false);
    expect(verifyCallbackSignature(SECRET, { ...headers, [CALLBACK_HEADERS.signature]: 'v1=00' }, body)).toBe(false);
  });
});

describe('callbacks and metrics on the real stack', () => {
  it('POSTs every state change signed, retries a 5xx with the same event id, ends with the final state', async () => {
    const email = await stack.lc.sendTracked({
      from: 'app@example.com',
      to: ['bounce+callbacks@simulator.amazonses.com'],
      subject: 'callbacks',
      text: 'x',
      policy: { deliveryDeadline: '3s', complaintWindow: '1s' },
    });
    const final = await email.result();
    expect(final.status).toBe('bounced');

    const mine = received.filter((r) => String(r.headers[CALLBACK_HEADERS.eventId]).startsWith(`${email.id}:`));
    for (const r of mine) expect(verifyCallbackSignature(SECRET, r.headers, r.body)).toBe(true);
    const payloads = mine.map((r) => JSON.parse(r.body) as CallbackPayload);
    // The first POST got 503 and was retried with the same event id.
    expect(mine[0]!.status).toBe(503);
    expect(payloads[1]!.eventId).toBe(payloads[0]!.eventId);
    const delivered = mine.filter((r) => r.status === 200).map((r) => JSON.parse(r.body) as CallbackPayload);
    const ids = delivered.map((p) => p.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(delivered.map((p) => p.status)).toContain('bounced');
    expect(delivered.at(-1)).toMatchObject({ status: 'bounced', phase: 'completed', recipients: [{ email: 'bounce+callbacks@simulator.amazonses.com', status: 'bounced', bounceType: 'Permanent' }] });
  });

  it('serves Prometheus metrics: webhook outcomes, events by type, lifecycles by state, SES account health, send latency', async () => {
    // Not on the public SNS listener; on the loopback metrics listener.
    expect((await fetch(`${stack.webhook.url}/metrics`)).status).toBe(404);
    expect(stack.webhook.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${stack.webhook.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/ses_webhook_requests_total\{outcome="signalled",reason=""\} \d+/);
    expect(text).toMatch(/ses_events_total\{type="Bounce"\} [1-9]/);
    expect(text).toMatch(/ses_lifecycles\{state="bounced"\} [1-9]/);
    expect(text).toMatch(/ses_account_bounce_rate [0-9.]+/);
    expect(text).toContain('ses_account_rate_threshold{rate="complaint",level="pause"} 0.005');
    expect(text).toMatch(/ses_send_latency_seconds_count [1-9]/);
  });
});
