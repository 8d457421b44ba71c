/**
 * Shared machinery of the fault-injection suite (test/reliability/faults*.test.ts): stacks on
 * the real product, an own Temporal dev server with a SQLite file (to SIGKILL and restart),
 * lifecycle workers in child processes (to SIGKILL mid-activity), a webhook that can be killed
 * abruptly, an HTTP proxy in front of the SES sandbox that can stall SendEmail, ledger
 * arithmetic, and the figures file the README table is built from.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { DefaultLogger, makeTelemetryFilterString, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { inject } from 'vitest';
import type { TrackedEmail } from '../../src/client';
import { loadConfig } from '../../src/config';
import { DEFAULT_POLICY, durationMs, LIFECYCLE_TAG, SEARCH_ATTRIBUTES, type LifecyclePolicy, type LifecycleResult } from '../../src/definitions';
import type { AcceptedMessage, LedgerEntry, SesSandbox } from '../../src/sandbox';
import { startStack, type RunningStack, type StackOptions } from '../../src/stack';
import { freePorts, startDevServer, type DevServer } from '../../src/temporal-cli';
import { buildWebhookApp, startWebhookServer, type WebhookOptions, type WebhookServer } from '../../src/webhook';
import { quietRuntime } from '../helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from '../helpers/temporal';
import { stallBudget, waitWithProgress } from '../helpers/wait';

const REPO_ROOT = path.join(__dirname, '..', '..');

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/** Where every fault test appends its record (one JSON object per line). */
export const FIGURES_FILE = path.join(REPO_ROOT, 'test-artifacts', 'reliability', 'faults.jsonl');

/** One line of {@link FIGURES_FILE}. */
export interface FaultFigure {
  fault: string;
  /** How many faults of this kind were injected (kills, refused deliveries, throttled calls...). */
  injected: number;
  /** True when every assertion of the test held. */
  survived: boolean;
  /** Distinct SNS MessageIds of SES-event notifications in the sandbox ledger. */
  eventsPublished: number;
  /** Sum of `eventsRecorded` of the lifecycles (and orphan lifecycles) that received them. */
  eventsRecorded: number;
  /** SendEmail calls SES accepted beyond the ones the lifecycles asked for (must be 0). */
  duplicateSends: number;
  notes: string;
  durationMs: number;
  at: string;
}

/** The mutable part a test fills in while it runs. */
export interface FigureDraft {
  injected: number;
  eventsPublished: number;
  eventsRecorded: number;
  duplicateSends: number;
  notes: string[];
}

/**
 * Runs a fault test and appends its record to {@link FIGURES_FILE} whatever happens: `survived`
 * is true only when `body` resolved. The error (if any) is rethrown after the record is written.
 */
export async function withFigure(fault: string, body: (fig: FigureDraft) => Promise<void>): Promise<void> {
  const started = Date.now();
  const fig: FigureDraft = { injected: 0, eventsPublished: 0, eventsRecorded: 0, duplicateSends: 0, notes: [] };
  let failure: Error | undefined;
  try {
    await body(fig);
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
  }
  const record: FaultFigure = {
    fault,
    injected: fig.injected,
    survived: failure === undefined,
    eventsPublished: fig.eventsPublished,
    eventsRecorded: fig.eventsRecorded,
    duplicateSends: fig.duplicateSends,
    notes: [...fig.notes, ...(failure !== undefined ? [`FAILED: ${failure.message.split('\n')[0]}`] : [])].join('; '),
    durationMs: Date.now() - started,
    at: new Date().toISOString(),
  };
  mkdirSync(path.dirname(FIGURES_FILE), { recursive: true });
  appendFileSync(FIGURES_FILE, `${JSON.stringify(record)}\n`);
  console.log(`[faults] ${JSON.stringify(record)}`);
  if (failure !== undefined) throw failure;
}

// ---------------------------------------------------------------------------------------------
// Ledger and sends
// ---------------------------------------------------------------------------------------------

/** What the sandbox ledger says about SES-event notifications. */
export interface LedgerFigures {
  /** Ledger entries of type Notification (duplicate copies included). */
  notifications: LedgerEntry[];
  /** Distinct SNS MessageIds among them: the events SES published. */
  distinct: number;
  /** Entries whose final status is not `delivered` (must be empty). */
  undelivered: LedgerEntry[];
  /** Extra copies injected by chaos. */
  duplicateCopies: number;
  /** Delivery attempts answered with a 5xx. */
  attempts5xx: number;
  /** Delivery attempts that got no HTTP answer (connection refused/reset, timeout). */
  attemptsNoAnswer: number;
  /** Entries that needed more than one attempt. */
  retried: number;
  /** All delivery attempts. */
  attempts: number;
  /** Failed attempts by outcome: HTTP status or connection error code. */
  failures: Record<string, number>;
}

