/**
 * `npm run bench:flood` — the flood figures of the bounded-state rule (docs/ARCHITECTURE.md rule
 * 11): N signed Opens (default 20 000), then one Complaint, posted through the real webhook
 * (real SNS signatures) into one 50-recipient lifecycle and into one orphan lifecycle. Prints how
 * soon the Complaint's suppression ran, the largest carried payload and the longest run history
 * (over every continue-as-new run), and the worker's RSS before and after.
 *
 *   npm run bench:flood -- --opens 20000 --concurrency 32
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import pino from 'pino';
import { writeFileSync } from 'node:fs';
import { orphanWorkflowId, statusQuery, type LifecycleStatus } from '../src/definitions';
import { startStack, throwawayStackConfig, type RunningStack } from '../src/stack';
import { WORKFLOWS_PATH } from '../src/worker';
import { startWorkerChild } from './children';
import { pool, Poster } from './load';
import { signedSesNotification } from './sns';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const OPENS = arg('opens', 20_000);
const CONCURRENCY = arg('concurrency', 32);
const RECIPIENTS = 50;

function post(stack: RunningStack, poster: Poster, event: object): Promise<{ status: number; text: string }> {
  const { body, headers } = signedSesNotification(stack.sandbox!, stack.topicArn!, event);
  // Like SNS: a connection the server closed (keep-alive limits) is retried with the same body.
  return (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await poster.post(body, headers);
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  })();
}

async function runsOf(client: Client, workflowId: string): Promise<{ runs: number; maxEvents: number; maxInputBytes: number }> {
  let runs = 0;
  let maxEvents = 0;
  let maxInputBytes = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    runs += 1;
    const h = await client.workflow.getHandle(workflowId, wf.runId).fetchHistory();
    maxEvents = Math.max(maxEvents, h.events?.length ?? 0);
    const input = h.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    maxInputBytes = Math.max(maxInputBytes, input.reduce((n, p) => n + (p.data?.length ?? 0), 0));
  }
  return { runs, maxEvents, maxInputBytes };
}

async function flood(stack: RunningStack, poster: Poster, label: string, workflowId: string, mail: Record<string, unknown>, recipients: string[]) {
  const base = Date.now();
  let refused = 0;
  const t0 = Date.now();
  await pool(OPENS, CONCURRENCY, async (i) => {
    const at = new Date(base + i).toISOString();
    const r = await post(stack, poster, { eventType: 'Open', mail: { ...mail, timestamp: at }, open: { ipAddress: '192.0.2.7', timestamp: at, userAgent: `pixel-reload-${i}` } });
    if (r.status !== 200) refused += 1;
  });
  const floodS = (Date.now() - t0) / 1000;
  const victim = recipients[7]!;
  const complainedAt = Date.now();
  const cr = await post(stack, poster, {
    eventType: 'Complaint',
    mail: { ...mail, timestamp: new Date().toISOString() },
    complaint: { complainedRecipients: [{ emailAddress: victim }], timestamp: new Date().toISOString(), feedbackId: `flood-${label}-${Date.now()}`, complaintFeedbackType: 'abuse' },
  });
  let s: LifecycleStatus | undefined;
  let queryTimeouts = 0;
  for (;;) {
    try {
      s = await stack.client.workflow.getHandle(workflowId).query(statusQuery);
    } catch {
      // Under a flood the worker may not answer a query within Temporal's query timeout.
      queryTimeouts += 1;
      continue;
    }
    if (s.followUps.some((f) => f.kind === 'suppressed' && f.detail.startsWith(victim))) break;
    if (Date.now() - complainedAt > 300_000) throw new Error(`${label}: complaint not suppressed after 300 s`);
    await sleep(50);
  }
  const suppressMs = Date.now() - complainedAt;
  const runs = await runsOf(stack.client, workflowId);
  if (!s) throw new Error(`${label}: no status`);
  return { queryTimeouts, label, opens: OPENS, postsNot200: refused, complaintStatus: cr.status, floodSeconds: Math.round(floodS), opensCounted: s.engagement?.opens ?? s.eventCounts.Open ?? 0, suppressMs, ...runs };
}

async function main(): Promise<void> {
  const { config, dataDir, remove } = await throwawayStackConfig('flood');
  const stack = await startStack({ config, logger: pino({ level: 'warn' }), withoutWorker: true, sandbox: { maxSendRate: 100 } });
  const bundlePath = path.join(dataDir, 'bundle.js');
  writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') })).code);
  const worker = await startWorkerChild({
    kind: 'lifecycle',
    address: stack.temporalAddress,
    namespace: stack.namespace,
    taskQueue: stack.taskQueue,
    bundlePath,
    maxCachedWorkflows: 1000,
    ses: { endpoint: stack.sandbox!.endpoint, region: stack.sandbox!.region, credentials: stack.sandbox!.credentials },
    configurationSetName: config.aws.configurationSetName,
  });
  const poster = new Poster(stack.webhookUrl, CONCURRENCY);
  try {
    const before = await worker.stats(true);
    // One 50-recipient lifecycle (silent addresses: the sandbox publishes nothing for them).
    const recipients = Array.from({ length: RECIPIENTS }, (_, i) => `silent+${i}@sandbox.ses-lifecycle.test`);
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: recipients, subject: 'flood', text: 'x', policy: { deliveryDeadline: '1h', complaintWindow: '1h' } });
    const sent = await email.waitFor((s) => s.attempts.some((a) => a.sesMessageId !== undefined), { timeoutMs: 60_000 });
    const sesId = sent.attempts[0]!.sesMessageId!;
    const mail = { messageId: sesId, source: 'app@example.com', destination: recipients, tags: { 'lifecycle-id': [email.id] } };
    const lifecycle = await flood(stack, poster, 'lifecycle (50 recipients)', email.id, mail, recipients);
    const orphanSes = `0100flood${Date.now()}-orphan`;
    const orphanRecipients = Array.from({ length: RECIPIENTS }, (_, i) => `o${i}@example.com`);
    const orphan = await flood(stack, poster, 'orphan (50 recipients)', orphanWorkflowId(orphanSes), { messageId: orphanSes, source: 'app@example.com', destination: orphanRecipients, tags: {} }, orphanRecipients);
    const after = await worker.stats(true);
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
    console.log(`\nflood: ${OPENS} signed Opens then one Complaint, through the webhook (concurrency ${CONCURRENCY})\n`);
    console.log('| target | posts not 200 (SNS retries them) | opens counted | flood (s) | complaint suppressed after | status queries timed out | runs | largest run history (events) | largest carried input (bytes) |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of [lifecycle, orphan]) {
      console.log(`| ${r.label} | ${r.postsNot200} | ${r.opensCounted} | ${r.floodSeconds} | ${r.suppressMs} ms | ${r.queryTimeouts} | ${r.runs} | ${r.maxEvents} | ${r.maxInputBytes} |`);
    }
    console.log(`\nworker RSS: ${mb(before.rss)} before, ${mb(after.rss)} after (after GC)`);
    await stack.client.workflow.getHandle(email.id).cancel();
  } finally {
    await worker.stop();
    await stack.stop();
    remove();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
