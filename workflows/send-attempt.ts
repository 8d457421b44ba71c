/**
 * One send attempt of a lifecycle: SESv2 SendEmail through the `sendEmail` activity, with the
 * workflow owning retries. Retryable refusals (throttling, 5xx) are retried with backoff, up to
 * the policy's `maxSendRetries` and `sendRetryFor`; an ambiguous outcome (timeout, reset, lost
 * worker) is never resent blindly: SendEmail has no idempotency token, so the attempt waits for
 * an SES event that proves it went through before resending (rule 8 and README "Duplicate sends").
 */
import { ActivityFailure, ApplicationFailure, condition, log, proxyActivities, sleep, TimeoutFailure } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { durationMs, ErrorType } from '../src/definitions';
import type { SendAttempt } from '../src/lifecycle';
import type { LifecycleState } from './state';

const SEND_RETRY_INITIAL_MS = 1_000;
const SEND_RETRY_MAX_MS = 60_000;
const MAX_AMBIGUOUS_RESENDS = 3;

/** Maps an activity failure to our error type, `'retry'` for retryable ones, `'timeout'` for lost attempts. */
function failureType(err: unknown): string {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) return cause.nonRetryable ? (cause.type ?? ErrorType.SesUnknown) : 'retry';
    if (cause instanceof TimeoutFailure) return 'timeout';
  }
  throw err;
}

/** Sends attempt `attemptNo` to `recipients`; records the attempt (or the send error) in `state`. */
export async function sendAttempt(state: LifecycleState, attemptNo: number, recipients: string[]): Promise<void> {
  const { input, policy, facts } = state;
  const sendOptions = { startToCloseTimeout: durationMs(policy.sendTimeout), retry: { maximumAttempts: 1 } };
  const { sendEmail } = proxyActivities<Activities>(sendOptions);
  const n = recipients.length;
  const m = input.message;
  const pick = (list: string[] | undefined) => (list ?? []).filter((a) => recipients.includes(a.toLowerCase()));
  const split = { to: pick(m.to), cc: pick(m.cc), bcc: pick(m.bcc) };
  const started = Date.now();
  let retries = 0;
  let retryDelay = SEND_RETRY_INITIAL_MS;
  let ambiguous = 0;
  state.phase = 'sending';
  state.sendOpen = true;
  try {
    for (;;) {
      try {
        // The summary names the activity in the Web UI's event history (user metadata only).
        const summary = `SendEmail to ${n} recipient${n === 1 ? '' : 's'} (attempt ${attemptNo}${retries > 0 ? `, retry ${retries}` : ''})`;
        const result = await sendEmail.executeWithOptions({ ...sendOptions, summary }, [{
          lifecycleId: input.lifecycleId,
          attempt: attemptNo,
          message: m,
          recipients: split,
          ...(input.configurationSetName !== undefined ? { configurationSetName: input.configurationSetName } : {}),
          checkSuppression: policy.checkSuppressionBeforeSend,
        }]);
        for (const s of result.suppressed) if (!facts.suppressed.includes(s.toLowerCase())) facts.suppressed.push(s.toLowerCase());
        if (result.sesMessageId !== undefined || result.sentTo.length > 0) {
          const attempt: SendAttempt = { attempt: attemptNo, recipients: result.sentTo.map((r) => r.toLowerCase()), sentAt: new Date().toISOString() };
          if (result.sesMessageId !== undefined) attempt.sesMessageId = result.sesMessageId;
          facts.attempts.push(attempt);
        }
        return;
      } catch (err) {
        const type = failureType(err);
        if (type === 'retry') {
          retries += 1;
          if (retries > policy.maxSendRetries || Date.now() - started > durationMs(policy.sendRetryFor)) {
            facts.sendError = { type: ErrorType.SesUnavailable, message: `SendEmail still refused after ${retries} tries over ${Math.round((Date.now() - started) / 1000)} s (throttling or SES unavailable); gave up` };
            state.addFollowUp('send-retry', `attempt ${attemptNo}: gave up after ${retries} retryable failures`);
            return;
          }
          await sleep(retryDelay, { summary: `SendEmail retry backoff (${retries} of at most ${policy.maxSendRetries})` });
          retryDelay = Math.min(retryDelay * 2, SEND_RETRY_MAX_MS);
          continue;
        }
        if (type === ErrorType.SesAmbiguous || type === 'timeout') {
          state.addFollowUp('ambiguous-send', `attempt ${attemptNo}: outcome unknown; waiting for an SES event that proves it`);
          const proven = await condition(() => state.proofOfAmbiguousSend() !== undefined, durationMs(policy.ambiguousSendWait));
          const proof = state.proofOfAmbiguousSend();
          if (proven && proof) {
            facts.attempts.push({ attempt: attemptNo, sesMessageId: proof.sesMessageId, recipients, sentAt: proof.timestamp });
            state.addFollowUp('ambiguous-send', `attempt ${attemptNo}: ${proof.type} event proves SES accepted ${proof.sesMessageId}; not resent`);
            return;
          }
          ambiguous += 1;
          if (ambiguous > MAX_AMBIGUOUS_RESENDS) {
            facts.sendError = { type: ErrorType.SesAmbiguous, message: `no SES event after ${ambiguous} ambiguous attempts` };
            return;
          }
          state.addFollowUp('ambiguous-send', `attempt ${attemptNo}: no Send event within the wait; resending`);
          continue;
        }
        const message = err instanceof ActivityFailure && err.cause instanceof Error ? err.cause.message : String(err);
        facts.sendError = { type, message };
        log.warn('send failed for good', { lifecycleId: input.lifecycleId, errorType: type });
        return;
      }
    }
  } finally {
    state.releaseHeld();
  }
}
