/**
 * FROZEN: the v1 lifecycle, kept byte-for-byte in behaviour so lifecycles started before the v2
 * core (README "Deploying workflow changes") replay and finish on the code that started them.
 * Never edit; delete once no v1 lifecycle is open (longest policy after the v2 deploy).
 *
 * `messageLifecycle`: one tracked email, from send to final per-recipient summary.
 *
 * Deterministic code only. State is derived by the pure lifecycle module from the set of events
 * received plus the facts decided here (attempts, suppressed recipients, deadline), so the
 * order in which SNS delivers events never matters.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { Activities, SendEmailResult } from '../../activities';
import {
  durationMs,
  ErrorType,
  SA,
  sesEventSignal,
  statusQuery,
  type CallbackPayload,
  type CarriedStateV1 as CarriedState,
  type FollowUp,
  type LifecyclePolicy,
  type LifecycleResult,
  type LifecycleStatus,
  type MessageLifecycleInput,
} from '../../src/definitions';
import {
  EventSet,
  hasOutcome,
  initialFacts,
  isTerminal,
  softBounced,
  summarize,
  toSuppress,
  type LifecycleFacts,
  type LifecycleSummary,
  type SendAttempt,
  type SesEvent,
} from './lifecycle';
import { compactEvent, latestEvents, renderDetails } from './common';


/** Suppression is idempotent: let Temporal retry it freely. */
const { suppressAddress } = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
});

/** App callbacks: retried with backoff for a day; 4xx answers (CallbackRejected) are final. */
const { notifyCallback } = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10m', nonRetryableErrorTypes: [ErrorType.CallbackRejected] },
});

/** The defaults v1 lifecycles were started with (DEFAULT_POLICY at the time): never change. */
const V1_DEFAULT_POLICY: Readonly<LifecyclePolicy> = Object.freeze({
  deliveryDeadline: '72h',
  complaintWindow: '48h',
  maxSendAttempts: 3,
  resendBackoff: '15m',
  ambiguousSendWait: '5m',
  sendTimeout: '30s',
  suppressOnHardBounce: true,
  suppressOnComplaint: true,
  checkSuppressionBeforeSend: true,
  maxHistoryEvents: 8_000,
} as LifecyclePolicy);

const SEND_RETRY_INITIAL_MS = 1_000;
const SEND_RETRY_MAX_MS = 60_000;
const MAX_AMBIGUOUS_RESENDS = 3;

/**
 * Tracks one email. Returns the final per-recipient summary.
 *
 * @throws never for business outcomes (bounces, SES refusals): they are part of the result.
 */
