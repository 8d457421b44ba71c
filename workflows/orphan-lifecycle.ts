/**
 * `orphanLifecycle`: records SES events whose lifecycle is unknown, closed, or that named a
 * lifecycle which never sent their message (rule 7, rule 12), keyed by SES message id, and still
 * runs their follow-ups (suppression). Shares the message lifecycle's machinery: bounded event
 * store, concurrent suppressions, one wake timer (the idle close), no timer per event.
 */
import { condition, continueAsNew, patched, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  durationMs,
  fitKeywordList,
  MAX_RUN_HISTORY_BYTES,
  ORPHAN_IDLE_TIMEOUT,
  PATCHES,
  SA,
  sesEventSignal,
  sesEventsSignal,
  MAX_BATCH_EVENTS,
  statusQuery,
  type FollowUp,
  type LifecycleStatus,
  type OrphanCarriedState,
  type OrphanLifecycleInput,
} from '../src/definitions';
import { EventStore, initialFacts, summarize, toSuppress, uniqueLower } from '../src/lifecycle';
import { headline, renderDetails, suppressedOk } from './details';
import { Suppressions } from './follow-ups';
import { orphanLifecycleV1 } from './v1/orphan-lifecycle';
import { WakeTimer } from './wake-timer';

/** Continue-as-new beyond this many history events (well under Temporal's warnings). */
const HISTORY_EVENTS_LIMIT = 2_000;
const MAX_FOLLOW_UPS = 50;

/** Records orphan events until none arrived for `idleTimeout`; returns the derived summary. */
export async function orphanLifecycle(input: OrphanLifecycleInput): Promise<LifecycleStatus> {
  if (!patched(PATCHES.orphanCoreV2)) return orphanLifecycleV1(input);
  const c = input.carried && 'v' in input.carried ? (input.carried) : undefined;
  const store = new EventStore(c?.store);
  for (const e of (input.carried && !('v' in input.carried) ? input.carried.events : undefined) ?? []) store.add(e);
  const host = {
    version: 0,
    followUps: c?.followUps ?? ([] as FollowUp[]),
    suppressionsDone: new Set(c?.suppressionsDone ?? []),
    suppressionsPending: new Set(c?.suppressionsPending ?? []),
    bump() {
      this.version += 1;
    },
    addFollowUp(kind: FollowUp['kind'], detail: string) {
      this.followUps.push({ kind, at: new Date().toISOString(), detail: detail.slice(0, 500) });
      if (this.followUps.length > MAX_FOLLOW_UPS) this.followUps.splice(0, this.followUps.length - MAX_FOLLOW_UPS);
    },
  };
  const idleMs = durationMs(input.idleTimeout ?? ORPHAN_IDLE_TIMEOUT);
  let lastEventAt = c?.lastEventAt ?? Date.now();
  let phase: LifecycleStatus['phase'] = 'awaiting-outcome';
  const record = (e: Parameters<EventStore['add']>[0]): void => {
    if (store.add(e)) {
      lastEventAt = Date.now();
      host.bump();
    }
  };
  for (const e of input.initialEvents ?? []) record(e);

  const snapshot = (): LifecycleStatus => {
    const recipients = uniqueLower([...store.events().flatMap((e) => e.recipients), ...store.engagement().flatMap((t) => t.recipients)]).slice(0, 200);
    const facts = initialFacts(recipients);
    const s = { ...summarize(store, facts), sesMessageIds: [input.sesMessageId] };
    return {
      headline: headline(s, 'orphan', phase, suppressedOk(host.suppressionsDone, host.followUps)),
      ...s,
      sesMessageIds: [input.sesMessageId],
      lifecycleId: workflowInfo().workflowId,
      kind: 'orphan',
      phase,
      attempts: [],
      followUps: host.followUps,
      latestEvents: store
        .events()
        .slice(-20)
        .map((e) => ({ type: e.type, timestamp: e.timestamp, recipients: e.recipients.slice(0, 5), sesMessageId: e.sesMessageId })),
    };
  };
  setHandler(sesEventSignal, ({ event }) => record(event));
  setHandler(sesEventsSignal, ({ events }) => {
    for (const event of events.slice(0, MAX_BATCH_EVENTS)) record(event);
  });
  setHandler(statusQuery, () => snapshot());

  const timer = new WakeTimer(() => host.bump());
  const suppressions = new Suppressions(host, workflowInfo().workflowId);
  let lastStatus: string | undefined;
  let lastRecipients = '';
  let lastDetails = '';
  const publish = (s: LifecycleStatus): void => {
    const fit = fitKeywordList([...s.recipients.map((r) => r.email), ...s.recipients.map((r) => `${r.status}:${r.email}`)]);
    const updates: Parameters<typeof upsertSearchAttributes>[0] = [];
    if (s.status !== lastStatus) updates.push({ key: SA.status, value: s.status });
    if (fit.values.join(',') !== lastRecipients) updates.push({ key: SA.recipients, value: fit.values });
    if (updates.length > 0) upsertSearchAttributes(updates);
    lastStatus = s.status;
    lastRecipients = fit.values.join(',');
    const extra = [
      '',
      input.claimedLifecycleId ? `Events named lifecycle **${input.claimedLifecycleId}**, which did not send this message or is closed.` : 'Events name no lifecycle (sent outside sendTracked?).',
      ...(fit.dropped > 0 ? [`${fit.dropped} recipients or recipient states are not in the EmailRecipients search attribute (size limit); all are listed here and in the status query.`] : []),
    ];
    const details = renderDetails(s, extra);
    if (details !== lastDetails) setCurrentDetails(details);
    lastDetails = details;
  };

  for (;;) {
    const seen = host.version;
    const s = snapshot();
    publish(s);
    for (const { email, reason } of toSuppress(s.recipients)) {
      if (reason === 'BOUNCE' ? input.suppressOnHardBounce === false : input.suppressOnComplaint === false) continue;
      suppressions.start(email, reason);
    }
    if (Date.now() >= lastEventAt + idleMs && suppressions.idle) break;
    timer.arm(lastEventAt + idleMs, 'orphan idle timeout');
    if (workflowInfo().historyLength > HISTORY_EVENTS_LIMIT || workflowInfo().historySize > MAX_RUN_HISTORY_BYTES || workflowInfo().continueAsNewSuggested) {
      await suppressions.settled();
      const carried: OrphanCarriedState = {
        v: 2,
        store: store.snapshot(),
        followUps: host.followUps,
        suppressionsDone: [...host.suppressionsDone],
        suppressionsPending: [...host.suppressionsPending],
        lastEventAt,
      };
      const { initialEvents: _initial, ...rest } = input;
      await continueAsNew<typeof orphanLifecycle>({ ...rest, idleTimeout: input.idleTimeout ?? ORPHAN_IDLE_TIMEOUT, carried });
    }
    await condition(() => host.version !== seen);
  }
  phase = 'completed';
  const final = snapshot();
  publish(final);
  return final;
}
