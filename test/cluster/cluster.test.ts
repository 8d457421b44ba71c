/**
 * `npm run test:cluster`: the production topology for real on this machine.
 *
 * The real Temporal server (v1.29.1, built from the Go module proxy) on a throwaway PostgreSQL
 * cluster (persistence and advanced visibility), configured by the files docker-compose.yml
 * mounts; the namespace and search attributes registered by the product's own code; TWO lifecycle
 * workers (child processes, test/reliability/worker-proc.ts) and TWO webhook instances (the
 * product's webhook app) behind a round-robin load balancer that the sandbox's SNS subscription
 * points at. Then, in order:
 *
 *  1. every simulator address reaches its documented outcome;
 *  2. a worker SIGKILLed while it has SendEmail calls in flight (held before SES saw them);
 *  3. one webhook instance killed under load: the other keeps answering;
 *  4. the Temporal server SIGKILLed and restarted under load;
 *  5. PostgreSQL stopped (immediate: crash recovery on start) and restarted under load.
 *
 * Each batch: every lifecycle ends in its documented state, the sandbox ledger has every
 * notification delivered, the lifecycles recorded exactly the events SES published, and SES
 * accepted no SendEmail beyond the attempts the lifecycles recorded (0 duplicate sends).
 * Figures go to test-artifacts/cluster/figures.jsonl. Waits follow progress (test/helpers/wait.ts).
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LifecycleClient, type TrackedEmail } from '../../src/client';
import type { LifecyclePolicy, LifecycleResult } from '../../src/definitions';
import { startSesSandbox, type SesSandbox } from '../../src/sandbox';
import { ensureNamespace, ensureSearchAttributes } from '../../src/search-attributes';
import { freePorts } from '../../src/temporal-cli';
import type { WebhookOptions } from '../../src/webhook';
import { HANG_GUARD_MS, sandboxSettled, stallBudget, waitWithProgress } from '../helpers/wait';
import {
  ADDRESS_KINDS,
  acceptedFor,
  describeUndelivered,
  duplicateSends,
  EXPECTED,
  ledgerFigures,
  policyBoundMs,
  resultsWithProgress,
  simAddress,
  startKillableWebhook,
  startSesProxy,
  startWorkerProcess,
  sumRecorded,
  type AddressKind,
  type KillableWebhook,
  type SesProxy,
  type WorkerProcess,
} from '../reliability/helpers';
import { killAllSync, onExit, REPO_ROOT, startCluster, startLoadBalancer, type Cluster, type LoadBalancer } from './cluster';

vi.setConfig({ testTimeout: HANG_GUARD_MS });

const NAMESPACE = 'default';
const FIGURES = path.join(REPO_ROOT, 'test-artifacts', 'cluster', 'figures.jsonl');
const quiet = pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' });

let cluster: Cluster | undefined;
let sandbox: SesSandbox;
let lb: LoadBalancer | undefined;
let lc: LifecycleClient;
let client: Client;
let topicArn: string;
let taskQueue: string;
let configurationSetName: string;
const connections: Connection[] = [];
const workers: { proc: WorkerProcess; proxy: SesProxy }[] = [];
/** The two webhook instances by slot (port fixed per slot, so the load balancer finds a restarted one). */
const webhooks: { port: number; hook?: KillableWebhook }[] = [];
const allResults: LifecycleResult[] = [];

