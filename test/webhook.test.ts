/**
 * The SNS webhook against real things: the local SES sandbox (really signed SNS messages, its
 * certificate served over HTTPS with its own CA, the real subscription handshake), a real Temporal
 * dev server with a real worker running the product's workflows, and real HTTP. `app.inject()`
 * covers parsing and validation; the end-to-end cases go over sockets.
 *
 * "Nothing signalled" is asserted through Temporal itself: the workflow that would have received
 * the event does not exist, or its history has no new signal.
 */
import { randomUUID } from 'node:crypto';
import { createConnection, createServer as createNetServer } from 'node:net';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIFECYCLE_TAG, statusQuery, type LifecycleStatus } from '../src/definitions';
import type { SnsMessage, UnsignedSnsMessage } from '../src/sandbox';
import { buildWebhookApp, startWebhookServer, WebhookMetrics, type WebhookOptions, type WebhookServer } from '../src/webhook';
import { sesEventJson, type EventKind } from './helpers/ses-json';
import { startLifecycleStack, type LifecycleStack } from './helpers/stack';
import { startCanary } from './helpers/canary';
import { getTestConnection } from './helpers/temporal';

const CONFIG_SET = 'webhook-e2e';
let stack: LifecycleStack;
let client: Client;
let topicArn: string;
let server: WebhookServer;
let serverMetrics: WebhookMetrics;
let app: FastifyInstance;
let appMetrics: WebhookMetrics;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exactHost = (host: string) => new RegExp(`^${escapeRe(host)}$`);

/** Options for a webhook that trusts the sandbox (its CA, its cert host) and our test topic. */
function webhookOptions(overrides: Partial<WebhookOptions> = {}): WebhookOptions {
  return {
    temporal: { client, taskQueue: stack.taskQueue },
    allowedTopicArns: [topicArn],
    certHostPattern: exactHost(stack.sandbox.certHost),
    subscribeHostPattern: exactHost(stack.sandbox.certHost),
    extraCaPem: stack.sandbox.caCertPem,
    logger: process.env.WEBHOOK_TEST_VERBOSE ? { level: 'info' } : false,
    orphanIdleTimeout: '2m',
    ...overrides,
  };
}

beforeAll(async () => {
  stack = await startLifecycleStack({
    sandbox: { eventDelayMs: 5, sns: { retries: 2, retryDelayMs: 100, timeoutMs: 5_000 } },
    configurationSetName: CONFIG_SET,
  });
  client = (await getTestConnection()).client;
  topicArn = `arn:aws:sns:${stack.sandbox.region}:${stack.sandbox.accountId}:${CONFIG_SET}-events`;
  serverMetrics = new WebhookMetrics();
  server = await startWebhookServer({ ...webhookOptions({ metrics: serverMetrics }), host: '127.0.0.1', port: 0 });
  // The real handshake: the sandbox POSTs a signed SubscriptionConfirmation to the webhook, which
  // verifies it and GETs the SubscribeURL over HTTPS (sandbox CA) to confirm.
  const created = await stack.sandbox.createConfigurationSet(CONFIG_SET, { webhookUrl: `${server.url}/sns` });
  expect(created.topicArn).toBe(topicArn);
  await stack.sandbox.waitForSubscriptionConfirmed(topicArn, 10_000);
  appMetrics = new WebhookMetrics();
  app = await buildWebhookApp(webhookOptions({ metrics: appMetrics }));
});

afterAll(async () => {
  await app?.close();
  await server?.close();
  await stack?.stop();
});

// ---------------------------------------------------------------------------------------------
// helpers

const newSesId = () => `0100019a${randomUUID().replace(/-/g, '').slice(0, 8)}-${randomUUID()}-000000`;

function sesJson(type: EventKind, sesMessageId: string, o: { lifecycleId?: string; to?: string } = {}): Record<string, unknown> {
  return sesEventJson(type, {
    messageId: sesMessageId,
    recipients: [o.to ?? 'someone@example.com'],
    at: new Date().toISOString(),
    ...(o.lifecycleId !== undefined ? { lifecycleId: o.lifecycleId } : {}),
  });
}

