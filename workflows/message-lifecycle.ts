/**
 * `messageLifecycle`: one tracked email, from send to final per-recipient summary.
 *
 * A thin body over {@link LifecycleState}: handlers, one loop, continue-as-new. The loop
 * re-derives what to do from state after every await and then waits for the state's version to
 * move, so an event that arrives during an activity is acted on at once (README, lifecycle rules).
 * Lifecycles started before the v2 core (input without `core: 2`) run the frozen v1 code.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  DEFAULT_POLICY,
  durationMs,
  formatDuration,
  fitKeywordList,
  MAX_RUN_HISTORY_BYTES,
  CURRENT_CORE,
  SA,
  sesEventSignal,
  sesEventsSignal,
  MAX_BATCH_EVENTS,
  PATCHES,
  repairUpdate,
  statusQuery,
  type LifecyclePolicy,
  type LifecycleResult,
  type MessageLifecycleInput,
} from '../src/definitions';
import { hasOutcome, isTerminal, softBounced, toSuppress, type LifecycleSummary } from '../src/lifecycle';
import { renderDetails } from './details';
import { CallbackOutbox, forwardToOrphan, Suppressions } from './follow-ups';
import { repairFromInsights } from './repair';
import { sendAttempt } from './send-attempt';
import { LifecycleState } from './state';
import { messageLifecycleV1 } from './v1/message-lifecycle';
import { WakeTimer } from './wake-timer';

/**
 * The policy of a lifecycle: what its input carries (the client resolves every field at start).
 * A field missing from an input written by an older client takes the v2 default frozen here,
 * never a default that a later release could change under a running lifecycle.
 */
const V2_POLICY_DEFAULTS: Readonly<LifecyclePolicy> = Object.freeze({ ...DEFAULT_POLICY });
function resolvePolicy(p: Partial<LifecyclePolicy> | undefined): LifecyclePolicy {
  return { ...V2_POLICY_DEFAULTS, ...p };
}

/**
 * Tracks one email. Returns the final per-recipient summary.
 *
 * @throws never for business outcomes (bounces, SES refusals, failed follow-ups): they are part
 *   of the result. Cancellation closes the lifecycle with phase `cancelled`.
 */
