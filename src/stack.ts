/**
 * The whole product in one process: Temporal (embedded dev server or a cluster), the local SES
 * sandbox (sandbox mode), the SNS webhook, and the worker. Used by `ses-lifecycle dev`/`demo`,
 * the benchmarks, and the end-to-end tests.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker, type WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createLogger } from './logger';
import { LifecycleClient } from './client';
import { ConfigError, loadConfig, type Config } from './config';
import { durationMs, SEARCH_ATTRIBUTES } from './definitions';
import { startSesSandbox, type SandboxOptions, type SesSandbox } from './sandbox';
import { freePorts, noTemporalCliError, resolveTemporalCli, startDevServer, startDevServerViaSdkDownload, type DevServer } from './temporal-cli';
import { lockDataDir } from './data-dir-lock';
import { signerTrustOptions, startWebhookServer, type SignerTrust, type WebhookServer } from './webhook';
import { createInsightsWorker, createLifecycleWorker, createSesClient } from './worker';
import { ensureSearchAttributes } from './search-attributes';
import { createVisibilityMetrics, workerMetrics } from './metrics';

/** Options of {@link startStack}. */
export interface StackOptions {
  config: Readonly<Config>;
  /** Use this Temporal server instead of the config's (tests share one dev server). */
  temporal?: { address: string; namespace: string };
  /** GetMessageInsights calls per second of the insights worker (default 0.5, below SES's quota). */
  insightsRatePerSecond?: number;
  /** Sandbox overrides (chaos, SNS retry spacing, send rate). */
  sandbox?: Omit<SandboxOptions, 'port' | 'httpsPort'> & { port?: number; httpsPort?: number };
  /** Task queue override (tests use a unique one). */
  taskQueue?: string;
  /** Webhook port override (0 = free port). */
  webhookPort?: number;
  /** Port of the webhook's /metrics listener (0 = free port). Default: the config's (`WEBHOOK_METRICS_PORT`). */
  webhookMetricsPort?: number;
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Logger; default pino at the config's level. */
  logger?: Logger;
  /** Run without the worker (e.g. a test that kills and restarts workers itself). */
  withoutWorker?: boolean;
  /**
   * Keep state in `DATA_DIR` (the embedded dev server's database, the sandbox's suppression
   * list) under a lock, so a second stack on the same folder refuses to start. Default: true
   * unless `temporal` is given (tests that share one server keep everything in memory).
   */
  persist?: boolean;
  /**
   * An SNS signer of your own the webhook trusts beside the usual one (the sandbox, or SNS in aws
   * mode): its CA and certificate host pattern. Default: `SNS_SIGNER_CA_PATH` and
   * `SNS_SIGNER_CERT_HOST_PATTERN` from the config, when set.
   */
  signerTrust?: SignerTrust;
}

/**
 * The integrator signer named by `SNS_SIGNER_CA_PATH` and `SNS_SIGNER_CERT_HOST_PATTERN`, if any.
 *
 * @throws {ConfigError} naming `SNS_SIGNER_CA_PATH` when the file cannot be read or holds no certificate.
 */
export function signerTrustFromConfig(config: Readonly<Config>): SignerTrust | undefined {
  const s = config.webhook.signer;
  if (s === undefined) return undefined;
  let caPem: string;
  try {
    caPem = readFileSync(s.caPath, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid SNS_SIGNER_CA_PATH: cannot read ${s.caPath} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'SNS_SIGNER_CA_PATH');
  }
  if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`invalid SNS_SIGNER_CA_PATH: ${s.caPath} holds no PEM certificate`, 'SNS_SIGNER_CA_PATH');
  return { caPem, certHostPattern: new RegExp(s.certHostPattern) };
}

/** A running stack. */
export interface RunningStack {
  temporalAddress: string;
  namespace: string;
  /** Temporal Web UI, when the embedded dev server runs it. */
  uiUrl?: string;
  /** The embedded dev server's Prometheus metrics, when it runs. */
  temporalMetricsUrl?: string;
  webhookUrl: string;
  sandbox?: SesSandbox;
  topicArn?: string;
  taskQueue: string;
  client: Client;
  lc: LifecycleClient;
  webhook: WebhookServer;
  worker?: Worker;
  devServer?: DevServer;
  logger: Logger;
  /** Stops everything this stack started, in reverse order. Safe to call twice. */
  stop(): Promise<void>;
}

