/**
 * Hostile input against the SNS webhook: a table of attacks, each with the status the webhook
 * must answer and "nothing signalled" checked through Temporal itself.
 *
 * Real things only: the local SES sandbox signs messages with its SNS key and serves the signing
 * certificate over HTTPS with its own CA; the webhook apps are the product's, built against the
 * shared Temporal dev server; a few cases go over real sockets (oversized declarations, slow
 * bodies). No worker polls the apps' task queue, so any event the webhook records leaves a
 * workflow behind (the lifecycle it signalled, or `orphan-<sesMessageId>`): a case proves that
 * nothing was signalled by showing those workflows do not exist.
 *
 * Wherever a refusal must come from a later check (topic allowlist, replay window, URL checks,
 * SES parsing), the message is validly signed, so each case tests exactly one thing.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SA, WORKFLOW_TYPE, type MessageLifecycleInput } from '../../src/definitions';
import type { SnsMessage, UnsignedSnsMessage } from '../../src/sandbox';
import { generateSandboxPki } from '../../src/sandbox/certs';
import { DEFAULT_BODY_LIMIT, DEFAULT_SNS_HOST_PATTERN, startWebhookServer, type SnsRouteStatus, type WebhookServer } from '../../src/webhook';
import {
  exactHost,
  FigureTally,
  flipSignatureBit,
  newSesId,
  orphanId,
  otherPrivateKeyPem,
  prototypeIsClean,
  rawExchange,
  sesJson,
  signalsReceived,
  signWith,
  snsHeaders,
  startCanary,
  startHostileEnv,
  unsignedConfirmation,
  unsignedNotification,
  victimLifecycleId,
  workflowExists,
  type Canary,
  type HostileEnv,
} from './hostile-helpers';

// ---------------------------------------------------------------------------------------------
// Environment

let env: HostileEnv;
/** Webhook apps by name; every case names the one it targets (default `sandbox`). */
const apps = {} as Record<AppName, FastifyInstance>;
/** Counts connections: SubscribeURL and SigningCertURL SSRF targets point here. */
let canary: Canary;
/** An HTTPS server (own CA) that answers every request with a redirect to the canary. */
let redirector: { server: HttpsServer; port: number; requests: number };
let victimWithSesId: { workflowId: string; sesMessageId: string };
const tally = new FigureTally('webhook');

type AppName = 'sandbox' | 'aws' | 'awsSubscribe' | 'shortWindow' | 'big' | 'redirect';

const TWO_HOURS = 2 * 3_600_000;

beforeAll(async () => {
  env = await startHostileEnv('webhook');
  canary = await startCanary();
  // Production patterns for certificate URLs (sns.<region>.amazonaws.com): the look-alike cases.
  apps.sandbox = await env.app();
  apps.aws = await env.app({ certHostPattern: DEFAULT_SNS_HOST_PATTERN });
  // Sandbox certificates (so signatures verify) but the production SubscribeURL pattern.
  apps.awsSubscribe = await env.app({ subscribeHostPattern: DEFAULT_SNS_HOST_PATTERN });
  apps.shortWindow = await env.app({ replayWindowMs: TWO_HOURS });
  apps.big = await env.app({ bodyLimit: 8 * 1024 * 1024 });

  // A SubscribeURL host the webhook trusts (own CA, allowed host) that redirects to the canary.
  const pki = await generateSandboxPki();
  const r = { server: undefined as unknown as HttpsServer, port: 0, requests: 0 };
  r.server = createHttpsServer({ key: pki.server.keyPem, cert: pki.server.certPem }, (req, res) => {
    r.requests += 1;
    req.resume();
    res.writeHead(302, { location: `http://127.0.0.1:${canary.port}/latest/meta-data/` }).end();
  });
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.port = (r.server.address() as { port: number }).port;
  redirector = r;
  // Trusts both CAs for its fetches (the sandbox's certificate host, the redirector); signs only with the sandbox CA.
  apps.redirect = await env.app({ subscribeHostPattern: exactHost(`localhost:${r.port}`), extraCaPem: `${env.sandbox.caCertPem}${pki.ca.certPem}`, trustedCaPems: [env.sandbox.caCertPem] });

  // A message lifecycle that claims an SES message id (what visibility-query injection would hit).
  const sesMessageId = newSesId();
  const workflowId = victimLifecycleId();
  const input: MessageLifecycleInput = { lifecycleId: workflowId, message: { from: 'app@example.com', to: ['victim@example.com'], subject: 'S', text: 'T' } };
  await env.client.workflow.start(WORKFLOW_TYPE.message, {
    workflowId,
    taskQueue: env.taskQueue,
    args: [input],
    typedSearchAttributes: [
      { key: SA.kind, value: 'message' },
      { key: SA.sesMessageIds, value: [sesMessageId] },
    ],
  });
  victimWithSesId = { workflowId, sesMessageId };
  // Visibility is eventually consistent: wait until the victim is findable by its SES id.
  const deadline = Date.now() + 10_000;
  for (;;) {
    let found = false;
    for await (const wf of env.client.workflow.list({ query: `SesMessageIds = "${sesMessageId}"` })) found ||= wf.workflowId === workflowId;
    if (found) break;
    if (Date.now() > deadline) throw new Error('victim lifecycle not visible');
    await new Promise((res) => setTimeout(res, 100));
  }
});

afterAll(async () => {
  const figure = tally.write();
  console.log(`[hostile] webhook: ${JSON.stringify(figure)}`);
  if (victimWithSesId) await env.client.workflow.getHandle(victimWithSesId.workflowId).terminate('hostile test done').catch(() => undefined);
  await new Promise<void>((resolve) => (redirector ? redirector.server.close(() => resolve()) : resolve()));
  await canary?.close();
  await env?.close();
});

// ---------------------------------------------------------------------------------------------
// Case machinery

interface Built {
  headers: Record<string, string | string[]>;
  body: string | Buffer;
  /** Workflow ids that must not exist afterwards (nothing signalled, nothing started). */
  mustNotExist: string[];
  /** Further checks after the response (e.g. signal counts, no SSRF connection). */
  after?: () => Promise<void> | void;
}

interface HostileCase {
  name: string;
  app?: AppName;
  build(): Built | Promise<Built>;
  /** The one correct status; a list only where two different fixes would both be correct. */
  expectStatus: number | readonly number[];
  /** The short error body of a refusal (`{ error }`). */
  expectError?: string;
  /** The `{ status }` body of a 2xx. */
  expectOk?: SnsRouteStatus;
}

const E = {
  malformed: 'malformed SNS message',
  mismatch: 'message type mismatch',
  unknownType: 'unknown message type',
  version: 'unsupported signature version',
  certUrl: 'signing certificate URL not allowed',
  signature: 'invalid signature',
  topic: 'topic not allowed',
  stale: 'timestamp outside the replay window',
  subscribeUrl: 'SubscribeURL not allowed',
  sesEvent: 'invalid SES event',
  unsigned: 'unsigned message',
  tooLarge: 'payload too large',
  mediaType: 'unsupported media type',
  badRequest: 'bad request',
  confirmFailed: 'subscription confirmation failed',
} as const;

const sign = (msg: UnsignedSnsMessage, version: '1' | '2' = '2'): SnsMessage => env.sandbox.signMessage(msg, version);
const foreignTopic = (suffix = 'someone-elses-topic'): string => `arn:aws:sns:${env.sandbox.region}:${env.sandbox.accountId}:${suffix}`;
const certUrlOn = (hostAndPort: string, path = env.certPath, scheme = 'https'): string => `${scheme}://${hostAndPort}${path}`;
const ago = (ms: number): string => new Date(Date.now() - ms).toISOString();
const awsPem = '/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem';