export async function messageLifecycle(input: MessageLifecycleInput): Promise<LifecycleResult> {
  if (input.core !== CURRENT_CORE) return messageLifecycleV1(input);
  const policy = resolvePolicy(input.policy);
  const state = new LifecycleState(input, policy);
  setHandler(sesEventSignal, ({ event }) => state.onEvent(event));
  setHandler(sesEventsSignal, ({ events }) => {
    for (const event of events.slice(0, MAX_BATCH_EVENTS)) state.onEvent(event);
  });
  setHandler(statusQuery, () => state.snapshot());
  // Rule 13, on demand (`ses-lifecycle repair`): answers what was recorded.
  setHandler(repairUpdate, () => repairFromInsights(state, 'on demand'));

  const timer = new WakeTimer(() => state.bump());
  const suppressions = new Suppressions(state, input.lifecycleId);
  const outbox = input.callbackUrl ? new CallbackOutbox(state, input.callbackUrl, state.callbacks.queue) : undefined;
  if (outbox) void outbox.run();

  let lastStatus: string | undefined;
  let lastIds = '';
  let lastStates = '';
  let lastDetails = '';
  /** Search attributes only when they change (each upsert is a history event); details on every change. */
  const publish = (s: LifecycleSummary): void => {
    const ids = state.searchableIds(s);
    const updates: Parameters<typeof upsertSearchAttributes>[0] = [];
    if (s.status !== lastStatus) updates.push({ key: SA.status, value: s.status });
    if (ids.join(',') !== lastIds && ids.length > 0) updates.push({ key: SA.sesMessageIds, value: ids });
    const states = fitKeywordList([...s.recipients.map((r) => r.email), ...s.recipients.map((r) => `${r.status}:${r.email}`)]);
    if (states.values.join(',') !== lastStates) updates.push({ key: SA.recipients, value: states.values });
    if (updates.length > 0) upsertSearchAttributes(updates);
    lastStatus = s.status;
    lastIds = ids.join(',');
    lastStates = states.values.join(',');
    const extra = states.dropped > 0 ? ['', `${states.dropped} recipient states are not in the EmailRecipients search attribute (size limit); all are listed above.`] : [];
    const details = renderDetails(state.snapshot(s), extra);
    if (details !== lastDetails) setCurrentDetails(details);
    lastDetails = details;
  };

  let cancelled = false;
  try {
    if (!input.carried) {
      await sendAttempt(state, 1, state.facts.recipients);
      state.deadlineAt = Date.now() + durationMs(policy.deliveryDeadline);
    }
    state.phase = 'awaiting-outcome';

    for (;;) {
      const seen = state.version;
      const s = state.summary();
      publish(s);
      state.queueCallback(s);

      // Rule 5: suppression runs beside the loop; its result bumps the version.
      for (const { email, reason } of toSuppress(s.recipients)) {
        if (reason === 'BOUNCE' ? !policy.suppressOnHardBounce : !policy.suppressOnComplaint) continue;
        suppressions.start(email, reason);
      }
      for (const email of state.suppressionsPending) {
        const r = s.recipients.find((x) => x.email === email);
        if (r) suppressions.start(email, r.status === 'complained' ? 'COMPLAINT' : 'BOUNCE');
      }

      // Rule 12: events of messages this lifecycle never sent go to their own orphan lifecycle.
      const foreign = state.foreignQueue.shift();
      if (foreign) {
        await forwardToOrphan(state, foreign, input.lifecycleId);
        continue;
      }

      // Rule 4: resend soft bounces after a backoff (a timer: events keep being processed).
      const soft = softBounced(s.recipients);
      const resendPending = soft.length > 0 && state.facts.attempts.length < policy.maxSendAttempts && !state.facts.sendError;
      if (resendPending) {
        state.resendDueAt ??= Date.now() + durationMs(policy.resendBackoff) * 2 ** Math.max(0, state.facts.attempts.length - 1);
        state.phase = 'resend-backoff';
        if (Date.now() >= state.resendDueAt) {
          state.resendDueAt = undefined;
          state.addFollowUp('resend', `${soft.join(', ')} (attempt ${state.facts.attempts.length + 1})`);
          await sendAttempt(state, state.facts.attempts.length + 1, soft);
          state.phase = 'awaiting-outcome';
          continue;
        }
        timer.arm(state.resendDueAt, `resend backoff: ${soft.join(', ')}`.slice(0, 200));
      } else {
        state.resendDueAt = undefined;
        if (state.phase === 'resend-backoff') state.phase = 'awaiting-outcome';
      }

      // Rule 6: deadline, then the complaint window; one timer serves both.
      const settled = !resendPending && s.recipients.every((r) => hasOutcome(r) || isTerminal(r.status));
      if (!settled && state.deadlineAt !== undefined && !state.facts.deadlinePassed) {
        if (Date.now() >= state.deadlineAt) {
          // Rule 13: before anyone is unconfirmed, ask SES's insights what SNS did not deliver.
          if (!state.repairTried && policy.repairFromInsights && patched(PATCHES.insightsRepair)) {
            state.repairTried = true;
            const open = new Set(s.recipients.filter((r) => !(hasOutcome(r) || isTerminal(r.status))).map((r) => r.email));
            const ids = state.facts.attempts.filter((a) => a.sesMessageId !== undefined && a.recipients.some((r) => open.has(r))).map((a) => a.sesMessageId!);
            if (ids.length > 0) await repairFromInsights(state, 'deadline', ids);
            continue;
          }
          state.facts.deadlinePassed = true;
          const late = state.summary().recipients.filter((r) => r.status === 'unconfirmed').map((r) => r.email);
          state.addFollowUp('deadline', `no outcome by the delivery deadline: ${late.join(', ')}`);
          continue;
        }
        timer.arm(state.deadlineAt, `delivery deadline (${formatDuration(policy.deliveryDeadline)})`);
      }
      if (!settled) state.windowEndsAt = undefined;
      if (settled) {
        const sentAny = state.facts.attempts.some((a) => a.sesMessageId !== undefined) || state.store.size > 0;
        state.windowEndsAt ??= sentAny ? Math.max(Date.now() + durationMs(policy.complaintWindow), state.deadlineAt ?? 0) : Date.now();
        state.phase = 'complaint-window';
        if (Date.now() >= state.windowEndsAt) break;
        timer.arm(state.windowEndsAt, `complaint window (${formatDuration(policy.complaintWindow)})`);
      }

      // Continue-as-new with bounded state once the history is long; follow-ups finish first.
      if (workflowInfo().historyLength > policy.maxHistoryEvents || workflowInfo().historySize > MAX_RUN_HISTORY_BYTES || workflowInfo().continueAsNewSuggested) {
        await suppressions.settled();
        await condition(() => !outbox || !outbox.inFlight);
        // A running `repair` update answers before the run ends (no command when none runs).
        await condition(allHandlersFinished);
        if (state.foreignQueue.length === 0) {
          await continueAsNew<typeof messageLifecycle>({ ...input, policy, carried: state.carried() });
        }
        continue;
      }

      await condition(() => state.version !== seen);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelled = true;
  }

  // Close: every follow-up finishes or is recorded, even when cancelled.
  return CancellationScope.nonCancellable(async () => {
    if (cancelled) {
      state.phase = 'cancelled';
      state.addFollowUp('cancelled', 'lifecycle cancelled; follow-ups finished, final state recorded');
      for (const email of state.suppressionsPending) {
        const r = state.summary().recipients.find((x) => x.email === email);
        suppressions.start(email, r?.status === 'complained' ? 'COMPLAINT' : 'BOUNCE');
      }
    } else {
      state.phase = 'completed';
    }
    await suppressions.settled();
    await condition(allHandlersFinished);
    const final = state.summary();
    publish(final);
    state.queueCallback(final);
    if (outbox) {
      if (cancelled) await outbox.drain(true);
      else await outbox.drain(false);
    }
    return state.snapshot();
  });
}
