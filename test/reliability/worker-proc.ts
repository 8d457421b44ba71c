/**
 * A lifecycle worker in its own process, so reliability tests can SIGKILL it in the middle of an
 * activity. Started by `startWorkerProcess()` (test/reliability/helpers.ts) with
 * `node --import tsx test/reliability/worker-proc.ts`; everything comes from the environment:
 *
 * - FAULT_WORKER_TEMPORAL_ADDRESS, FAULT_WORKER_NAMESPACE, FAULT_WORKER_TASK_QUEUE
 * - FAULT_WORKER_SES_ENDPOINT, FAULT_WORKER_SES_REGION (the sandbox, or a proxy in front of it)
 * - FAULT_WORKER_BUNDLE_PATH (the prebuilt workflow bundle of the test run)
 * - FAULT_WORKER_CONFIGURATION_SET, optional FAULT_WORKER_PACE=true, FAULT_WORKER_SES_TIMEOUT_MS
 *
 * Prints one JSON line `{"ready":true,"pid":…}` on stdout once the worker polls. SIGTERM/SIGINT
 * shut it down gracefully; SIGKILL is the point.
 */
import { DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime } from '@temporalio/worker';
import { createInsightsWorker, createLifecycleWorker, createSesClient } from '../../src/worker';

function need(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`worker-proc: ${name} is required`);
  return v;
}

async function main(): Promise<void> {
  const verbose = Boolean(process.env.TEMPORAL_TEST_VERBOSE);
  Runtime.install({
    logger: new DefaultLogger(verbose ? 'INFO' : 'WARN'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: verbose ? 'WARN' : 'ERROR', other: 'ERROR' }), console: {} } },
  });
  const ses = createSesClient({
    region: process.env.FAULT_WORKER_SES_REGION ?? 'us-east-1',
    endpoint: need('FAULT_WORKER_SES_ENDPOINT'),
    // The sandbox accepts any credentials.
    credentials: { accessKeyId: 'AKIASESSANDBOX000000', secretAccessKey: 'ses-sandbox-secret-access-key' },
    requestTimeoutMs: Number(process.env.FAULT_WORKER_SES_TIMEOUT_MS ?? 60_000),
  });
  const connection = await NativeConnection.connect({ address: need('FAULT_WORKER_TEMPORAL_ADDRESS') });
  const worker = await createLifecycleWorker({
    connection,
    namespace: process.env.FAULT_WORKER_NAMESPACE ?? 'default',
    taskQueue: need('FAULT_WORKER_TASK_QUEUE'),
    ses,
    configurationSetName: need('FAULT_WORKER_CONFIGURATION_SET'),
    paceToSendRate: process.env.FAULT_WORKER_PACE === 'true',
    workflowBundle: { codePath: need('FAULT_WORKER_BUNDLE_PATH') },
  });
  // Rule 13: the rate-limited GetMessageInsights worker, as every deployment runs it.
  const insightsWorker = await createInsightsWorker({ connection, namespace: process.env.FAULT_WORKER_NAMESPACE ?? 'default', taskQueue: need('FAULT_WORKER_TASK_QUEUE'), ses, ...(process.env.FAULT_WORKER_INSIGHTS_RATE ? { ratePerSecond: Number(process.env.FAULT_WORKER_INSIGHTS_RATE) } : {}) });
  const shutdown = (): void => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    if (insightsWorker.getState() === 'RUNNING') insightsWorker.shutdown();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  const running = Promise.all([worker.run(), insightsWorker.run()]);
  // run() starts polling right away; announce readiness once the state says so.
  while (worker.getState() === 'INITIALIZED') await new Promise((r) => setTimeout(r, 20));
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
  try {
    await running;
  } finally {
    await connection.close();
    ses.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`worker-proc failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
