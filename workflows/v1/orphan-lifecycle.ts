/**
 * FROZEN v1 orphan lifecycle (see ./message-lifecycle.ts): never edit.
 *
 * `orphanLifecycle`: records SES events whose lifecycle is unknown or already closed (rule 7),
 * keyed by SES message id, and still runs their follow-ups (suppression). Also how the product
 * adopts SES traffic that was not sent with sendTracked().
 */
import { condition, continueAsNew, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { durationMs, SA, sesEventSignal, statusQuery, type FollowUp, type LifecycleStatus, type OrphanLifecycleInput } from '../../src/definitions';
import { EventSet, initialFacts, summarize, toSuppress, uniqueLower, type SesEvent } from './lifecycle';
import { compactEvent, latestEvents, renderDetails } from './common';

const { suppressAddress } = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
});

const DEFAULT_IDLE = '48h';
const HISTORY_EVENTS_LIMIT = 8_000;

/** Records orphan events until none arrived for `idleTimeout`; returns the derived summary. */
export async function orphanLifecycleV1(input: OrphanLifecycleInput): Promise<LifecycleStatus> {
  const carried = input.carried as { events: SesEvent[]; followUps: FollowUp[]; suppressionsDone: string[] } | undefined;
  const events = new EventSet(carried?.events ?? []);
  const followUps: FollowUp[] = carried?.followUps ?? [];
  const suppressionsDone = new Set(carried?.suppressionsDone ?? []);
  let phase: LifecycleStatus['phase'] = 'awaiting-outcome';
  let wake = false;

  const snapshot = (): LifecycleStatus => {
    const facts = initialFacts(uniqueLower(events.values().flatMap((e) => e.recipients)));
    return {
      ...summarize(events, facts),
      lifecycleId: workflowInfo().workflowId,
      kind: 'orphan',
      phase,
      attempts: [],
      followUps,
      latestEvents: latestEvents(events),
    };
  };
  setHandler(sesEventSignal, ({ event }) => {
    if (events.add(event)) wake = true;
  });
  setHandler(statusQuery, () => snapshot());

  let lastStatus: string | undefined;
  for (;;) {
    const s = snapshot();
    if (s.status !== lastStatus) {
      upsertSearchAttributes([
        { key: SA.status, value: s.status },
        { key: SA.recipients, value: s.recipients.map((r) => r.email) },
      ]);
      lastStatus = s.status;
    }
    setCurrentDetails(renderDetails(s));
    for (const { email, reason } of toSuppress(s.recipients)) {
      if (suppressionsDone.has(email)) continue;
      if (reason === 'BOUNCE' ? input.suppressOnHardBounce === false : input.suppressOnComplaint === false) continue;
      suppressionsDone.add(email);
      await suppressAddress({ email, reason, lifecycleId: workflowInfo().workflowId });
      followUps.push({ kind: 'suppressed', at: new Date().toISOString(), detail: `${email} (${reason})` });
    }
    if (workflowInfo().historyLength > HISTORY_EVENTS_LIMIT || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof orphanLifecycleV1>({
        ...input,
        carried: { events: events.values().map(compactEvent), followUps: followUps.slice(-100), suppressionsDone: [...suppressionsDone] },
      });
    }
    wake = false;
    const gotEvent = await condition(() => wake, durationMs(input.idleTimeout ?? DEFAULT_IDLE));
    if (!gotEvent) break;
  }
  phase = 'completed';
  const final = snapshot();
  setCurrentDetails(renderDetails(final));
  return final;
}
