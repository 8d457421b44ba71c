/**
 * The webhook's front door against hostile certificates, forged canonical strings, hanging
 * certificate hosts, and its listener limits: real HTTPS servers serving real X.509 certificates
 * (a throw-away PKI), real RSA signatures, real sockets. No Temporal is needed: every message here
 * is refused, or is a validly signed non-SES notification (answered `ignored` after verification).
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import http from 'node:http';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSignedSnsMessage, verifySnsSignature, type SnsMessage, type UnsignedSnsMessage } from '../src/sandbox/sns-signing';
import { buildWebhookApp, SnsVerifier, startWebhookServer, type WebhookOptions } from '../src/webhook';
import { issue, startPemServer, type KeyAndCert, type PemServer } from './helpers/pki';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let connection: Connection;
let client: Client;
let tlsCa: KeyAndCert; // signs the HTTPS servers' TLS certificates
let signingCa: KeyAndCert; // the trust anchor of signing certificates
let goodSigner: KeyAndCert;
let server: PemServer;
let other: PemServer;
const apps: FastifyInstance[] = [];

const pemPath = () => `/SimpleNotificationService-${randomUUID().replace(/-/g, '')}.pem`;

beforeAll(async () => {
  connection = Connection.lazy({ address: '127.0.0.1:1' });
  client = new Client({ connection });
  tlsCa = issue({ cn: 'test TLS CA', ca: true });
  signingCa = issue({ cn: 'test signing CA', ca: true });
  goodSigner = issue({ cn: 'sns.amazonaws.com', issuer: signingCa });
  server = await startPemServer(tlsCa);
  other = await startPemServer(tlsCa);
});

afterAll(async () => {
  for (const a of apps) await a.close();
  await server?.close();
  await other?.close();
  await connection?.close();
});

function options(overrides: Partial<WebhookOptions> = {}): WebhookOptions {
  return {
    temporal: { client },
    allowedTopicArns: [TOPIC],
    certHostPattern: new RegExp(`^(${escapeRe(server.host)}|${escapeRe(other.host)})$`),
    extraCaPem: tlsCa.certPem, // TLS trust for the fetch
    trustedCaPems: [signingCa.certPem], // the only signing anchor
    logger: false,
    ...overrides,
  };
}

async function app(overrides: Partial<WebhookOptions> = {}): Promise<FastifyInstance> {
  const a = await buildWebhookApp(options(overrides));
  apps.push(a);
  return a;
}

/** A non-SES notification signed by `signer`, whose certificate is served at `host` + `path`. */
function signed(signer: KeyAndCert, host: string, path: string, o: Partial<UnsignedSnsMessage> = {}): SnsMessage {
  const msg: UnsignedSnsMessage = { Type: 'Notification', MessageId: randomUUID(), TopicArn: TOPIC, Message: 'not an SES event', Timestamp: new Date().toISOString(), ...o };
  return buildSignedSnsMessage(msg, { privateKeyPem: signer.keyPem, version: '1', signingCertUrl: `https://${host}${path}` });
}

/** Serves `pem` at a fresh path of `srv` and returns a message signed by `signer` pointing there. */
function served(signer: KeyAndCert, pem: string, srv: PemServer = server, o: Partial<UnsignedSnsMessage> = {}): SnsMessage {
  const path = pemPath();
  srv.set(path, pem);
  return signed(signer, srv.host, path, o);
}

