/**
 * `npm run bench:sqs` — events/s through the webhook and through SQS, side by side in one run, on
 * one stack (embedded Temporal dev server, sandbox, worker, webhook) and one moto SQS server.
 *
 *   npm run bench:sqs -- --events 2000 --lifecycles 100 --concurrency 32 --pollers 8
 *
 * Both phases carry the same kind of events: signed SNS Notifications with distinct DeliveryDelay
 * events for running lifecycles (each event is new, so each is signalled and recorded).
 * - webhook: N POSTs with `concurrency` in flight; done when every POST was answered 200 (the
 *   webhook answers only once Temporal recorded the event). events/s = N / elapsed.
 * - SQS: the same N envelopes put in a queue first (not timed), then `startSqsIngest` with
 *   `pollers` receive loops; done when all N are deleted (a message is deleted only once Temporal
 *   recorded its event). events/s = N / elapsed.
 * The two phases use different lifecycles, so neither finds the other's histories warm.
 */
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import pino from 'pino';
import { startSqsIngest, SqsIngestMetrics } from '../src/sqs-ingest';
import { startStack, throwawayStackConfig, type RunningStack } from '../src/stack';
import { ensureMoto, MOTO_VERSION, startMoto } from '../scripts/moto';
import { createTestQueue, queueDepth, sqsClient } from '../test/helpers/sqs';
import { pool, Poster, round } from './load';
import { signedSesNotification } from './sns';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const EVENTS = arg('events', 2000);
const LIFECYCLES = arg('lifecycles', 100);
const CONCURRENCY = arg('concurrency', 32);
const POLLERS = arg('pollers', 8);

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Starts `n` lifecycles to silent addresses (the sandbox publishes nothing for them); their SES message ids. */
async function lifecycles(stack: RunningStack, n: number, label: string): Promise<{ id: string; sesMessageId: string; to: string }[]> {
  const out: { id: string; sesMessageId: string; to: string }[] = [];
  await pool(n, 16, async (i) => {
    const to = `silent+${label}${i}@sandbox.ses-lifecycle.test`;
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'bench', text: 'x', policy: { deliveryDeadline: '1h', complaintWindow: '1h' } });
    const s = await email.waitFor((x) => x.attempts.some((a) => a.sesMessageId !== undefined), { timeoutMs: 120_000 });
    out.push({ id: email.id, sesMessageId: s.attempts[0]!.sesMessageId!, to });
  });
  return out;
}

/** N signed notifications, each a distinct DeliveryDelay for one of the lifecycles. */
function notifications(stack: RunningStack, lcs: { id: string; sesMessageId: string; to: string }[], n: number): ReturnType<typeof signedSesNotification>[] {
  const base = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const lc = lcs[i % lcs.length]!;
    const at = new Date(base + i).toISOString();
    const event = {
      eventType: 'DeliveryDelay',
      mail: { timestamp: at, source: 'app@example.com', messageId: lc.sesMessageId, destination: [lc.to], tags: { 'lifecycle-id': [lc.id] } },
      deliveryDelay: { timestamp: at, delayType: 'TransientCommunicationFailure', delayedRecipients: [{ emailAddress: lc.to, status: '4.4.1', diagnosticCode: 'smtp; 421 4.4.1 bench' }] },
    };
    return signedSesNotification(stack.sandbox!, stack.topicArn!, event);
  });
}

async function main(): Promise<void> {
  const { config, remove } = await throwawayStackConfig('bench-sqs');
  const logger = pino({ level: 'warn' });
  const stack = await startStack({ config, logger, sandbox: { maxSendRate: 1000 } });
  const moto = await startMoto(await ensureMoto());
  const sqs = sqsClient(moto.endpoint, stack.sandbox!.credentials, stack.sandbox!.region);
  try {
    // Webhook phase.
    const lcA = await lifecycles(stack, LIFECYCLES, 'w');
    const posts = notifications(stack, lcA, EVENTS);
    const poster = new Poster(stack.webhookUrl, CONCURRENCY);
    let not200 = 0;
    const webhookMs = await pool(EVENTS, CONCURRENCY, async (i) => {
      const p = posts[i]!;
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await poster.post(p.body, p.headers);
          if (r.status === 200) return;
          not200++;
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
    });

    // SQS phase: fill the queue first, then time the drain.
    const lcB = await lifecycles(stack, LIFECYCLES, 's');
    const q = await createTestQueue(sqs, `bench-${Date.now()}`, { visibilityTimeout: 30, maxReceiveCount: 10 });
    const bodies = notifications(stack, lcB, EVENTS).map((p) => p.body);
    await pool(Math.ceil(EVENTS / 10), 8, async (b) => {
      const entries = bodies.slice(b * 10, b * 10 + 10).map((body, j) => ({ Id: String(j), MessageBody: body }));
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: entries }));
    });
    const metrics = new SqsIngestMetrics();
    const motoCpu0 = cpuSeconds(moto.pid);
    const t0 = performance.now();
    const ingest = await startSqsIngest({
      queueUrl: q.url,
      sqs,
      temporal: { client: stack.client, taskQueue: stack.taskQueue },
      allowedTopicArns: [stack.topicArn!],
      certHostPattern: new RegExp(`^${stack.sandbox!.certHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
      extraCaPem: stack.sandbox!.caCertPem,
      pollers: POLLERS,
      logger: false,
      metrics,
    });
    // Done when every event is recorded and the queue is empty (copies received twice deleted too).
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      if (metrics.snapshot().recorded >= EVENTS && (await queueDepth(sqs, q.url)).total === 0) break;
      if (performance.now() - t0 > 900_000) throw new Error(`SQS phase: only ${metrics.snapshot().recorded} of ${EVENTS} recorded after 900 s`);
    }
    const sqsMs = performance.now() - t0;
    const motoCpuS = cpuSeconds(moto.pid) - motoCpu0;
    await ingest.stop();
    const snap = metrics.snapshot();
    const depth = await queueDepth(sqs, q.url);

    const cpus = os.cpus();
    console.log(`\nbench:sqs: ${EVENTS} signed SNS notifications (distinct DeliveryDelay events, ${LIFECYCLES} lifecycles per phase), recorded in Temporal, through each path`);
    console.log(`machine: ${cpus.length} x ${cpus[0]?.model ?? '?'}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; Node ${process.version}; moto ${MOTO_VERSION}; embedded Temporal dev server\n`);
    console.log('| path | events | elapsed (s) | events/s | notes |');
    console.log('|---|---|---|---|---|');
    console.log(`| webhook (POST /sns, ${CONCURRENCY} in flight) | ${EVENTS} | ${round(webhookMs / 1000, 2)} | ${round(EVENTS / (webhookMs / 1000), 0)} | ${not200} answers not 200 (retried) |`);
    console.log(`| SQS (ingest, ${POLLERS} pollers x 10 messages) | ${EVENTS} | ${round(sqsMs / 1000, 2)} | ${round(EVENTS / (sqsMs / 1000), 0)} | ${snap.received} received, ${snap.recorded} recorded, ${snap.deleted} deleted, queue left ${depth.total}, moto server used ${round(motoCpuS, 1)} CPU s |`);
  } finally {
    sqs.destroy();
    await moto.stop();
    await stack.stop();
    remove();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