/** A Notification signed by the sandbox's SNS key (as SNS would sign it). */
function signedNotification(message: unknown, o: { topic?: string; version?: '1' | '2'; timestamp?: string; messageId?: string } = {}): SnsMessage {
  const msg: UnsignedSnsMessage = {
    Type: 'Notification',
    MessageId: o.messageId ?? randomUUID(),
    TopicArn: o.topic ?? topicArn,
    Message: typeof message === 'string' ? message : JSON.stringify(message),
    Timestamp: o.timestamp ?? new Date().toISOString(),
  };
  return stack.sandbox.signMessage(msg, o.version ?? '2');
}

function signedConfirmation(type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation', subscribeUrl: string, topic = topicArn): SnsMessage {
  return stack.sandbox.signMessage({
    Type: type,
    MessageId: randomUUID(),
    TopicArn: topic,
    Message: `${type} for ${topic}`,
    Timestamp: new Date().toISOString(),
    Token: randomUUID().replace(/-/g, ''),
    SubscribeURL: subscribeUrl,
  });
}

function headersFor(body: unknown, extra: Record<string, string> = {}): Record<string, string> {
  const type = typeof body === 'object' && body !== null && 'Type' in body ? String(body.Type) : 'Notification';
  return { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': type, ...extra };
}

/** POST over real HTTP to the listening webhook. */
async function post(body: unknown, extra: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${server.url}/sns`, {
    method: 'POST',
    headers: headersFor(body, extra),
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** POST through app.inject (no socket). */
async function inject(target: FastifyInstance, body: unknown, extra: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const res = await target.inject({ method: 'POST', url: '/sns', headers: headersFor(body, extra), payload: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.statusCode, json: res.json() };
}

const orphanId = (sesMessageId: string) => `orphan-${sesMessageId}`;
const lifecycleStatus = (workflowId: string): Promise<LifecycleStatus> => client.workflow.getHandle(workflowId).query(statusQuery);

async function expectNoWorkflow(workflowId: string): Promise<void> {
  await expect(client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

/** Number of signals in a workflow's history (all runs share the id; this reads the latest run). */
async function signalsReceived(workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes != null).length;
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}


// ---------------------------------------------------------------------------------------------

describe('webhook end to end (sandbox SNS → real HTTP → Temporal)', () => {
  it('confirmed the sandbox subscription through the real handshake', async () => {
    // The sandbox marks the subscription confirmed on our GET, a moment before we answer its POST.
    const confirmation = await eventually(
      () => Promise.resolve(stack.sandbox.ledger().find((e) => e.type === 'SubscriptionConfirmation' && e.topicArn === topicArn)),
      (e) => e?.finalStatus !== 'pending',
    );
    expect(confirmation?.finalStatus).toBe('delivered');
    expect(confirmation?.deliveries.at(-1)?.statusCode).toBe(200);
    expect(serverMetrics.snapshot().subscriptionsConfirmed).toBe(1);
  });

  it('sendTracked → SES sandbox → signed SNS POSTs → webhook → the lifecycle ends delivered', async () => {
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: ['success@simulator.amazonses.com'], subject: 'Hi', text: 'Hello', policy: { complaintWindow: '1s', deliveryDeadline: '3s' } });
    const final = await email.waitFor((s) => s.phase === 'completed', { timeoutMs: 15_000 });
    expect(final.status).toBe('delivered');
    expect(final.eventCounts).toMatchObject({ Send: 1, Delivery: 1 });
    const sesMessageId = final.attempts[0]!.sesMessageId!;
    const entries = stack.sandbox.ledger().filter((e) => e.sesMessageId === sesMessageId);
    expect(entries.map((e) => e.eventType).sort()).toEqual(['Delivery', 'Send']);
    for (const e of entries) expect(e.deliveries.at(-1)?.statusCode).toBe(200);
    expect(serverMetrics.snapshot().signalled).toBeGreaterThanOrEqual(2);
  });

  it.each(['1', '2'] as const)('SignatureVersion %s over real HTTP: 200 and the event reaches its (orphan) lifecycle', async (version) => {
    const sesId = newSesId();
    const res = await post(signedNotification(sesJson('Delivery', sesId), { version }));
    expect(res).toEqual({ status: 200, json: { status: 'recorded' } });
    const s = await lifecycleStatus(orphanId(sesId));
    expect(s.kind).toBe('orphan');
    expect(s.eventCounts).toEqual({ Delivery: 1 });
    expect(s.sesMessageIds).toEqual([sesId]); // an orphan is named after its SES message
  });

  it('routes by SES message id through visibility when the event has no lifecycle id, and to an orphan once the lifecycle closed', async () => {
    const to = `visibility+${Date.now()}@example.com`;
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'S', text: 'T', policy: { complaintWindow: '5m' } });
    const delivered = await email.waitFor((s) => (s.eventCounts.Delivery ?? 0) === 1, { timeoutMs: 15_000 });
    const sesMessageId = delivered.attempts[0]!.sesMessageId!;
    await eventually(
      async () => {
        const found: string[] = [];
        for await (const wf of client.workflow.list({ query: `SesMessageIds = "${sesMessageId}"` })) found.push(wf.workflowId);
        return found;
      },
      (found) => found.includes(email.id),
    );

    // An identity notification (notificationType, no tags) for that SES message id.
    const identityComplaint = {
      notificationType: 'Complaint',
      mail: { timestamp: new Date().toISOString(), messageId: sesMessageId, source: 'app@example.com', destination: [to] },
      complaint: { complainedRecipients: [{ emailAddress: to }], timestamp: new Date().toISOString(), feedbackId: `fb-${randomUUID()}`, complaintFeedbackType: 'abuse' },
    };
    expect(await post(signedNotification(identityComplaint))).toEqual({ status: 200, json: { status: 'recorded' } });
    const complained = await email.waitFor('complained', { timeoutMs: 10_000 });
    expect(complained.eventCounts.Complaint).toBe(1);
    await expectNoWorkflow(orphanId(sesMessageId));

    // Close the lifecycle; a later event naming it goes to an orphan lifecycle (never dropped).
    await client.workflow.getHandle(email.id).terminate('test: lifecycle closed');
    const signalsBefore = await signalsReceived(email.id);
    const late = sesJson('Open', sesMessageId, { lifecycleId: email.id, to });
    expect(await post(signedNotification(late))).toEqual({ status: 200, json: { status: 'recorded' } });
    const orphan = await lifecycleStatus(orphanId(sesMessageId));
    expect(orphan.eventCounts).toEqual({ Open: 1 });
    expect(await signalsReceived(email.id)).toBe(signalsBefore);
  });

  it('a duplicate SNS MessageId is answered 200 and signalled once', async () => {
    const sesId = newSesId();
    const body = signedNotification(sesJson('Delivery', sesId));
    expect(await post(body)).toEqual({ status: 200, json: { status: 'recorded' } });
    expect(await post(body)).toEqual({ status: 200, json: { status: 'duplicate' } });
    // Concurrent retries of one message share one attempt.
    const again = signedNotification(sesJson('Open', sesId));
    const both = await Promise.all([post(again), post(again)]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.map((r) => (r.json as { status: string }).status).sort()).toEqual(['duplicate', 'recorded']);
    // Signals that arrive during a workflow task are written to history when it completes: wait
    // for both, give a third (a wrongly re-sent duplicate) time to show up, then count exactly.
    await eventually(() => signalsReceived(orphanId(sesId)), (n) => n >= 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(await signalsReceived(orphanId(sesId))).toBe(2); // one Delivery, one Open
    expect((await lifecycleStatus(orphanId(sesId))).eventCounts).toEqual({ Delivery: 1, Open: 1 });
  });

  it('an SES event type this version does not know, for a message no lifecycle sent: 200, counted, no workflow started (rule 7)', async () => {
    const sesId = newSesId();
    const future = { eventType: 'Teleport', mail: { timestamp: new Date().toISOString(), messageId: sesId, destination: ['x@example.com'] }, teleport: { to: 'mars' } };
    const before = serverMetrics.snapshot().ignored;
    expect(await post(signedNotification(future))).toEqual({ status: 200, json: { status: 'ignored' } });
    expect(serverMetrics.snapshot().ignored).toBe(before + 1);
    await expect(lifecycleStatus(orphanId(sesId))).rejects.toThrow();
  });

  it('answers an UnsubscribeConfirmation with 200 and does not re-subscribe; a tampered one is 403', async () => {
    const canaryServer = await startCanary();
    try {
      const url = `${stack.sandbox.httpsOrigin}/?Action=ConfirmSubscription&TopicArn=${topicArn}&Token=resubscribe-${randomUUID()}`;
      const notice = signedConfirmation('UnsubscribeConfirmation', url);
      expect(await post(notice)).toEqual({ status: 200, json: { status: 'unsubscribed' } });
      expect(await post({ ...notice, Token: 'other' })).toEqual({ status: 403, json: { error: 'invalid signature' } });
      expect(serverMetrics.snapshot().unsubscribeNotices).toBe(1);
    } finally {
      await canaryServer.close();
    }
  });
});

describe('webhook refuses what can never succeed (4xx) and nothing is signalled', () => {
  it('forged signature → 403', async () => {
    const sesId = newSesId();
    const body = signedNotification(sesJson('Delivery', sesId));
    const forged = { ...body, Message: JSON.stringify(sesJson('Bounce', sesId)) };
    expect(await inject(app, forged)).toEqual({ status: 403, json: { error: 'invalid signature' } });
    const garbage = { ...body, Signature: Buffer.from('not a signature').toString('base64') };
    expect(await inject(app, garbage)).toEqual({ status: 403, json: { error: 'invalid signature' } });
    await expectNoWorkflow(orphanId(sesId));
  });

  it('a MessageId carrying "\nSubject\n…" (same string to sign, Subject removed) → 403, and the event is signalled once', async () => {
    const sesId = newSesId();
    const genuine = stack.sandbox.signMessage({ Type: 'Notification', MessageId: randomUUID(), TopicArn: topicArn, Subject: 'Amazon SES Email Event Notification', Message: JSON.stringify(sesJson('Delivery', sesId)), Timestamp: new Date().toISOString() });
    const { Subject, ...rest } = genuine;
    const forged = { ...rest, MessageId: `${genuine.MessageId}\nSubject\n${Subject}` };
    expect(await post(genuine)).toEqual({ status: 200, json: { status: 'recorded' } });
    expect(await post(forged)).toEqual({ status: 403, json: { error: 'malformed SNS message' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(await signalsReceived(orphanId(sesId))).toBe(1);
  });

  it("SignatureVersion '3' → 403", async () => {
    const sesId = newSesId();
    const body = { ...signedNotification(sesJson('Delivery', sesId)), SignatureVersion: '3' };
    expect(await inject(app, body)).toEqual({ status: 403, json: { error: 'unsupported signature version' } });
    await expectNoWorkflow(orphanId(sesId));
  });

  it('SigningCertURL on a foreign host, over http, on a look-alike host, with userinfo or another port → 403 without a fetch', async () => {
    const tarpit = await startCanary();
    try {
      const sesId = newSesId();
      const body = signedNotification(sesJson('Delivery', sesId));
      const path = new URL(body.SigningCertURL).pathname;
      const { certHost } = stack.sandbox;
      for (const url of [
        `https://evil.example${path}`,
        `http://${certHost}${path}`,
        `https://${certHost}.evil.example${path}`,
        `https://${certHost}@localhost:${tarpit.port}${path}`,
        `https://localhost:${tarpit.port}${path}`,
        `https://127.0.0.1:${tarpit.port}${path}`,
        `https://${certHost}${path}?x=1`,
        `https://${certHost}/cert.txt`,
      ]) {
        expect(await inject(app, { ...body, SigningCertURL: url }), url).toEqual({ status: 403, json: { error: 'signing certificate URL not allowed' } });
      }
      // A Lambda-style key (`SigningCertUrl`, which some validators copy over SigningCertURL) is ignored.
      const sneaky = { ...body, SigningCertUrl: `https://localhost:${tarpit.port}${path}` };
      expect(await inject(app, sneaky)).toEqual({ status: 200, json: { status: 'recorded' } });
      expect(tarpit.connections()).toBe(0);
    } finally {
      await tarpit.close();
    }
  });

  it('a validly signed message from a topic that is not allowlisted → 403', async () => {
    const sesId = newSesId();
    const foreignTopic = `arn:aws:sns:${stack.sandbox.region}:${stack.sandbox.accountId}:someone-elses-topic`;
    expect(await post(signedNotification(sesJson('Delivery', sesId), { topic: foreignTopic }))).toEqual({ status: 403, json: { error: 'topic not allowed' } });
    await expectNoWorkflow(orphanId(sesId));
    // Its subscription is not confirmed either (the sandbox would answer the GET, so 403 proves no fetch).
    const url = `${stack.sandbox.httpsOrigin}/?Action=ConfirmSubscription&TopicArn=${foreignTopic}&Token=t`;
    expect(await inject(app, signedConfirmation('SubscriptionConfirmation', url, foreignTopic))).toEqual({ status: 403, json: { error: 'topic not allowed' } });
  });

  it('a SubscribeURL pointing elsewhere → 403 and no fetch', async () => {
    const target = await startCanary();
    try {
      const q = `?Action=ConfirmSubscription&TopicArn=${topicArn}&Token=t`;
      for (const url of [
        `https://localhost:${target.port}/${q}`,
        `http://localhost:${target.port}/${q}`,
        `https://127.0.0.1:${target.port}/${q}`,
        `https://${stack.sandbox.certHost}@localhost:${target.port}/${q}`,
        `${stack.sandbox.httpsOrigin}/?Action=ConfirmSubscription&TopicArn=${topicArn}-other&Token=t`,
      ]) {
        expect(await inject(app, signedConfirmation('SubscriptionConfirmation', url)), url).toEqual({ status: 403, json: { error: 'SubscribeURL not allowed' } });
      }
      expect(target.connections()).toBe(0);
    } finally {
      await target.close();
    }
  });

  it('oversized body → 413', async () => {
    const body = signedNotification('x'.repeat(300 * 1024));
    expect(await inject(app, body)).toEqual({ status: 413, json: { error: 'payload too large' } });
    expect(appMetrics.snapshot().rejected['payload-too-large']).toBeGreaterThanOrEqual(1);
  });

  it('malformed JSON, a wrong or missing message-type header, an unknown Type → 400 with a short body', async () => {
    expect(await inject(app, '{"Type": "Notification", ')).toEqual({ status: 400, json: { error: 'malformed SNS message' } });
    const body = signedNotification(sesJson('Delivery', newSesId()));
    expect(await inject(app, body, { 'x-amz-sns-message-type': 'SubscriptionConfirmation' })).toEqual({ status: 400, json: { error: 'message type mismatch' } });
    expect(await inject(app, body, { 'x-amz-sns-topic-arn': `${topicArn}-x` })).toEqual({ status: 400, json: { error: 'message type mismatch' } });
    const res = await app.inject({ method: 'POST', url: '/sns', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify(body) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'bad request' });
    expect(await inject(app, { ...body, Type: 'Subscription' })).toEqual({ status: 400, json: { error: 'unknown message type' } });
    const other = await app.inject({ method: 'POST', url: '/sns', headers: { ...headersFor(body), 'content-type': 'application/xml' }, payload: '<x/>' });
    expect(other.statusCode).toBe(415);
    expect(other.json()).toEqual({ error: 'unsupported media type' });
  });

  it('an SES event with malformed fields → 400; a Message that is not an SES event → 200 ignored', async () => {
    const sesId = newSesId();
    const broken = { eventType: 'Bounce', mail: { timestamp: new Date().toISOString(), messageId: sesId }, bounce: { bounceType: 'Sideways' } };
    expect(await inject(app, signedNotification(broken))).toEqual({ status: 400, json: { error: 'invalid SES event' } });
    expect(await inject(app, signedNotification({ notificationType: 'AmazonSnsSubscriptionSucceeded', message: 'hi' }))).toEqual({ status: 200, json: { status: 'ignored' } });
    expect(await inject(app, signedNotification('plain text, not JSON'))).toEqual({ status: 200, json: { status: 'ignored' } });
    await expectNoWorkflow(orphanId(sesId));
  });

  it('a Timestamp outside the replay window (older than 3 h, or in the future) → 400; an hour-old retry → 200', async () => {
    const sesId = newSesId();
    const old = signedNotification(sesJson('Delivery', sesId), { timestamp: new Date(Date.now() - 3 * 3_600_000 - 60_000).toISOString() });
    expect(await inject(app, old)).toEqual({ status: 400, json: { error: 'timestamp outside the replay window' } });
    const future = signedNotification(sesJson('Delivery', sesId), { timestamp: new Date(Date.now() + 10 * 60_000).toISOString() });
    expect(await inject(app, future)).toEqual({ status: 400, json: { error: 'timestamp outside the replay window' } });
    await expectNoWorkflow(orphanId(sesId));
    const retry = signedNotification(sesJson('Delivery', sesId), { timestamp: new Date(Date.now() - 3_600_000).toISOString() });
    expect(await inject(app, retry)).toEqual({ status: 200, json: { status: 'recorded' } });
  });

  it('raw message delivery: unsigned SES JSON is refused unless enabled', async () => {
    const sesId = newSesId();
    const raw = sesJson('Delivery', sesId);
    expect(await inject(app, raw)).toEqual({ status: 400, json: { error: 'unsigned message' } });
    await expectNoWorkflow(orphanId(sesId));
    const rawApp = await buildWebhookApp(webhookOptions({ rawMessageDelivery: true }));
    try {
      expect(await inject(rawApp, raw, { 'x-amz-sns-rawdelivery': 'true' })).toEqual({ status: 200, json: { status: 'recorded' } });
      expect(await inject(rawApp, raw)).toEqual({ status: 200, json: { status: 'duplicate' } });
      expect((await lifecycleStatus(orphanId(sesId))).eventCounts).toEqual({ Delivery: 1 });
      // Signed envelopes keep being verified on a raw-delivery app.
      const forged = { ...signedNotification(sesJson('Open', sesId)), Message: JSON.stringify(sesJson('Bounce', sesId)) };
      expect(await inject(rawApp, forged)).toEqual({ status: 403, json: { error: 'invalid signature' } });
    } finally {
      await rawApp.close();
    }
  });

  it('unknown routes answer 404 without echoing the path', async () => {
    const res = await app.inject({ method: 'GET', url: '/<script>' });
    expect(res.statusCode).toBe(404);
    expect(res.body).toBe('{"error":"not found"}');
  });
});