let runtimeInstalled = false;
/**
 * Routes the Temporal SDK's logs into pino, so worker, activity and workflow lines are structured
 * like the webhook's (activity and workflow lines carry `workflowId`, which is the lifecycle id,
 * plus our `lifecycleId`/`sesMessageId` fields). The SDK's own chatter (worker state changes) is
 * kept at WARN unless the level is debug/trace. Must run before the first worker is created;
 * later calls no-op.
 */
export function installTemporalLogging(level: Config['logLevel'], logger?: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const verbose = level === 'trace' || level === 'debug';
  try {
    Runtime.install({
      logger: new DefaultLogger(level === 'trace' ? 'TRACE' : level === 'debug' ? 'DEBUG' : 'INFO', (entry) => {
        // The activity task token can complete an activity: never log it.
        const { taskToken: _taskToken, ...meta } = (entry.meta ?? {}) as Record<string, unknown>;
        const fromUserCode = meta.sdkComponent === 'activity' || meta.sdkComponent === 'workflow';
        if (!verbose && !fromUserCode && (entry.level === 'INFO' || entry.level === 'DEBUG' || entry.level === 'TRACE')) return;
        if (!logger) {
          console.error(`${entry.level} ${entry.message}`);
          return;
        }
        const method = entry.level === 'TRACE' ? 'trace' : entry.level === 'DEBUG' ? 'debug' : entry.level === 'INFO' ? 'info' : entry.level === 'WARN' ? 'warn' : 'error';
        logger[method]({ component: 'worker', ...meta }, entry.message);
      }),
    });
  } catch {
    // A runtime already exists (e.g. a test harness installed one): keep it.
  }
}

/** Throws a clear error when a fixed port is taken (0 means "any free port" and always passes). */
export async function assertPortFree(port: number, host: string, variable: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`port ${port} (${variable}) is not available on ${host}: ${err.code ?? err.message}. Set ${variable} to a free port.`)),
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

/**
 * Connection options for a configured Temporal cluster / Temporal Cloud (TLS, mTLS files, API key).
 *
 * @throws when an mTLS file cannot be read (naming the variable).
 */
