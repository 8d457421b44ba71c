/**
 * Starts the webhook on a port: the only module that listens.
 */
import { buildWebhookApp, webhookMetricsOf } from './app';
import { WebhookMetrics } from './metrics';
import type { WebhookOptions } from './options';

/** A running webhook server. */
export interface WebhookServer {
  /** Base URL, e.g. `http://127.0.0.1:3000` (the SNS route is `${url}${path}`). */
  url: string;
  metrics: WebhookMetrics;
  /** Stops accepting connections and waits for in-flight requests. Does not close the Temporal client. */
  close(): Promise<void>;
}

/**
 * Builds the app and listens on `host:port` (`port: 0` picks a free port).
 *
 * @throws Error for invalid options, or when the address cannot be bound.
 */
export async function startWebhookServer(opts: WebhookOptions & { host?: string; port?: number }): Promise<WebhookServer> {
  const { host = '127.0.0.1', port = 0, ...rest } = opts;
  const app = await buildWebhookApp(rest);
  await app.listen({ host, port });
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${urlHost}:${boundPort}`,
    metrics: webhookMetricsOf(app) ?? new WebhookMetrics(),
    close: () => app.close(),
  };
}
