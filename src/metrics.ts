/**
 * Prometheus metrics of the product.
 *
 * - Worker side (this process): SES errors by type, SendEmail latency. Activities record them
 *   in {@link workerMetrics}, a process-wide registry.
 * - Webhook side: requests by outcome and events by type (`src/webhook/metrics.ts`).
 * - Cluster-wide, from Temporal visibility at scrape time (so any number of workers and webhooks
 *   agree): lifecycles by final state, and the account-health rates SES judges (bounce and
 *   complaint rate over a window) next to SES's review/pause thresholds.
 */
import type { Client } from '@temporalio/client';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { WORKFLOW_TYPE } from './definitions';
import type { MessageStatus } from './lifecycle';

/** SES's account-health thresholds (AWS: bounce ≥5% review, ≥10% pause; complaints ≥0.1% review, ≥0.5% pause). */
export const SES_THRESHOLDS = {
  bounce: { review: 0.05, pause: 0.1 },
  complaint: { review: 0.001, pause: 0.005 },
} as const;

/** Process-wide worker metrics (one set per process, shared by every worker in it). */
class WorkerMetrics {
  readonly registry = new Registry();
  readonly sesErrors = new Counter({
    name: 'ses_errors_total',
    help: 'SES API errors by stable error type and operation',
    labelNames: ['type', 'operation'],
    registers: [this.registry],
  });
  readonly sendLatency = new Histogram({
    name: 'ses_send_latency_seconds',
    help: 'SESv2 SendEmail latency (successful calls)',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly sends = new Counter({
    name: 'ses_send_total',
    help: 'SendEmail outcomes: accepted, suppressed-skip (nothing sent), error',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
}

/** The process's worker metrics. */
export const workerMetrics = new WorkerMetrics();

const FINAL_STATES: readonly MessageStatus[] = ['delivered', 'bounced', 'complained', 'suppressed', 'rejected', 'failed', 'unconfirmed'];

/**
 * A registry whose gauges are computed from Temporal visibility at scrape time (cached for
 * `cacheMs`), so they are cluster-wide.
 *
 * Rates are per lifecycle (one email, possibly several recipients) started within `windowMs`:
 * bounce rate = lifecycles ending `bounced` / lifecycles that sent; SES computes per recipient,
 * so for multi-recipient emails this is an approximation (stated in the metric help).
 */
export function createVisibilityMetrics(client: Client, opts: { windowMs?: number; cacheMs?: number } = {}): Registry {
  const registry = new Registry();
  const windowMs = opts.windowMs ?? 24 * 3_600_000;
  const cacheMs = opts.cacheMs ?? 15_000;
  let cached: { at: number; values: Promise<Record<string, number>> } | undefined;

  const count = async (query: string): Promise<number> => (await client.workflow.count(query)).count;
  const compute = async (): Promise<Record<string, number>> => {
    const type = `WorkflowType IN ("${WORKFLOW_TYPE.message}", "${WORKFLOW_TYPE.orphan}")`;
    const out: Record<string, number> = {};
    await Promise.all(
      FINAL_STATES.map(async (s) => {
        out[`final:${s}`] = await count(`${type} AND ExecutionStatus = "Completed" AND EmailStatus = "${s}"`);
      }),
    );
    out.open = await count(`${type} AND ExecutionStatus = "Running"`);
    const since = new Date(Date.now() - windowMs).toISOString();
    const recent = `WorkflowType = "${WORKFLOW_TYPE.message}" AND StartTime >= "${since}"`;
    const [total, notSent, bounced, complained] = await Promise.all([
      count(recent),
      count(`${recent} AND EmailStatus IN ("suppressed", "failed", "sending")`),
      count(`${recent} AND EmailStatus = "bounced"`),
      count(`${recent} AND EmailStatus = "complained"`),
    ]);
    const sent = Math.max(0, total - notSent);
    out.sent = sent;
    out.bounceRate = sent > 0 ? bounced / sent : 0;
    out.complaintRate = sent > 0 ? complained / sent : 0;
    return out;
  };
  const values = (): Promise<Record<string, number>> => {
    if (!cached || Date.now() - cached.at > cacheMs) {
      const p = compute();
      cached = { at: Date.now(), values: p };
      p.catch(() => {
        if (cached?.values === p) cached = undefined;
      });
    }
    return cached.values;
  };

  new Gauge({
    name: 'ses_lifecycles',
    help: 'Lifecycles by state from Temporal visibility: completed ones by final EmailStatus, and open ones',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const v = await values();
      for (const s of FINAL_STATES) this.set({ state: s }, v[`final:${s}`] ?? 0);
      this.set({ state: 'open' }, v.open ?? 0);
    },
  });
  new Gauge({
    name: 'ses_account_bounce_rate',
    help: `Share of emails started in the last ${windowMs / 3_600_000} h that ended bounced (per email; SES judges per recipient). SES reviews at 5%, may pause at 10%`,
    registers: [registry],
    async collect() {
      this.set((await values()).bounceRate ?? 0);
    },
  });
  new Gauge({
    name: 'ses_account_complaint_rate',
    help: `Share of emails started in the last ${windowMs / 3_600_000} h that ended complained. SES reviews at 0.1%, may pause at 0.5%`,
    registers: [registry],
    async collect() {
      this.set((await values()).complaintRate ?? 0);
    },
  });
  const thresholds = new Gauge({ name: 'ses_account_rate_threshold', help: 'SES account-health thresholds', labelNames: ['rate', 'level'], registers: [registry] });
  thresholds.set({ rate: 'bounce', level: 'review' }, SES_THRESHOLDS.bounce.review);
  thresholds.set({ rate: 'bounce', level: 'pause' }, SES_THRESHOLDS.bounce.pause);
  thresholds.set({ rate: 'complaint', level: 'review' }, SES_THRESHOLDS.complaint.review);
  thresholds.set({ rate: 'complaint', level: 'pause' }, SES_THRESHOLDS.complaint.pause);
  return registry;
}