export function temporalConnectionOptions(config: Readonly<Config>, address: string): { address: string; tls?: boolean | { clientCertPair: { crt: Buffer; key: Buffer } }; apiKey?: string } {
  const t = config.temporal.tls;
  let tls: boolean | { clientCertPair: { crt: Buffer; key: Buffer } } | undefined;
  if (typeof t === 'object') {
    const read = (file: string, variable: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new Error(`cannot read ${variable} (${file}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
    };
    tls = { clientCertPair: { crt: read(t.clientCertPairPath.crt, 'TEMPORAL_TLS_CERT_PATH'), key: read(t.clientCertPairPath.key, 'TEMPORAL_TLS_KEY_PATH') } };
  } else {
    tls = t;
  }
  if (config.temporal.apiKey !== undefined) return { address, apiKey: config.temporal.apiKey, tls: tls ?? true };
  return { address, ...(tls !== undefined ? { tls } : {}) };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Starts the stack described by the config.
 *
 * @throws when a port is taken (naming the variable), Temporal cannot be reached, or the SNS
 *   subscription handshake does not complete; anything already started is stopped first.
 */
export async function startStack(opts: StackOptions): Promise<RunningStack> {
  const { config } = opts;
  const logger = opts.logger ?? createLogger(config);
  installTemporalLogging(config.logLevel, logger);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) {
      await stop().catch((err: unknown) => logger.warn({ err }, 'error while stopping'));
    }
  };
  try {
    // 0. One stack per DATA_DIR (before anything binds a port or opens a file there).
    const persist = opts.persist ?? opts.temporal === undefined;
    if (persist) {
      const lock = lockDataDir(config.dataDir);
      stops.push(() => Promise.resolve(lock.release()));
    }

    // 1. Temporal
    let address = opts.temporal?.address ?? config.temporal.address;
    const namespace = opts.temporal?.namespace ?? config.temporal.namespace;
    let devServer: DevServer | undefined;
    if (address === undefined) {
      const ports = config.temporal.devServer;
      for (const [value, name] of [[ports.port, 'TEMPORAL_PORT'], [ports.uiPort, 'TEMPORAL_UI_PORT'], [ports.httpPort, 'TEMPORAL_HTTP_PORT'], [ports.metricsPort, 'TEMPORAL_METRICS_PORT']] as const) {
        if (value !== 0) await assertPortFree(value, '127.0.0.1', name);
      }
      const cli = await resolveTemporalCli({ log: (m) => logger.info(m) });
      mkdirSync(config.dataDir, { recursive: true });
      const serverOpts = {
        dbFilename: path.resolve(config.dataDir, 'temporal.sqlite'),
        port: config.temporal.devServer.port,
        uiPort: config.temporal.devServer.uiPort,
        httpPort: config.temporal.devServer.httpPort,
        metricsPort: config.temporal.devServer.metricsPort,
        ui: true,
        namespace,
        searchAttributes: SEARCH_ATTRIBUTES,
      };
      // Last resort on machines with internet: the SDK downloads the CLI itself.
      devServer =
        cli.source === 'sdk-download'
          ? await startDevServerViaSdkDownload(serverOpts).catch((err: unknown) => {
              throw noTemporalCliError(cli, err);
            })
          : await startDevServer({ cliPath: cli.path, ...serverOpts });
      const ds = devServer;
      stops.push(() => ds.stop());
      address = devServer.address;
    }
    const connOpts = devServer || opts.temporal ? { address } : temporalConnectionOptions(config, address);
    const connection = await Connection.connect(connOpts);
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace });
    if (!devServer && opts.temporal === undefined) await ensureSearchAttributes(client, namespace, logger);
    const taskQueue = opts.taskQueue ?? config.temporal.taskQueue;

    // 2. SES: sandbox or real AWS
    let sandbox: SesSandbox | undefined;
    let topicArn: string | undefined;
    const topicName = `${config.aws.configurationSetName}-events`;
    if (config.mode === 'sandbox') {
      const port = opts.sandbox?.port ?? config.sandbox.port;
      const httpsPort = opts.sandbox?.httpsPort ?? config.sandbox.httpsPort;
      await assertPortFree(port, '127.0.0.1', 'SANDBOX_PORT');
      await assertPortFree(httpsPort, '127.0.0.1', 'SANDBOX_HTTPS_PORT');
      sandbox = await startSesSandbox({
        region: config.aws.region,
        logger: logger.child({ component: 'sandbox' }),
        ...(persist ? { stateDir: config.dataDir } : {}),
        ...opts.sandbox,
        port,
        httpsPort,
      });
      const sb = sandbox;
      stops.push(() => sb.close());
      topicArn = `arn:aws:sns:${sandbox.region}:${sandbox.accountId}:${topicName}`;
    }

    // 3. Webhook
    const webhookPort = opts.webhookPort ?? config.webhook.port;
    await assertPortFree(webhookPort, config.webhook.host, 'WEBHOOK_PORT');
    const metricsPort = opts.webhookMetricsPort ?? config.webhook.metricsPort;
    await assertPortFree(metricsPort, config.webhook.metricsHost, 'WEBHOOK_METRICS_PORT');
    const sandboxHost = sandbox ? new RegExp(`^${escapeRegExp(sandbox.certHost)}$`) : undefined;
    const signer = opts.signerTrust ?? signerTrustFromConfig(config);
    const webhook = await startWebhookServer({
      host: config.webhook.host,
      port: webhookPort,
      metricsListen: { host: config.webhook.metricsHost, port: metricsPort },
      ...(config.webhook.metricsToken !== undefined ? { metricsBearerToken: config.webhook.metricsToken } : {}),
      keepAliveTimeoutMs: durationMs(config.webhook.keepAliveTimeout),
      maxConnections: config.webhook.maxConnections,
      path: config.webhook.path,
      temporal: { client, taskQueue },
      allowedTopicArns: topicArn ? [topicArn, ...config.webhook.allowedTopicArns] : [...config.webhook.allowedTopicArns],
      rawMessageDelivery: config.webhook.rawMessageDelivery,
      serverTiming: config.webhook.serverTiming,
      replayWindowMs: durationMs(config.webhook.replayWindow),
      logger: logger.child({ component: 'webhook' }),
      metricsRegistries: [workerMetrics.registry, createVisibilityMetrics(client)],
      ...signerTrustOptions(sandbox && sandboxHost ? { sandbox: { certHost: sandboxHost, caPem: sandbox.caCertPem } } : {}, signer),
    });
    stops.push(() => webhook.close());

    // 4. The SNS subscription handshake (sandbox): the webhook confirms through SubscribeURL.
    if (sandbox && topicArn) {
      const created = await sandbox.createConfigurationSet(config.aws.configurationSetName, {
        webhookUrl: `${webhook.url}${config.webhook.path}`,
        topicName,
      });
      await sandbox.waitForSubscriptionConfirmed(created.topicArn, 15_000);
    }

    // 5. Worker
    let worker: Worker | undefined;
    if (!opts.withoutWorker) {
      const ses = createSesClient({
        region: config.aws.region,
        ...(sandbox ? { endpoint: sandbox.endpoint, credentials: sandbox.credentials } : config.aws.sesEndpoint ? { endpoint: config.aws.sesEndpoint } : {}),
      });
      const nativeConnection = await NativeConnection.connect(connOpts);
      stops.push(() => nativeConnection.close());
      const w = await createLifecycleWorker({
        connection: nativeConnection,
        namespace,
        taskQueue,
        ses,
        configurationSetName: config.aws.configurationSetName,
        paceToSendRate: config.aws.paceToSendRate,
        ...(config.callbacks.secret !== undefined ? { callbackSecret: config.callbacks.secret } : {}),
        callbacks: { allowedHosts: config.callbacks.allowedHosts, requireHttps: config.mode === 'aws' },
        ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : {}),
      });
      const running = w.run();
      // Rule 13: the rate-limited GetMessageInsights worker, beside the lifecycle worker.
      const iw = await createInsightsWorker({ connection: nativeConnection, namespace, taskQueue, ses, ...(opts.insightsRatePerSecond !== undefined ? { ratePerSecond: opts.insightsRatePerSecond } : {}) });
      const insightsRunning = iw.run();
      stops.push(async () => {
        if (iw.getState() === 'RUNNING') iw.shutdown();
        if (w.getState() === 'RUNNING') w.shutdown();
        await Promise.all([running, insightsRunning]);
        ses.destroy();
      });
      worker = w;
    }

    const lc = new LifecycleClient(client, {
      taskQueue,
      ...(config.callbacks.defaultUrl !== undefined ? { defaultCallbackUrl: config.callbacks.defaultUrl } : {}),
      callbackAllowedHosts: config.callbacks.allowedHosts,
      callbackRequireHttps: config.mode === 'aws',
    });
    return {
      temporalAddress: address,
      namespace,
      ...(devServer?.uiUrl ? { uiUrl: devServer.uiUrl } : {}),
      ...(devServer?.metricsUrl ? { temporalMetricsUrl: devServer.metricsUrl } : {}),
      webhookUrl: `${webhook.url}${config.webhook.path}`,
      ...(sandbox ? { sandbox } : {}),
      ...(topicArn ? { topicArn } : {}),
      taskQueue,
      client,
      lc,
      webhook,
      ...(worker ? { worker } : {}),
      ...(devServer ? { devServer } : {}),
      logger,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Config of a throwaway embedded stack for scripts and benchmarks: its own temporary DATA_DIR and
 * free ports for the dev server, UI, sandbox and webhook, so it never meets `npm start`'s stack.
 * `remove()` deletes the folder (call it after `stop()`).
 */
export async function throwawayStackConfig(prefix: string, env: Record<string, string> = {}): Promise<{ config: Readonly<Config>; dataDir: string; remove: () => void }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `ses-lifecycle-${prefix}-`));
  const [temporalPort, uiPort, sandboxPort, sandboxHttps, webhookPort] = await freePorts(5);
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    TEMPORAL_PORT: String(temporalPort),
    TEMPORAL_UI_PORT: String(uiPort),
    SANDBOX_PORT: String(sandboxPort),
    SANDBOX_HTTPS_PORT: String(sandboxHttps),
    WEBHOOK_PORT: String(webhookPort),
    ...env,
  });
  return { config, dataDir, remove: () => rmSync(dataDir, { recursive: true, force: true }) };
}
