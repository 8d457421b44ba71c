/**
 * Options of the SNS webhook, and their validation. Parsed once at start-up; a bad value throws
 * with a message naming the option.
 */
import type { Client } from '@temporalio/client';
import type { FastifyBaseLogger, FastifyLoggerOptions } from 'fastify';
import type { Registry } from 'prom-client';
import type { Duration } from '../definitions';
import type { WebhookMetrics } from './metrics';
import { DEFAULT_CERT_PATH_PATTERN, DEFAULT_SNS_HOST_PATTERN } from './url-checks';

/** Options of {@link buildWebhookApp}. */
export interface WebhookOptions {
  temporal: {
    client: Client;
    /** Task queue for orphan lifecycles started by the webhook. Default `TASK_QUEUE`. */
    taskQueue?: string;
    /** Expected namespace; when given it must equal the client's (a guard against mis-wiring). */
    namespace?: string;
  };
  /** Route path for SNS POSTs. Default `/sns`. */
  path?: string;
  /** TopicArns whose messages are accepted and whose subscriptions are confirmed. Required, non-empty. */
  allowedTopicArns: string[];
  /** Accept any topic. DEVELOPMENT ONLY: anyone can subscribe this URL to their own topic. */
  allowAnyTopic?: boolean;
  /** Allowed `host` (hostname[:port]) of SigningCertURL. Default `sns.<region>.amazonaws.com(.cn)`, no port. */
  certHostPattern?: RegExp;
  /** Allowed path of SigningCertURL (must also end in `.pem`). Default `/SimpleNotificationService-<hex>.pem`. */
  certPathPattern?: RegExp;
  /** Allowed `host` (hostname[:port]) of SubscribeURL. Default `sns.<region>.amazonaws.com(.cn)`, no port. */
  subscribeHostPattern?: RegExp;
  /**
   * Extra CA (PEM) trusted for certificate and SubscribeURL fetches. SANDBOX ONLY: it is added to
   * `https.globalAgent`'s trust store (public roots kept), because sns-validator offers no other way.
   */
  extraCaPem?: string;
  /** Upper bound for signature verification, certificate fetch included. Default 5000 ms. */
  certFetchTimeoutMs?: number;
  /** Upper bound for the SubscribeURL GET. Default 5000 ms. */
  confirmTimeoutMs?: number;
  /** Accept unsigned raw SES JSON bodies (SNS raw message delivery). Default false. */
  rawMessageDelivery?: boolean;
  /** Maximum body size; larger bodies get 413. Default 256 KiB + 16 KiB. */
  bodyLimit?: number;
  /** Oldest accepted SNS Timestamp (SNS retries keep the original one). Default 3 h; at least 2 h. */
  replayWindowMs?: number;
  /** Deadline for the Temporal calls that record one event. Default 8000 ms. */
  temporalTimeoutMs?: number;
  /** Deadline of the `/readyz` probe of Temporal. Default 2000 ms. */
  readinessTimeoutMs?: number;
  /** Pino options or a pino-compatible logger instance. Default `{ level: 'info' }`. */
  logger?: boolean | FastifyLoggerOptions | FastifyBaseLogger;
  /** `idleTimeout` for orphan lifecycles the webhook starts. */
  orphanIdleTimeout?: Duration;
  /** Counters to update (create one to read them); or a prom-client registry to register them in. */
  metrics?: WebhookMetrics | { registry: Registry };
  /**
   * Extra registries served at `GET /metrics` with the webhook's own (worker metrics, visibility
   * gauges). `false` disables the route. Default: the webhook's own metrics only.
   */
  metricsRegistries?: Registry[] | false;
  /** Socket idle / whole-request timeouts, so slow bodies are cut off. Default 10 000 ms each. */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** {@link WebhookOptions} with defaults applied. */
export interface ResolvedWebhookOptions {
  client: Client;
  taskQueue: string | undefined;
  path: string;
  allowedTopicArns: ReadonlySet<string>;
  allowAnyTopic: boolean;
  certHostPattern: RegExp;
  certPathPattern: RegExp;
  subscribeHostPattern: RegExp;
  extraCaPem: string | undefined;
  certFetchTimeoutMs: number;
  confirmTimeoutMs: number;
  rawMessageDelivery: boolean;
  bodyLimit: number;
  replayWindowMs: number;
  temporalTimeoutMs: number;
  readinessTimeoutMs: number;
  orphanIdleTimeout: Duration | undefined;
}

/** Default maximum body: SNS's 256 KiB message plus room for the envelope. */
export const DEFAULT_BODY_LIMIT = 256 * 1024 + 16 * 1024;
/** Default replay window: SNS retries can hold a message for about an hour. */
export const DEFAULT_REPLAY_WINDOW_MS = 3 * 3_600_000;
/** Smallest replay window accepted: shorter would drop legitimate SNS retries. */
export const MIN_REPLAY_WINDOW_MS = 2 * 3_600_000;

const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$/;

function positive(name: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`webhook option ${name} must be a positive number`);
  return value;
}

