/**
 * A real lifecycle stack for integration tests: the local SES sandbox over HTTP, a real SESv2
 * client, and a real Temporal worker on its own task queue against the shared dev server.
 */
import { NativeConnection, Runtime, DefaultLogger, makeTelemetryFilterString, type Worker } from '@temporalio/worker';
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import { inject } from 'vitest';
import { LifecycleClient } from '../../src/client';
import { startSesSandbox, type SandboxOptions, type SesSandbox } from '../../src/sandbox';
import { createInsightsWorker, createLifecycleWorker, createSesClient } from '../../src/worker';
import { getTestConnection, uniqueTaskQueue } from './temporal';

let runtimeInstalled = false;
/** Keeps worker logs quiet unless TEMPORAL_TEST_VERBOSE is set. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    const verbose = Boolean(process.env.TEMPORAL_TEST_VERBOSE);
    Runtime.install({
      logger: new DefaultLogger(verbose ? 'INFO' : 'WARN'),
      // Core's own retries while a test stops Temporal on purpose are expected: keep them quiet.
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: verbose ? 'WARN' : 'ERROR', other: 'ERROR' }), console: {} } },
    });
  } catch {
    // already installed by another helper in this process
  }
}

export interface LifecycleStack {
  sandbox: SesSandbox;
  ses: SESv2Client;
  lc: LifecycleClient;
  taskQueue: string;
  worker: Worker;
  stop(): Promise<void>;
}

/** Starts sandbox + worker. Each call uses its own task queue so files can share the server. */
export async function startLifecycleStack(
  opts: {
    sandbox?: SandboxOptions;
    requestTimeoutMs?: number;
    configurationSetName?: string;
    paceToSendRate?: boolean;
    /** App callbacks: the worker's secret and the loopback hosts tests may call back to. */
    callbacks?: { secret: string; allowedHosts: string[] };
  } = {},
): Promise<LifecycleStack> {
  quietRuntime();
  const { client, address, namespace } = await getTestConnection();
  const sandbox = await startSesSandbox(opts.sandbox ?? {});
  const ses = createSesClient({
    region: sandbox.region,
    endpoint: sandbox.endpoint,
    credentials: sandbox.credentials,
    requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
  });
  const connection = await NativeConnection.connect({ address });
  const taskQueue = uniqueTaskQueue('lc');
  const worker = await createLifecycleWorker({
    connection,
    namespace,
    taskQueue,
    ses,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    ...(opts.configurationSetName !== undefined ? { configurationSetName: opts.configurationSetName } : {}),
    ...(opts.paceToSendRate ? { paceToSendRate: true } : {}),
    ...(opts.callbacks ? { callbackSecret: opts.callbacks.secret, callbacks: { allowedHosts: opts.callbacks.allowedHosts } } : {}),
  });
  // Rule 13: the rate-limited GetMessageInsights worker, as every deployment runs it.
  const insightsWorker = await createInsightsWorker({ connection, namespace, taskQueue, ses });
  const running = Promise.all([worker.run(), insightsWorker.run()]);
  const lc = new LifecycleClient(client, { taskQueue, ...(opts.callbacks ? { callbackAllowedHosts: opts.callbacks.allowedHosts } : {}) });
  return {
    sandbox,
    ses,
    lc,
    taskQueue,
    worker,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      if (insightsWorker.getState() === 'RUNNING') insightsWorker.shutdown();
      await running;
      await connection.close();
      ses.destroy();
      await sandbox.close();
    },
  };
}
