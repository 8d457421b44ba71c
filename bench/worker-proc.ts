/**
 * A Temporal worker in its own process, so the benchmark can measure its memory apart from the
 * dev server, the webhook, the sandbox and the load generator. Started by `bench/run.ts` through
 * `bench/children.ts` (node --import tsx --expose-gc bench/worker-proc.ts), configured through the
 * BENCH_WORKER environment variable (JSON {@link WorkerProcConfig}), driven over the IPC channel.
 *
 * - kind `lifecycle`: the product's worker (`createLifecycleWorker` from src/worker.ts) with its
 *   SESv2 client pointed at the sandbox.
 * - kind `baseline`: a bare worker for `benchBaseline` (bench/workflows.ts) with a no-op activity.
 */
import { NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { createLifecycleWorker, createSesClient } from '../src/worker';
import type { BenchActivities } from './workflows';

/** Configuration passed by the parent in BENCH_WORKER. */
export interface WorkerProcConfig {
  kind: 'lifecycle' | 'baseline';
  address: string;
  namespace: string;
  taskQueue: string;
  /** Prebuilt workflow bundle (file path). */
  bundlePath: string;
  maxCachedWorkflows: number;
  /** Lifecycle worker only: the sandbox SES endpoint. */
  ses?: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  configurationSetName?: string;
}

/** Memory and progress numbers a worker child reports. */
export interface WorkerStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  activities: number;
  numCachedWorkflows: number;
  numInFlightWorkflowActivations: number;
}

/** Parent → child. */
export type ToChild = { type: 'stats'; id: number; gc?: boolean } | { type: 'stop' };
/** Child → parent. */
export type FromChild =
  | { type: 'ready'; pid: number }
  | ({ type: 'stats'; id: number } & WorkerStats)
  | { type: 'stopped' }
  | { type: 'error'; message: string };

function send(msg: FromChild): void {
  process.send?.(msg);
}

async function main(): Promise<void> {
  const raw = process.env.BENCH_WORKER;
  if (!raw) throw new Error('BENCH_WORKER is not set (this file is started by bench/run.ts)');
  const cfg = JSON.parse(raw) as WorkerProcConfig;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: cfg.address });
  let activities = 0;
  let worker: Worker;
  let destroy = (): void => undefined;
  if (cfg.kind === 'lifecycle') {
    if (!cfg.ses) throw new Error('lifecycle worker needs ses');
    const ses = createSesClient({ region: cfg.ses.region, endpoint: cfg.ses.endpoint, credentials: cfg.ses.credentials });
    destroy = () => ses.destroy();
    worker = await createLifecycleWorker({
      connection,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      ses,
      ...(cfg.configurationSetName !== undefined ? { configurationSetName: cfg.configurationSetName } : {}),
      paceToSendRate: false,
      workflowBundle: { codePath: cfg.bundlePath },
      tuning: { maxCachedWorkflows: cfg.maxCachedWorkflows },
    });
  } else {
    const acts: BenchActivities = {
      noop: () => {
        activities++;
        return Promise.resolve();
      },
    };
    worker = await Worker.create({
      connection,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      workflowBundle: { codePath: cfg.bundlePath },
      activities: acts,
      maxCachedWorkflows: cfg.maxCachedWorkflows,
    });
  }
  const running = worker.run();
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
    destroy();
    await connection.close().catch(() => undefined);
    send({ type: 'stopped' });
    process.exit(0);
  };
  process.on('message', (m: ToChild) => {
    if (m.type === 'stop') {
      void stop();
      return;
    }
    if (m.type === 'stats') {
      if (m.gc && typeof global.gc === 'function') global.gc();
      const mem = process.memoryUsage();
      const st = worker.getStatus();
      send({
        type: 'stats',
        id: m.id,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        external: mem.external,
        activities,
        numCachedWorkflows: st.numCachedWorkflows,
        numInFlightWorkflowActivations: st.numInFlightWorkflowActivations,
      });
    }
  });
  // The parent went away (crash, Ctrl-C): never outlive it.
  process.on('disconnect', () => void stop());
  send({ type: 'ready', pid: process.pid });
  await running;
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