export function ledgerFigures(sandbox: SesSandbox): LedgerFigures {
  const notifications = sandbox.ledger().filter((e) => e.type === 'Notification');
  const all = notifications.flatMap((e) => e.deliveries);
  return {
    notifications,
    distinct: new Set(notifications.map((e) => e.snsMessageId)).size,
    undelivered: notifications.filter((e) => e.finalStatus !== 'delivered'),
    duplicateCopies: notifications.filter((e) => e.duplicate).length,
    attempts5xx: all.filter((d) => (d.statusCode ?? 0) >= 500).length,
    attemptsNoAnswer: all.filter((d) => d.statusCode === undefined).length,
    retried: notifications.filter((e) => e.deliveries.length > 1).length,
    attempts: all.length,
    failures: all
      .filter((d) => d.statusCode === undefined || d.statusCode >= 300)
      .reduce<Record<string, number>>((acc, d) => {
        const k = d.statusCode !== undefined ? `HTTP ${d.statusCode}` : (d.error ?? 'error');
        acc[k] = (acc[k] ?? 0) + 1;
        return acc;
      }, {}),
  };
}

/** A short, readable digest of undelivered ledger entries, for assertion messages. */
export function describeUndelivered(entries: LedgerEntry[]): string {
  return entries
    .slice(0, 5)
    .map((e) => `${e.eventType} ${e.sesMessageId} ${e.finalStatus} (${e.failureReason ?? '?'}) attempts=${JSON.stringify(e.deliveries.map((d) => d.statusCode ?? d.error))}`)
    .join('\n');
}

/** Messages SES accepted for one lifecycle (by our `lifecycle-id` EmailTag). */
export function acceptedFor(sandbox: SesSandbox, lifecycleId: string, all: AcceptedMessage[] = sandbox.sentMessages()): AcceptedMessage[] {
  return all.filter((m) => m.tags.some((t) => t.name === LIFECYCLE_TAG && t.value === lifecycleId));
}

/**
 * SendEmail calls SES accepted beyond the attempts the lifecycles recorded: a lifecycle that
 * resent blindly after an ambiguous outcome shows up here (two accepted messages, one attempt
 * with an SES id), as does an accepted message no lifecycle knows.
 */
export function duplicateSends(sandbox: SesSandbox, results: LifecycleResult[]): number {
  const all = sandbox.sentMessages();
  let extra = 0;
  for (const r of results) {
    const accepted = acceptedFor(sandbox, r.lifecycleId, all).length;
    const recorded = r.attempts.filter((a) => a.sesMessageId !== undefined).length;
    extra += Math.max(0, accepted - recorded);
  }
  return extra;
}

export function sumRecorded(results: { eventsRecorded: number }[]): number {
  return results.reduce((n, r) => n + r.eventsRecorded, 0);
}

// ---------------------------------------------------------------------------------------------
// Simulator addresses and expected outcomes
// ---------------------------------------------------------------------------------------------

export const SIM = 'simulator.amazonses.com';
export const SANDBOX_SIM = 'sandbox.ses-lifecycle.test';

/** Every simulator address the sandbox honours. */
export const ADDRESS_KINDS = ['success', 'bounce', 'ooto', 'complaint', 'suppressionlist', 'delay', 'softbounce', 'silent'] as const;
export type AddressKind = (typeof ADDRESS_KINDS)[number];

export function simAddress(kind: AddressKind, label: string): string {
  const domain = kind === 'delay' || kind === 'softbounce' || kind === 'silent' ? SANDBOX_SIM : SIM;
  return `${kind}+${label}@${domain}`;
}

/** The documented final state of one recipient of each kind (the e2e test's table). */
export const EXPECTED: Record<AddressKind, Partial<LifecycleResult['recipients'][number]>> = {
  success: { status: 'delivered' },
  bounce: { status: 'bounced', bounceKind: 'hard' },
  ooto: { status: 'delivered', autoReplies: 1 },
  complaint: { status: 'complained' },
  suppressionlist: { status: 'bounced', bounceSubType: 'Suppressed' },
  delay: { status: 'delivered' },
  softbounce: { status: 'delivered', attempts: 2 },
  silent: { status: 'unconfirmed' },
};

