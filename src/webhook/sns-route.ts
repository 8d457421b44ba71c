/**
 * The SNS route: a self-contained Fastify plugin with its own body parsers.
 *
 * verify ▶ parse ▶ route. Status codes follow ARCHITECTURE.md: 2xx once the event is recorded in
 * Temporal (or is a known duplicate, or needs nothing), 5xx when it could not be recorded now (SNS
 * retries), 4xx only for input that can never succeed (SNS drops it). Error bodies are short
 * and never echo input.
 */
import type { FastifyBaseLogger, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { parseSesEventText, SesEventParseError } from '../ses-events';
import { checkTimestamp, parseSnsBody } from './envelope';
import { RejectReason, UnavailableReason, type WebhookMetrics } from './metrics';
import type { ResolvedWebhookOptions } from './options';
import type { EventRouter } from './router';
import { SnsVerificationError, type SnsEnvelope, type SnsVerifier } from './sns-verify';
import { confirmSubscription, SubscriptionConfirmError } from './subscription';
import { checkSubscribeUrl } from './url-checks';

/** Dependencies of {@link snsRoute}. */
export interface SnsRouteOptions {
  options: ResolvedWebhookOptions;
  verifier: SnsVerifier;
  router: EventRouter;
  metrics: WebhookMetrics;
}

/** Body of every 2xx answer: what happened, in one word. */
export type SnsRouteStatus = 'recorded' | 'duplicate' | 'ignored' | 'confirmed' | 'unsubscribed';

const HEADER_TYPE = 'x-amz-sns-message-type';
const HEADER_TOPIC = 'x-amz-sns-topic-arn';

const headersSchema = {
  type: 'object',
  required: [HEADER_TYPE],
  properties: { [HEADER_TYPE]: { type: 'string', maxLength: 64 }, [HEADER_TOPIC]: { type: 'string', maxLength: 512 } },
} as const;

/** Error bodies: short and fixed. */
const ERROR_TEXT: Record<RejectReason | UnavailableReason, string> = {
  'payload-too-large': 'payload too large',
  'unsupported-media-type': 'unsupported media type',
  malformed: 'malformed SNS message',
  'message-type-mismatch': 'message type mismatch',
  'unknown-message-type': 'unknown message type',
  'unsupported-signature-version': 'unsupported signature version',
  'cert-url-not-allowed': 'signing certificate URL not allowed',
  'cert-not-trusted': 'signing certificate not trusted',
  'invalid-signature': 'invalid signature',
  'topic-not-allowed': 'topic not allowed',
  'stale-timestamp': 'timestamp outside the replay window',
  'subscribe-url-not-allowed': 'SubscribeURL not allowed',
  'invalid-ses-event': 'invalid SES event',
  'raw-delivery-disabled': 'unsigned message',
  'cert-fetch': 'signing certificate unavailable',
  'cert-fetch-timeout': 'signing certificate unavailable',
  'cert-fetch-busy': 'signing certificate unavailable',
  temporal: 'temporarily unavailable',
  'confirm-failed': 'subscription confirmation failed',
  internal: 'internal error',
};

/** The SNS route plugin. Register it with a prefix-free path in `options.path`. */
export const snsRoute: FastifyPluginCallback<SnsRouteOptions> = (app, { options, verifier, router, metrics }, done) => {
  // Own parsers, scoped to this plugin: the body stays a string (we verify the exact bytes SNS
  // signed the fields of, and parse JSON ourselves), with our body limit (bigger → 413).
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string', bodyLimit: options.bodyLimit }, (_req, body, done) => {
    done(null, body);
  });

  const reject = (reply: FastifyReply, log: FastifyBaseLogger, status: 400 | 403, reason: RejectReason, detail?: string): FastifyReply => {
    metrics.rejected(reason);
    log.warn({ reason, detail }, 'SNS request rejected');
    return reply.code(status).send({ error: ERROR_TEXT[reason] });
  };
  const unavailable = (reply: FastifyReply, log: FastifyBaseLogger, status: 502 | 503, reason: UnavailableReason, err?: unknown): FastifyReply => {
    metrics.unavailable(reason);
    log.warn({ reason, err }, 'SNS request not handled now; SNS will retry');
    return reply.code(status).send({ error: ERROR_TEXT[reason] });
  };
  const ok = (reply: FastifyReply, status: SnsRouteStatus): FastifyReply => reply.code(200).send({ status });

  /** Parses and records the SES event carried by a notification (or a raw-delivery body). */
  const recordSesMessage = async (text: string, snsMessageId: string | undefined, log: FastifyBaseLogger, reply: FastifyReply): Promise<FastifyReply> => {
    let parsed;
    try {
      parsed = parseSesEventText(text, snsMessageId !== undefined ? { snsMessageId } : {});
    } catch (err) {
      if (err instanceof SesEventParseError) return reject(reply, log, 400, RejectReason.InvalidSesEvent, err.path);
      throw err;
    }
    if (parsed.kind === 'not-ses') {
      metrics.inc('ignored');
      log.info({ reason: parsed.reason }, 'SNS notification is not an SES event; ignored');
      return ok(reply, 'ignored');
    }
    const { event } = parsed;
    const elog = log.child({ sesMessageId: event.sesMessageId, lifecycleId: event.lifecycleId, eventType: event.type, eventId: event.id });
    try {
      const result = await router.record(event);
      if (result.outcome === 'refused' || result.outcome === 'ignored') {
        // Permanent: 200 so SNS stops retrying; counted and logged, never silent.
        metrics.inc(result.outcome);
        elog.warn({ outcome: result.outcome, reason: result.reason }, 'SES event not recorded (permanent condition)');
        return ok(reply, 'ignored');
      }
      metrics.inc(result.outcome);
      if (result.outcome !== 'duplicate') metrics.event(event.type);
      elog.info({ outcome: result.outcome, workflowId: result.workflowId }, 'SES event routed');
      return ok(reply, result.outcome === 'duplicate' ? 'duplicate' : 'recorded');
    } catch (err) {
      return unavailable(reply, elog, 503, UnavailableReason.Temporal, err);
    }
  };

  const handleEnvelope = async (env: SnsEnvelope, headerType: string, headerTopic: string | undefined, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const log = request.log.child({ snsMessageId: env.MessageId, topicArn: env.TopicArn, snsType: env.Type });
    if (headerType !== env.Type || (headerTopic !== undefined && headerTopic !== env.TopicArn)) {
      return reject(reply, log, 400, RejectReason.MessageTypeMismatch);
    }
    // Allowlist before verification: a foreign topic never costs us a certificate fetch.
    if (!options.allowAnyTopic && !options.allowedTopicArns.has(env.TopicArn)) {
      return reject(reply, log, 403, RejectReason.TopicNotAllowed);
    }
    const stale = checkTimestamp(env.Timestamp, options.now(), options.replayWindowMs);
    if (stale !== undefined) return reject(reply, log, 400, RejectReason.StaleTimestamp, stale);
    try {
      await verifier.verify(env);
    } catch (err) {
      if (err instanceof SnsVerificationError) {
        if (err.permanent) return reject(reply, log, 403, err.reason as RejectReason, err.message);
        return unavailable(reply, log, 503, err.reason as UnavailableReason, err.message);
      }
      throw err;
    }

    switch (env.Type) {
      case 'Notification':
        return recordSesMessage(env.Message, env.MessageId, log, reply);
      case 'SubscriptionConfirmation': {
        const check = checkSubscribeUrl(env.SubscribeURL, options.subscribeHostPattern, env.TopicArn);
        if (!check.ok) return reject(reply, log, 403, RejectReason.SubscribeUrlNotAllowed, check.reason);
        try {
          await confirmSubscription(check.url, {
            timeoutMs: options.confirmTimeoutMs,
            ...(options.extraCaPem !== undefined ? { extraCaPem: options.extraCaPem } : {}),
          });
        } catch (err) {
          const status = err instanceof SubscriptionConfirmError && err.kind === 'rejected' ? 502 : 503;
          return unavailable(reply, log, status, UnavailableReason.ConfirmFailed, err instanceof Error ? err.message : err);
        }
        metrics.inc('subscriptionsConfirmed');
        log.info('SNS subscription confirmed');
        return ok(reply, 'confirmed');
      }
      case 'UnsubscribeConfirmation':
        // Someone unsubscribed this endpoint. Never re-subscribe automatically: that is a decision
        // for an operator (the SubscribeURL in this message would do it).
        metrics.inc('unsubscribeNotices');
        log.warn('SNS UnsubscribeConfirmation received: this endpoint no longer receives that topic');
        return ok(reply, 'unsubscribed');
    }
  };

  app.addHook('onRequest', (_request, _reply, done) => {
    metrics.inc('received');
    done();
  });

  app.post(options.path, { bodyLimit: options.bodyLimit, schema: { headers: headersSchema } }, async (request, reply) => {
    const headerType = request.headers[HEADER_TYPE] as string;
    const headerTopic = request.headers[HEADER_TOPIC] as string | undefined;
    if (typeof request.body !== 'string') return reject(reply, request.log, 400, RejectReason.Malformed, 'no body');
    const parsed = parseSnsBody(request.body);
    switch (parsed.kind) {
      case 'malformed':
        return reject(reply, request.log, 400, RejectReason.Malformed, parsed.detail);
      case 'unknown-type':
        return reject(reply, request.log, 400, RejectReason.UnknownMessageType, parsed.type);
      case 'raw':
        // Raw message delivery has no envelope and no signature: accepted only when configured.
        if (!options.rawMessageDelivery) return reject(reply, request.log, 400, RejectReason.RawDeliveryDisabled);
        if (headerType !== 'Notification') return reject(reply, request.log, 400, RejectReason.MessageTypeMismatch);
        return recordSesMessage(parsed.text, undefined, request.log.child({ topicArn: headerTopic, raw: true }), reply);
      case 'envelope':
        return handleEnvelope(parsed.envelope, headerType, headerTopic, request, reply);
    }
  });
  done();
};

/** Maps Fastify's own request errors (body too large, bad media type, schema) to short bodies. */
export function errorReply(err: { statusCode?: number; code?: string }, metrics: WebhookMetrics): { status: number; body: { error: string } } {
  const status = err.statusCode ?? 500;
  if (status === 413) {
    metrics.rejected(RejectReason.PayloadTooLarge);
    return { status, body: { error: ERROR_TEXT['payload-too-large'] } };
  }
  if (status === 415) {
    metrics.rejected(RejectReason.UnsupportedMediaType);
    return { status, body: { error: ERROR_TEXT['unsupported-media-type'] } };
  }
  if (status >= 400 && status < 500) {
    metrics.rejected(RejectReason.Malformed);
    return { status, body: { error: 'bad request' } };
  }
  metrics.unavailable(UnavailableReason.Internal);
  return { status: 500, body: { error: ERROR_TEXT.internal } };
}
