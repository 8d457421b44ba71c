/**
 * Follow-ups of a lifecycle: suppression of hard bounces and complaints (rule 5), app callbacks,
 * and forwarding of foreign events to their SES message's orphan lifecycle (rule 12). A
 * follow-up never fails a lifecycle: its final failure is recorded (status, UI) and the
 * lifecycle goes on.
 */
import {
  ActivityFailure,
  type ActivityOptions,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  ErrorType,
  ORPHAN_IDLE_TIMEOUT,
  orphanWorkflowId,
  SA,
  sesEventSignal,
  WORKFLOW_TYPE,
  type CallbackPayload,
  type FollowUp,
  type OrphanLifecycleInput,
} from '../src/definitions';
import type { SesEvent } from '../src/lifecycle';

/** Suppression is idempotent: transient failures are retried with backoff for a day. */
const SUPPRESS_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
};
const { suppressAddress } = proxyActivities<Activities>(SUPPRESS_OPTIONS);

/** App callbacks: retried with backoff for a day; 4xx answers (CallbackRejected) are final. */
const CALLBACK_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10m', nonRetryableErrorTypes: [ErrorType.CallbackRejected] },
};
const { notifyCallback } = proxyActivities<Activities>(CALLBACK_OPTIONS);

/** The last callback of a cancelled lifecycle: tried briefly, then recorded. */
const CALLBACK_ONCE_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '1m',
  retry: { initialInterval: '2s', maximumAttempts: 3, nonRetryableErrorTypes: [ErrorType.CallbackRejected] },
};

function reason(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return `${cause.type ?? 'Error'}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Where follow-ups record what they did and wake the loop. */
export interface FollowUpHost {
  addFollowUp(kind: FollowUp['kind'], detail: string): void;
  bump(): void;
  readonly suppressionsDone: Set<string>;
  readonly suppressionsPending: Set<string>;
}

/** Runs suppressions concurrently with the lifecycle loop; `settled()` waits for all of them. */
export class Suppressions {
  private running = 0;
  private readonly active = new Set<string>();

  constructor(
    private readonly host: FollowUpHost,
    private readonly lifecycleId: string,
  ) {}

  /** Starts the suppression of `email` unless done or running. */
  start(email: string, why: 'BOUNCE' | 'COMPLAINT'): void {
    const h = this.host;
    if (h.suppressionsDone.has(email) || this.active.has(email)) return;
    h.suppressionsPending.add(email);
    this.active.add(email);
    this.running += 1;
    // The summary names the activity in the Web UI's event history (user metadata only).
    const summary = `Suppress ${email} (${why === 'BOUNCE' ? 'hard bounce' : 'complaint'})`.slice(0, 200);
    suppressAddress.executeWithOptions({ ...SUPPRESS_OPTIONS, summary }, [{ email, reason: why, lifecycleId: this.lifecycleId }]).then(
      () => {
        h.suppressionsDone.add(email);
        h.addFollowUp('suppressed', `${email} (${why})`);
        this.finish(email);
      },
      (err: unknown) => {
        if (isCancellation(err)) {
          // Cancelled with the lifecycle: stays pending, re-run (idempotent) when it closes.
          this.finish(email, true);
          return;
        }
        h.suppressionsDone.add(email);
        h.addFollowUp('suppression-failed', `${email} (${why}) not suppressed: ${reason(err)}`);
        this.finish(email);
      },
    );
  }

  private finish(email: string, keepPending = false): void {
    this.active.delete(email);
    if (!keepPending) this.host.suppressionsPending.delete(email);
    this.running -= 1;
    this.host.bump();
  }

  get idle(): boolean {
    return this.running === 0;
  }

  /** Resolves when no suppression is running. */
  async settled(): Promise<void> {
    await condition(() => this.running === 0);
  }
}

/** Delivers queued callbacks in order, one at a time, so a slow app never blocks the lifecycle. */
export class CallbackOutbox {
  inFlight = false;

  constructor(
    private readonly host: FollowUpHost,
    private readonly url: string,
    private readonly queue: CallbackPayload[],
  ) {}

  /** The delivery loop; ends quietly when the lifecycle is cancelled (the queue stays for the close). */
  async run(): Promise<void> {
    try {
      for (;;) {
        await condition(() => this.queue.length > 0);
        await this.deliverFirst(false);
      }
    } catch (err) {
      if (!isCancellation(err)) throw err;
    }
  }

  private async deliverFirst(once: boolean): Promise<void> {
    const payload = this.queue[0]!;
    this.inFlight = true;
    try {
      const summary = `Callback ${payload.eventId}: email ${payload.status}${once ? ' (lifecycle cancelled)' : ''}`.slice(0, 200);
      await notifyCallback.executeWithOptions({ ...(once ? CALLBACK_ONCE_OPTIONS : CALLBACK_OPTIONS), summary }, [{ url: this.url, payload }]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.host.addFollowUp('callback', `${payload.eventId} not delivered: ${reason(err)}`);
    } finally {
      this.inFlight = false;
    }
    this.queue.shift();
    this.host.bump();
  }

  get idle(): boolean {
    return this.queue.length === 0 && !this.inFlight;
  }

  /** At close: delivers what is left (briefly when cancelled; the rest is recorded as not delivered). */
  async drain(cancelled: boolean): Promise<void> {
    if (!cancelled) {
      await condition(() => this.idle);
      return;
    }
    await condition(() => !this.inFlight);
    // Only the latest state matters to an app that is told the lifecycle was cancelled.
    while (this.queue.length > 1) this.host.addFollowUp('callback', `${this.queue.shift()!.eventId} not delivered: lifecycle cancelled`);
    if (this.queue.length === 1) await this.deliverFirst(true);
  }
}

/**
 * Forwards an event that names this lifecycle but belongs to an SES message it never sent to
 * that message's orphan lifecycle, with the claim recorded (rule 12).
 */
export async function forwardToOrphan(host: FollowUpHost, event: SesEvent, claimedLifecycleId: string): Promise<void> {
  const workflowId = orphanWorkflowId(event.sesMessageId);
  try {
    try {
      const input: OrphanLifecycleInput = { sesMessageId: event.sesMessageId, claimedLifecycleId, initialEvents: [event], idleTimeout: ORPHAN_IDLE_TIMEOUT };
      await startChild(WORKFLOW_TYPE.orphan, {
        workflowId,
        args: [input],
        taskQueue: workflowInfo().taskQueue,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: SA.kind, value: 'orphan' },
          { key: SA.sesMessageIds, value: [event.sesMessageId.slice(0, 1000)] },
        ],
        staticSummary: `Orphan SES events for message ${event.sesMessageId}`.slice(0, 200),
      });
    } catch (err) {
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
      await getExternalWorkflowHandle(workflowId).signal(sesEventSignal, { event });
    }
    host.addFollowUp('foreign-event', `${event.type} of SES message ${event.sesMessageId} (not sent by this lifecycle) forwarded to ${workflowId}`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    host.addFollowUp('foreign-event', `${event.type} of SES message ${event.sesMessageId} (not sent by this lifecycle) could not be forwarded: ${reason(err)}`);
  }
}