async function post(a: FastifyInstance, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await a.inject({ method: 'POST', url: '/sns', headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' }, payload: JSON.stringify(body) });
  return { status: res.statusCode, json: res.json() };
}

const NOT_TRUSTED = { status: 403, json: { error: 'signing certificate not trusted' } };
const IGNORED = { status: 200, json: { status: 'ignored' } };


/** Polls until `cond` holds (events, not time: the caller's budget is vitest's hang guard). */
async function waitUntil(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

describe('the signing certificate itself is checked (subject, validity, chain), not only its key', () => {
  it('a certificate issued by the trusted CA for sns.amazonaws.com verifies (control)', async () => {
    expect(await post(await app(), served(goodSigner, goodSigner.certPem))).toEqual(IGNORED);
  });

  it('an expired self-signed certificate with CN=evil.example, served from an allowed host, is refused', async () => {
    const evil = issue({ cn: 'evil.example', notBefore: new Date(Date.now() - 400 * 86_400_000), notAfter: new Date(Date.now() - 30 * 86_400_000) });
    const body = served(evil, evil.certPem);
    expect(verifySnsSignature(body, evil.certPem)).toBe(true); // the signature itself is fine
    expect(await post(await app(), body)).toEqual(NOT_TRUSTED);
  });

  it('each check on its own: wrong subject, expired, not yet valid, not chained, a CA as signer', async () => {
    const a = await app();
    const cases: [string, KeyAndCert][] = [
      ['CN=evil.example from the trusted CA', issue({ cn: 'evil.example', issuer: signingCa })],
      ['look-alike CN', issue({ cn: 'sns.amazonaws.com.evil.example', issuer: signingCa })],
      ['SAN names another host (CN ignored when SAN has DNS names)', issue({ cn: 'sns.amazonaws.com', dnsNames: ['evil.example'], issuer: signingCa })],
      ['expired', issue({ cn: 'sns.amazonaws.com', issuer: signingCa, notBefore: new Date(Date.now() - 90 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })],
      ['not yet valid', issue({ cn: 'sns.amazonaws.com', issuer: signingCa, notBefore: new Date(Date.now() + 86_400_000), notAfter: new Date(Date.now() + 90 * 86_400_000) })],
      ['self-signed sns.amazonaws.com', issue({ cn: 'sns.amazonaws.com' })],
      ['issued by the TLS CA (trusted for TLS, not for signing)', issue({ cn: 'sns.amazonaws.com', issuer: tlsCa })],
      ['a CA certificate as signer', issue({ cn: 'sns.amazonaws.com', issuer: signingCa, ca: true })],
    ];
    for (const [name, signer] of cases) expect(await post(a, served(signer, signer.certPem)), name).toEqual(NOT_TRUSTED);
    // A body that is not a certificate at all.
    expect(await post(a, served(goodSigner, 'hello')), 'not a PEM').toEqual(NOT_TRUSTED);
  });

  it('a chain through an intermediate in the served PEM verifies; the same leaf without it does not', async () => {
    const intermediate = issue({ cn: 'test intermediate', issuer: signingCa, ca: true });
    const leaf = issue({ cn: 'sns.amazonaws.com', issuer: intermediate });
    const a = await app();
    expect(await post(a, served(leaf, `${leaf.certPem}${intermediate.certPem}`))).toEqual(IGNORED);
    expect(await post(a, served(leaf, leaf.certPem))).toEqual(NOT_TRUSTED);
    // A configured intermediate works too.
    expect(await post(await app({ certIntermediatePems: [intermediate.certPem] }), served(leaf, leaf.certPem))).toEqual(IGNORED);
  });

  it('an intermediate missing from the PEM is fetched from the certificate\'s "CA Issuers" URL (DER), only on an allowed URL', async () => {
    const intermediate = issue({ cn: 'test intermediate (AIA)', issuer: signingCa, ca: true });
    let fetches = 0;
    const aia = http.createServer((req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(new X509Certificate(intermediate.certPem).raw);
    });
    await new Promise<void>((r) => aia.listen(0, '127.0.0.1', r));
    const aiaUrl = `http://127.0.0.1:${(aia.address() as AddressInfo).port}/int.cer`;
    try {
      const leaf = issue({ cn: 'sns.amazonaws.com', issuer: intermediate, caIssuersUrl: aiaUrl });
      expect(new X509Certificate(leaf.certPem).infoAccess).toContain(`CA Issuers - URI:${aiaUrl}`);
      const verifier = (issuerUrlPattern?: RegExp) =>
        new SnsVerifier({
          certHostPattern: new RegExp(`^${escapeRe(server.host)}$`),
          certPathPattern: /^\/SimpleNotificationService-[0-9a-f]+\.pem$/,
          timeoutMs: 2_000,
          fetchCaPem: tlsCa.certPem,
          trustedCaPems: [signingCa.certPem],
          ...(issuerUrlPattern ? { issuerUrlPattern } : {}),
        });
      // The default pattern (crt.*.amazontrust.com) does not allow this URL: not fetched, refused.
      await expect(verifier().verify(served(leaf, leaf.certPem))).rejects.toMatchObject({ permanent: true, reason: 'cert-not-trusted' });
      expect(fetches).toBe(0);
      const allowed = verifier(new RegExp(`^${escapeRe(aiaUrl)}$`));
      await expect(allowed.verify(served(leaf, leaf.certPem))).resolves.toBeUndefined();
      await expect(allowed.verify(served(leaf, leaf.certPem))).resolves.toBeUndefined(); // intermediate cached
      expect(fetches).toBe(1);
    } finally {
      await new Promise((r) => aia.close(r));
    }
  });

  it('by default only Amazon Root CA 1-4 are anchors: a well-formed sns.amazonaws.com certificate from another CA is refused', async () => {
    const v = new SnsVerifier({ certHostPattern: new RegExp(`^${escapeRe(server.host)}$`), certPathPattern: /^\/SimpleNotificationService-[0-9a-f]+\.pem$/, timeoutMs: 2_000, fetchCaPem: tlsCa.certPem });
    const body = served(goodSigner, goodSigner.certPem);
    const err = await v.verify(body).catch((e: unknown) => e);
    expect(err).toMatchObject({ permanent: true, reason: 'cert-not-trusted' });
    expect((err as Error).message).toMatch(/does not chain/);
  });
});

describe('canonical-string malleability', () => {
  it('a MessageId carrying "\\nSubject\\n<subject>" with Subject removed is refused, though its signature matches', async () => {
    const a = await app();
    const genuine = served(goodSigner, goodSigner.certPem, server, { Subject: 'Amazon SES Email Event Notification' });
    const { Subject, ...rest } = genuine;
    const forged = { ...rest, MessageId: `${genuine.MessageId}\nSubject\n${Subject}` };
    expect(verifySnsSignature(forged as SnsMessage, goodSigner.certPem)).toBe(true); // the same string to sign
    expect(await post(a, genuine)).toEqual(IGNORED);
    expect(await post(a, forged)).toEqual({ status: 403, json: { error: 'malformed SNS message' } });
  });
});

describe('cold certificates: hanging URLs never starve a genuine message', () => {
  it('8 messages with hanging certificate URLs in flight; a genuine message with a cold certificate still verifies', async () => {
    // Ordering, not wall-clock: the genuine message must be answered while the 8 hanging fetches
    // are still pending (they end only at the fetch timeout), however slow the machine is.
    const a = await app({ certFetchTimeoutMs: 10_000 });
    const paths = Array.from({ length: 8 }, () => pemPath());
    let settled = 0;
    const hanging = paths.map((p) =>
      post(a, { ...signed(goodSigner, server.host, p), Signature: Buffer.from('garbage').toString('base64') }).finally(() => {
        settled += 1;
      }),
    );
    await waitUntil(() => paths.every((p) => server.hits(p) >= 1)); // the 8 fetches are under way
    expect(await post(a, served(goodSigner, goodSigner.certPem))).toEqual(IGNORED);
    expect(settled).toBe(0);
    const results = await Promise.all(hanging);
    for (const r of results) expect(r).toEqual({ status: 503, json: { error: 'signing certificate unavailable' } });
  });

  it('concurrent messages naming one certificate URL share one fetch; a failed URL is answered from memory for a while', async () => {
    const a = await app({ certFetchTimeoutMs: 500 });
    const path = pemPath();
    const results = await Promise.all(Array.from({ length: 20 }, () => post(a, signed(goodSigner, server.host, path))));
    for (const r of results) expect(r.status).toBe(503);
    expect(server.hits(path)).toBe(1);
    expect((await post(a, signed(goodSigner, server.host, path))).status).toBe(503);
    expect(server.hits(path)).toBe(1);
  });

  it('past the per-host budget, more URLs on that host get 503 at once, and other hosts are unaffected', async () => {
    const a = await app({ certFetchTimeoutMs: 10_000, maxConcurrentCertFetchesPerHost: 4 });
    const paths = Array.from({ length: 4 }, () => pemPath());
    let settled = 0;
    const hanging = paths.map((p) =>
      post(a, signed(goodSigner, server.host, p)).finally(() => {
        settled += 1;
      }),
    );
    await waitUntil(() => paths.every((p) => server.hits(p) >= 1));
    // Answered while the budget's 4 fetches still hang: refused at once, not after a timeout.
    expect(await post(a, signed(goodSigner, server.host, pemPath()))).toEqual({ status: 503, json: { error: 'signing certificate unavailable' } });
    expect(await post(a, served(goodSigner, goodSigner.certPem, other))).toEqual(IGNORED);
    expect(settled).toBe(0);
    await Promise.all(hanging);
  });

  it('a certificate fetched once is cached: the next message verifies without a request', async () => {
    const a = await app();
    const path = pemPath();
    server.set(path, goodSigner.certPem);
    expect(await post(a, signed(goodSigner, server.host, path))).toEqual(IGNORED);
    expect(await post(a, signed(goodSigner, server.host, path))).toEqual(IGNORED);
    expect(server.hits(path)).toBe(1);
  });
});

/** Opens a socket, sends one keep-alive GET /healthz, resolves with the socket after the response. */
function keepAliveRequest(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    });
    socket.once('data', () => resolve(socket));
    socket.on('error', reject);
  });
}