export async function messageLifecycleV1(input: MessageLifecycleInput): Promise<LifecycleResult> {
  const policy: LifecyclePolicy = { ...V1_DEFAULT_POLICY, ...(input.policy as Partial<LifecyclePolicy>) };
  // One schedule per SendEmail: the workflow owns retries so that an ambiguous outcome (timeout,
  // reset, worker crash) is never retried blindly. The timeout bounds how long a crashed worker
  // holds a send.
  const { sendEmail } = proxyActivities<Activities>({
    startToCloseTimeout: durationMs(policy.sendTimeout),
    retry: { maximumAttempts: 1 },
  });
  const m = input.message;
  const carried = input.carried as CarriedState | undefined;
  const facts: LifecycleFacts = carried
    ? { ...initialFacts([...m.to, ...(m.cc ?? []), ...(m.bcc ?? [])]), attempts: carried.attempts, suppressed: carried.suppressed, deadlinePassed: carried.deadlinePassed }
    : initialFacts([...m.to, ...(m.cc ?? []), ...(m.bcc ?? [])]);
  if (carried?.sendError) facts.sendError = carried.sendError;
  const events = new EventSet(carried?.events ?? []);
  const followUps: FollowUp[] = carried?.followUps ?? [];
  const suppressionsDone = new Set<string>(carried?.suppressionsDone ?? []);
  let deadlineAt = carried?.deadlineAt;
  let windowEndsAt = carried?.windowEndsAt;
  let phase: LifecycleStatus['phase'] = carried ? 'awaiting-outcome' : 'sending';
  let wake = false;

  const now = () => Date.now(); // deterministic inside the workflow sandbox
  const iso = () => new Date(now()).toISOString();
  const summary = (): LifecycleSummary => summarize(events, facts, phase === 'sending');
  const snapshot = (s = summary()): LifecycleStatus => ({
    ...s,
    lifecycleId: input.lifecycleId,
    kind: 'message',
    phase,
    attempts: facts.attempts,
    followUps,
    latestEvents: latestEvents(events),
  });

  setHandler(sesEventSignal, ({ event }) => {
    if (events.add(event)) wake = true;
  });
  setHandler(statusQuery, () => snapshot());

  let lastStatus: string | undefined;
  let lastIds = '';
  /** Upserts search attributes only when they change: each upsert is a history event. */
  const syncSearchAttributes = (s: LifecycleSummary): void => {
    const ids = s.sesMessageIds.join(',');
    const updates: Parameters<typeof upsertSearchAttributes>[0] = [];
    if (s.status !== lastStatus) updates.push({ key: SA.status, value: s.status });
    if (ids !== lastIds && s.sesMessageIds.length > 0) updates.push({ key: SA.sesMessageIds, value: s.sesMessageIds });
    if (updates.length > 0) upsertSearchAttributes(updates);
    lastStatus = s.status;
    lastIds = ids;
    setCurrentDetails(renderDetails(snapshot(s)));
  };

  // App callbacks (rule: one signed POST per state change), delivered in order by one
  // coroutine so a slow app never blocks event processing.
  const callbackQueue: CallbackPayload[] = carried?.callbacks?.queue ?? [];
  let callbackSeq = carried?.callbacks?.seq ?? 0;
  let lastNotified = carried?.callbacks?.last;
  let callbackInFlight = false;
  const queueCallback = (s: LifecycleSummary): void => {
    if (!input.callbackUrl) return;
    const fingerprint = [phase === 'completed' ? 'final' : '', s.status, ...s.recipients.map((r) => `${r.email}=${r.status}`)].join('|');
    if (fingerprint === lastNotified) return;
    lastNotified = fingerprint;
    callbackSeq += 1;
    callbackQueue.push({
      eventId: `${input.lifecycleId}:${callbackSeq}`,
      lifecycleId: input.lifecycleId,
      status: s.status,
      phase,
      recipients: s.recipients.map((r) => ({
        email: r.email,
        status: r.status,
        ...(r.bounceType !== undefined ? { bounceType: r.bounceType } : {}),
        ...(r.bounceSubType !== undefined ? { bounceSubType: r.bounceSubType } : {}),
      })),
      sesMessageIds: s.sesMessageIds,
      at: iso(),
    });
  };
  const deliverCallbacks = async (url: string): Promise<never> => {
    for (;;) {
      await condition(() => callbackQueue.length > 0);
      callbackInFlight = true;
      const payload = callbackQueue[0]!;
      try {
        await notifyCallback({ url, payload });
      } catch (err) {
        if (isCancellation(err)) throw err;
        followUps.push({ kind: 'callback', at: iso(), detail: `${payload.eventId} not delivered: ${err instanceof ActivityFailure && err.cause ? err.cause.message : String(err)}` });
      }
      callbackQueue.shift();
      callbackInFlight = false;
    }
  };
  if (input.callbackUrl) void deliverCallbacks(input.callbackUrl);

  /** Recipients of an attempt, split back into To/Cc/Bcc as the original message had them. */
  const split = (recipients: string[]) => {
    const pick = (list: string[] | undefined) => (list ?? []).filter((a) => recipients.includes(a.toLowerCase()));
    return { to: pick(m.to), cc: pick(m.cc), bcc: pick(m.bcc) };
  };

  /** A Send event for a message id no attempt knows: proof that an ambiguous attempt went through. */
  const unclaimedSend = (): SesEvent | undefined =>
    events.values().find((e) => e.type === 'Send' && !facts.attempts.some((a) => a.sesMessageId === e.sesMessageId));

  /** Sends one attempt, retrying retryable SES errors and never resending blindly after an ambiguous outcome. */
  const sendAttempt = async (attemptNo: number, recipients: string[]): Promise<void> => {
    phase = 'sending';
    let retryDelay = SEND_RETRY_INITIAL_MS;
    let ambiguous = 0;
    for (;;) {
      let result: SendEmailResult | undefined;
      try {
        result = await sendEmail({
          lifecycleId: input.lifecycleId,
          attempt: attemptNo,
          message: m,
          recipients: split(recipients),
          ...(input.configurationSetName !== undefined ? { configurationSetName: input.configurationSetName } : {}),
          checkSuppression: policy.checkSuppressionBeforeSend,
        });
      } catch (err) {
        const type = failureType(err);
        if (type === 'retry') {
          await sleep(retryDelay);
          retryDelay = Math.min(retryDelay * 2, SEND_RETRY_MAX_MS);
          continue;
        }
        if (type === ErrorType.SesAmbiguous || type === 'timeout') {
          // SendEmail has no idempotency token: wait for a Send event before resending.
          followUps.push({ kind: 'ambiguous-send', at: iso(), detail: `attempt ${attemptNo}: outcome unknown; waiting for a Send event` });
          const proven = await condition(() => unclaimedSend() !== undefined, durationMs(policy.ambiguousSendWait));
          const send = unclaimedSend();
          if (proven && send) {
            facts.attempts.push({ attempt: attemptNo, sesMessageId: send.sesMessageId, recipients, sentAt: send.timestamp });
            followUps.push({ kind: 'ambiguous-send', at: iso(), detail: `attempt ${attemptNo}: Send event proves SES accepted ${send.sesMessageId}; not resent` });
            return;
          }
          ambiguous += 1;
          if (ambiguous > MAX_AMBIGUOUS_RESENDS) {
            facts.sendError = { type: ErrorType.SesAmbiguous, message: `no Send event after ${ambiguous} ambiguous attempts` };
            return;
          }
          followUps.push({ kind: 'ambiguous-send', at: iso(), detail: `attempt ${attemptNo}: no Send event within the wait; resending` });
          continue;
        }
        const message = err instanceof ActivityFailure && err.cause instanceof Error ? err.cause.message : String(err);
        facts.sendError = { type, message };
        log.warn('send failed for good', { lifecycleId: input.lifecycleId, errorType: type });
        return;
      }
      for (const s of result.suppressed) if (!facts.suppressed.includes(s.toLowerCase())) facts.suppressed.push(s.toLowerCase());
      if (result.sesMessageId !== undefined || result.sentTo.length > 0) {
        const attempt: SendAttempt = { attempt: attemptNo, recipients: result.sentTo.map((r) => r.toLowerCase()), sentAt: iso() };
        if (result.sesMessageId !== undefined) attempt.sesMessageId = result.sesMessageId;
        facts.attempts.push(attempt);
      }
      return;
    }
  };

  // ---- first send (skipped when resuming after continue-as-new)
  if (!carried) {
    await sendAttempt(1, facts.recipients);
    deadlineAt = now() + durationMs(policy.deliveryDeadline);
  }
  phase = 'awaiting-outcome';

  // One timer at a time, armed for the next moment the lifecycle must act (deadline, or close).
  // Signals never restart it, so a signal costs only its own history events; an earlier timer
  // that is still pending is kept and the loop re-arms when it fires.
  let timer: { at: number; scope: CancellationScope } | undefined;
  const arm = (at: number): void => {
    if (timer && timer.at <= at) return;
    timer?.scope.cancel();
    const scope = new CancellationScope();
    const t = { at, scope };
    timer = t;
    void scope.run(() => sleep(Math.max(0, at - now()))).then(
      () => {
        if (timer === t) timer = undefined;
        wake = true;
      },
      (err: unknown) => {
        if (!isCancellation(err)) throw err;
      },
    );
  };
  let resendDueAt: number | undefined;

  for (;;) {
    const s = summary();
    syncSearchAttributes(s);
    queueCallback(s);

    // Follow-up: suppression of hard bounces and complaints (rule 5).
    for (const { email, reason } of toSuppress(s.recipients)) {
      if (suppressionsDone.has(email)) continue;
      if (reason === 'BOUNCE' ? !policy.suppressOnHardBounce : !policy.suppressOnComplaint) continue;
      suppressionsDone.add(email);
      await suppressAddress({ email, reason, lifecycleId: input.lifecycleId });
      followUps.push({ kind: 'suppressed', at: iso(), detail: `${email} (${reason})` });
    }

    // Follow-up: resend soft bounces after a backoff, up to the policy limit (rule 4). The
    // backoff is a timer, not a sleep: events keep being processed (a complaint during the
    // backoff is suppressed at once), and the decision is re-derived when it ends (an
    // out-of-office bounce that arrived before its Delivery looks soft until the Delivery shows
    // up, and must not be resent).
    const soft = softBounced(s.recipients);
    const resendPending = soft.length > 0 && facts.attempts.length < policy.maxSendAttempts && !facts.sendError;
    if (resendPending) {
      if (resendDueAt === undefined) {
        resendDueAt = now() + durationMs(policy.resendBackoff) * 2 ** Math.max(0, facts.attempts.length - 1);
        phase = 'resend-backoff';
      }
      if (now() >= resendDueAt) {
        resendDueAt = undefined;
        followUps.push({ kind: 'resend', at: iso(), detail: `${soft.join(', ')} (attempt ${facts.attempts.length + 1})` });
        await sendAttempt(facts.attempts.length + 1, soft);
        phase = 'awaiting-outcome';
        continue;
      }
      arm(resendDueAt);
    } else {
      resendDueAt = undefined;
      if (phase === 'resend-backoff') phase = 'awaiting-outcome';
    }

    const settled = !resendPending && s.recipients.every((r) => hasOutcome(r) || isTerminal(r.status));
    if (!settled && deadlineAt !== undefined && !facts.deadlinePassed) {
      if (now() >= deadlineAt) {
        facts.deadlinePassed = true;
        const late = summary().recipients.filter((r) => r.status === 'unconfirmed').map((r) => r.email);
        followUps.push({ kind: 'deadline', at: iso(), detail: `no outcome by the delivery deadline: ${late.join(', ')}` });
        continue;
      }
      arm(deadlineAt);
    }
    if (!settled) windowEndsAt = undefined;
    if (settled) {
      // Rule 6: stay open for complaints after the outcome. The lifecycle closes at the later of
      // the delivery deadline and the end of the complaint window (one timer serves both), so
      // late or reordered events (a Send after its Bounce) still find it open. When nothing was
      // sent (all suppressed, or SES refused the call) there is nothing to wait for.
      const sentAny = facts.attempts.some((a) => a.sesMessageId !== undefined) || events.size > 0;
      windowEndsAt ??= sentAny ? Math.max(now() + durationMs(policy.complaintWindow), deadlineAt ?? 0) : now();
      phase = 'complaint-window';
      if (now() >= windowEndsAt) break;
      arm(windowEndsAt);
    }

    if (workflowInfo().historyLength > policy.maxHistoryEvents || workflowInfo().continueAsNewSuggested) {
      const next: CarriedState = {
        events: events.values().map(compactEvent),
        attempts: facts.attempts,
        suppressed: facts.suppressed,
        deadlinePassed: facts.deadlinePassed,
        followUps: followUps.slice(-100),
        suppressionsDone: [...suppressionsDone],
        callbacks: { queue: callbackQueue, seq: callbackSeq, ...(lastNotified !== undefined ? { last: lastNotified } : {}) },
        ...(facts.sendError ? { sendError: facts.sendError } : {}),
        ...(deadlineAt !== undefined ? { deadlineAt } : {}),
        ...(windowEndsAt !== undefined ? { windowEndsAt } : {}),
      };
      await continueAsNew<typeof messageLifecycleV1>({ ...input, carried: next });
    }

    wake = false;
    await condition(() => wake);
  }

  phase = 'completed';
  const final = snapshot();
  syncSearchAttributes(final);
  queueCallback(final);
  // The final state change is delivered before the lifecycle completes.
  await condition(() => callbackQueue.length === 0 && !callbackInFlight);
  return final;
}

/** Maps an activity failure to our error type, `'retry'` for retryable ones, `'timeout'` for lost attempts. */
function failureType(err: unknown): string {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      return cause.nonRetryable ? (cause.type ?? ErrorType.SesUnknown) : 'retry';
    }
    if (cause instanceof TimeoutFailure) return 'timeout';
  }
  throw err;
}
