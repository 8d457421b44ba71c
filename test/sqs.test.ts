/**
 * SQS ingestion against real things: moto's SQS server (a real SQS API, installed from PyPI by the
 * project's scripts), the local SES sandbox whose SNS delivers to SQS subscriptions through that
 * API (signed envelopes and raw message delivery, queue policies enforced), the real webhook over
 * HTTP beside it, a real Temporal dev server and worker. The consumer under test is the product's
 * own (`startSqsIngest`, and the `ingest-sqs` CLI as a child process that is SIGKILLed).
 *
 * "Counted once" is read from the lifecycles themselves (`eventCounts`, after the workflow's
 * dedupe); "nothing lost" from the queues (empty, dead-letter queue empty) and the lifecycles.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { orphanWorkflowId } from '../src/definitions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrackedEmail } from '../src/client';
import { runInitAwsCli } from '../src/init-aws';
import { queuePolicyAllows } from '../src/sandbox';
import { startSqsIngest, SqsIngestMetrics, type SqsIngest, type SqsIngestOptions } from '../src/sqs-ingest';
import { startWebhookServer, WebhookMetrics, type WebhookServer } from '../src/webhook';
import { signedSesNotification } from '../bench/sns';
import { sesEventJson } from './helpers/ses-json';
import { createTestQueue, motoOrWarn, queueDepth, sqsClient, startMoto, type MotoServer, type TestQueue } from './helpers/sqs';
import { startLifecycleStack, type LifecycleStack } from './helpers/stack';
import { getTestAddress, getTestConnection } from './helpers/temporal';
import { freePorts } from '../src/temporal-cli';
import { HANG_GUARD_MS, sandboxSettled, stallBudget, waitWithProgress } from './helpers/wait';

const moto = await motoOrWarn();

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exactHost = (host: string) => new RegExp(`^${escapeRe(host)}$`);
const SIM = 'simulator.amazonses.com';
const SANDBOX = 'sandbox.ses-lifecycle.test';

/** Addresses (unique per call: the account suppression list must not change later outcomes) and the events each produces. */
function mailboxes(label: string): { to: string; expect: Record<string, number> }[] {
  const u = `${label}${randomUUID().slice(0, 8)}`;
  return [
    { to: `success+${u}@${SIM}`, expect: { Send: 1, Delivery: 1 } },
    { to: `bounce+${u}@${SIM}`, expect: { Send: 1, Bounce: 1 } },
    { to: `complaint+${u}@${SIM}`, expect: { Send: 1, Delivery: 1, Complaint: 1 } },
    { to: `ooto+${u}@${SIM}`, expect: { Send: 1, Delivery: 1, Bounce: 1 } },
    { to: `delay+${u}@${SANDBOX}`, expect: { Send: 1, DeliveryDelay: 1, Delivery: 1 } },
  ];
}

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