async function webhookOptions(): Promise<WebhookOptions> {
  // Each instance has its own connection to Temporal, as separate processes would.
  const connection = await Connection.connect({ address: cluster!.temporal.address });
  connections.push(connection);
  const host = new RegExp(`^${sandbox.certHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return {
    temporal: { client: new Client({ connection, namespace: NAMESPACE }), taskQueue },
    allowedTopicArns: [topicArn],
    certHostPattern: host,
    subscribeHostPattern: host,
    extraCaPem: sandbox.caCertPem,
    logger: quiet,
    metricsRegistries: false,
  };
}

async function startWebhook(slot: number): Promise<void> {
  webhooks[slot]!.hook = await startKillableWebhook(await webhookOptions(), webhooks[slot]!.port);
}

async function startWorker(slot: number): Promise<void> {
  const proxy = await startSesProxy(sandbox.endpoint); // per worker, so a test can hold one worker's SendEmail calls
  const proc = await startWorkerProcess({ temporalAddress: cluster!.temporal.address, namespace: NAMESPACE, taskQueue, sesEndpoint: proxy.endpoint, configurationSetName });
  workers[slot] = { proc, proxy };
  onExit(`worker-${proc.pid}`, () => process.kill(proc.pid, 'SIGKILL'));
}

async function pollerCount(): Promise<number> {
  const r = await client.workflowService.describeTaskQueue({ namespace: NAMESPACE, taskQueue: { name: taskQueue, kind: 1 }, taskQueueType: 1 });
  return new Set((r.pollers ?? []).map((p) => p.identity)).size;
}

beforeAll(async () => {
  const t0 = Date.now();
  cluster = await startCluster();
  const connection = await Connection.connect({ address: cluster.temporal.address });
  connections.push(connection);
  client = new Client({ connection, namespace: NAMESPACE });
  // The product's own setup code: namespace, then the five search attributes.
  await ensureNamespace(client, NAMESPACE, { logger: quiet });
  const added = await ensureSearchAttributes(client, NAMESPACE, quiet);
  expect(added.sort()).toEqual(['EmailRecipients', 'EmailStatus', 'EmailTags', 'LifecycleKind', 'SesMessageIds']);
  expect(await ensureSearchAttributes(client, NAMESPACE)).toEqual([]); // idempotent

  taskQueue = `cluster-${randomUUID().slice(0, 8)}`;
  configurationSetName = `cluster-${randomUUID().slice(0, 8)}`;
  // SNS retries often and long: outages of Temporal or PostgreSQL last several seconds.
  sandbox = await startSesSandbox({ port: 0, httpsPort: 0, maxSendRate: 50, eventDelayMs: 200, sns: { retries: 400, retryDelayMs: 500, timeoutMs: 10_000 }, logger: quiet });
  const topicName = `${configurationSetName}-events`;
  topicArn = `arn:aws:sns:${sandbox.region}:${sandbox.accountId}:${topicName}`;
  const ports = await freePorts(2);
  for (const port of ports) webhooks.push({ port });
  await startWebhook(0);
  await startWebhook(1);
  lb = await startLoadBalancer(ports);
  // One subscription, to the load balancer; the confirmation handshake goes through it too.
  const created = await sandbox.createConfigurationSet(configurationSetName, { webhookUrl: `${lb.url}/sns`, topicName });
  await sandbox.waitForSubscriptionConfirmed(created.topicArn, 60_000);
  await startWorker(0);
  await startWorker(1);
  lc = new LifecycleClient(client, { taskQueue });
  await waitWithProgress('both workers to poll the task queue', { done: async () => (await pollerCount()) >= 2, progress: () => 0, stallMs: 60_000, intervalMs: 250 });
  console.error(`[cluster] ready in ${Date.now() - t0} ms ${JSON.stringify(cluster.timings)}`);
}, HANG_GUARD_MS);

afterAll(async () => {
  for (const w of workers) await w?.proc.kill().catch(() => undefined);
  for (const w of workers) await w?.proxy.close().catch(() => undefined);
  for (const w of webhooks) await w.hook?.kill().catch(() => undefined);
  await lb?.close();
  await sandbox?.close();
  for (const c of connections) await c.close().catch(() => undefined);
  await cluster?.stop();
  killAllSync();
}, 300_000);

interface Batch {
  kinds: AddressKind[];
  emails: TrackedEmail[];
  policy: Partial<LifecyclePolicy>;
}

async function send(name: string, kinds: AddressKind[], policy: Partial<LifecyclePolicy>): Promise<Batch> {
  const label = `${name}${Date.now()}`;
  const emails = await Promise.all(
    kinds.map((kind, i) => lc.sendTracked({ from: 'app@example.com', to: [simAddress(kind, `${label}-${i}`)], subject: `${name} ${kind} ${i}`, text: 'x', tags: { suite: 'cluster' }, policy })),
  );
  return { kinds, emails, policy };
}

/** Notifications published so far for the SES messages of `batch`. */
function batchNotifications(batch: Batch): ReturnType<typeof ledgerFigures>['notifications'] {
  const ids = new Set(batch.emails.flatMap((e) => acceptedFor(sandbox, e.id).map((m) => m.sesMessageId)));
  return ledgerFigures(sandbox).notifications.filter((n) => n.sesMessageId !== null && ids.has(n.sesMessageId));
}

/** Waits for the batch, checks every outcome, the ledger and the send count; records the figure. */
async function settle(fault: string, batch: Batch, injected: number, notes: () => string[], opts: { ambiguous?: number } = {}): Promise<LifecycleResult[]> {
  const started = Date.now();
  const results = await resultsWithProgress(client, batch.emails, policyBoundMs(batch.policy, opts));
  batch.kinds.forEach((kind, i) => expect(results[i]!.recipients[0], `${kind} #${i}`).toMatchObject(EXPECTED[kind]));
  await sandboxSettled(sandbox, 500);
  const mine = batchNotifications(batch);
  const undelivered = mine.filter((e) => e.finalStatus !== 'delivered');
  const published = new Set(mine.map((e) => e.snsMessageId)).size;
  const recorded = sumRecorded(results);
  const dup = duplicateSends(sandbox, results);
  allResults.push(...results);
  const figure = { fault, injected, lifecycles: results.length, eventsPublished: published, eventsRecorded: recorded, duplicateSends: dup, undelivered: undelivered.length, notes: [...notes(), `notification delivery attempts: ${mine.reduce((n, e) => n + e.deliveries.length, 0)} for ${mine.length} notifications (max ${Math.max(0, ...mine.map((e) => e.deliveries.length))} for one)`].join('; '), waitMs: Date.now() - started, at: new Date().toISOString() };
  mkdirSync(path.dirname(FIGURES), { recursive: true });
  appendFileSync(FIGURES, `${JSON.stringify(figure)}\n`);
  console.error(`[cluster] ${JSON.stringify(figure)}`);
  expect(undelivered, describeUndelivered(undelivered)).toEqual([]);
  expect(recorded).toBe(published);
  expect(dup).toBe(0);
  return results;
}

/** Waits until `n` notifications of the batch were published (the batch is under way). */
async function publishedAtLeast(batch: Batch, n: number): Promise<void> {
  await waitWithProgress(`${n} notifications of the batch to be published`, {
    done: () => batchNotifications(batch).length >= n,
    progress: () => sandbox.ledger().length + sandbox.sentMessages().length,
    stallMs: () => stallBudget(10_000),
    intervalMs: 50,
  });
}

/** Delivery attempts since `since` that got a 5xx or no answer. */
function failedSince(since: number): number {
  return sandbox
    .ledger()
    .flatMap((e) => e.deliveries)
    .filter((d) => Date.parse(d.at) >= since && (d.statusCode === undefined || d.statusCode >= 500)).length;
}

/** Waits until some delivery attempt after `since` failed (the outage is visible to SNS). */
async function deliveryFailureSince(since: number): Promise<void> {
  const failed = (): number => failedSince(since);
  await waitWithProgress('a delivery attempt to fail during the outage', {
    done: () => failed() > 0,
    progress: () => sandbox.ledger().reduce((n, e) => n + e.deliveries.length, 0),
    stallMs: () => stallBudget(15_000),
    intervalMs: 100,
  });
}

it('the cluster serves every simulator address its documented outcome (2 workers, 2 webhooks)', async () => {
  rmSync(FIGURES, { force: true });
  expect(await pollerCount()).toBeGreaterThanOrEqual(2);
  const batch = await send('e2e', [...ADDRESS_KINDS], { deliveryDeadline: '8s', complaintWindow: '5s', resendBackoff: '300ms' });
  const results = await settle('none (end to end, every simulator address)', batch, 0, () => [`requests answered per webhook instance: ${JSON.stringify(Object.fromEntries(lb!.answered))}`]);
  expect(results.filter((r) => r.sendError)).toEqual([]);
  // Visibility on PostgreSQL: the custom search attributes filter (advanced visibility).
  await waitWithProgress('visibility to list the bounced lifecycle', {
    done: async () => {
      let n = 0;
      for await (const _ of client.workflow.list({ query: `EmailStatus = "bounced" AND EmailTags = "suite=cluster"` })) n++;
      return n >= 2; // bounce + suppressionlist
    },
    progress: () => 0,
    stallMs: () => stallBudget(10_000),
    intervalMs: 500,
  });
});

// Policies: a lifecycle closes at the later of its delivery deadline and the end of its complaint
// window (docs/ARCHITECTURE.md rule 6), so the deadline sets each batch's duration. It must outlast
// the injected outage (no outcome by the deadline means `unconfirmed`), and the
// complaint window must outlast the delay of a Complaint behind its Delivery. The restart scenarios
// use success and bounce only: their outcome does not depend on a window.
const LOAD_KINDS: AddressKind[] = ['success', 'bounce', 'complaint'];
const kindsOf = (n: number, of: AddressKind[]): AddressKind[] => Array.from({ length: n }, (_, i) => of[i % of.length]!);

it('a worker SIGKILLed with SendEmail calls in flight: the other worker finishes its lifecycles, no duplicate send', async () => {
  const victim = workers[0]!;
  victim.proxy.stallSendEmail = true; // this worker's SendEmail calls never reach SES
  const before = sandbox.sentMessages().length;
  const batch = await send('wkill', kindsOf(24, LOAD_KINDS), { deliveryDeadline: '30s', complaintWindow: '10s', sendTimeout: '5s', ambiguousSendWait: '5s' });
  await waitWithProgress('the victim worker to hold a SendEmail call', {
    done: () => victim.proxy.stalled >= 1,
    progress: () => sandbox.sentMessages().length,
    stallMs: () => stallBudget(10_000),
    intervalMs: 20,
  });
  const held = victim.proxy.stalled;
  await victim.proc.kill();
  expect((await victim.proc.exited).signal).toBe('SIGKILL');
  await victim.proxy.close();
  const results = await settle('worker SIGKILLed during sendEmail (2 workers)', batch, 1, () => [`SendEmail calls held by the killed worker: ${held}`], { ambiguous: 1 });
  expect(sandbox.sentMessages().length - before).toBe(batch.emails.length); // one accepted message per lifecycle
  const resent = results.filter((r) => r.followUps.some((f) => f.kind === 'ambiguous-send')).length;
  expect(resent).toBeGreaterThanOrEqual(1);
  await startWorker(0); // two workers again for the next scenarios
});

it('one webhook instance killed under load: the other keeps answering, nothing lost', async () => {
  const batch = await send('hkill', kindsOf(30, LOAD_KINDS), { deliveryDeadline: '30s', complaintWindow: '10s' });
  await publishedAtLeast(batch, 20);
  const survivorPort = webhooks[1]!.port;
  const answeredBefore = lb!.answered.get(survivorPort) ?? 0;
  await webhooks[0]!.hook!.kill();
  webhooks[0]!.hook = undefined;
  const health = await fetch(`http://127.0.0.1:${survivorPort}/healthz`);
  expect(health.ok).toBe(true);
  const results = await settle('one of two webhook instances killed under load', batch, 1, () => [`the surviving instance answered ${(lb!.answered.get(survivorPort) ?? 0) - answeredBefore} requests after the kill; load balancer failovers to it: ${lb!.failovers}`]);
  expect(results).toHaveLength(30);
  const answeredAfter = (lb!.answered.get(survivorPort) ?? 0) - answeredBefore;
  expect(answeredAfter).toBeGreaterThan(0);
  await startWebhook(0);
});

it('the Temporal server SIGKILLed and restarted under load: every lifecycle ends right', async () => {
  const batch = await send('tkill', kindsOf(20, ['success', 'bounce']), { deliveryDeadline: '45s', complaintWindow: '2s' });
  await publishedAtLeast(batch, 8);
  const since = Date.now();
  await cluster!.temporal.kill();
  await deliveryFailureSince(since);
  const downMs = Date.now() - since;
  await cluster!.temporal.start();
  const outageMs = Date.now() - since;
  await settle('Temporal server SIGKILLed and restarted', batch, 1, () => [`server down ${outageMs} ms (restart took ${outageMs - downMs} ms); ${failedSince(since)} delivery attempts failed from the kill on`]);
});

it('PostgreSQL stopped (immediate) and restarted under load: every lifecycle ends right', async () => {
  const batch = await send('pgkill', kindsOf(20, ['success', 'bounce']), { deliveryDeadline: '45s', complaintWindow: '2s' });
  await publishedAtLeast(batch, 8);
  const since = Date.now();
  await cluster!.postgres.stop('immediate');
  await deliveryFailureSince(since);
  await cluster!.postgres.start();
  const outageMs = Date.now() - since;
  await settle('PostgreSQL stopped (immediate) and restarted', batch, 1, () => [`PostgreSQL down ${outageMs} ms; ${failedSince(since)} delivery attempts failed from the stop on`]);
  expect(cluster!.temporal.pid).toBeGreaterThan(0);
});

it('over the whole run: SES accepted exactly one message per lifecycle attempt, 0 duplicate sends', () => {
  expect(allResults.length).toBe(ADDRESS_KINDS.length + 24 + 30 + 20 + 20);
  expect(duplicateSends(sandbox, allResults)).toBe(0);
  const ledger = ledgerFigures(sandbox);
  expect(ledger.undelivered, describeUndelivered(ledger.undelivered)).toEqual([]);
});
