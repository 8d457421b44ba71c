/**
 * `GET /metrics` (Prometheus text format), kept off the public SNS listener: served by its own
 * listener (loopback by default, see `startWebhookServer`), and guarded by a bearer token when one
 * is configured.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify';
import { Registry } from 'prom-client';

/** Options of {@link metricsRoute}. */
export interface MetricsRouteOptions {
  registries: Registry[];
  /** When set, requests must carry `Authorization: Bearer <token>` (compared in constant time). */
  bearerToken?: string | undefined;
}

function authorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Registers `GET /metrics` serving the merged registries. */
export const metricsRoute: FastifyPluginCallback<MetricsRouteOptions> = (app, { registries, bearerToken }, done) => {
  app.get('/metrics', async (request, reply) => {
    if (bearerToken !== undefined && !authorized(request.headers.authorization, bearerToken)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });
    }
    const merged = Registry.merge(registries);
    return reply.type(merged.contentType).send(await merged.metrics());
  });
  done();
};

/** A running metrics listener. */
export interface MetricsListener {
  /** e.g. `http://127.0.0.1:9465` (the route is `${url}/metrics`). */
  url: string;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (`port: 0` = a free port) with `GET /metrics` only.
 *
 * @throws Error when the address cannot be bound.
 */
export async function startMetricsListener(opts: MetricsRouteOptions & { host: string; port: number }): Promise<MetricsListener> {
  const app: FastifyInstance = Fastify({ logger: false, connectionTimeout: 10_000, keepAliveTimeout: 10_000, requestTimeout: 10_000 });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  await app.register(metricsRoute, { registries: opts.registries, bearerToken: opts.bearerToken });
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host;
  return { url: `http://${urlHost}:${port}`, close: () => app.close() };
}
