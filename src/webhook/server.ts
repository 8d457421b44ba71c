/**
 * Starts the webhook on a port (and its metrics on another): the only module that listens.
 */
import { buildWebhookApp, metricsRegistriesOf, webhookMetricsOf } from './app';
import { startMetricsListener, type MetricsListener } from './metrics-listener';
import { WebhookMetrics } from './metrics';
import type { WebhookOptions } from './options';

/** A running webhook server. */
export interface WebhookServer {
  /** Base URL, e.g. `http://127.0.0.1:3000` (the SNS route is `${url}${path}`). */
  url: string;
  /** Base URL of the metrics listener (`${metricsUrl}/metrics`), when one runs. */
  metricsUrl?: string;
  metrics: WebhookMetrics;
  /** Stops accepting connections and waits for in-flight requests. Does not close the Temporal client. */
  close(): Promise<void>;
}

/** Where `GET /metrics` listens: default loopback on a free port; `false` for none. */
export type MetricsListenOptions = { host?: string; port?: number } | false;

/**
 * Builds the app and listens on `host:port` (`port: 0` picks a free port); serves `GET /metrics`
 * on a separate listener (`metricsListen`, default `127.0.0.1` on a free port), never on the SNS
 * listener unless `metricsBearerToken` is set.
 *
 * @throws Error for invalid options, or when an address cannot be bound.
 */
export async function startWebhookServer(opts: WebhookOptions & { host?: string; port?: number; metricsListen?: MetricsListenOptions }): Promise<WebhookServer> {
  const { host = '127.0.0.1', port = 0, metricsListen = {}, ...rest } = opts;
  const app = await buildWebhookApp(rest);
  const registries = metricsRegistriesOf(app);
  let metricsListener: MetricsListener | undefined;
  try {
    if (registries && metricsListen !== false) {
      metricsListener = await startMetricsListener({ registries, bearerToken: rest.metricsBearerToken, host: metricsListen.host ?? '127.0.0.1', port: metricsListen.port ?? 0 });
    }
    await app.listen({ host, port });
  } catch (err) {
    await metricsListener?.close();
    await app.close();
    throw err;
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${urlHost}:${boundPort}`,
    ...(metricsListener ? { metricsUrl: metricsListener.url } : {}),
    metrics: webhookMetricsOf(app) ?? new WebhookMetrics(),
    close: async () => {
      await Promise.all([app.close(), metricsListener?.close()]);
    },
  };
}
