/**
 * Repair from SES message insights (rule 13): reads SESv2 GetMessageInsights for a lifecycle's
 * SES messages and records what SNS never delivered as events of source `insights`. The
 * activity runs on its own task queue (`<queue>-insights`), whose server-enforced rate keeps
 * every worker together below SES's limit for the operation (about one call per second). A
 * repair that cannot read insights (NotFound, AccessDenied, SES down) is recorded as a
 * follow-up and never fails the lifecycle.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { insightsTaskQueue, type RepairResult } from '../src/definitions';
import type { LifecycleState } from './state';

function reason(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return `${cause.type ?? 'Error'}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Repairs the lifecycle from insights of `sesMessageIds` (default: every attempt). */
export async function repairFromInsights(state: LifecycleState, why: 'deadline' | 'on demand', sesMessageIds: string[] = [...state.attemptIds()]): Promise<RepairResult> {
  const { fetchMessageInsights } = proxyActivities<Activities>({
    taskQueue: insightsTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '30s',
    // Waiting in the rate-limited queue counts here: a sweep of many lifecycles queues up. With
    // no insights worker polling the queue at all, the repair gives up after 10 minutes.
    scheduleToStartTimeout: '10m',
    scheduleToCloseTimeout: '30m',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
  });
  const lifecycleId = state.input.lifecycleId;
  const recorded: Record<string, number> = {};
  const unavailable: RepairResult['unavailable'] = [];
  let known = 0;
  for (const sesMessageId of sesMessageIds.slice(0, 10)) {
    try {
      const r = await fetchMessageInsights({ sesMessageId, lifecycleId });
      if (r.unavailable !== undefined) unavailable.push({ sesMessageId, reason: r.unavailable });
      for (const e of r.events) {
        if (state.onInsightEvent(e)) recorded[e.type] = (recorded[e.type] ?? 0) + 1;
        else known += 1;
      }
    } catch (err) {
      if (isCancellation(err)) throw err;
      unavailable.push({ sesMessageId, reason: reason(err).slice(0, 300) });
    }
  }
  if (sesMessageIds.length === 0) return { lifecycleId, asked: [], recorded, known, unavailable, status: state.summary().status };
  const got = Object.entries(recorded).map(([t, n]) => `${t} ${n}`).join(', ');
  const failed = unavailable.map((u) => `${u.sesMessageId}: ${u.reason}`).join('; ');
  state.addFollowUp('repair', `${why}: GetMessageInsights for ${sesMessageIds.length} SES message(s): recorded ${got || 'nothing new'}; ${known} already known${failed ? `; insights unavailable: ${failed}` : ''}`);
  state.bump();
  return { lifecycleId, asked: sesMessageIds, recorded, known, unavailable, status: state.summary().status };
}
