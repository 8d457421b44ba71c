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
   * Extra CA (PEM; several certificates may be concatenated) trusted for certificate and
   * SubscribeURL fetches (per request, public roots kept) and, unless `trustedCaPems` says
   * otherwise, the only trust anchor of signing certificates. SANDBOX ONLY.
   */
  extraCaPem?: string;
  /**
   * Trust anchors (PEM) signing certificates must chain to. Default: the sandbox CA when
   * `extraCaPem` is given, else Amazon Root CA 1-4.
   */
  trustedCaPems?: string[];
  /** Intermediate CA certificates (PEM) used to build signing-certificate chains. */
  certIntermediatePems?: string[];
  /**
   * Names a signing certificate may carry (SAN, else CN). Default: `sns.amazonaws.com` plus the
   * region-specific SNS signing names AWS uses for the certificate URL's region.
   */
  certSubjectNames?: string[];
  /** Concurrent first fetches of signing certificates per host (more → 503). Default 16. */
  maxConcurrentCertFetchesPerHost?: number;
  /** Upper bound for signature verification, certificate fetch included. Default 5000 ms. */
  certFetchTimeoutMs?: number;
  /** Upper bound for the SubscribeURL GET. Default 5000 ms. */
  confirmTimeoutMs?: number;
  /** Accept unsigned raw SES JSON bodies (SNS raw message delivery). Default false. */
  rawMessageDelivery?: boolean;
  /**
   * Add a `Server-Timing` header to SNS answers: ms of the handler and of each stage (`verify`,
   * `lookup`, `describe`, `signal`), for latency diagnosis. The same times always feed the
   * `ses_webhook_stage_seconds` histogram. Default false (timings tell a caller about internals).
   */
  serverTiming?: boolean;
  /** Maximum body size; larger bodies get 413. Default 256 KiB + 16 KiB. */
  bodyLimit?: number;
  /** Oldest accepted SNS Timestamp (SNS retries keep the original one). Default 3 h; at least 2 h. */
  replayWindowMs?: number;
  /**
   * The clock (ms since epoch) of the replay window and of signing-certificate validity. Default
   * `Date.now`. For tests that replay recorded messages (and their certificates) at their own time.
   */
  now?: () => number;
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
   * gauges), on the metrics listener (see `startWebhookServer`), never on the SNS listener unless
   * `metricsBearerToken` is set. `false` disables metrics serving. Default: the webhook's own only.
   */
  metricsRegistries?: Registry[] | false;
  /**
   * When set, `GET /metrics` requires `Authorization: Bearer <token>` wherever it is served, and
   * is also served on the SNS listener (for deployments that can expose only one port).
   */
  metricsBearerToken?: string;
  /** Socket idle / whole-request timeouts, so slow bodies are cut off. Default 10 000 ms each. */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open after a response. Default 10 000 ms. */
  keepAliveTimeoutMs?: number;
  /** Requests served on one keep-alive connection before it is closed. Default 1000. */
  maxRequestsPerSocket?: number;
  /** Open connections accepted at once; more are closed on arrival. Default 1024. */
  maxConnections?: number;
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
  trustedCaPems: string[] | undefined;
  certIntermediatePems: string[] | undefined;
  certSubjectNames: string[] | undefined;
  maxConcurrentCertFetchesPerHost: number;
  certFetchTimeoutMs: number;
  confirmTimeoutMs: number;
  rawMessageDelivery: boolean;
  serverTiming: boolean;
  bodyLimit: number;
  replayWindowMs: number;
  now: () => number;
  temporalTimeoutMs: number;
  readinessTimeoutMs: number;
  orphanIdleTimeout: Duration | undefined;
  metricsBearerToken: string | undefined;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxRequestsPerSocket: number;
  maxConnections: number;
}

/** Default idle keep-alive time after a response (the documented 10 s). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 10_000;

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
  const pem = (name: string, v: string | undefined): void => {
    if (v !== undefined && !v.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`webhook option ${name} must be a PEM certificate`);
  };
  pem('extraCaPem', opts.extraCaPem);
  for (const p of opts.trustedCaPems ?? []) pem('trustedCaPems', p);
  for (const p of opts.certIntermediatePems ?? []) pem('certIntermediatePems', p);
  if (opts.trustedCaPems !== undefined && opts.trustedCaPems.length === 0) throw new Error('webhook option trustedCaPems must not be empty');
  if (opts.metricsBearerToken !== undefined && !/^[\x21-\x7e]{16,}$/.test(opts.metricsBearerToken)) {
    throw new Error('webhook option metricsBearerToken must be at least 16 printable characters without spaces');
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
    trustedCaPems: opts.trustedCaPems ?? (opts.extraCaPem !== undefined ? [opts.extraCaPem] : undefined),
    certIntermediatePems: opts.certIntermediatePems,
    certSubjectNames: opts.certSubjectNames,
    maxConcurrentCertFetchesPerHost: positive('maxConcurrentCertFetchesPerHost', opts.maxConcurrentCertFetchesPerHost, 16),
    certFetchTimeoutMs: positive('certFetchTimeoutMs', opts.certFetchTimeoutMs, 5_000),
    confirmTimeoutMs: positive('confirmTimeoutMs', opts.confirmTimeoutMs, 5_000),
    rawMessageDelivery: opts.rawMessageDelivery === true,
    serverTiming: opts.serverTiming === true,
    bodyLimit: positive('bodyLimit', opts.bodyLimit, DEFAULT_BODY_LIMIT),
    replayWindowMs,
    now: opts.now ?? Date.now,
    temporalTimeoutMs: positive('temporalTimeoutMs', opts.temporalTimeoutMs, 8_000),
    readinessTimeoutMs: positive('readinessTimeoutMs', opts.readinessTimeoutMs, 2_000),
    orphanIdleTimeout: opts.orphanIdleTimeout,
    metricsBearerToken: opts.metricsBearerToken,
    connectionTimeoutMs: positive('connectionTimeoutMs', opts.connectionTimeoutMs, 10_000),
    requestTimeoutMs: positive('requestTimeoutMs', opts.requestTimeoutMs, 10_000),
    keepAliveTimeoutMs: positive('keepAliveTimeoutMs', opts.keepAliveTimeoutMs, DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    maxRequestsPerSocket: positive('maxRequestsPerSocket', opts.maxRequestsPerSocket, 1000),
    maxConnections: positive('maxConnections', opts.maxConnections, 1024),
  };
}