/** The comparable part of a recipient's final state. */
export function outcomeOf(r: LifecycleResult): Record<string, unknown> {
  const rec = r.recipients[0]!;
  return {
    status: rec.status,
    bounceKind: rec.bounceKind ?? null,
    bounceType: rec.bounceType ?? null,
    bounceSubType: rec.bounceSubType ?? null,
    autoReplies: rec.autoReplies,
    attempts: rec.attempts,
    complaintFeedbackType: rec.complaintFeedbackType ?? null,
    suppressedFollowUp: r.followUps.some((f) => f.kind === 'suppressed'),
    sendError: r.sendError?.type ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Stacks
// ---------------------------------------------------------------------------------------------

export type FaultStackOptions = Omit<StackOptions, 'config' | 'logger' | 'workflowBundle'> & {
  /** Configuration-set name prefix (a random suffix is added). */
  name: string;
  /** SES_PACE_TO_SEND_RATE. Default true (the product default). */
  pace?: boolean;
};

/** A running stack plus the configuration set its sends use. */
export type FaultStack = RunningStack & { configurationSetName: string };

let runtimeInstalled = false;
/**
 * The worker's SDK logs at ERROR (injected faults make activities fail on purpose: 429s,
 * timeouts, lost servers) unless TEMPORAL_TEST_VERBOSE is set, then as the other tests do.
 */
export function faultRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  if (process.env.TEMPORAL_TEST_VERBOSE) {
    quietRuntime();
    return;
  }
  try {
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), console: {} } },
    });
  } catch {
    // a runtime exists already in this process
  }
}

/** GetMessageInsights calls per second in fault stacks (worker; the sandbox allows twice that). */
export const FAULT_INSIGHTS_RATE = 20;

/** The product stack (sandbox, webhook, worker unless `withoutWorker`) against the shared test server unless `temporal` says otherwise. */
export async function startFaultStack(o: FaultStackOptions): Promise<FaultStack> {
  faultRuntime();
  const { name, pace, ...rest } = o;
  const configurationSetName = `${name}-${randomUUID().slice(0, 8)}`;
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    SES_CONFIGURATION_SET: configurationSetName,
    SES_PACE_TO_SEND_RATE: pace === false ? 'false' : 'true',
  });
  const stack = await startStack({
    temporal: { address: getTestAddress(), namespace: getTestNamespace() },
    taskQueue: uniqueTaskQueue(name),
    webhookPort: 0,
    // The fault scenarios are not about SES's insights quota (test/repair.test.ts is): every
    // silent@ recipient is still repaired from insights at its deadline, at a rate that keeps
    // dozens of them from adding minutes (SES's 1/s would make the calm run ~6 min instead of ~30 s).
    insightsRatePerSecond: FAULT_INSIGHTS_RATE,
    ...rest,
    sandbox: { port: 0, httpsPort: 0, insightsRatePerSecond: FAULT_INSIGHTS_RATE * 2, ...rest.sandbox },
    config,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
  });
  return Object.assign(stack, { configurationSetName });
}

