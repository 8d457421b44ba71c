/**
 * `ses-lifecycle stats`: per-recipient bounce and complaint rates of the lifecycles started in a
 * window, against the thresholds at which SES reviews or pauses an account. Recipients are
 * counted by their status in each lifecycle (the final result of a closed one, the `status`
 * query of an open one), for at most `max` lifecycles, newest first; the report says when the
 * window held more.
 */
import type { Client } from '@temporalio/client';
import { statusQuery, WORKFLOW_TYPE, type LifecycleStatus } from './definitions';
import type { RecipientState } from './lifecycle';
import { table } from './status-report';
import { visibilityLiteral } from './webhook/router';

/** SES account review and pause thresholds (AWS "Amazon SES sending review process"). */
export const SES_THRESHOLDS = {
  bounce: { review: 0.05, pause: 0.1 },
  complaint: { review: 0.001, pause: 0.005 },
} as const;

export type RateLevel = 'ok' | 'review' | 'pause';

/** Recipient counts of a set of lifecycles. */
export interface RecipientCounts {
  /** Recipients SES accepted (the denominator of both rates). */
  sent: number;
  delivered: number;
  hardBounced: number;
  softBounced: number;
  complained: number;
  /** Accepted, outcome not known yet (sent, delayed) or none by the deadline (unconfirmed). */
  noOutcome: number;
  /** Never sent: suppressed, rejected, failed, pending. */
  notSent: { suppressed: number; rejected: number; failed: number; pending: number };
}

export interface StatsReport {
  since: string;
  /** Lifecycles started in the window (visibility count). */
  lifecyclesInWindow: number;
  /** Lifecycles whose recipients were counted (at most `max`). */
  lifecyclesCounted: number;
  /** Lifecycles whose status could not be read (skipped). */
  unreadable: number;
  max: number;
  recipients: RecipientCounts;
  bounceRate: { rate: number; level: RateLevel; review: number; pause: number };
  complaintRate: { rate: number; level: RateLevel; review: number; pause: number };
}

/** Adds one lifecycle's recipients to the counts. */
export function countRecipients(counts: RecipientCounts, recipients: readonly RecipientState[]): void {
  for (const r of recipients) {
    switch (r.status) {
      case 'delivered':
        counts.sent += 1;
        counts.delivered += 1;
        break;
      case 'bounced':
        counts.sent += 1;
        if (r.bounceKind === 'soft') counts.softBounced += 1;
        else counts.hardBounced += 1;
        break;
      case 'complained':
        counts.sent += 1;
        counts.complained += 1;
        break;
      case 'sent':
      case 'delayed':
      case 'unconfirmed':
        counts.sent += 1;
        counts.noOutcome += 1;
        break;
      case 'suppressed':
      case 'rejected':
      case 'failed':
      case 'pending':
        counts.notSent[r.status] += 1;
        break;
    }
  }
}

export function emptyCounts(): RecipientCounts {
  return { sent: 0, delivered: 0, hardBounced: 0, softBounced: 0, complained: 0, noOutcome: 0, notSent: { suppressed: 0, rejected: 0, failed: 0, pending: 0 } };
}

function level(rate: number, t: { review: number; pause: number }): RateLevel {
  return rate >= t.pause ? 'pause' : rate >= t.review ? 'review' : 'ok';
}

/** Rates from counts: hard bounces (SES counts those) and complaints per recipient sent. */
export function rates(counts: RecipientCounts): Pick<StatsReport, 'bounceRate' | 'complaintRate'> {
  const bounce = counts.sent === 0 ? 0 : counts.hardBounced / counts.sent;
  const complaint = counts.sent === 0 ? 0 : counts.complained / counts.sent;
  return {
    bounceRate: { rate: bounce, level: level(bounce, SES_THRESHOLDS.bounce), ...SES_THRESHOLDS.bounce },
    complaintRate: { rate: complaint, level: level(complaint, SES_THRESHOLDS.complaint), ...SES_THRESHOLDS.complaint },
  };
}

