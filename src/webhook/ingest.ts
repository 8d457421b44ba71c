/**
 * verify ▶ parse ▶ route, independent of the transport: the SNS webhook (`sns-route.ts`) and the
 * SQS consumer (`../sqs-ingest.ts`) both hand what they received here, so an SNS envelope is
 * checked the same way (TopicArn allowlist before any certificate fetch, replay window, signature
 * and certificate checks by the same {@link SnsVerifier}) and an SES event is recorded through the
 * same {@link EventRouter} with the same dedupe, whichever way it came.
 *
 * Results say what happened; the caller turns them into an HTTP answer or an SQS delete.
 * Success outcomes are counted here (`sink`); refusals and failures are counted by the caller.
 */
import type { FastifyBaseLogger } from 'fastify';
import { parseSesEventText, SesEventParseError } from '../ses-events';
import { checkTimestamp } from './envelope';
import { RejectReason, UnavailableReason, type StageTimings } from './metrics';
import type { EventRouter } from './router';
import { SnsVerificationError, type SnsEnvelope, type SnsVerifier } from './sns-verify';
import { confirmSubscription, SubscriptionConfirmError } from './subscription';
import { checkSubscribeUrl } from './url-checks';

/** What a handled message amounts to, in one word. */
export type IngestStatus = 'recorded' | 'duplicate' | 'ignored' | 'confirmed' | 'unsubscribed';

/** Result of {@link ingestEnvelope} / {@link ingestSesText}. */
export type IngestResult =
  /** Handled for good: recorded in Temporal, a known duplicate, or nothing to record. */
  | { kind: 'done'; status: IngestStatus }
  /** Can never succeed as it is (webhook: 4xx). */
  | { kind: 'rejected'; reason: RejectReason; httpStatus: 400 | 403; detail?: string }
  /** Could not be handled now; try again later (webhook: 5xx). */
  | { kind: 'unavailable'; reason: UnavailableReason; httpStatus: 502 | 503; detail?: unknown };

/** Where success outcomes are counted (the webhook's and the SQS consumer's metrics both fit). */
export interface OutcomeSink {
  inc(outcome: 'signalled' | 'orphaned' | 'duplicate' | 'ignored' | 'refused' | 'subscriptionsConfirmed' | 'unsubscribeNotices'): void;
  event(type: string): void;
}

/** What both transports share. */
export interface IngestDeps {
  verifier: SnsVerifier;
  router: EventRouter;
  sink: OutcomeSink;
  allowAnyTopic: boolean;
  allowedTopicArns: ReadonlySet<string>;
  replayWindowMs: number;
  /** The clock of the replay window (injectable for recorded messages). */
  now: () => number;
  subscribeHostPattern: RegExp;
  confirmTimeoutMs: number;
  extraCaPem: string | undefined;
}

const done = (status: IngestStatus): IngestResult => ({ kind: 'done', status });

/** Parses and records the SES event carried by a notification (or a raw-delivery body). */
export async function ingestSesText(deps: IngestDeps, text: string, snsMessageId: string | undefined, log: FastifyBaseLogger, timings?: StageTimings): Promise<IngestResult> {
  let parsed;
  try {
    parsed = parseSesEventText(text, snsMessageId !== undefined ? { snsMessageId } : {});
  } catch (err) {
    if (err instanceof SesEventParseError) return { kind: 'rejected', reason: RejectReason.InvalidSesEvent, httpStatus: 400, detail: err.path };
    throw err;
  }
  if (parsed.kind === 'not-ses') {
    deps.sink.inc('ignored');
    log.info({ reason: parsed.reason }, 'SNS notification is not an SES event; ignored');
    return done('ignored');
  }
  const { event } = parsed;
  const elog = log.child({ sesMessageId: event.sesMessageId, lifecycleId: event.lifecycleId, eventType: event.type, eventId: event.id });
  try {
    const result = await deps.router.record(event, timings);
    if (result.outcome === 'refused' || result.outcome === 'ignored') {
      // Permanent: handled so SNS (or SQS) stops retrying; counted and logged, never silent.
      deps.sink.inc(result.outcome);
      elog.warn({ outcome: result.outcome, reason: result.reason }, 'SES event not recorded (permanent condition)');
      return done('ignored');
    }
    deps.sink.inc(result.outcome);
    if (result.outcome !== 'duplicate') deps.sink.event(event.type);
    elog.info({ outcome: result.outcome, workflowId: result.workflowId }, 'SES event routed');
    return done(result.outcome === 'duplicate' ? 'duplicate' : 'recorded');
  } catch (err) {
    return { kind: 'unavailable', reason: UnavailableReason.Temporal, httpStatus: 503, detail: err };
  }
}

/**
 * Checks an SNS envelope (allowlist, replay window, signature) and acts on it: records the SES
 * event of a Notification, confirms an allowlisted SubscriptionConfirmation, logs an
 * UnsubscribeConfirmation.
 */
export async function ingestEnvelope(deps: IngestDeps, env: SnsEnvelope, log: FastifyBaseLogger, timings?: StageTimings): Promise<IngestResult> {
  // Allowlist before verification: a foreign topic never costs us a certificate fetch.
  if (!deps.allowAnyTopic && !deps.allowedTopicArns.has(env.TopicArn)) return { kind: 'rejected', reason: RejectReason.TopicNotAllowed, httpStatus: 403 };
  const stale = checkTimestamp(env.Timestamp, deps.now(), deps.replayWindowMs);
  if (stale !== undefined) return { kind: 'rejected', reason: RejectReason.StaleTimestamp, httpStatus: 400, detail: stale };
  const v0 = performance.now();
  try {
    await deps.verifier.verify(env);
    if (timings) timings.verify = performance.now() - v0;
  } catch (err) {
    if (err instanceof SnsVerificationError) {
      if (err.permanent) return { kind: 'rejected', reason: err.reason as RejectReason, httpStatus: 403, detail: err.message };
      return { kind: 'unavailable', reason: err.reason as UnavailableReason, httpStatus: 503, detail: err.message };
    }
    throw err;
  }

  switch (env.Type) {
    case 'Notification':
      return ingestSesText(deps, env.Message, env.MessageId, log, timings);
    case 'SubscriptionConfirmation': {
      const check = checkSubscribeUrl(env.SubscribeURL, deps.subscribeHostPattern, env.TopicArn);
      if (!check.ok) return { kind: 'rejected', reason: RejectReason.SubscribeUrlNotAllowed, httpStatus: 403, detail: check.reason };
      try {
        await confirmSubscription(check.url, {
          timeoutMs: deps.confirmTimeoutMs,
          ...(deps.extraCaPem !== undefined ? { extraCaPem: deps.extraCaPem } : {}),
        });
      } catch (err) {
        const status = err instanceof SubscriptionConfirmError && err.kind === 'rejected' ? 502 : 503;
        return { kind: 'unavailable', reason: UnavailableReason.ConfirmFailed, httpStatus: status, detail: err instanceof Error ? err.message : err };
      }
      deps.sink.inc('subscriptionsConfirmed');
      log.info('SNS subscription confirmed');
      return done('confirmed');
    }
    case 'UnsubscribeConfirmation':
      // Someone unsubscribed this endpoint. Never re-subscribe automatically: that is a decision
      // for an operator (the SubscribeURL in this message would do it).
      deps.sink.inc('unsubscribeNotices');
      log.warn('SNS UnsubscribeConfirmation received: this endpoint no longer receives that topic');
      return done('unsubscribed');
  }
}