/** Webhook options equal to the ones `startStack` uses, for a webhook the test owns. */
export function webhookOptionsFor(stack: RunningStack): WebhookOptions {
  const sandbox = stack.sandbox!;
  const host = new RegExp(`^${sandbox.certHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return {
    temporal: { client: stack.client, taskQueue: stack.taskQueue },
    allowedTopicArns: [stack.topicArn!],
    certHostPattern: host,
    subscribeHostPattern: host,
    extraCaPem: sandbox.caCertPem,
    logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
    metricsRegistries: false,
  };
}

/**
 * Posts one SES event to the stack's webhook as SNS would: a Notification on the stack's topic,
 * signed with the sandbox's key (SignatureVersion 2), with SNS's headers. Returns the HTTP status
 * and body.
 */
export async function postSignedEvent(stack: RunningStack, event: Record<string, unknown>): Promise<{ status: number; body: unknown; snsMessageId: string }> {
  const signed = stack.sandbox!.signMessage(
    { Type: 'Notification', MessageId: randomUUID(), TopicArn: stack.topicArn!, Message: JSON.stringify(event), Timestamp: new Date().toISOString() },
    '2',
  );
  const res = await fetch(stack.webhookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'text/plain; charset=UTF-8',
      'x-amz-sns-message-type': 'Notification',
      'x-amz-sns-message-id': signed.MessageId,
      'x-amz-sns-topic-arn': signed.TopicArn,
      'user-agent': 'Amazon Simple Notification Service Agent',
    },
    body: JSON.stringify(signed),
  });
  return { status: res.status, body: await res.json(), snsMessageId: signed.MessageId };
}

/** A webhook on a fixed port that can be killed: listening stops and every socket is destroyed at once. */
export interface KillableWebhook {
  /** Abrupt: in-flight requests lose their connection without an answer. */
  kill(): Promise<void>;
}

export async function startKillableWebhook(opts: WebhookOptions, port: number): Promise<KillableWebhook> {
  const app: FastifyInstance = await buildWebhookApp(opts);
  await app.listen({ host: '127.0.0.1', port });
  return {
    async kill() {
      const closing = app.close(); // stops listening
      app.server.closeAllConnections(); // and drops every connection, busy or not
      await closing;
    },
  };
}

/** A (graceful) webhook started through the product's own entry point, on a fixed port. */
export function startPlainWebhook(opts: WebhookOptions, port: number): Promise<WebhookServer> {
  return startWebhookServer({ ...opts, host: '127.0.0.1', port });
}

// ---------------------------------------------------------------------------------------------
// An own Temporal dev server (SQLite file) to kill and restart
// ---------------------------------------------------------------------------------------------

export interface OwnTemporal {
  readonly server: DevServer;
  readonly address: string;
  /** SIGKILL the server process and wait until it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same database file. */
  restart(): Promise<void>;
  /** Stops it (if running) and removes its database. */
  dispose(): Promise<void>;
}

export async function startOwnTemporal(): Promise<OwnTemporal> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-faults-'));
  const [port] = await freePorts(1);
  const start = () =>
    startDevServer({ cliPath: inject('temporalCliPath'), dbFilename: path.join(dir, 'temporal.sqlite'), port: port!, namespace: 'default', searchAttributes: SEARCH_ATTRIBUTES });
  let server = await start();
  return {
    get server() {
      return server;
    },
    address: server.address,
    async kill() {
      if (server.pid <= 0) throw new Error('dev server pid unknown (SDK-downloaded server): cannot SIGKILL it');
      process.kill(server.pid, 'SIGKILL');
      await server.stop(); // resolves once the killed process has exited
    },
    async restart() {
      server = await start();
    },
    async dispose() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Workers in child processes
// ---------------------------------------------------------------------------------------------

export interface WorkerProcess {
  readonly pid: number;
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Last lines of its output, for failure messages. */
  output(): string;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful shutdown) and wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface WorkerProcessOptions {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  sesEndpoint: string;
  configurationSetName: string;
  pace?: boolean;
}

/**
 * Starts test/reliability/worker-proc.ts with `node --import tsx` and resolves once the worker
 * polls.
 *
 * @throws when the process exits or stays silent for 60 s before it is ready.
 */
export async function startWorkerProcess(o: WorkerProcessOptions): Promise<WorkerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'worker-proc.ts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      FAULT_WORKER_TEMPORAL_ADDRESS: o.temporalAddress,
      FAULT_WORKER_NAMESPACE: o.namespace,
      FAULT_WORKER_TASK_QUEUE: o.taskQueue,
      FAULT_WORKER_SES_ENDPOINT: o.sesEndpoint,
      FAULT_WORKER_CONFIGURATION_SET: o.configurationSetName,
      FAULT_WORKER_BUNDLE_PATH: inject('workflowBundlePath'),
      FAULT_WORKER_PACE: o.pace ? 'true' : 'false',
      FAULT_WORKER_INSIGHTS_RATE: String(FAULT_INSIGHTS_RATE),
      NODE_NO_WARNINGS: '1',
    },
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(l);
    if (lines.length > 80) lines.splice(0, lines.length - 80);
    if (process.env.TEMPORAL_TEST_VERBOSE) process.stderr.write(`[worker-proc ${child.pid}] ${chunk.toString('utf8')}`);
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker process not ready after 60 s:\n${lines.join('\n')}`)), 60_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (chunk.toString('utf8').includes('"ready":true')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', keep);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker process exited before it was ready (code ${code}, signal ${signal}):\n${lines.join('\n')}`));
    });
  });
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const proc: WorkerProcess = {
    pid: child.pid ?? -1,
    exited,
    output: () => lines.join('\n'),
    kill: () => kill('SIGKILL'),
    async stop(graceMs = 10_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        await kill('SIGTERM');
      } finally {
        clearTimeout(timer);
      }
    },
  };
  try {
    await ready;
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return proc;
}