describe.skipIf(!moto)('SQS ingestion (moto SQS + sandbox SNS + Temporal)', { timeout: HANG_GUARD_MS }, () => {
  let server: MotoServer;
  let stack: LifecycleStack;
  let client: Client;
  let sqs: SQSClient;
  let sns: SNSClient;
  let webhook: WebhookServer;
  let webhookMetrics: WebhookMetrics;
  const consumers: SqsIngest[] = [];
  const topic = (cs: string): string => `arn:aws:sns:${stack.sandbox.region}:${stack.sandbox.accountId}:${cs}-events`;

  beforeAll(async () => {
    server = await startMoto(moto!);
    stack = await startLifecycleStack({
      sandbox: {
        eventDelayMs: 5,
        maxSendRate: 500,
        sns: { retries: 3, retryDelayMs: 100, timeoutMs: 5_000 },
        sqs: { endpoint: server.endpoint },
        // SNS at its worst: extra copies of a message, events of a message out of order.
        chaos: { duplicateProbability: 0.3, reorder: true, seed: 13 },
      },
    });
    client = (await getTestConnection()).client;
    sqs = sqsClient(server.endpoint, stack.sandbox.credentials, stack.sandbox.region);
    sns = new SNSClient({ region: stack.sandbox.region, endpoint: stack.sandbox.endpoint, credentials: stack.sandbox.credentials });
    webhookMetrics = new WebhookMetrics();
    webhook = await startWebhookServer({
      temporal: { client, taskQueue: stack.taskQueue },
      allowedTopicArns: [topic('sqs-both')],
      certHostPattern: exactHost(stack.sandbox.certHost),
      subscribeHostPattern: exactHost(stack.sandbox.certHost),
      extraCaPem: stack.sandbox.caCertPem,
      logger: false,
      metrics: webhookMetrics,
      metricsListen: false,
    });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.stop()));
    await webhook?.close();
    sns?.destroy();
    sqs?.destroy();
    await stack?.stop();
    await server?.stop();
  });

  /** Consumer options trusting the sandbox (its signing host and CA) and the given topics. */
  function ingestOptions(queueUrl: string, topics: string[], over: Partial<SqsIngestOptions> = {}): SqsIngestOptions {
    return {
      queueUrl,
      sqs,
      temporal: { client, taskQueue: stack.taskQueue },
      allowedTopicArns: topics,
      certHostPattern: exactHost(stack.sandbox.certHost),
      subscribeHostPattern: exactHost(stack.sandbox.certHost),
      extraCaPem: stack.sandbox.caCertPem,
      logger: false,
      backoffMs: 200,
      ...over,
    };
  }

  async function consume(queueUrl: string, topics: string[], over: Partial<SqsIngestOptions> = {}): Promise<SqsIngest> {
    const c = await startSqsIngest(ingestOptions(queueUrl, topics, over));
    consumers.push(c);
    return c;
  }

  async function stopConsumer(c: SqsIngest): Promise<void> {
    await c.stop();
    consumers.splice(consumers.indexOf(c), 1);
  }

  /** A configuration set whose topic delivers to a new queue (policy for the topic, DLQ). */
  async function sqsConfigSet(cs: string, o: { raw?: boolean; visibilityTimeout?: number; maxReceiveCount?: number } = {}): Promise<TestQueue> {
    const q = await createTestQueue(sqs, `${cs}-q`, { topicArn: topic(cs), visibilityTimeout: o.visibilityTimeout ?? 2, ...(o.maxReceiveCount !== undefined ? { maxReceiveCount: o.maxReceiveCount } : {}) });
    await stack.sandbox.createConfigurationSet(cs, { queueArn: q.arn, rawMessageDelivery: o.raw === true });
    return q;
  }

  async function send(cs: string, to: string): Promise<TrackedEmail> {
    return stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'S', text: 'T', configurationSetName: cs, policy: { complaintWindow: '10m' } });
  }

  /** Waits until every lifecycle has recorded at least its expected number of events; fails on a stall. */
  async function allRecorded(emails: { email: TrackedEmail; expect: Record<string, number> }[], progress: () => number, what: string): Promise<Record<string, number>[]> {
    let counts: Record<string, number>[] = [];
    await waitWithProgress(what, {
      done: async () => {
        counts = await Promise.all(emails.map(async (e) => (await e.email.status()).eventCounts));
        return counts.every((c, i) => total(c) >= total(emails[i]!.expect));
      },
      progress,
      stallMs: () => stallBudget(10_000),
      intervalMs: 250,
      describe: () => JSON.stringify(counts),
    });
    return counts;
  }

  /**
   * Waits until SES accepted every email and the sandbox's SNS published and delivered (or gave
   * up on) all their events.
   */
  async function snsDrained(emails: TrackedEmail[] = []): Promise<void> {
    let accepted = 0;
    await waitWithProgress('SES to accept every email', {
      done: async () => {
        accepted = (await Promise.all(emails.map(async (e) => (await e.status()).attempts.some((a) => a.sesMessageId !== undefined)))).filter(Boolean).length;
        return accepted === emails.length;
      },
      progress: () => accepted,
      stallMs: () => stallBudget(10_000),
      intervalMs: 100,
    });
    await sandboxSettled(stack.sandbox, 5_000);
  }

  async function queueEmpty(q: TestQueue, progress: () => number): Promise<void> {
    await waitWithProgress(`queue ${q.url} to be empty`, {
      done: async () => (await queueDepth(sqs, q.url)).total === 0,
      progress,
      stallMs: () => stallBudget(10_000),
      intervalMs: 250,
    });
  }

  it.each([
    { shape: 'SNS envelope (signed)', raw: false },
    { shape: 'raw message delivery (SES JSON)', raw: true },
  ])('every SES event type reaches its lifecycle through SQS: $shape; each counted once, every message deleted', async ({ raw }) => {
    const cs = `sqs-${raw ? 'raw' : 'env'}`;
    const q = await sqsConfigSet(cs, { raw });
    const metrics = new SqsIngestMetrics();
    const consumer = await consume(q.url, [topic(cs)], { metrics });
    const emails = await Promise.all(mailboxes(raw ? 'r' : 'e').map(async (m) => ({ email: await send(cs, m.to), expect: m.expect })));
    // Opens are not simulated by the sandbox: one per lifecycle goes into the queue as SNS would
    // put it there (a signed envelope, or the bare SES JSON).
    for (const e of emails) {
      const s = await e.email.waitFor((x) => x.attempts[0]?.sesMessageId !== undefined, { timeoutMs: stallBudget(10_000) });
      const event = sesEventJson('Open', { messageId: s.attempts[0]!.sesMessageId!, recipients: s.recipients.map((r) => r.email), at: new Date().toISOString(), lifecycleId: e.email.id });
      const body = raw ? JSON.stringify(event) : signedSesNotification(stack.sandbox, topic(cs), event).body;
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }));
      e.expect = { ...e.expect, Open: 1 };
    }
    const counts = await allRecorded(emails, () => metrics.snapshot().received + metrics.snapshot().recorded, `events of ${emails.length} lifecycles via ${cs}`);
    await snsDrained();
    await queueEmpty(q, () => metrics.snapshot().deleted);
    // Exactly once each (the sandbox duplicated some messages; the lifecycle deduped them).
    const final = await Promise.all(emails.map(async (e) => (await e.email.status()).eventCounts));
    expect(final).toEqual(emails.map((e) => e.expect));
    expect(counts.length).toBe(5);
    const snap = metrics.snapshot();
    const ledger = stack.sandbox.ledger().filter((e) => e.endpoint === q.arn && e.type === 'Notification');
    expect(ledger.length).toBeGreaterThanOrEqual(13); // 5 Send + 5 Delivery/Bounce + 3 more, plus chaos copies
    expect(ledger.every((e) => e.finalStatus === 'delivered' && e.rawMessageDelivery === raw)).toBe(true);
    // Each message received (and deleted) at least once; a copy received again is a duplicate.
    expect(snap.deleted).toBeGreaterThanOrEqual(ledger.length + emails.length);
    expect(snap.refused).toEqual({});
    expect(snap.failed).toEqual({});
    expect(snap.lastLagMs).toBeGreaterThanOrEqual(0);
    expect((await queueDepth(sqs, q.dlqUrl)).total).toBe(0);
    await stopConsumer(consumer);
  });

  it('the sandbox SNS delivers nothing to a queue whose policy does not let the topic send (as SNS), and says so in the ledger', async () => {
    const cs = 'sqs-nopolicy';
    const q = await createTestQueue(sqs, `${cs}-q`, {}); // no policy
    await stack.sandbox.createConfigurationSet(cs, { queueArn: q.arn });
    await snsDrained([await send(cs, `success+np${randomUUID().slice(0, 6)}@${SIM}`)]);
    const entries = stack.sandbox.ledger().filter((e) => e.endpoint === q.arn);
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) {
      expect(e.finalStatus).toBe('failed');
      expect(e.deliveries.at(-1)?.statusCode).toBe(403);
    }
    expect((await queueDepth(sqs, q.url)).total).toBe(0);
  });

  it('webhook and SQS at once, with duplicates and reordering: every event counted once per lifecycle', async () => {
    const cs = 'sqs-both';
    const q = await createTestQueue(sqs, `${cs}-q`, { topicArn: topic(cs) });
    await stack.sandbox.createConfigurationSet(cs, { webhookUrl: `${webhook.url}/sns` });
    await stack.sandbox.waitForSubscriptionConfirmed(topic(cs), 20_000);
    await sns.send(new SubscribeCommand({ TopicArn: topic(cs), Protocol: 'sqs', Endpoint: q.arn }));
    const metrics = new SqsIngestMetrics();
    // Two consumers on one queue, as two replicas would run.
    await consume(q.url, [topic(cs)], { metrics });
    await consume(q.url, [topic(cs)], { metrics, pollers: 1 });
    const before = webhookMetrics.snapshot();
    const emails = await Promise.all([...mailboxes('b1'), ...mailboxes('b2')].map(async (m) => ({ email: await send(cs, m.to), expect: m.expect })));
    await allRecorded(emails, () => metrics.snapshot().received + webhookMetrics.snapshot().received, 'events via webhook and SQS');
    await snsDrained();
    await queueEmpty(q, () => metrics.snapshot().deleted);
    const final = await Promise.all(emails.map(async (e) => (await e.email.status()).eventCounts));
    expect(final).toEqual(emails.map((e) => e.expect));
    // Both paths carried every event: each SNS message went to the webhook and to the queue.
    const ledger = stack.sandbox.ledger().filter((e) => e.topicArn === topic(cs) && e.type === 'Notification');
    const toQueue = ledger.filter((e) => e.endpoint === q.arn);
    const toWebhook = ledger.filter((e) => e.endpoint === `${webhook.url}/sns`);
    expect(new Set(toQueue.map((e) => e.snsMessageId))).toEqual(new Set(toWebhook.map((e) => e.snsMessageId)));
    expect(ledger.some((e) => e.duplicate)).toBe(true);
    expect(ledger.every((e) => e.finalStatus === 'delivered')).toBe(true);
    expect(metrics.snapshot().received).toBeGreaterThanOrEqual(toQueue.length);
    expect(metrics.snapshot().recorded + metrics.snapshot().duplicate).toBeGreaterThan(0);
    expect(webhookMetrics.snapshot().received - before.received).toBe(toWebhook.reduce((n, e) => n + e.deliveries.length, 0));
    expect(webhookMetrics.snapshot().recorded - before.recorded).toBeGreaterThan(0);
  });

  it('a consumer SIGKILLed mid-batch loses nothing; a new consumer drains the rest and nothing is counted twice', async () => {
    const cs = 'sqs-kill';
    const q = await sqsConfigSet(cs, { visibilityTimeout: 3 });
    const emails = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => ({ email: await send(cs, `success+k${i}-${randomUUID().slice(0, 6)}@${SIM}`), expect: { Send: 1, Delivery: 1 } })),
    );
    await snsDrained(emails.map((e) => e.email));
    const queued = (await queueDepth(sqs, q.url)).total;
    expect(queued).toBeGreaterThanOrEqual(60);

    const bin = path.join(__dirname, '..', 'bin', 'ses-lifecycle.js');
    const child = spawn(process.execPath, [bin, 'ingest-sqs', '--queue-url', q.url, '--sqs-endpoint', server.endpoint, '--pollers', '2'], {
      env: {
        ...process.env,
        SES_LIFECYCLE_MODE: 'sandbox',
        SANDBOX_PORT: new URL(stack.sandbox.endpoint).port,
        TEMPORAL_ADDRESS: getTestAddress(),
        TEMPORAL_TASK_QUEUE: stack.taskQueue,
        SNS_ALLOWED_TOPIC_ARNS: topic(cs),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const routed = (): number => out.split('\n').filter((l) => l.includes('"SES event routed"')).length;
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Kill as soon as it has recorded something: its other messages are in flight.
        if (routed() >= 1) resolve();
      });
      child.once('exit', (code) => reject(new Error(`ingest-sqs exited (${code}) before recording anything: ${err.slice(-2000)}`)));
    });
    child.kill('SIGKILL');
    await exited;
    const recordedByChild = routed();
    const left = await queueDepth(sqs, q.url);
    // It was killed with work left: recorded-but-not-deleted and never-handled messages stay in the queue.
    expect(recordedByChild).toBeGreaterThanOrEqual(1);
    expect(left.total).toBeGreaterThan(0);

    const metrics = new SqsIngestMetrics();
    const drain = await consume(q.url, [topic(cs)], { metrics });
    await allRecorded(emails, () => metrics.snapshot().received, 'the rest after the kill');
    await queueEmpty(q, () => metrics.snapshot().deleted + metrics.snapshot().received);
    const final = await Promise.all(emails.map(async (e) => (await e.email.status()).eventCounts));
    expect(final).toEqual(emails.map((e) => e.expect));
    expect((await queueDepth(sqs, q.dlqUrl)).total).toBe(0);
    // Every message was handled by one consumer or the other; the kill left some for the second.
    expect(metrics.snapshot().received).toBeGreaterThanOrEqual(left.total);
    await stopConsumer(drain);
  }, HANG_GUARD_MS);

  it('Temporal unreachable: messages stay in the queue (nothing deleted) and are recorded once it is reachable', async () => {
    const cs = 'sqs-down';
    const q = await sqsConfigSet(cs, { visibilityTimeout: 2, maxReceiveCount: 50 });
    const emails = await Promise.all(mailboxes('d').map(async (m) => ({ email: await send(cs, m.to), expect: m.expect })));
    await snsDrained(emails.map((e) => e.email));
    const queued = (await queueDepth(sqs, q.url)).total;
    expect(queued).toBeGreaterThanOrEqual(13);

    // A Temporal client for a port nothing listens on.
    const [closed] = await freePorts(1);
    const deadConnection = Connection.lazy({ address: `127.0.0.1:${closed}`, connectTimeout: 500 });
    const deadClient = new Client({ connection: deadConnection, namespace: client.options.namespace });
    const downMetrics = new SqsIngestMetrics();
    const down = await consume(q.url, [topic(cs)], { temporal: { client: deadClient, taskQueue: stack.taskQueue }, temporalTimeoutMs: 1_000, metrics: downMetrics });
    // Every message was received and failed at least once, and the queue still holds them all.
    await waitWithProgress('every message to fail once', {
      done: () => (downMetrics.snapshot().failed.temporal ?? 0) >= queued,
      progress: () => downMetrics.snapshot().received,
      stallMs: () => stallBudget(10_000),
    });
    await stopConsumer(down);
    await deadConnection.close().catch(() => undefined);
    expect(downMetrics.snapshot().deleted).toBe(0);
    expect(downMetrics.snapshot().recorded).toBe(0);
    expect((await queueDepth(sqs, q.url)).total).toBe(queued);
    for (const e of emails) expect((await e.email.status()).eventCounts).toEqual({});

    const metrics = new SqsIngestMetrics();
    const up = await consume(q.url, [topic(cs)], { metrics });
    await allRecorded(emails, () => metrics.snapshot().received, 'events after Temporal is back');
    await queueEmpty(q, () => metrics.snapshot().deleted);
    const final = await Promise.all(emails.map(async (e) => (await e.email.status()).eventCounts));
    expect(final).toEqual(emails.map((e) => e.expect));
    expect(metrics.snapshot().deleted).toBeGreaterThanOrEqual(queued); // a copy seen twice is deleted twice, counted once
    await stopConsumer(up);
  }, HANG_GUARD_MS);

  it('forged, foreign or malformed messages are never recorded nor deleted: counted as refused, they end in the dead-letter queue', async () => {
    const cs = 'sqs-forge';
    const q = await createTestQueue(sqs, `${cs}-q`, { visibilityTimeout: 1, maxReceiveCount: 2 });
    const sesMessageId = `0100019a${randomUUID().slice(0, 8)}-${randomUUID()}-000000`;
    const event = sesEventJson('Delivery', { messageId: sesMessageId, recipients: ['x@example.com'], at: new Date().toISOString() });
    const good = signedSesNotification(stack.sandbox, topic(cs), event).message;
    const forged = { ...good, Message: JSON.stringify({ ...event, eventType: 'Bounce' }) }; // signature no longer matches
    const foreign = signedSesNotification(stack.sandbox, 'arn:aws:sns:us-east-1:123456789012:someone-else', event).message;
    const unsigned = { ...good, Signature: undefined };
    const bodies = [JSON.stringify(forged), JSON.stringify(foreign), JSON.stringify(unsigned), 'not json', JSON.stringify(event)];
    for (const b of bodies) await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: b }));
    const metrics = new SqsIngestMetrics();
    // Raw SES JSON refused too: this consumer accepts signed envelopes only.
    const c = await consume(q.url, [topic(cs)], { metrics, rawMessageDelivery: false });
    await waitWithProgress('the refused messages to reach the dead-letter queue', {
      done: async () => (await queueDepth(sqs, q.dlqUrl)).total === bodies.length,
      progress: () => metrics.snapshot().received,
      stallMs: () => stallBudget(10_000),
      intervalMs: 250,
    });
    await stopConsumer(c);
    const snap = metrics.snapshot();
    expect(snap.deleted).toBe(0);
    expect(snap.recorded).toBe(0);
    expect(snap.refused).toMatchObject({ 'invalid-signature': 2, 'topic-not-allowed': 2, malformed: 4, 'raw-delivery-disabled': 2 });
    expect((await queueDepth(sqs, q.url)).total).toBe(0);
    // Nothing reached Temporal: no orphan lifecycle for that SES message.
    await expect(client.workflow.getHandle(orphanWorkflowId(sesMessageId)).describe()).rejects.toThrow(WorkflowNotFoundError);
  });

  it('init-aws --ingest sqs creates the queue, its dead-letter queue, the queue policy and the subscription; events then flow; a second run reuses everything', async () => {
    const cs = 'sqs-init';
    const out: string[] = [];
    const env = { SES_LIFECYCLE_MODE: 'sandbox', SANDBOX_PORT: new URL(stack.sandbox.endpoint).port, SES_CONFIGURATION_SET: cs, AWS_REGION: stack.sandbox.region };
    const plan = await runInitAwsCli({ ingest: 'sqs', sqsEndpoint: server.endpoint, dryRun: true }, env, (l) => out.push(l));
    expect(plan.steps.map((st) => `${st.action} ${st.resource}`)).toEqual([
      'create sns-topic',
      'create configuration-set',
      'create event-destination',
      'create sqs-dead-letter-queue',
      'create sqs-queue',
      'create sqs-queue-policy',
      'create sns-subscription',
    ]);
    const first = await runInitAwsCli({ ingest: 'sqs', sqsEndpoint: server.endpoint, json: true }, env, (l) => out.push(l));
    expect(first.steps.map((st) => st.action)).toEqual(['create', 'create', 'create', 'create', 'create', 'create', 'create']);
    expect(first.ingest).toBe('sqs');
    expect(first.topicArn).toBe(topic(cs));
    expect(first.subscription.pendingConfirmation).toBe(false);
    const queue = first.queue!;
    expect(queue.arn).toBe(`arn:aws:sqs:${stack.sandbox.region}:${stack.sandbox.accountId}:${cs}-events`);
    const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ['All'] }))).Attributes ?? {};
    expect(JSON.parse(attrs.RedrivePolicy ?? '{}')).toEqual({ deadLetterTargetArn: queue.deadLetterQueueArn, maxReceiveCount: queue.maxReceiveCount });
    expect(queuePolicyAllows(attrs.Policy, queue.arn, topic(cs))).toBe(true);
    expect(queuePolicyAllows(attrs.Policy, queue.arn, topic('someone-else'))).toBe(false);

    const again = await runInitAwsCli({ ingest: 'sqs', sqsEndpoint: server.endpoint }, env, (l) => out.push(l));
    expect(again.steps.map((st) => st.action)).toEqual(['reuse', 'reuse', 'reuse', 'reuse', 'reuse', 'reuse', 'reuse']);
    expect(out.join('\n')).toContain(`ses-lifecycle ingest-sqs --queue-url ${queue.url}`);

    // What it made carries events end to end: SES → SNS → the queue → the consumer → the lifecycle.
    const metrics = new SqsIngestMetrics();
    const c = await consume(queue.url, [first.topicArn], { metrics });
    const emails = await Promise.all(mailboxes('i').slice(0, 2).map(async (m) => ({ email: await send(cs, m.to), expect: m.expect })));
    await allRecorded(emails, () => metrics.snapshot().received, 'events via the init-aws queue');
    expect(await Promise.all(emails.map(async (e) => (await e.email.status()).eventCounts))).toEqual(emails.map((e) => e.expect));
    await stopConsumer(c);
  });
});