/** The status of one lifecycle: the recorded result of a completed one (no replay), else the query. */
async function lifecycleStatusOf(client: Client, workflowId: string, runId: string | undefined, closed: boolean): Promise<LifecycleStatus> {
  const handle = client.workflow.getHandle(workflowId, runId);
  if (closed) {
    try {
      return (await handle.result()) as LifecycleStatus;
    } catch {
      // cancelled or terminated: the query replays the history instead
    }
  }
  return handle.query(statusQuery);
}

/** Gathers the report for message lifecycles started at or after `since` (optionally with a tag). */
export async function gatherStats(client: Client, opts: { since: Date; max: number; tags?: Record<string, string>; concurrency?: number }): Promise<StatsReport> {
  const query = [
    `WorkflowType = ${visibilityLiteral(WORKFLOW_TYPE.message)}`,
    `StartTime >= ${visibilityLiteral(opts.since.toISOString())}`,
    ...Object.entries(opts.tags ?? {}).map(([k, v]) => `EmailTags = ${visibilityLiteral(`${k}=${v}`)}`),
  ].join(' AND ');
  const { count } = await client.workflow.count(query);
  const picked: { id: string; runId: string; closed: boolean }[] = [];
  for await (const wf of client.workflow.list({ query, pageSize: Math.min(opts.max, 1000) })) {
    picked.push({ id: wf.workflowId, runId: wf.runId, closed: wf.status.name !== 'RUNNING' });
    if (picked.length >= opts.max) break;
  }
  const counts = emptyCounts();
  let unreadable = 0;
  let next = 0;
  const workers = Array.from({ length: Math.min(opts.concurrency ?? 8, picked.length) }, async () => {
    while (next < picked.length) {
      const wf = picked[next++]!;
      try {
        countRecipients(counts, (await lifecycleStatusOf(client, wf.id, wf.closed ? wf.runId : undefined, wf.closed)).recipients);
      } catch {
        unreadable += 1;
      }
    }
  });
  await Promise.all(workers);
  return {
    since: opts.since.toISOString(),
    lifecyclesInWindow: Math.max(count, picked.length),
    lifecyclesCounted: picked.length - unreadable,
    unreadable,
    max: opts.max,
    recipients: counts,
    ...rates(counts),
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const LEVEL_TEXT: Record<RateLevel, string> = { ok: 'ok', review: 'REVIEW: SES may put the account under review', pause: 'PAUSE: SES may pause sending' };

/** The text report. */
export function formatStats(r: StatsReport, windowLabel: string): string {
  const c = r.recipients;
  const lines = [
    `lifecycles started since ${r.since} (${windowLabel}): ${r.lifecyclesInWindow}; counted ${r.lifecyclesCounted}${r.unreadable ? ` (${r.unreadable} unreadable, skipped)` : ''}`,
  ];
  if (r.lifecyclesInWindow > r.lifecyclesCounted + r.unreadable) {
    lines.push(`  only the newest ${r.max} lifecycles were counted (bounded work); raise --max to count more`);
  }
  lines.push(
    `recipients sent: ${c.sent} (delivered ${c.delivered}, hard-bounced ${c.hardBounced}, soft-bounced ${c.softBounced}, complained ${c.complained}, no outcome yet ${c.noOutcome})`,
    `not sent: suppressed ${c.notSent.suppressed}, rejected ${c.notSent.rejected}, failed ${c.notSent.failed}, pending ${c.notSent.pending}`,
    '',
    table(
      ['rate', 'value', 'count', 'SES review at', 'SES pause at', 'level'],
      [
        ['bounce (hard)', pct(r.bounceRate.rate), `${c.hardBounced}/${c.sent}`, `>= ${pct(r.bounceRate.review)}`, `>= ${pct(r.bounceRate.pause)}`, LEVEL_TEXT[r.bounceRate.level]],
        ['complaint', pct(r.complaintRate.rate), `${c.complained}/${c.sent}`, `>= ${pct(r.complaintRate.review)}`, `>= ${pct(r.complaintRate.pause)}`, LEVEL_TEXT[r.complaintRate.level]],
      ],
    ),
    '',
    'SES judges these rates over its own window of representative volume; few sends make them noisy.',
  );
  return lines.join('\n');
}
