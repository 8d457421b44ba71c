/**
 * Callback destinations: a callbackUrl with userinfo, or reaching loopback, private, link-local or
 * metadata addresses, is refused when the email is submitted (InvalidEmailInputError naming
 * `callbackUrl`) and, for host names, at each POST on the resolved addresses (a final,
 * non-retryable failure, never 24 h of retries). Real HTTP server, real DNS (the system resolver).
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { checkCallbackUrl, forbiddenAddressRange, verifyCallbackSignature } from '../src/callbacks';
import { ConfigError, loadConfig } from '../src/config';
import { InvalidEmailInputError, validateSendInput } from '../src/client';
import type { CallbackPayload } from '../src/definitions';
import { createSesClient } from '../src/worker';

const SECRET = 'callback-secret-0123456789';
let server: http.Server;
let port = 0;
const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const payload: CallbackPayload = { eventId: 'msg-x:1', lifecycleId: 'msg-x', status: 'delivered', phase: 'completed', recipients: [], sesMessageIds: [], at: new Date().toISOString() };

async function notify(url: string, deps: { callbackAllowedHosts?: string[]; callbackRequireHttps?: boolean } = {}): Promise<unknown> {
  const ses = createSesClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const activities = createActivities({ ses, callbackSecret: SECRET, callbackTimeoutMs: 3_000, ...deps });
  try {
    return await new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') }).run(activities.notifyCallback.bind(activities), { url, payload }).catch((e: unknown) => e);
  } finally {
    ses.destroy();
  }
}

function expectFinalRefusal(err: unknown): void {
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as ApplicationFailure).type).toBe('CallbackRejected');
  expect((err as ApplicationFailure).message).toMatch(/^callbackUrl refused: /);
}

describe('checkCallbackUrl (no DNS)', () => {
  it.each([
    ['userinfo', 'https://user:pw@app.example/cb', /userinfo/],
    ['user only', 'https://user@app.example/cb', /userinfo/],
    ['loopback', 'http://127.0.0.1:8080/cb', /loopback/],
    ['loopback (other address)', 'http://127.1.2.3/cb', /loopback/],
    ['IPv6 loopback', 'http://[::1]:8080/cb', /loopback/],
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', /link-local/],
    ['metadata, IPv4-mapped IPv6', 'http://[::ffff:169.254.169.254]/latest/', /link-local/],
    ['metadata, IPv6 (AWS)', 'http://[fd00:ec2::254]/latest/', /unique local/],
    ['private 10/8', 'http://10.0.0.5/cb', /private/],
    ['private 172.16/12', 'http://172.20.0.1/cb', /private/],
    ['private 192.168/16', 'http://192.168.1.1/cb', /private/],
    ['this network', 'http://0.0.0.0:3000/cb', /this network/],
    ['decimal IPv4 (URL normalizes it)', 'http://2130706433/cb', /loopback/],
    ['localhost', 'http://localhost:3000/cb', /local host name/],
    ['localhost with a trailing dot', 'http://localhost.:3000/cb', /local host name/],
    ['a .localhost name', 'http://app.localhost/cb', /local host name/],
    ['ftp', 'ftp://app.example/cb', /http/],
  ])('refuses %s', (_name, url, reason) => {
    const r = checkCallbackUrl(url);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });

  it('accepts public destinations, an explicitly allowed host, and https-only when asked', () => {
    expect(checkCallbackUrl('https://app.example/cb').ok).toBe(true);
    expect(checkCallbackUrl('http://93.184.216.34/cb').ok).toBe(true);
    expect(checkCallbackUrl('http://127.0.0.1:8080/cb', { allowedHosts: ['127.0.0.1'] }).ok).toBe(true);
    expect(checkCallbackUrl('http://[::1]:8080/cb', { allowedHosts: ['::1'] }).ok).toBe(true);
    expect(checkCallbackUrl('http://LOCALHOST:8080/cb', { allowedHosts: ['localhost'] }).ok).toBe(true);
    expect(checkCallbackUrl('http://app.example/cb', { requireHttps: true }).ok).toBe(false);
    // Userinfo is refused even on an allowed host.
    expect(checkCallbackUrl('http://u:p@127.0.0.1/cb', { allowedHosts: ['127.0.0.1'] }).ok).toBe(false);
    expect(forbiddenAddressRange('8.8.8.8')).toBeUndefined();
    expect(forbiddenAddressRange('2606:4700::1111')).toBeUndefined();
  });
});

describe('sendTracked input and configuration name callbackUrl', () => {
  const valid = { from: 'app@example.com', to: ['a@example.com'], subject: 'Hi', text: 'Hello' };
  it.each(['https://user:pw@app.example/cb', 'http://169.254.169.254/latest/meta-data/', 'http://127.0.0.1:3000/cb', 'http://[::1]/cb'])('refuses %s with field callbackUrl', (callbackUrl) => {
    let err: unknown;
    try {
      validateSendInput({ ...valid, callbackUrl });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidEmailInputError);
    expect((err as InvalidEmailInputError).field).toBe('callbackUrl');
    expect((err as Error).message).toMatch(/^invalid callbackUrl: /);
  });

  it('accepts a loopback callback only when its host is allowed', () => {
    expect(validateSendInput({ ...valid, callbackUrl: 'http://127.0.0.1:3000/cb' }, { callbackAllowedHosts: ['127.0.0.1'] }).callbackUrl).toBe('http://127.0.0.1:3000/cb');
  });

  it('CALLBACK_URL is checked at start-up (userinfo, private, https in aws mode), CALLBACK_ALLOWED_HOSTS allows', () => {
    const bad = (env: Record<string, string>) => {
      try {
        loadConfig({ CALLBACK_SECRET: SECRET, ...env });
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(bad({ CALLBACK_URL: 'https://u:p@app.example/cb' })).toMatchObject({ variable: 'CALLBACK_URL' });
    expect(bad({ CALLBACK_URL: 'http://127.0.0.1:3000/cb' })).toBeInstanceOf(ConfigError);
    expect(bad({ CALLBACK_URL: 'http://app.example/cb', SES_LIFECYCLE_MODE: 'aws', SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:t' })).toMatchObject({ variable: 'CALLBACK_URL' });
    expect(loadConfig({ CALLBACK_SECRET: SECRET, CALLBACK_URL: 'http://127.0.0.1:3000/cb', CALLBACK_ALLOWED_HOSTS: '127.0.0.1' }).callbacks.allowedHosts).toEqual(['127.0.0.1']);
  });
});

describe('the callback activity', () => {
  it('a URL with userinfo is a final refusal naming callbackUrl (no TypeError retried for 24 h)', async () => {
    const before = received.length;
    expectFinalRefusal(await notify(`http://user:pw@127.0.0.1:${port}/cb`, { callbackAllowedHosts: ['127.0.0.1'] }));
    expect(received.length).toBe(before);
  });

  it('the metadata address and loopback are final refusals without a connection', async () => {
    const before = received.length;
    expectFinalRefusal(await notify('http://169.254.169.254/latest/meta-data/'));
    expectFinalRefusal(await notify(`http://127.0.0.1:${port}/cb`));
    expect(received.length).toBe(before);
  });

  it('a host name that resolves to a forbidden address is refused at POST time (DNS checked on the connection)', async () => {
    const name = hostname();
    const addresses = await lookup(name, { all: true }).catch(() => []);
    if (addresses.length === 0 || !addresses.every((a) => forbiddenAddressRange(a.address) !== undefined)) {
      console.warn(`skipped: ${name} does not resolve to loopback/private addresses here`);
      return;
    }
    const before = received.length;
    expect(checkCallbackUrl(`http://${name}:${port}/cb`).ok).toBe(true); // passes the static check
    expectFinalRefusal(await notify(`http://${name}:${port}/cb`));
    expect(received.length).toBe(before);
    // Explicitly allowed: delivered.
    expect(await notify(`http://${name}:${port}/cb`, { callbackAllowedHosts: [name] })).toEqual({ status: 200 });
    expect(received.length).toBe(before + 1);
  });

  it('an allowed loopback destination gets the signed POST; https-only refuses http', async () => {
    expect(await notify(`http://127.0.0.1:${port}/cb`, { callbackAllowedHosts: ['127.0.0.1'] })).toEqual({ status: 200 });
    const last = received.at(-1)!;
    expect(verifyCallbackSignature(SECRET, last.headers, last.body)).toBe(true);
    expect(JSON.parse(last.body)).toEqual(payload);
    expectFinalRefusal(await notify(`http://127.0.0.1:${port}/cb`, { callbackAllowedHosts: ['127.0.0.1'], callbackRequireHttps: true }));
  });
});
