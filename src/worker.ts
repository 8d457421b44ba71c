/**
 * Worker construction: the lifecycle workflows plus activities bound to a real SESv2 client.
 * `createSesClient` builds the client the way the product needs it: no SDK retries (Temporal
 * owns retries) and a request timeout, so a hung request becomes an ambiguous outcome.
 */
import path from 'node:path';
import { SESv2Client, GetAccountCommand } from '@aws-sdk/client-sesv2';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { CURRENT_CORE, INSIGHTS_RATE_PER_SECOND, insightsTaskQueue, TASK_QUEUE } from './definitions';

/** Options for {@link createSesClient}. */
export interface SesClientOptions {
  region: string;
  /** Endpoint override (the local sandbox); omit for real AWS. */
  endpoint?: string;
  /** Static credentials (sandbox); omit to use the default AWS credentials chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Per-request timeout. Default 10 s. */
  requestTimeoutMs?: number;
}

/** Creates the SESv2 client used by activities: `maxAttempts: 1`, bounded request time. */
export function createSesClient(opts: SesClientOptions): SESv2Client {
  return new SESv2Client({
    region: opts.region,
    maxAttempts: 1,
    ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
    requestHandler: { requestTimeout: opts.requestTimeoutMs ?? 10_000, connectionTimeout: 5_000, throwOnRequestTimeout: true },
  });
}

/** Path of the workflow entry module (works from sources and from the compiled `dist/`). */
export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows');

/** Options for {@link createLifecycleWorker}. */
export interface LifecycleWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  ses: SESv2Client;
  /** Default configuration set for sends that name none. */
  configurationSetName?: string;
  /** HMAC secret for app callbacks. */
  callbackSecret?: string;
  /** Callback hosts allowed to be loopback/private/link-local; refuse http callbacks. */
  callbacks?: { allowedHosts?: readonly string[]; requireHttps?: boolean };
  /** Build id recorded on every workflow task this worker completes. Default {@link DEFAULT_BUILD_ID}. */
  buildId?: string;
  /**
   * Pace SES calls on this task queue to the account's MaxSendRate (read from GetAccount at
   * start) instead of only retrying 429s. Server-enforced across all workers of the queue.
   */
  paceToSendRate?: boolean;
  /** A prebuilt workflow bundle (tests share one); otherwise bundled from {@link WORKFLOWS_PATH}. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Extra worker options (cache size, concurrency). */
  tuning?: Pick<WorkerOptions, 'maxCachedWorkflows' | 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions'>;
}

/** Build id workers report by default: the workflow code version (see `CURRENT_CORE`). */
export const DEFAULT_BUILD_ID = `core-${CURRENT_CORE}`;

/**
 * Creates (does not run) a worker for lifecycle workflows and SES activities.
 *
 * @throws when the SES account cannot be read while `paceToSendRate` is on.
 */
export async function createLifecycleWorker(opts: LifecycleWorkerOptions): Promise<Worker> {
  let maxTaskQueueActivitiesPerSecond: number | undefined;
  if (opts.paceToSendRate) {
    const account = await opts.ses.send(new GetAccountCommand({}));
    const rate = account.SendQuota?.MaxSendRate;
    if (rate !== undefined && rate > 0) maxTaskQueueActivitiesPerSecond = rate;
  }
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({
      ses: opts.ses,
      ...(opts.configurationSetName !== undefined ? { configurationSetName: opts.configurationSetName } : {}),
      ...(opts.callbackSecret !== undefined ? { callbackSecret: opts.callbackSecret } : {}),
      ...(opts.callbacks?.allowedHosts !== undefined ? { callbackAllowedHosts: opts.callbacks.allowedHosts } : {}),
      ...(opts.callbacks?.requireHttps !== undefined ? { callbackRequireHttps: opts.callbacks.requireHttps } : {}),
    }),
    ...(maxTaskQueueActivitiesPerSecond !== undefined ? { maxTaskQueueActivitiesPerSecond } : {}),
    // Every workflow task records which build ran it (visible per task in the Web UI), so a
    // deploy can be traced in each lifecycle's history. Versioning itself stays off: code
    // changes reach open lifecycles through patched()/the core version (README "Deploying").
    workerDeploymentOptions: { version: { deploymentName: 'ses-lifecycle', buildId: opts.buildId ?? DEFAULT_BUILD_ID }, useWorkerVersioning: false },
    ...opts.tuning,
  });
}

/** Options for {@link createInsightsWorker}. */
export interface InsightsWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  /** The lifecycle task queue; the worker polls `<taskQueue>-insights`. */
  taskQueue?: string;
  ses: SESv2Client;
  /** GetMessageInsights calls per second, across every worker of the queue (server-enforced). Default {@link INSIGHTS_RATE_PER_SECOND}. */
  ratePerSecond?: number;
}

/**
 * Creates (does not run) the worker of the GetMessageInsights activity (rule 13, repair). It
 * polls its own task queue with `maxTaskQueueActivitiesPerSecond` below SES's limit for the
 * operation (about 1 call/s per account): the Temporal server hands out at most that many
 * activity tasks per second, whatever the number of workers, so the limit survives worker
 * restarts and scale-out, and waiting repairs queue durably on the server. Run one beside every
 * lifecycle worker (`ses-lifecycle worker` and the dev stack do).
 */
export function createInsightsWorker(opts: InsightsWorkerOptions): Promise<Worker> {
  const rate = opts.ratePerSecond ?? INSIGHTS_RATE_PER_SECOND;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerSecond must be a positive number, got ${rate}`);
  const activities = createActivities({ ses: opts.ses });
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: insightsTaskQueue(opts.taskQueue ?? TASK_QUEUE),
    activities: { fetchMessageInsights: activities.fetchMessageInsights.bind(activities) },
    maxTaskQueueActivitiesPerSecond: rate,
    // The server's limit is an average over the queue's partitions, which can each hand out a
    // task at once; this worker also spaces its own calls, so one worker never bursts. (A burst
    // across several workers meets TooManyRequestsException, which Temporal retries with backoff.)
    maxActivitiesPerSecond: rate,
    maxConcurrentActivityTaskExecutions: 1,
  });
}
