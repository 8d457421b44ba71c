/**
 * Builds the webhook Fastify app from plugins, without listening (tests use `app.inject()`;
 * `server.ts` is the only file that listens).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { healthRoutes, TemporalReadiness } from './health';
import { WebhookMetrics } from './metrics';
import { resolveWebhookOptions, type WebhookOptions } from './options';
import { EventRouter } from './router';
import { errorReply, snsRoute } from './sns-route';
import { SnsVerifier } from './sns-verify';
import { metricsRoute } from './metrics-listener';

function isLoggerInstance(value: unknown): value is FastifyBaseLogger {
  return typeof value === 'object' && value !== null && typeof (value as { child?: unknown }).child === 'function' && typeof (value as { info?: unknown }).info === 'function';
}

/** Metrics of apps built here, for callers that let the app create its own counters. */
const metricsByApp = new WeakMap<FastifyInstance, WebhookMetrics>();
/** Registries an app's metrics listener serves (`undefined` when metrics serving is off). */
const registriesByApp = new WeakMap<FastifyInstance, Registry[]>();

/** The counters of an app built by {@link buildWebhookApp}. */
export function webhookMetricsOf(app: FastifyInstance): WebhookMetrics | undefined {
  return metricsByApp.get(app);
}

/** The registries `GET /metrics` serves for an app built by {@link buildWebhookApp}, if any. */
export function metricsRegistriesOf(app: FastifyInstance): Registry[] | undefined {
  return registriesByApp.get(app);
}

/**
 * Builds the SNS webhook app: `POST <path>` (default `/sns`), `GET /healthz`, `GET /readyz`, and
 * `GET /metrics` only when `metricsBearerToken` is set (then it requires that token). Metrics are
 * otherwise served by a separate listener (`startWebhookServer`, loopback by default).
 *
 * @throws Error for invalid options (see `resolveWebhookOptions`), before anything is started.
 */
export async function buildWebhookApp(opts: WebhookOptions): Promise<FastifyInstance> {
  const options = resolveWebhookOptions(opts);
  // Each app has its own registry (several apps may live in one process, e.g. tests); /metrics
  // serves it merged with the registries the caller adds (worker metrics, visibility gauges).
  const registry = opts.metrics instanceof WebhookMetrics ? undefined : (opts.metrics?.registry ?? new Registry());
  const metrics = opts.metrics instanceof WebhookMetrics ? opts.metrics : new WebhookMetrics({ registry: registry! });

  const logger = opts.logger ?? { level: 'info' };
  const app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger }),
    bodyLimit: options.bodyLimit,
    // Slow-loris protection: idle sockets and slow bodies are cut off (SNS itself gives up at 15 s).
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    // Idle keep-alive connections close 10 s after their last response (Node's default is 5 s,
    // Fastify's 72 s), and one connection serves a bounded number of requests.
    keepAliveTimeout: options.keepAliveTimeoutMs,
    maxRequestsPerSocket: options.maxRequestsPerSocket,
    // Node enforces requestTimeout/headersTimeout only when it checks (every 30 s by default) and
    // keeps a 60 s headersTimeout: give both to the server at creation, checked every second, so
    // a body or headers dripped byte by byte is cut off close to requestTimeout.
    http: {
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: options.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(options.requestTimeoutMs / 4))),
    },
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  // Connection cap: connections beyond it are closed by Node on arrival.
  app.server.maxConnections = options.maxConnections;
  metricsByApp.set(app, metrics);

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  app.setErrorHandler((err: { statusCode?: number; code?: string }, request, reply) => {
    const { status, body } = errorReply(err, metrics);
    if (status >= 500) request.log.error({ err }, 'unhandled error in webhook');
    else request.log.warn({ code: err.code, status }, 'request refused by the HTTP layer');
    return reply.code(status).send(body);
  });

  const verifier = new SnsVerifier({
    certHostPattern: options.certHostPattern,
    certPathPattern: options.certPathPattern,
    timeoutMs: options.certFetchTimeoutMs,
    maxConcurrentFetchesPerHost: options.maxConcurrentCertFetchesPerHost,
    now: options.now,
    ...(options.trustedCaPems !== undefined ? { trustedCaPems: options.trustedCaPems } : {}),
    ...(options.certIntermediatePems !== undefined ? { intermediatePems: options.certIntermediatePems } : {}),
    ...(options.certSubjectNames !== undefined ? { certSubjectNames: options.certSubjectNames } : {}),
    ...(options.extraCaPem !== undefined ? { fetchCaPem: options.extraCaPem } : {}),
  });
  const router = new EventRouter({
    client: options.client,
    rpcTimeoutMs: options.temporalTimeoutMs,
    dedupeTtlMs: options.replayWindowMs,
    ...(options.taskQueue !== undefined ? { taskQueue: options.taskQueue } : {}),
    ...(options.orphanIdleTimeout !== undefined ? { orphanIdleTimeout: options.orphanIdleTimeout } : {}),
  });

  if (options.allowAnyTopic) app.log.warn('webhook accepts ANY SNS topic (allowAnyTopic): development only');
  if (options.extraCaPem !== undefined) app.log.info('webhook trusts an extra CA for SNS certificates and SubscribeURL fetches (sandbox mode)');
  if (options.rawMessageDelivery) app.log.warn('webhook accepts unsigned raw SES JSON (rawMessageDelivery): protect the endpoint by other means');

  await app.register(healthRoutes, { readiness: new TemporalReadiness(options.client, { timeoutMs: options.readinessTimeoutMs }) });
  await app.register(snsRoute, { options, verifier, router, metrics });
  if (opts.metricsRegistries !== false) {
    const registries = [...(registry ? [registry] : []), ...(opts.metricsRegistries ?? [])];
    registriesByApp.set(app, registries);
    if (options.metricsBearerToken !== undefined) await app.register(metricsRoute, { registries, bearerToken: options.metricsBearerToken });
  }
  return app;
}