/** A validly signed Delivery notification for a fresh SES message id. */
function delivery(o: { timestamp?: string; topic?: string; version?: '1' | '2'; subject?: string; message?: unknown } = {}): { sesId: string; msg: UnsignedSnsMessage; signed: SnsMessage } {
  const sesId = newSesId();
  const msg = unsignedNotification(o.topic ?? env.topicArn, o.message ?? sesJson('Delivery', sesId), {
    ...(o.timestamp !== undefined ? { timestamp: o.timestamp } : {}),
    ...(o.subject !== undefined ? { subject: o.subject } : {}),
  });
  return { sesId, msg, signed: sign(msg, o.version ?? '2') };
}

/** The signed message unchanged (the case tests another field, a header, or the app). */
const same = (s: SnsMessage): Record<string, unknown> => ({ ...s });

type DeliveryOptions = Parameters<typeof delivery>[0];

/** A case on a fresh signed Delivery, mutated by `mutate`; the SES message's orphan must not exist. */
function mutated(
  mutate: (signed: SnsMessage, msg: UnsignedSnsMessage) => Record<string, unknown>,
  o: DeliveryOptions | (() => DeliveryOptions) = {},
  headers: Record<string, string | string[]> | (() => Record<string, string | string[]>) = {},
): () => Built {
  return () => {
    const d = delivery(typeof o === 'function' ? o() : o);
    const extra = typeof headers === 'function' ? headers() : headers;
    const body = mutate(d.signed, d.msg);
    return { headers: { ...snsHeaders(typeof body.Type === 'string' ? body.Type : 'Notification'), ...extra }, body: JSON.stringify(body), mustNotExist: [orphanId(d.sesId)] };
  };
}

/** A case on a validly signed Notification whose Message is `message` (text or JSON). */
function signedMessage(message: unknown, mustNotExist: string[] = [], after?: () => Promise<void> | void): () => Built {
  return () => {
    const signed = sign(unsignedNotification(env.topicArn, message));
    return { headers: snsHeaders('Notification'), body: JSON.stringify(signed), mustNotExist, ...(after ? { after } : {}) };
  };
}

/** A case on a validly signed SubscriptionConfirmation with this SubscribeURL; nothing may connect to the canary. */
function confirmation(subscribeUrl: string | (() => string), o: { type?: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation'; topic?: () => string } = {}): () => Built {
  return () => {
    const before = canary.connections();
    const url = typeof subscribeUrl === 'function' ? subscribeUrl() : subscribeUrl;
    const type = o.type ?? 'SubscriptionConfirmation';
    const signed = sign(unsignedConfirmation(o.topic?.() ?? env.topicArn, type, url));
    return {
      headers: snsHeaders(type),
      body: JSON.stringify(signed),
      mustNotExist: [],
      after: () => {
        expect(canary.connections(), 'connections to the SSRF canary').toBe(before);
      },
    };
  };
}

/** Same as {@link mutated}, replacing only the SigningCertURL. */
const certUrlCase = (url: () => string): (() => Built) => mutated((s) => ({ ...s, SigningCertURL: url() }));

/** JSON object text from `pairs` in order, so a key can appear twice (JSON.stringify cannot write that). */
const jsonWithPairs = (pairs: [string, unknown][]): string => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
const pairsOf = (o: Record<string, unknown>): [string, unknown][] => Object.entries(o);

/** `n` distinct recipient addresses. */
const recipients = (n: number): string[] => Array.from({ length: n }, (_, i) => `r${i}@example.com`);

/** The decoded payloads of the sesEvent signals a workflow received. */
async function signalledEvents(workflowId: string): Promise<{ type: string; sesMessageId: string; recipients: string[] }[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data)
    .filter((d): d is Uint8Array => d != null)
    .map((d) => (JSON.parse(Buffer.from(d).toString('utf8')) as { event: { type: string; sesMessageId: string; recipients: string[] } }).event);
}

const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);

// ---------------------------------------------------------------------------------------------
// The table

