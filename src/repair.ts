/**
 * On-demand repair from SES message insights (rule 13): finds the open message lifecycles of a
 * window that have no outcome for some recipient (Temporal visibility), asks each to repair
 * itself (the `repair` update: the lifecycle reads GetMessageInsights through its rate-limited
 * activity and records what SNS never delivered) and reports what each recorded. Used by
 * `ses-lifecycle repair --since 24h` and the scheduled sweep (README "Repair from insights").
 */
import type { Client } from '@temporalio/client';
import { repairUpdate, WORKFLOW_TYPE, type RepairResult } from './definitions';
import { visibilityLiteral } from './webhook/router';

/** EmailStatus values of a lifecycle that still lacks an outcome for someone. */
export const UNSETTLED_STATUSES = ['sending', 'pending', 'sent', 'delayed', 'unconfirmed'] as const;

/** What `repair` did for the window. */
export interface RepairReport {
  since: string;
  /** Open lifecycles without an outcome that the window held (visibility count). */
  matched: number;
  repaired: RepairResult[];
  failed: { lifecycleId: string; error: string }[];
}

/** The visibility query of {@link repairLifecycles}. */
export function repairQuery(since: Date): string {
  return [
    `WorkflowType = ${visibilityLiteral(WORKFLOW_TYPE.message)}`,
    `ExecutionStatus = 'Running'`,
    `StartTime >= ${visibilityLiteral(since.toISOString())}`,
    `EmailStatus IN (${UNSETTLED_STATUSES.map((s) => visibilityLiteral(s)).join(', ')})`,
  ].join(' AND ');
}

/**
 * Repairs every open, unsettled message lifecycle started at or after `since` (at most `max`,
 * newest first). The rate limit is the insights task queue's, so `concurrency` only bounds how
 * many updates wait at once.
 */
export async function repairLifecycles(client: Client, opts: { since: Date; max?: number; concurrency?: number }): Promise<RepairReport> {
  const query = repairQuery(opts.since);
  const max = opts.max ?? 1000;
  const { count } = await client.workflow.count(query);
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query, pageSize: Math.min(max, 1000) })) {
    ids.push(wf.workflowId);
    if (ids.length >= max) break;
  }
  const repaired: RepairResult[] = [];
  const failed: RepairReport['failed'] = [];
  let next = 0;
  const workers = Array.from({ length: Math.min(opts.concurrency ?? 4, ids.length) }, async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      try {
        repaired.push(await client.workflow.getHandle(id).executeUpdate(repairUpdate));
      } catch (err) {
        failed.push({ lifecycleId: id, error: (err as Error).message.slice(0, 300) });
      }
    }
  });
  await Promise.all(workers);
  repaired.sort((a, b) => (a.lifecycleId < b.lifecycleId ? -1 : 1));
  return { since: opts.since.toISOString(), matched: count, repaired, failed };
}

/** The `repair` text: one line per lifecycle. */
export function formatRepair(r: RepairReport): string {
  const lines = [`${r.matched} open lifecycle(s) without an outcome since ${r.since}; repaired ${r.repaired.length}${r.failed.length ? `, ${r.failed.length} failed` : ''}`];
  for (const x of r.repaired) {
    const got = Object.entries(x.recorded).map(([t, n]) => `${t} ${n}`).join(', ');
    const un = x.unavailable.length ? `; insights unavailable for ${x.unavailable.map((u) => `${u.sesMessageId} (${u.reason})`).join(', ')}` : '';
    lines.push(`  ${x.lifecycleId}  ${x.status}  recorded ${got || 'nothing new'}; ${x.known} already known${un}`);
  }
  for (const f of r.failed) lines.push(`  ${f.lifecycleId}  FAILED: ${f.error}`);
  return lines.join('\n');
}