// ---------------------------------------------------------------------------------------------
// An HTTP proxy in front of the SES sandbox that can hold SendEmail requests
// ---------------------------------------------------------------------------------------------

export interface SesProxy {
  /** Pass as the SES endpoint of a worker. */
  readonly endpoint: string;
  /** While true, SendEmail requests are held: never forwarded, never answered. */
  stallSendEmail: boolean;
  /** SendEmail requests held so far. */
  readonly stalled: number;
  /** Held requests whose client went away (a killed worker). */
  readonly abandoned: number;
  close(): Promise<void>;
}

/** A plain HTTP forwarder to `target` (the sandbox endpoint) that can stall SendEmail. */
export async function startSesProxy(target: string): Promise<SesProxy> {
  const to = new URL(target);
  const held = new Set<http.ServerResponse>();
  const state = { stallSendEmail: false, stalled: 0, abandoned: 0 };
  const server = http.createServer((req, res) => {
    const isSend = req.method === 'POST' && (req.url ?? '').startsWith('/v2/email/outbound-emails');
    if (isSend && state.stallSendEmail) {
      state.stalled++;
      held.add(res);
      req.resume(); // read the body, never forward it
      res.on('close', () => {
        if (held.delete(res)) state.abandoned++;
      });
      return;
    }
    const upstream = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get stallSendEmail() {
      return state.stallSendEmail;
    },
    set stallSendEmail(v: boolean) {
      state.stallSendEmail = v;
    },
    get stalled() {
      return state.stalled;
    },
    get abandoned() {
      return state.abandoned;
    },
    async close() {
      for (const r of held) r.destroy();
      held.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Small things
// ---------------------------------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The longest one lifecycle can legitimately stay open under `policy` when nothing is ambiguous:
 * the send, the delivery deadline, every resend backoff, and the complaint window after the last
 * outcome. Pass `ambiguous` when the scenario makes sends ambiguous on purpose.
 */
export function policyBoundMs(policy: Partial<LifecyclePolicy>, opts: { ambiguous?: number } = {}): number {
  const p = { ...DEFAULT_POLICY, ...policy };
  let backoffs = 0;
  for (let i = 0; i < p.maxSendAttempts - 1; i++) backoffs += durationMs(p.resendBackoff) * 2 ** i;
  const ambiguous = (opts.ambiguous ?? 0) * (durationMs(p.ambiguousSendWait) + durationMs(p.sendTimeout));
  return durationMs(p.sendTimeout) + durationMs(p.deliveryDeadline) + backoffs + durationMs(p.complaintWindow) + ambiguous;
}

/**
 * Waits for every lifecycle's result. Fails only when no lifecycle closed for the stall budget
 * of `boundMs` (the longest one lifecycle may take by its policy; see test/helpers/wait.ts), so a
 * busy machine makes the wait longer, never a failure. On failure the pending calls are
 * cancelled (no RPC outlives the test) and the error lists the lifecycles still open, with their
 * status and phase.
 */
export async function resultsWithProgress(client: Client, emails: TrackedEmail[], boundMs: number): Promise<LifecycleResult[]> {
  const ac = new AbortController();
  let closed = 0;
  let failure: unknown;
  const all = client.withAbortSignal(ac.signal, () =>
    Promise.all(
      emails.map((e) =>
        e.result().then(
          (r) => {
            closed += 1;
            return r;
          },
          (err: unknown) => {
            failure ??= err;
            throw err;
          },
        ),
      ),
    ),
  );
  all.catch(() => undefined); // awaited below
  try {
    await waitWithProgress(`${emails.length} lifecycles to close`, {
      done: () => closed === emails.length || failure !== undefined,
      progress: () => closed,
      stallMs: () => stallBudget(boundMs),
      describe: async () => {
        const open: string[] = [];
        for (const e of emails) {
          const s = await e.status().catch(() => undefined);
          if (s && s.phase !== 'completed') open.push(`${e.id} ${s.recipients[0]?.email ?? ''} ${s.status}/${s.phase} [${s.followUps.map((f) => f.kind).join(',')}]`);
        }
        return `${open.length} of ${emails.length} still open: ${open.slice(0, 5).join('; ')}`;
      },
    });
  } catch (err) {
    ac.abort();
    throw err;
  }
  return all;
}

/** Polls `probe` until it returns a value that is not undefined. @throws on timeout with `what`. */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The largest number of items within any window of `windowMs` (sorted epoch ms). */
export function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[hi]! - t[lo]! >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