const CASES: HostileCase[] = [
  // --- forged and broken signatures ---------------------------------------------------------
  { name: 'signature: one bit flipped in the first byte', build: mutated((s) => ({ ...s, Signature: flipSignatureBit(s.Signature, 0) })), expectStatus: 403, expectError: E.signature },
  { name: 'signature: one bit flipped in the last byte', build: mutated((s) => ({ ...s, Signature: flipSignatureBit(s.Signature, -1) })), expectStatus: 403, expectError: E.signature },
  {
    name: 'signature: made with another RSA key (certificate URL of the sandbox)',
    build: mutated((s, m) => ({ ...signWith(m, otherPrivateKeyPem(), '2', s.SigningCertURL) })),
    expectStatus: 403,
    expectError: E.signature,
  },
  { name: 'signature: truncated to half', build: mutated((s) => ({ ...s, Signature: s.Signature.slice(0, Math.floor(s.Signature.length / 2)) })), expectStatus: 403, expectError: E.signature },
  { name: 'signature: last 4 base64 characters cut', build: mutated((s) => ({ ...s, Signature: s.Signature.slice(0, -4) })), expectStatus: 403, expectError: E.signature },
  { name: 'signature: empty string', build: mutated((s) => ({ ...s, Signature: '' })), expectStatus: 400, expectError: E.malformed },
  { name: 'signature: not base64 at all', build: mutated((s) => ({ ...s, Signature: '*** not base64! ***' })), expectStatus: 403, expectError: E.signature },
  {
    name: 'signature: field missing',
    build: mutated(({ Signature: _sig, ...rest }) => rest),
    expectStatus: 400,
    expectError: E.malformed,
  },
  { name: 'signature: a number instead of a string', build: mutated((s) => ({ ...s, Signature: 12345 })), expectStatus: 400, expectError: E.malformed },
  { name: 'signature: longer than 4096 characters', build: mutated((s) => ({ ...s, Signature: s.Signature.repeat(20) })), expectStatus: 400, expectError: E.malformed },
  { name: 'signature: copied from another valid message', build: mutated((s) => ({ ...s, Signature: delivery().signed.Signature })), expectStatus: 403, expectError: E.signature },
  {
    name: "SignatureVersion '1' carrying an RSA-SHA256 signature",
    build: mutated((s) => ({ ...s, SignatureVersion: '1' })),
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: "SignatureVersion '2' carrying an RSA-SHA1 signature",
    build: mutated((s) => ({ ...s, SignatureVersion: '2' }), { version: '1' }),
    expectStatus: 403,
    expectError: E.signature,
  },
  { name: "SignatureVersion '0'", build: mutated((s) => ({ ...s, SignatureVersion: '0' })), expectStatus: 403, expectError: E.version },
  { name: "SignatureVersion '3'", build: mutated((s) => ({ ...s, SignatureVersion: '3' })), expectStatus: 403, expectError: E.version },
  { name: "SignatureVersion ''", build: mutated((s) => ({ ...s, SignatureVersion: '' })), expectStatus: 403, expectError: E.version },
  { name: "SignatureVersion ' 2' (leading space)", build: mutated((s) => ({ ...s, SignatureVersion: ' 2' })), expectStatus: 403, expectError: E.version },
  { name: "SignatureVersion '02'", build: mutated((s) => ({ ...s, SignatureVersion: '02' })), expectStatus: 403, expectError: E.version },
  { name: 'SignatureVersion as the number 2', build: mutated((s) => ({ ...s, SignatureVersion: 2 })), expectStatus: 400, expectError: E.malformed },

  // --- signed fields changed after signing ---------------------------------------------------
  {
    name: 'tampered: Message swapped (Delivery → Bounce of the same SES message)',
    build: mutated((s) => {
      const sesId = (JSON.parse(s.Message) as { mail: { messageId: string } }).mail.messageId;
      return { ...s, Message: JSON.stringify(sesJson('Bounce', sesId)) };
    }),
    expectStatus: 403,
    expectError: E.signature,
  },
  { name: 'tampered: MessageId changed (dedupe evasion)', build: mutated((s) => ({ ...s, MessageId: randomUUID() })), expectStatus: 403, expectError: E.signature },
  {
    name: 'tampered: stale message with a refreshed Timestamp',
    build: mutated((s) => ({ ...s, Timestamp: new Date().toISOString() }), () => ({ timestamp: ago(5 * 3_600_000) })),
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: "tampered: a foreign topic's message relabelled with our TopicArn",
    build: mutated((s) => ({ ...s, TopicArn: env.topicArn }), () => ({ topic: foreignTopic() })),
    expectStatus: 403,
    expectError: E.signature,
  },
  { name: 'tampered: Subject added after signing', build: mutated((s) => ({ ...s, Subject: 'Hello' })), expectStatus: 403, expectError: E.signature },
  { name: 'tampered: signed Subject removed (null)', build: mutated((s) => ({ ...s, Subject: null }), { subject: 'Signed subject' }), expectStatus: 403, expectError: E.signature },
  {
    name: 'tampered: Notification turned into an UnsubscribeConfirmation',
    build: mutated((s) => ({ ...s, Type: 'UnsubscribeConfirmation', Token: 'abc', SubscribeURL: `https://${env.sandbox.certHost}/?Action=ConfirmSubscription&Token=abc` })),
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: 'tampered: SubscriptionConfirmation Token changed (nothing fetched)',
    build: () => {
      const b = confirmation(() => `https://${env.sandbox.certHost}/?Action=ConfirmSubscription&TopicArn=${env.topicArn}&Token=t`)();
      return { ...b, body: JSON.stringify({ ...(JSON.parse(b.body as string) as SnsMessage), Token: 'forged' }) };
    },
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: 'tampered: SubscriptionConfirmation re-sent as a Notification',
    build: () => {
      const signed = sign(unsignedConfirmation(env.topicArn, 'SubscriptionConfirmation', `https://${env.sandbox.certHost}/?Action=ConfirmSubscription&Token=t`));
      return { headers: snsHeaders('Notification'), body: JSON.stringify({ ...signed, Type: 'Notification' }), mustNotExist: [] };
    },
    expectStatus: 403,
    expectError: E.signature,
  },

  // --- SigningCertURL: foreign, look-alike, tricks (sandbox host pattern) ---------------------
  { name: 'cert URL: foreign host', build: certUrlCase(() => certUrlOn('evil.example')), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: http instead of https', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, env.certPath, 'http')), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: look-alike host (allowed name + .evil.example)', build: certUrlCase(() => certUrlOn(`localhost.evil.example:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: userinfo (allowed host@evil.example)', build: certUrlCase(() => certUrlOn(`${env.sandbox.certHost}@evil.example`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: userinfo on the allowed host', build: certUrlCase(() => certUrlOn(`user:pw@${env.sandbox.certHost}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: IPv4 literal of the real certificate server', build: certUrlCase(() => certUrlOn(`127.0.0.1:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: IPv6 literal', build: certUrlCase(() => certUrlOn(`[::1]:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: another port (the canary)', build: certUrlCase(() => certUrlOn(`localhost:${canary.port}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: default port', build: certUrlCase(() => certUrlOn('localhost')), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: upper-case host', build: certUrlCase(() => certUrlOn(`LOCALHOST:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: unicode host that IDNA-maps to the allowed one (ⓛocalhost)', build: certUrlCase(() => certUrlOn(`\u24dbocalhost:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: trailing-dot host', build: certUrlCase(() => certUrlOn(`localhost.:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: tab inside the host (WHATWG strips it)', build: certUrlCase(() => certUrlOn(`local\thost:${env.httpsPort}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: backslash before @', build: certUrlCase(() => certUrlOn(`${env.sandbox.certHost}\\@evil.example`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: dot segments (/x/../)', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `/x/..${env.certPath}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: percent-encoded dot segments (/x/%2e%2e/)', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `/x/%2e%2e${env.certPath}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: no .pem (.txt)', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, env.certPath.replace(/\.pem$/, '.txt'))), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: .pem only in the query', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `${env.certPath.replace(/\.pem$/, '')}?x=.pem`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: query after .pem', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `${env.certPath}?x=1`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: fragment after .pem', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `${env.certPath}#frag`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'path: upper-case .PEM', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, env.certPath.replace(/\.pem$/, '.PEM'))), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: scheme-relative', build: certUrlCase(() => `//${env.sandbox.certHost}${env.certPath}`), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: file:', build: certUrlCase(() => 'file:///etc/ssl/certs/SimpleNotificationService-abc.pem'), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: data:', build: certUrlCase(() => 'data:application/x-pem-file;base64,AAAA.pem'), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: longer than 1024 characters', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `/${'a'.repeat(1100)}${env.certPath}`)), expectStatus: 403, expectError: E.certUrl },
  { name: 'cert URL: longer than 2048 characters', build: certUrlCase(() => certUrlOn(env.sandbox.certHost, `/${'a'.repeat(2100)}${env.certPath}`)), expectStatus: 400, expectError: E.malformed },
  {
    name: 'cert URL: Lambda-style SigningCertUrl key pointing at the canary is ignored (genuine message recorded, no connection)',
    build: () => {
      const d = delivery();
      const before = canary.connections();
      return {
        headers: snsHeaders('Notification'),
        body: JSON.stringify({ ...d.signed, SigningCertUrl: certUrlOn(`localhost:${canary.port}`) }),
        mustNotExist: [],
        after: async () => {
          expect(canary.connections()).toBe(before);
          expect(await workflowExists(env.client, orphanId(d.sesId))).toBe(true);
        },
      };
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },

  // --- SigningCertURL under the production pattern (sns.<region>.amazonaws.com) ------------------
  ...(
    [
      ['look-alike suffix sns.us-east-1.amazonaws.com.evil.example', `https://sns.us-east-1.amazonaws.com.evil.example${awsPem}`],
      ['AWS host as a path on evil.com', `https://evil.com/sns.us-east-1.amazonaws.com${awsPem}`],
      ['userinfo https://sns.us-east-1.amazonaws.com@evil.example/x.pem', 'https://sns.us-east-1.amazonaws.com@evil.example/x.pem'],
      ['look-alike prefix evilsns.us-east-1.amazonaws.com', `https://evilsns.us-east-1.amazonaws.com${awsPem}`],
      ['explicit port 8443', `https://sns.us-east-1.amazonaws.com:8443${awsPem}`],
      ['explicit default port 443 (non-canonical)', `https://sns.us-east-1.amazonaws.com:443${awsPem}`],
      ['upper-case host', `https://SNS.US-EAST-1.AMAZONAWS.COM${awsPem}`],
      ['IPv4 literal', `https://54.239.28.85${awsPem}`],
      ['decimal IPv4 (3639549013)', `https://3639549013${awsPem}`],
      ['http', `http://sns.us-east-1.amazonaws.com${awsPem}`],
      ['percent-encoded dot in the host', `https://sns.us-east-1.amazonaws.com%2eevil.example${awsPem}`],
      ['ideographic full stop (。) in the host', `https://sns.us-east-1.amazonaws.com\u3002evil.example${awsPem}`],
      ['punycode look-alike of amazonaws', `https://sns.us-east-1.xn--amazonaws-d4a.com${awsPem}`],
      ['China suffix then evil (.com.cn.evil.example)', `https://sns.us-east-1.amazonaws.com.cn.evil.example${awsPem}`],
      ['an S3 bucket on amazonaws.com', `https://s3.amazonaws.com/attacker-bucket${awsPem}`],
      ['dot segments after .pem', `https://sns.us-east-1.amazonaws.com${awsPem}/../../evil.pem`],
      ['other path on the AWS host', `https://sns.us-east-1.amazonaws.com/bucket${awsPem}`],
    ] as const
  ).map(([what, url]): HostileCase => ({ name: `cert URL (production pattern): ${what}`, app: 'aws', build: certUrlCase(() => url), expectStatus: 403, expectError: E.certUrl })),

  // --- SubscribeURL: SSRF attempts (validly signed, allowlisted topic) -------------------------
  ...(
    [
      ['cloud metadata https://169.254.169.254', () => 'https://169.254.169.254/latest/meta-data/iam/security-credentials/'],
      ['cloud metadata over http', () => 'http://169.254.169.254/latest/meta-data/'],
      ['localhost (the canary)', () => `https://localhost:${canary.port}/?Action=ConfirmSubscription&TopicArn=${env.topicArn}&Token=t`],
      ['127.0.0.1 (the canary)', () => `https://127.0.0.1:${canary.port}/?Action=ConfirmSubscription&Token=t`],
      ['[::1]', () => `https://[::1]:${canary.port}/?Action=ConfirmSubscription&Token=t`],
      ['hex IPv4 0x7f000001', () => `https://0x7f000001:${canary.port}/?Action=ConfirmSubscription&Token=t`],
      ['decimal IPv4 2130706433', () => `https://2130706433:${canary.port}/?Action=ConfirmSubscription&Token=t`],
      ['octal IPv4 0177.0.0.1', () => `https://0177.0.0.1:${canary.port}/?Action=ConfirmSubscription&Token=t`],
      ['file:', () => 'file:///etc/passwd'],
      ['gopher:', () => `gopher://127.0.0.1:${canary.port}/_FLUSHALL`],
      ['http on the allowed host', () => `http://${env.sandbox.certHost}/?Action=ConfirmSubscription&TopicArn=${env.topicArn}&Token=t`],
      ['userinfo: allowed host@127.0.0.1', () => `https://${env.sandbox.certHost}@127.0.0.1:${canary.port}/?Action=ConfirmSubscription&Token=t`],
      ['metadata.google.internal', () => 'https://metadata.google.internal/computeMetadata/v1/'],
      ['another Action (Unsubscribe) on the allowed host', () => `https://${env.sandbox.certHost}/?Action=Unsubscribe&SubscriptionArn=${env.topicArn}:x`],
      ['another topic in the URL', () => `https://${env.sandbox.certHost}/?Action=ConfirmSubscription&TopicArn=${foreignTopic()}&Token=t`],
      ['fragment hiding an authority', () => `https://${env.sandbox.certHost}/#@127.0.0.1:${canary.port}`],
    ] as const
  ).map(([what, url]): HostileCase => ({ name: `SubscribeURL SSRF: ${what}`, build: confirmation(url), expectStatus: 403, expectError: E.subscribeUrl })),
  ...(
    [
      ['look-alike sns.us-east-1.amazonaws.com.evil.example', 'https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription&Token=t'],
      ['userinfo sns.us-east-1.amazonaws.com@169.254.169.254', 'https://sns.us-east-1.amazonaws.com@169.254.169.254/?Action=ConfirmSubscription'],
      ['port 8443', 'https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription&Token=t'],
      ['http', 'http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t'],
    ] as const
  ).map(([what, url]): HostileCase => ({ name: `SubscribeURL (production pattern): ${what}`, app: 'awsSubscribe', build: confirmation(url), expectStatus: 403, expectError: E.subscribeUrl })),
  {
    name: 'SubscribeURL: an allowed host that redirects to the canary (redirect not followed → 502)',
    app: 'redirect',
    build: () => {
      const before = redirector.requests;
      const b = confirmation(() => `https://localhost:${redirector.port}/?Action=ConfirmSubscription&TopicArn=${env.topicArn}&Token=t`)();
      return {
        ...b,
        after: async () => {
          await b.after?.();
          expect(redirector.requests).toBe(before + 1);
        },
      };
    },
    expectStatus: 502,
    expectError: E.confirmFailed,
  },
  {
    name: 'UnsubscribeConfirmation whose SubscribeURL points at the canary: acknowledged, never fetched',
    build: confirmation(() => `https://localhost:${canary.port}/?Action=ConfirmSubscription&Token=t`, { type: 'UnsubscribeConfirmation' }),
    expectStatus: 200,
    expectOk: 'unsubscribed',
  },

  // --- topics that are not allowlisted (valid signatures) ------------------------------------
  { name: 'topic: another account', build: mutated(same, () => ({ topic: `arn:aws:sns:${env.sandbox.region}:210987654321:hostile-webhook-events` })), expectStatus: 403, expectError: E.topic },
  { name: 'topic: another region', build: mutated(same, () => ({ topic: `arn:aws:sns:eu-west-3:${env.sandbox.accountId}:hostile-webhook-events` })), expectStatus: 403, expectError: E.topic },
  { name: 'topic: our topic + suffix', build: mutated(same, () => ({ topic: `${env.topicArn}-x` })), expectStatus: 403, expectError: E.topic },
  { name: 'topic: a prefix of our topic', build: mutated(same, () => ({ topic: env.topicArn.slice(0, -1) })), expectStatus: 403, expectError: E.topic },
  { name: 'topic: our topic upper-cased', build: mutated(same, () => ({ topic: env.topicArn.toUpperCase() })), expectStatus: 403, expectError: E.topic },
  { name: 'topic: our topic with a trailing space', build: mutated(same, () => ({ topic: `${env.topicArn} ` })), expectStatus: 403, expectError: E.topic },
  { name: "topic: '*'", build: mutated(same, { topic: '*' }), expectStatus: 403, expectError: E.topic },
  { name: "topic: '__proto__'", build: mutated(same, { topic: '__proto__' }), expectStatus: 403, expectError: E.topic },
  { name: "topic: 'constructor'", build: mutated(same, { topic: 'constructor' }), expectStatus: 403, expectError: E.topic },
  {
    name: 'topic: SubscriptionConfirmation of a foreign topic (its SubscribeURL would work): not confirmed',
    build: confirmation(() => `https://${env.sandbox.certHost}/?Action=ConfirmSubscription&TopicArn=${foreignTopic()}&Token=t`, { topic: () => foreignTopic() }),
    expectStatus: 403,
    expectError: E.topic,
  },

  // --- replays and timestamps (valid signatures) ---------------------------------------------
  { name: 'replay: 3 h 1 min old (default window 3 h)', build: mutated(same, () => ({ timestamp: ago(3 * 3_600_000 + 60_000) })), expectStatus: 400, expectError: E.stale },
  { name: 'replay: one year old', build: mutated(same, () => ({ timestamp: ago(365 * 24 * 3_600_000) })), expectStatus: 400, expectError: E.stale },
  { name: 'replay: epoch 1970', build: mutated(same, { timestamp: '1970-01-01T00:00:00.000Z' }), expectStatus: 400, expectError: E.stale },
  { name: "replay: Timestamp '0'", build: mutated(same, { timestamp: '0' }), expectStatus: 400, expectError: E.stale },
  { name: 'future: 10 minutes ahead', build: mutated(same, () => ({ timestamp: new Date(Date.now() + 10 * 60_000).toISOString() })), expectStatus: 400, expectError: E.stale },
  { name: 'future: year 9999', build: mutated(same, { timestamp: '9999-12-31T23:59:59.999Z' }), expectStatus: 400, expectError: E.stale },
  { name: "timestamp: not a date ('yesterday')", build: mutated(same, { timestamp: 'yesterday' }), expectStatus: 400, expectError: E.stale },
  { name: 'timestamp: empty', build: mutated(same, { timestamp: '' }), expectStatus: 400, expectError: E.malformed },
  { name: 'replay: 2 h 30 min old against a configured 2 h window', app: 'shortWindow', build: mutated(same, () => ({ timestamp: ago(2.5 * 3_600_000) })), expectStatus: 400, expectError: E.stale },
  {
    name: 'replay: the same signed message again (within the window): duplicate, signalled once',
    build: async () => {
      const d = delivery();
      const body = JSON.stringify(d.signed);
      const first = await apps.sandbox.inject({ method: 'POST', url: '/sns', headers: snsHeaders('Notification'), payload: body });
      expect(first.json()).toEqual({ status: 'recorded' });
      return {
        headers: snsHeaders('Notification'),
        body,
        mustNotExist: [],
        after: async () => {
          expect(await signalsReceived(env.client, orphanId(d.sesId))).toBe(1);
        },
      };
    },
    expectStatus: 200,
    expectOk: 'duplicate',
  },

  // --- sizes ------------------------------------------------------------------------------------
  { name: 'size: 300 KiB Message (validly signed)', build: () => signedMessage('x'.repeat(300 * 1024))(), expectStatus: 413, expectError: E.tooLarge },
  {
    name: 'size: valid signed envelope padded to bodyLimit + 1 bytes',
    build: () => {
      const d = delivery();
      const json = JSON.stringify(d.signed);
      return { headers: snsHeaders('Notification'), body: json + ' '.repeat(DEFAULT_BODY_LIMIT + 1 - Buffer.byteLength(json)), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 413,
    expectError: E.tooLarge,
  },
  {
    name: 'size: 100k recipients in a validly signed SES Message (default limits)',
    build: () => {
      const d = delivery({ message: { ...sesJson('Delivery', newSesId()), delivery: { timestamp: new Date().toISOString(), recipients: recipients(100_000) } } });
      return { headers: snsHeaders('Notification'), body: JSON.stringify(d.signed), mustNotExist: [] };
    },
    expectStatus: 413,
    expectError: E.tooLarge,
  },
  {
    name: 'size: 100k recipients in a validly signed SES Message (8 MiB body limit): refused, fast',
    app: 'big',
    build: () => {
      const sesId = newSesId();
      const d = delivery({ message: { ...sesJson('Delivery', sesId), delivery: { timestamp: new Date().toISOString(), recipients: recipients(100_000) } } });
      return { headers: snsHeaders('Notification'), body: JSON.stringify(d.signed), mustNotExist: [orphanId(sesId)] };
    },
    expectStatus: 400,
    expectError: E.malformed,
  },
  ...(
    [
      ['delivery.recipients', (sesId: string) => ({ ...sesJson('Delivery', sesId), delivery: { timestamp: new Date().toISOString(), recipients: recipients(1001) } })],
      ['bounce.bouncedRecipients', (sesId: string) => ({ ...sesJson('Bounce', sesId, { to: recipients(1001) }), mail: { timestamp: new Date().toISOString(), messageId: sesId } })],
      ['complaint.complainedRecipients', (sesId: string) => ({ ...sesJson('Complaint', sesId, { to: recipients(1001) }), mail: { timestamp: new Date().toISOString(), messageId: sesId } })],
      ['mail.destination', (sesId: string) => ({ ...sesJson('Send', sesId, { to: recipients(1001) }) })],
      ['mail.headers (501)', (sesId: string) => ({ ...sesJson('Open', sesId), mail: { timestamp: new Date().toISOString(), messageId: sesId, headers: Array.from({ length: 501 }, (_, i) => ({ name: `X-H${i}`, value: 'v' })) } })],
    ] as const
  ).map(
    ([field, make]): HostileCase => ({
      name: `size: 1001 entries in ${field} (parse cap 1000)`,
      build: () => {
        const sesId = newSesId();
        return signedMessage(make(sesId), [orphanId(sesId)])();
      },
      expectStatus: 400,
      expectError: E.sesEvent,
    }),
  ),
  {
    name: 'size: exactly 1000 recipients (the cap) is recorded in one signal',
    build: () => {
      const sesId = newSesId();
      return signedMessage({ ...sesJson('Delivery', sesId), delivery: { timestamp: new Date().toISOString(), recipients: recipients(1000) } }, [], async () => {
        const events = await signalledEvents(orphanId(sesId));
        expect(events.map((e) => e.recipients.length)).toEqual([1000]);
      })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },

  // --- deep nesting -----------------------------------------------------------------------------
  { name: 'nesting: body of 100k nested arrays', build: () => ({ headers: snsHeaders('Notification'), body: deep(100_000), mustNotExist: [] }), expectStatus: 400, expectError: E.malformed },
  { name: 'nesting: 100k unclosed arrays', build: () => ({ headers: snsHeaders('Notification'), body: '['.repeat(100_000), mustNotExist: [] }), expectStatus: 400, expectError: E.malformed },
  {
    name: 'nesting: 40k nested objects (no envelope fields)',
    build: () => ({ headers: snsHeaders('Notification'), body: '{"a":'.repeat(40_000) + '1' + '}'.repeat(40_000), mustNotExist: [] }),
    expectStatus: 400,
    expectError: E.unsigned,
  },
  // Deep values in fields the product does not use: ignoring them (200) or refusing absurd nesting
  // (400) are both correct; a 500 (or a crash) is not.
  {
    name: 'nesting: 100k-deep unknown envelope key on a validly signed non-SES notification',
    build: () => {
      const signed = sign(unsignedNotification(env.topicArn, '{"hello":"world"}'));
      const json = JSON.stringify(signed);
      return { headers: snsHeaders('Notification'), body: `${json.slice(0, -1)},"Deep":${deep(100_000)}}`, mustNotExist: [] };
    },
    expectStatus: [200, 400],
  },
  {
    name: 'nesting: 100k-deep field in a validly signed SES event of a known type (Delivery)',
    build: () => {
      const text = JSON.stringify(sesJson('Delivery', newSesId()));
      return signedMessage(`${text.slice(0, -1)},"deep":${deep(100_000)}}`)();
    },
    expectStatus: [200, 400],
  },
  {
    // Send has no branch of its own in parseSesEvent: same JSON.stringify path as unknown types.
    name: 'nesting: 100k-deep field in a validly signed Send event',
    build: () => {
      const text = JSON.stringify(sesJson('Send', newSesId()));
      return signedMessage(`${text.slice(0, -1)},"deep":${deep(100_000)}}`)();
    },
    expectStatus: [200, 400],
  },
  {
    name: 'nesting: 6k-deep field in a validly signed Send event (12 KB of brackets)',
    build: () => {
      const text = JSON.stringify(sesJson('Send', newSesId()));
      return signedMessage(`${text.slice(0, -1)},"deep":${deep(6_000)}}`)();
    },
    expectStatus: [200, 400],
  },
  {
    name: 'nesting: 100k-deep field in a validly signed SES event of an unknown type',
    build: () => {
      const sesId = newSesId();
      const text = JSON.stringify({ eventType: 'Teleport', mail: { timestamp: new Date().toISOString(), messageId: sesId, destination: ['x@example.com'] } });
      return signedMessage(`${text.slice(0, -1)},"deep":${deep(100_000)}}`)();
    },
    expectStatus: [200, 400],
  },
  {
    name: 'nesting: 100k-deep field inside a validly signed Subscription event',
    build: () => {
      const sesId = newSesId();
      const text = JSON.stringify({ eventType: 'Subscription', mail: { timestamp: new Date().toISOString(), messageId: sesId }, subscription: { contactList: 'l' } });
      return signedMessage(`${text.slice(0, -2)},"deep":${deep(100_000)}}}`)();
    },
    expectStatus: [200, 400],
  },

  // --- invalid UTF-8 and encodings ------------------------------------------------------------------
  {
    name: 'utf-8: invalid bytes inside the signed Message',
    build: () => {
      const d = delivery({ message: { ...sesJson('Delivery', newSesId()), note: 'caf\u00e9' } });
      const sesId = (JSON.parse(d.signed.Message) as { mail: { messageId: string } }).mail.messageId;
      const bytes = Buffer.from(JSON.stringify(d.signed), 'utf8');
      const e9 = Buffer.from('\u00e9', 'utf8');
      const at = bytes.indexOf(e9);
      const body = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff, 0xfe]), bytes.subarray(at + e9.length)]);
      return { headers: snsHeaders('Notification'), body, mustNotExist: [orphanId(sesId)] };
    },
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: 'utf-8: invalid bytes between JSON tokens',
    build: () => {
      const d = delivery();
      const json = JSON.stringify(d.signed);
      return { headers: snsHeaders('Notification'), body: Buffer.concat([Buffer.from('{'), Buffer.from([0xc3, 0x28]), Buffer.from(json.slice(1))]), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 400,
    expectError: E.malformed,
  },
  {
    name: 'utf-8: overlong encoding of "/" in SigningCertURL',
    build: () => {
      const d = delivery();
      const json = JSON.stringify({ ...d.signed, SigningCertURL: `https://${env.sandbox.certHost}@@${env.certPath.slice(1)}` });
      const bytes = Buffer.from(json, 'utf8');
      const at = bytes.indexOf(Buffer.from('@@'));
      return { headers: snsHeaders('Notification'), body: Buffer.concat([bytes.subarray(0, at), Buffer.from([0xc0, 0xaf]), bytes.subarray(at + 2)]), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 403,
    expectError: E.certUrl,
  },
  { name: 'utf-8: random binary body', build: () => ({ headers: snsHeaders('Notification'), body: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 197 + 13) % 256)), mustNotExist: [] }), expectStatus: 400, expectError: E.malformed },
  {
    name: 'encoding: UTF-16LE body declared as charset=UTF-16',
    build: () => {
      const d = delivery();
      return { headers: { ...snsHeaders('Notification'), 'content-type': 'text/plain; charset=UTF-16' }, body: Buffer.from(JSON.stringify(d.signed), 'utf16le'), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 400,
    expectError: E.malformed,
  },
  {
    name: 'encoding: NUL character in the SES message id (validly signed)',
    build: () => {
      const sesId = `${newSesId()}\u0000x`;
      return signedMessage(sesJson('Delivery', sesId))();
    },
    // SES ids are plain ASCII: recording it or refusing it are both consistent; a 5xx would make SNS retry forever.
    expectStatus: [200, 400],
  },
  {
    name: 'encoding: lone UTF-16 surrogate in the SES message id (validly signed)',
    build: () => {
      const sesId = `${newSesId()}\ud800`;
      return signedMessage(sesJson('Delivery', sesId))();
    },
    expectStatus: [200, 400],
  },

  // --- JSON with duplicate keys ------------------------------------------------------------------
  {
    name: 'duplicate keys: signed Message first, forged Message last',
    build: () => {
      const d = delivery();
      const forgedId = newSesId();
      const pairs = pairsOf(d.signed as unknown as Record<string, unknown>);
      pairs.push(['Message', JSON.stringify(sesJson('Bounce', forgedId))]);
      return { headers: snsHeaders('Notification'), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId), orphanId(forgedId)] };
    },
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: 'duplicate keys: forged Message first, signed Message last → the signed one is what is verified and routed',
    build: () => {
      const d = delivery();
      const forgedId = newSesId();
      const pairs: [string, unknown][] = [['Message', JSON.stringify(sesJson('Bounce', forgedId))], ...pairsOf(d.signed as unknown as Record<string, unknown>)];
      return {
        headers: snsHeaders('Notification'),
        body: jsonWithPairs(pairs),
        mustNotExist: [orphanId(forgedId)],
        after: async () => {
          expect((await signalledEvents(orphanId(d.sesId))).map((e) => e.type)).toEqual(['Delivery']);
        },
      };
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },
  {
    name: 'duplicate keys: Type "Notification" first (matches the header), "SubscriptionConfirmation" last',
    build: () => {
      const d = delivery();
      const extra: [string, unknown][] = [
        ['Type', 'SubscriptionConfirmation'],
        ['Token', 't'],
        ['SubscribeURL', `https://${env.sandbox.certHost}/?Action=ConfirmSubscription&Token=t`],
      ];
      const pairs: [string, unknown][] = [...pairsOf(d.signed as unknown as Record<string, unknown>), ...extra];
      return { headers: snsHeaders('Notification'), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 400,
    expectError: E.mismatch,
  },
  {
    name: 'duplicate keys: allowed TopicArn first, foreign (signed) TopicArn last',
    build: () => {
      const d = delivery({ topic: foreignTopic() });
      const pairs: [string, unknown][] = [['TopicArn', env.topicArn], ...pairsOf(d.signed as unknown as Record<string, unknown>)];
      return { headers: snsHeaders('Notification'), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 403,
    expectError: E.topic,
  },
  {
    name: 'duplicate keys: signed TopicArn first, header-matching foreign TopicArn last',
    build: () => {
      const d = delivery();
      const pairs: [string, unknown][] = [...pairsOf(d.signed as unknown as Record<string, unknown>), ['TopicArn', foreignTopic()]];
      return { headers: snsHeaders('Notification', { 'x-amz-sns-topic-arn': foreignTopic() }), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 403,
    expectError: E.topic,
  },
  {
    name: 'duplicate keys: real SigningCertURL first, canary URL last',
    build: () => {
      const d = delivery();
      const pairs: [string, unknown][] = [...pairsOf(d.signed as unknown as Record<string, unknown>), ['SigningCertURL', certUrlOn(`localhost:${canary.port}`)]];
      return { headers: snsHeaders('Notification'), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 403,
    expectError: E.certUrl,
  },
  {
    name: 'duplicate keys: valid Signature first, garbage last',
    build: () => {
      const d = delivery();
      const pairs: [string, unknown][] = [...pairsOf(d.signed as unknown as Record<string, unknown>), ['Signature', 'AAAA']];
      return { headers: snsHeaders('Notification'), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 403,
    expectError: E.signature,
  },
  {
    name: 'duplicate keys: fresh Timestamp first, stale (signed) Timestamp last',
    build: () => {
      const d = delivery({ timestamp: ago(4 * 3_600_000) });
      const pairs: [string, unknown][] = [['Timestamp', new Date().toISOString()], ...pairsOf(d.signed as unknown as Record<string, unknown>)];
      return { headers: snsHeaders('Notification'), body: jsonWithPairs(pairs), mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 400,
    expectError: E.stale,
  },
  {
    name: 'duplicate keys in the signed SES Message: eventType Delivery then Bounce → routed as the one parse sees (Bounce)',
    build: () => {
      const sesId = newSesId();
      const bounce = sesJson('Bounce', sesId);
      const text = jsonWithPairs([['eventType', 'Delivery'], ...pairsOf(bounce), ['delivery', { timestamp: new Date().toISOString(), recipients: ['someone@example.com'] }]]);
      return signedMessage(text, [], async () => {
        expect((await signalledEvents(orphanId(sesId))).map((e) => e.type)).toEqual(['Bounce']);
      })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },
  {
    name: 'duplicate keys in the signed SES Message: mail.messageId victim first, own id last',
    build: () => {
      const sesId = newSesId();
      const victim = newSesId();
      const ev = sesJson('Delivery', sesId);
      const mailText = jsonWithPairs([['messageId', victim], ...pairsOf(ev.mail as Record<string, unknown>)]);
      const text = `{"eventType":"Delivery","mail":${mailText},"delivery":${JSON.stringify(ev.delivery)}}`;
      return signedMessage(text, [orphanId(victim)], async () => {
        expect(await workflowExists(env.client, orphanId(sesId))).toBe(true);
      })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },

  // --- prototype pollution ---------------------------------------------------------------------
  {
    name: 'pollution: envelope "__proto__" carrying the Signature (own field missing)',
    build: () => {
      const d = delivery();
      const { Signature, ...rest } = d.signed;
      return { headers: snsHeaders('Notification'), body: `${JSON.stringify(rest).slice(0, -1)},"__proto__":{"Signature":${JSON.stringify(Signature)},"polluted":"yes"}}`, mustNotExist: [orphanId(d.sesId)] };
    },
    expectStatus: 400,
    expectError: E.malformed,
  },
  {
    name: 'pollution: envelope "__proto__" and "constructor.prototype" keys on a signed non-SES notification',
    build: () => {
      const json = JSON.stringify(sign(unsignedNotification(env.topicArn, '{"hello":"world"}')));
      return { headers: snsHeaders('Notification'), body: `${json.slice(0, -1)},"__proto__":{"polluted":"yes","isAdmin":true},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}`, mustNotExist: [] };
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  { name: "pollution: Type '__proto__'", build: mutated((s) => ({ ...s, Type: '__proto__' }), {}, { 'x-amz-sns-message-type': '__proto__' }), expectStatus: 400, expectError: E.unknownType },
  { name: "pollution: Type 'constructor'", build: mutated((s) => ({ ...s, Type: 'constructor' }), {}, { 'x-amz-sns-message-type': 'constructor' }), expectStatus: 400, expectError: E.unknownType },
  {
    name: 'pollution: SES Message with eventType and mail only under "__proto__"',
    build: () => {
      const sesId = newSesId();
      const ev = sesJson('Delivery', sesId);
      return signedMessage(`{"__proto__":${JSON.stringify(ev)},"polluted":"no"}`, [orphanId(sesId)])();
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  {
    name: 'pollution: SES Bounce whose bounce fields sit under "__proto__"',
    build: () => {
      const sesId = newSesId();
      const ev = sesJson('Bounce', sesId);
      return signedMessage({ ...ev, bounce: JSON.parse(`{"__proto__":${JSON.stringify(ev.bounce)}}`) as unknown }, [orphanId(sesId)])();
    },
    expectStatus: 400,
    expectError: E.sesEvent,
  },
  {
    name: 'pollution: mail.tags {"__proto__": [victim lifecycle id]} does not route to the victim',
    build: () => {
      const sesId = newSesId();
      const victim = victimLifecycleId();
      const ev = sesJson('Delivery', sesId);
      const mail = `${JSON.stringify({ ...(ev.mail as Record<string, unknown>), tags: undefined }).slice(0, -1)},"tags":{"__proto__":[${JSON.stringify(victim)}],"lifecycle-id-x":["y"]}}`;
      return signedMessage(`{"eventType":"Delivery","mail":${mail},"delivery":${JSON.stringify(ev.delivery)},"__proto__":{"polluted":"yes"}}`, [victim])();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },
  {
    name: 'pollution: mail.tags {"constructor": [victim]} and constructor.prototype in the SES Message',
    build: () => {
      const sesId = newSesId();
      const victim = victimLifecycleId();
      const ev = sesJson('Delivery', sesId);
      return signedMessage({ ...ev, mail: { ...(ev.mail as Record<string, unknown>), tags: { constructor: [victim], prototype: [victim] } }, constructor: { prototype: { polluted: 'yes' } } }, [victim])();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },
  {
    name: 'pollution: bounced recipient "__proto__" with a diagnostic code',
    build: () => {
      const sesId = newSesId();
      const ev = sesJson('Bounce', sesId);
      return signedMessage({ ...ev, bounce: { ...(ev.bounce as Record<string, unknown>), bouncedRecipients: [{ emailAddress: '__proto__', diagnosticCode: 'polluted' }, { emailAddress: 'constructor', diagnosticCode: '5.1.1' }] } })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },

  // --- routing by content: claims the event cannot back up ---------------------------------------
  {
    name: 'routing: lifecycle-id tag naming a lifecycle that does not exist → orphan; the named one is not created',
    build: () => {
      const sesId = newSesId();
      const victim = victimLifecycleId();
      return signedMessage(sesJson('Delivery', sesId, { lifecycleId: victim }), [victim], async () => {
        expect(await workflowExists(env.client, orphanId(sesId))).toBe(true);
      })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },
  {
    name: "routing: lifecycle-id tag naming another message's orphan workflow does not signal it",
    build: async () => {
      const other = newSesId();
      const first = await apps.sandbox.inject({ method: 'POST', url: '/sns', headers: snsHeaders('Notification'), payload: signedMessage(sesJson('Delivery', other))().body });
      expect(first.json()).toEqual({ status: 'recorded' });
      const sesId = newSesId();
      return signedMessage(sesJson('Open', sesId, { lifecycleId: orphanId(other) }), [], async () => {
        expect(await signalsReceived(env.client, orphanId(other))).toBe(1);
      })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },
  {
    name: 'routing: visibility-query injection through the SES message id does not reach another lifecycle',
    build: () => {
      const injected = `x" OR SesMessageIds = "${victimWithSesId.sesMessageId}`;
      const ev = { notificationType: 'Delivery', mail: { timestamp: new Date().toISOString(), messageId: injected, destination: ['victim@example.com'] }, delivery: { timestamp: new Date().toISOString(), recipients: ['victim@example.com'] } };
      return signedMessage(ev, [], async () => {
        expect(await signalsReceived(env.client, victimWithSesId.workflowId)).toBe(0);
      })();
    },
    expectStatus: 200,
    expectOk: 'recorded',
  },

  // --- headers and content types ------------------------------------------------------------------
  { name: 'header: type SubscriptionConfirmation, body Notification', build: mutated(same, {}, { 'x-amz-sns-message-type': 'SubscriptionConfirmation' }), expectStatus: 400, expectError: E.mismatch },
  { name: "header: type 'notification' (lower case)", build: mutated(same, {}, { 'x-amz-sns-message-type': 'notification' }), expectStatus: 400, expectError: E.mismatch },
  { name: 'header: type empty', build: mutated(same, {}, { 'x-amz-sns-message-type': '' }), expectStatus: 400, expectError: E.mismatch },
  { name: 'header: type repeated', build: mutated(same, {}, { 'x-amz-sns-message-type': ['Notification', 'Notification'] }), expectStatus: 400, expectError: E.mismatch },
  { name: 'header: type longer than 64 characters', build: mutated(same, {}, { 'x-amz-sns-message-type': 'Notification'.repeat(6) }), expectStatus: 400, expectError: E.badRequest },
  {
    name: 'header: type missing',
    build: () => {
      const b = mutated(same)();
      const { 'x-amz-sns-message-type': _t, ...headers } = b.headers;
      return { ...b, headers };
    },
    expectStatus: 400,
    expectError: E.badRequest,
  },
  { name: 'header: topic header names another topic', build: mutated(same, {}, () => ({ 'x-amz-sns-topic-arn': foreignTopic() })), expectStatus: 400, expectError: E.mismatch },
  { name: 'content-type: application/xml', build: mutated(same, {}, { 'content-type': 'application/xml' }), expectStatus: 415, expectError: E.mediaType },
  { name: 'content-type: multipart/form-data', build: mutated(same, {}, { 'content-type': 'multipart/form-data; boundary=x' }), expectStatus: 415, expectError: E.mediaType },
  { name: 'content-type: application/x-www-form-urlencoded', build: mutated(same, {}, { 'content-type': 'application/x-www-form-urlencoded' }), expectStatus: 415, expectError: E.mediaType },
  { name: 'content-type: text/plainx', build: mutated(same, {}, { 'content-type': 'text/plainx' }), expectStatus: 415, expectError: E.mediaType },
  {
    name: 'content-type: missing (with a body)',
    build: () => {
      const b = mutated(same)();
      const { 'content-type': _c, ...headers } = b.headers;
      return { ...b, headers };
    },
    expectStatus: 415,
    expectError: E.mediaType,
  },
  { name: 'body: unsigned raw SES JSON (raw delivery disabled)', build: () => { const sesId = newSesId(); return { headers: snsHeaders('Notification'), body: JSON.stringify(sesJson('Delivery', sesId)), mustNotExist: [orphanId(sesId)] }; }, expectStatus: 400, expectError: E.unsigned },
  { name: 'body: envelope without Type (treated as raw, refused)', build: mutated(({ Type: _t, ...rest }) => rest), expectStatus: 400, expectError: E.unsigned },
  { name: 'body: JSON array', build: () => ({ headers: snsHeaders('Notification'), body: '[{"Type":"Notification"}]', mustNotExist: [] }), expectStatus: 400, expectError: E.malformed },
  { name: 'body: JSON null', build: () => ({ headers: snsHeaders('Notification'), body: 'null', mustNotExist: [] }), expectStatus: 400, expectError: E.malformed },
  { name: 'body: empty', build: () => ({ headers: snsHeaders('Notification'), body: '', mustNotExist: [] }), expectStatus: 400 },

  // --- validly signed notifications whose Message is not an SES event ----------------------------
  { name: 'non-SES: {}', build: signedMessage({}), expectStatus: 200, expectOk: 'ignored' },
  { name: 'non-SES: plain text', build: signedMessage('hello, not JSON'), expectStatus: 200, expectOk: 'ignored' },
  { name: 'non-SES: JSON null', build: signedMessage('null'), expectStatus: 200, expectOk: 'ignored' },
  {
    name: 'non-SES: an array of SES events',
    build: () => {
      const sesId = newSesId();
      return signedMessage([sesJson('Delivery', sesId)], [orphanId(sesId)])();
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  {
    name: 'non-SES: a double-encoded SES event (JSON string)',
    build: () => {
      const sesId = newSesId();
      return signedMessage(JSON.stringify(JSON.stringify(sesJson('Delivery', sesId))), [orphanId(sesId)])();
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  {
    name: "non-SES: 'eventtype' in the wrong case",
    build: () => {
      const sesId = newSesId();
      const { eventType, ...rest } = sesJson('Delivery', sesId);
      return signedMessage({ eventtype: eventType, ...rest }, [orphanId(sesId)])();
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  {
    name: 'non-SES: eventType is a number',
    build: () => {
      const sesId = newSesId();
      return signedMessage({ ...sesJson('Delivery', sesId), eventType: 5 }, [orphanId(sesId)])();
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  {
    name: "non-SES: SES's AmazonSnsSubscriptionSucceeded notice carrying a mail object",
    build: () => {
      const sesId = newSesId();
      return signedMessage({ ...sesJson('Delivery', sesId), eventType: undefined, notificationType: 'AmazonSnsSubscriptionSucceeded' }, [orphanId(sesId)])();
    },
    expectStatus: 200,
    expectOk: 'ignored',
  },
  {
    name: 'non-SES: an S3 event notification',
    build: signedMessage({ Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: 'k' } } }] }),
    expectStatus: 200,
    expectOk: 'ignored',
  },
];

// ---------------------------------------------------------------------------------------------

/** What the webhook answers: `{ error }` or `{ status }`. */
interface ReplyBody {
  error?: string;
  status?: string;
}

/** Statuses of a 2xx that mean "not acted upon". */
const NOT_ACTED: readonly string[] = ['ignored', 'duplicate', 'unsubscribed'];

describe('hostile webhook input: the table', () => {
  it('has at least 60 distinct cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const built = await c.build();
      const app = apps[c.app ?? 'sandbox'];
      let status: number;
      let json: ReplyBody;
      tally.tried += 1;
      const started = Date.now();
      try {
        const res = await app.inject({ method: 'POST', url: '/sns', headers: built.headers, payload: built.body });
        status = res.statusCode;
        try {
          json = res.json<ReplyBody>();
        } catch {
          json = {};
        }
      } catch (err) {
        tally.crashes += 1;
        tally.failed += 1;
        throw err;
      }
      const elapsed = Date.now() - started;
      const leaked: string[] = [];
      for (const id of built.mustNotExist) if (await workflowExists(env.client, id)) leaked.push(id);
      const refused = status >= 400 || (json.status !== undefined && NOT_ACTED.includes(json.status));
      if (refused) tally.refused += 1;
      if (leaked.length > 0) tally.signalled += 1;
      if (status >= 500 && status !== 502 && status !== 503) tally.crashes += 1;
      const allowed = Array.isArray(c.expectStatus) ? (c.expectStatus as readonly number[]) : [c.expectStatus as number];
      const ok = allowed.includes(status) && leaked.length === 0 && prototypeIsClean();
      if (!ok) tally.failed += 1;
      if (process.env.HOSTILE_VERBOSE) console.log(`[hostile] ${status} ${JSON.stringify(json)} ${elapsed} ms  ${c.name}`);

      expect(status, `status (body ${JSON.stringify(json)})`).toBeOneOf([...allowed]);
      if (c.expectError !== undefined) expect(json).toEqual({ error: c.expectError });
      if (c.expectOk !== undefined) expect(json).toEqual({ status: c.expectOk });
      expect(leaked, 'workflows that must not exist').toEqual([]);
      expect(prototypeIsClean(), 'Object.prototype untouched').toBe(true);
      expect(elapsed, 'answered promptly').toBeLessThan(5_000);
      await built.after?.();
    });
  }

  it('no case ever made the webhook connect to the SSRF canary (certificate or SubscribeURL fetch, redirect target)', () => {
    expect(canary.connections()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Over real sockets: what app.inject() cannot show.

describe.concurrent('hostile webhook input over real sockets', () => {
  let slow: WebhookServer;
  const REQUEST_TIMEOUT_MS = 2_000;
  beforeAll(async () => {
    // The idle timeout is longer than the drip interval, so only the whole-request timeout can stop a drip.
    slow = await startWebhookServer({ ...env.options(), connectionTimeoutMs: 5_000, requestTimeoutMs: REQUEST_TIMEOUT_MS, port: 0 });
  });
  afterAll(async () => {
    await slow?.close();
  });
  const port = (): number => Number(new URL(slow.url).port);
  const head = (extra: string): string => `POST /sns HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain; charset=UTF-8\r\nx-amz-sns-message-type: Notification\r\n${extra}\r\n`;

  /** Runs one socket case, tallied like the table's. */
  async function socketCase(expectRefused: (r: Awaited<ReturnType<typeof rawExchange>>) => void, run: () => ReturnType<typeof rawExchange>): Promise<void> {
    tally.tried += 1;
    const r = await run();
    if (r.closedAfterMs !== undefined || (r.status !== undefined && r.status >= 400)) tally.refused += 1;
    if (r.status !== undefined && r.status >= 500) tally.crashes += 1;
    try {
      expectRefused(r);
    } catch (err) {
      tally.failed += 1;
      throw err;
    }
  }

  it('declared Content-Length of 100 MB → 413 at once, before any body arrives', async () => {
    await socketCase(
      (r) => {
        expect(r.status).toBe(413);
        expect(r.closedAfterMs).toBeDefined();
      },
      () => rawExchange(port(), head('Content-Length: 104857600\r\n'), { deadlineMs: 5_000 }),
    );
  });

  it('chunked body growing past the body limit → 413', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const chunks = Array.from({ length: 6 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    await socketCase(
      (r) => expect(r.status).toBe(413),
      () => rawExchange(port(), head('Transfer-Encoding: chunked\r\n') + chunks.join('') + '0\r\n\r\n', { deadlineMs: 5_000 }),
    );
  });

  it('a body that stalls (idle longer than connectionTimeoutMs) is cut off', async () => {
    await socketCase(
      (r) => expect(r.closedAfterMs ?? Infinity).toBeLessThan(5_000 + 2_000),
      () => rawExchange(port(), head('Content-Length: 1000\r\n') + '{"Type":', { deadlineMs: 9_000 }),
    );
  });

  // Slow-loris: one byte (or header line) per second keeps the socket busy (never idle), so only
  // requestTimeoutMs can end it. It must close within that timeout plus a margin for Node's
  // periodic check of request deadlines (http `connectionsCheckingInterval`).
  it(`slow-loris body (1 byte/s): closed within requestTimeoutMs (${REQUEST_TIMEOUT_MS} ms) + 4 s`, async () => {
    await socketCase(
      (r) => expect(r.closedAfterMs ?? Infinity, 'ms until the server closed the socket (Infinity: still open at the deadline)').toBeLessThan(REQUEST_TIMEOUT_MS + 4_000),
      () => rawExchange(port(), head('Content-Length: 1000\r\n'), { drip: Array.from({ length: 30 }, () => 'a'), dripEveryMs: 1_000, deadlineMs: REQUEST_TIMEOUT_MS + 8_000 }),
    );
  });

  it(`slow-loris headers (one header line per second): closed within requestTimeoutMs (${REQUEST_TIMEOUT_MS} ms) + 4 s`, async () => {
    await socketCase(
      (r) => expect(r.closedAfterMs ?? Infinity, 'ms until the server closed the socket (Infinity: still open at the deadline)').toBeLessThan(REQUEST_TIMEOUT_MS + 4_000),
      () =>
        rawExchange(port(), 'POST /sns HTTP/1.1\r\nHost: x\r\n', {
          drip: Array.from({ length: 30 }, (_, i) => `X-Slow-${i}: ${'a'.repeat(8)}\r\n`),
          dripEveryMs: 1_000,
          deadlineMs: REQUEST_TIMEOUT_MS + 8_000,
        }),
    );
  });
});