/**
 * Applies defaults and validates.
 *
 * @throws Error naming the option: empty `allowedTopicArns` without `allowAnyTopic: true`, a
 *   malformed TopicArn, a path not starting with `/`, a replay window under 2 h, a namespace that
 *   differs from the client's, or a non-positive number.
 */
export function resolveWebhookOptions(opts: WebhookOptions): ResolvedWebhookOptions {
  const { client } = opts.temporal;
  if (opts.temporal.namespace !== undefined && opts.temporal.namespace !== client.options.namespace) {
    throw new Error(`webhook option temporal.namespace (${opts.temporal.namespace}) differs from the client's namespace (${client.options.namespace})`);
  }
  const topics = opts.allowedTopicArns ?? [];
  if (topics.length === 0 && opts.allowAnyTopic !== true) {
    throw new Error('webhook option allowedTopicArns must list at least one TopicArn (or set allowAnyTopic: true, for development only)');
  }
  for (const arn of topics) {
    if (!TOPIC_ARN.test(arn)) throw new Error(`webhook option allowedTopicArns: not an SNS TopicArn: ${arn}`);
  }
  const path = opts.path ?? '/sns';
  if (!path.startsWith('/')) throw new Error('webhook option path must start with "/"');
  const replayWindowMs = positive('replayWindowMs', opts.replayWindowMs, DEFAULT_REPLAY_WINDOW_MS);
  if (replayWindowMs < MIN_REPLAY_WINDOW_MS) {
    throw new Error('webhook option replayWindowMs must be at least 2 hours: SNS retries keep their original Timestamp for up to an hour');
  }
  if (opts.extraCaPem !== undefined && !opts.extraCaPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error('webhook option extraCaPem must be a PEM certificate');
  }
  return {
    client,
    taskQueue: opts.temporal.taskQueue,
    path,
    allowedTopicArns: new Set(topics),
    allowAnyTopic: opts.allowAnyTopic === true,
    certHostPattern: opts.certHostPattern ?? DEFAULT_SNS_HOST_PATTERN,
    certPathPattern: opts.certPathPattern ?? DEFAULT_CERT_PATH_PATTERN,
    subscribeHostPattern: opts.subscribeHostPattern ?? DEFAULT_SNS_HOST_PATTERN,
    extraCaPem: opts.extraCaPem,
    certFetchTimeoutMs: positive('certFetchTimeoutMs', opts.certFetchTimeoutMs, 5_000),
    confirmTimeoutMs: positive('confirmTimeoutMs', opts.confirmTimeoutMs, 5_000),
    rawMessageDelivery: opts.rawMessageDelivery === true,
    bodyLimit: positive('bodyLimit', opts.bodyLimit, DEFAULT_BODY_LIMIT),
    replayWindowMs,
    temporalTimeoutMs: positive('temporalTimeoutMs', opts.temporalTimeoutMs, 8_000),
    readinessTimeoutMs: positive('readinessTimeoutMs', opts.readinessTimeoutMs, 2_000),
    orphanIdleTimeout: opts.orphanIdleTimeout,
  };
}