describe('webhook answers 5xx when it cannot record now (SNS retries)', () => {
  it('Temporal unreachable → 503, /readyz 503, /healthz 200', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createNetServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const deadConnection = Connection.lazy({ address: `127.0.0.1:${port}` });
    const deadClient = new Client({ connection: deadConnection });
    const deadMetrics = new WebhookMetrics();
    const dead = await buildWebhookApp({ ...webhookOptions({ metrics: deadMetrics }), temporal: { client: deadClient }, temporalTimeoutMs: 1_000, readinessTimeoutMs: 500 });
    try {
      const started = Date.now();
      const sesId = newSesId();
      expect(await inject(dead, signedNotification(sesJson('Delivery', sesId)))).toEqual({ status: 503, json: { error: 'temporarily unavailable' } });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(deadMetrics.snapshot().unavailable.temporal).toBe(1);
      expect((await dead.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
      expect((await dead.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      await expectNoWorkflow(orphanId(sesId));
    } finally {
      await dead.close();
      await deadConnection.close();
    }
  });

  it('/healthz and /readyz are 200 when Temporal answers', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('certificate not retrievable → 503; a certificate host that hangs → 503 after the fetch timeout', async () => {
    const sesId = newSesId();
    const body = signedNotification(sesJson('Delivery', sesId));
    const missing = { ...body, SigningCertURL: `${stack.sandbox.httpsOrigin}/SimpleNotificationService-00000000000000000000000000000000.pem` };
    expect(await inject(app, missing)).toEqual({ status: 503, json: { error: 'signing certificate unavailable' } });

    const tarpit = await startCanary();
    const slow = await buildWebhookApp(webhookOptions({ certHostPattern: exactHost(`localhost:${tarpit.port}`), certFetchTimeoutMs: 300 }));
    try {
      const hanging = { ...body, SigningCertURL: `https://localhost:${tarpit.port}${new URL(body.SigningCertURL).pathname}` };
      const started = Date.now();
      expect(await inject(slow, hanging)).toEqual({ status: 503, json: { error: 'signing certificate unavailable' } });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(tarpit.connections()).toBe(1);
    } finally {
      await slow.close();
      await tarpit.close();
    }
    await expectNoWorkflow(orphanId(sesId));
  });
});

describe('slow clients', () => {
  it('closes a connection whose body stalls (connection timeout)', async () => {
    const slow = await startWebhookServer({ ...webhookOptions(), connectionTimeoutMs: 300, port: 0 });
    try {
      const { port } = new URL(slow.url);
      const started = Date.now();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const socket = createConnection({ host: '127.0.0.1', port: Number(port) }, () => {
          socket.write('POST /sns HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nx-amz-sns-message-type: Notification\r\nContent-Length: 1000\r\n\r\n{"Type":');
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Date.now() - started));
        setTimeout(() => reject(new Error('connection still open after 3 s')), 3_000).unref();
      });
      expect(closedAfter).toBeLessThan(3_000);
    } finally {
      await slow.close();
    }
  });
});

describe('lifecycle id from the event', () => {
  it('signals the lifecycle named by the lifecycle-id tag directly', async () => {
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [`tagged+${Date.now()}@example.com`], subject: 'S', text: 'T', policy: { complaintWindow: '5m' } });
    const s0 = await email.waitFor((s) => (s.eventCounts.Delivery ?? 0) === 1, { timeoutMs: 15_000 });
    const sesMessageId = s0.attempts[0]!.sesMessageId!;
    const accepted = stack.sandbox.sentMessages().find((m) => m.sesMessageId === sesMessageId);
    expect(accepted?.tags).toContainEqual({ name: LIFECYCLE_TAG, value: email.id });
    const open = sesJson('Open', sesMessageId, { lifecycleId: email.id, to: s0.recipients[0]!.email });
    expect(await inject(app, signedNotification(open))).toEqual({ status: 200, json: { status: 'recorded' } });
    const s1 = await email.waitFor((s) => (s.eventCounts.Open ?? 0) === 1, { timeoutMs: 10_000 });
    expect(s1.recipients[0]!.opens).toBe(1);
    await client.workflow.getHandle(email.id).terminate('test done');
  });
});