describe('listener limits', () => {
  it('idle keep-alive connections close after keepAliveTimeoutMs (default 10 s, not 72 s)', async () => {
    const def = await app();
    expect(def.server.keepAliveTimeout).toBe(10_000);
    const srv = await startWebhookServer({ ...options(), keepAliveTimeoutMs: 500, port: 0 });
    try {
      const socket = await keepAliveRequest(Number(new URL(srv.url).port));
      const answered = Date.now();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        socket.on('close', () => resolve(Date.now() - answered));
        setTimeout(() => reject(new Error('keep-alive connection still open after 3 s')), 3_000).unref();
      });
      expect(closedAfter).toBeGreaterThanOrEqual(400);
      expect(closedAfter).toBeLessThan(2_000);
    } finally {
      await srv.close();
    }
  });

  it('caps open connections (maxConnections): one more is closed on arrival', async () => {
    const srv = await startWebhookServer({ ...options(), maxConnections: 2, port: 0 });
    const sockets: Socket[] = [];
    try {
      const port = Number(new URL(srv.url).port);
      sockets.push(await keepAliveRequest(port), await keepAliveRequest(port));
      const third = createConnection({ host: '127.0.0.1', port });
      sockets.push(third);
      third.on('error', () => undefined);
      const outcome = await new Promise<string>((resolve) => {
        third.on('connect', () => third.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
        third.on('data', () => resolve('answered'));
        third.on('close', () => resolve('closed'));
        setTimeout(() => resolve('open'), 2_000).unref();
      });
      expect(outcome).toBe('closed');
      expect(sockets[0]!.destroyed).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
      await srv.close();
    }
  });
});

describe('/metrics is not on the public SNS listener', () => {
  it('is served on the loopback metrics listener, and 404 on the SNS listener', async () => {
    const srv = await startWebhookServer({ ...options(), port: 0 });
    try {
      expect((await fetch(`${srv.url}/metrics`)).status).toBe(404);
      expect(srv.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${srv.metricsUrl}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('ses_webhook_requests_total');
    } finally {
      await srv.close();
    }
  });

  it('with metricsBearerToken it requires the token everywhere, and may then be served on the SNS listener', async () => {
    const token = 'metrics-token-0123456789';
    const srv = await startWebhookServer({ ...options(), metricsBearerToken: token, port: 0 });
    try {
      for (const base of [srv.url, srv.metricsUrl!]) {
        expect((await fetch(`${base}/metrics`)).status, base).toBe(401);
        expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, base).toBe(401);
        expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status, base).toBe(200);
      }
    } finally {
      await srv.close();
    }
  });
});
