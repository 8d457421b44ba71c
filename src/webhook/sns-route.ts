/**
 * The SNS route: a self-contained Fastify plugin with its own body parsers.
 *
 * verify ▶ parse ▶ route. Status codes follow ARCHITECTURE.md: 2xx once the event is recorded in
 * Temporal (or is a known duplicate, or needs nothing), 5xx when it could not be recorded now (SNS
 * retries), 4xx only for input that can never succeed (SNS drops it). Error bodies are short
 * and never echo input.
 */
import type { FastifyBaseLogger, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { parseSnsBody } from './envelope';
import { ingestEnvelope, ingestSesText, type IngestDeps, type IngestResult, type IngestStatus } from './ingest';
import { INGEST_STAGES, RejectReason, UnavailableReason, type StageTimings, type WebhookMetrics } from './metrics';
import type { ResolvedWebhookOptions } from './options';
import type { EventRouter } from './router';
import type { SnsEnvelope, SnsVerifier } from './sns-verify';

/** Dependencies of {@link snsRoute}. */
export interface SnsRouteOptions {
  options: ResolvedWebhookOptions;
  verifier: SnsVerifier;
  router: EventRouter;
  metrics: WebhookMetrics;
}

/** Body of every 2xx answer: what happened, in one word. */
export type SnsRouteStatus = IngestStatus;

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

  const deps: IngestDeps = {
    verifier,
    router,
    sink: metrics,
    allowAnyTopic: options.allowAnyTopic,
    allowedTopicArns: options.allowedTopicArns,
    replayWindowMs: options.replayWindowMs,
    now: options.now,
    subscribeHostPattern: options.subscribeHostPattern,
    confirmTimeoutMs: options.confirmTimeoutMs,
    extraCaPem: options.extraCaPem,
  };

  /** The HTTP answer for an ingest result. */
  const answer = (reply: FastifyReply, log: FastifyBaseLogger, r: IngestResult): FastifyReply => {
    switch (r.kind) {
      case 'done':
        return ok(reply, r.status);
      case 'rejected':
        return reject(reply, log, r.httpStatus, r.reason, r.detail);
      case 'unavailable':
        return unavailable(reply, log, r.httpStatus, r.reason, r.detail);
    }
  };

  /** Handler start and stage times of requests in the handler, until their answer is sent. */
  const started = new WeakMap<FastifyRequest, { t0: number; timings: StageTimings }>();
  /** Records where the handler's time went (histogram; `Server-Timing` header when enabled). */
  app.addHook('onSend', (request, reply, payload, done) => {
    const s = started.get(request);
    if (s === undefined) return done(null, payload);
    started.delete(request);
    const { t0, timings } = s;
    const handler = performance.now() - t0;
    metrics.stages({ ...timings, handler });
    if (options.serverTiming) {
      const parts = [`handler;dur=${handler.toFixed(2)}`];
      for (const stage of INGEST_STAGES) {
        const ms = timings[stage];
        if (ms !== undefined) parts.push(`${stage};dur=${ms.toFixed(2)}`);
      }
      void reply.header('server-timing', parts.join(', '));
    }
    done(null, payload);
  });

  const handleEnvelope = async (env: SnsEnvelope, headerType: string, headerTopic: string | undefined, request: FastifyRequest, reply: FastifyReply, timings: StageTimings): Promise<FastifyReply> => {
    const log = request.log.child({ snsMessageId: env.MessageId, topicArn: env.TopicArn, snsType: env.Type });
    if (headerType !== env.Type || (headerTopic !== undefined && headerTopic !== env.TopicArn)) {
      return reject(reply, log, 400, RejectReason.MessageTypeMismatch);
    }
    return answer(reply, log, await ingestEnvelope(deps, env, log, timings));
  };

  app.addHook('onRequest', (_request, _reply, done) => {
    metrics.inc('received');
    done();
  });

  app.post(options.path, { bodyLimit: options.bodyLimit, schema: { headers: headersSchema } }, async (request, reply) => {
    const timings: StageTimings = {};
    started.set(request, { t0: performance.now(), timings });
    return handle(request, reply, timings);
  });

  const handle = async (request: FastifyRequest, reply: FastifyReply, timings: StageTimings): Promise<FastifyReply> => {
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
        {
          const log = request.log.child({ topicArn: headerTopic, raw: true });
          return answer(reply, log, await ingestSesText(deps, parsed.text, undefined, log, timings));
        }
      case 'envelope':
        return handleEnvelope(parsed.envelope, headerType, headerTopic, request, reply, timings);
    }
  };
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