describe('where the time of a request goes', () => {
  const timingsOf = (header: string | null): Record<string, number> =>
    Object.fromEntries((header ?? '').split(', ').filter(Boolean).map((p) => {
      const [name, dur] = p.split(';dur=');
      return [name!, Number(dur)];
    }));

  it('Server-Timing (when enabled) and ses_webhook_stage_seconds give verify, describe (first event only), signal and the handler', async () => {
    const registry = new Registry();
    const timed = await startWebhookServer({ ...webhookOptions({ metrics: { registry }, serverTiming: true }), host: '127.0.0.1', port: 0 });
    try {
      const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [`timed+${Date.now()}@example.com`], subject: 'S', text: 'T', policy: { complaintWindow: '5m' } });
      const s0 = await email.waitFor((s) => (s.eventCounts.Delivery ?? 0) === 1, { timeoutMs: 15_000 });
      const sesMessageId = s0.attempts[0]!.sesMessageId!;
      const postTo = async (body: unknown) => fetch(`${timed.url}/sns`, { method: 'POST', headers: headersFor(body), body: JSON.stringify(body) });

      const first = await postTo(signedNotification(sesJson('Open', sesMessageId, { lifecycleId: email.id })));
      expect(first.status).toBe(200);
      const t1 = timingsOf(first.headers.get('server-timing'));
      expect(Object.keys(t1).sort()).toEqual(['describe', 'handler', 'signal', 'verify']);
      for (const ms of Object.values(t1)) expect(ms).toBeGreaterThanOrEqual(0);
      expect(t1.handler).toBeGreaterThanOrEqual(t1.verify! + t1.describe! + t1.signal!);

      // The lifecycle's type is cached: its next event pays no describe.
      const second = await postTo(signedNotification(sesJson('Open', sesMessageId, { lifecycleId: email.id })));
      expect(Object.keys(timingsOf(second.headers.get('server-timing'))).sort()).toEqual(['handler', 'signal', 'verify']);
      // An event without a lifecycle id is looked up in visibility.
      const third = await postTo(signedNotification(sesJson('Open', newSesId())));
      expect(Object.keys(timingsOf(third.headers.get('server-timing'))).sort()).toEqual(['handler', 'lookup', 'signal', 'verify']);
      // A refusal still reports its handler time, and nothing else ran.
      const forged = { ...signedNotification(sesJson('Open', sesMessageId)), Signature: 'AAAA' };
      const refused = await postTo(forged);
      expect(refused.status).toBe(403);
      expect(Object.keys(timingsOf(refused.headers.get('server-timing')))).toEqual(['handler']);

      const text = await registry.metrics();
      const counts = Object.fromEntries([...text.matchAll(/^ses_webhook_stage_seconds_count\{stage="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
      expect(counts).toEqual({ handler: 4, verify: 3, describe: 1, lookup: 1, signal: 3 });
      await client.workflow.getHandle(email.id).terminate('test done');
    } finally {
      await timed.close();
    }
  });

  it('sends no Server-Timing header unless enabled', async () => {
    const res = await fetch(`${server.url}/sns`, { method: 'POST', headers: headersFor({}), body: '{}' });
    expect(res.status).toBe(400);
    expect(res.headers.get('server-timing')).toBeNull();
  });
});
