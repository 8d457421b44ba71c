/**
 * Routes one normalized SES event to the Temporal workflow that owns it.
 *
 * The lifecycle id is the workflow id (`msg-…`). Events name it in the `lifecycle-id` tag or the
 * `X-Lifecycle-Id` header; identity notifications carry neither, so we look the SES message id up
 * in visibility (`SesMessageIds`). Events whose lifecycle is unknown or already closed go to an
 * `orphanLifecycle` workflow per SES message id (ARCHITECTURE rule 7: never dropped). Temporal
 * itself is the store: no database here, only a bounded in-memory cache of recent deliveries.
 */
import { isGrpcServiceError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LRUCache } from 'lru-cache';
import {
  CORE_MEMO,
  CURRENT_CORE,
  ORPHAN_IDLE_TIMEOUT,
  orphanWorkflowId,
  SA,
  sesEventSignal,
  sesEventsSignal,
  TASK_QUEUE,
  WORKFLOW_ID_PREFIX,
  WORKFLOW_TYPE,
  type Duration,
  type OrphanLifecycleInput,
  type SesEventSignal,
  type SesEventsSignal,
} from '../definitions';
import type { SesEvent } from '../lifecycle';
import type { StageTimings } from './metrics';

/** What {@link EventRouter.record} did. */
export interface RecordResult {
  /**
   * `signalled`: the message lifecycle got it; `orphaned`: an orphan lifecycle did; `duplicate`:
   * recently recorded, not sent again; `ignored`: an event type this version does not know, for
   * a message no lifecycle sent (nothing could act on it); `refused`: Temporal can never accept
   * it (INVALID_ARGUMENT), answered 2xx so SNS stops retrying, counted and logged.
   */
  outcome: 'signalled' | 'orphaned' | 'duplicate' | 'ignored' | 'refused';
  workflowId: string;
  /** Why, for `refused` and `ignored`. */
  reason?: string;
}

/** Options of {@link EventRouter}. */
export interface EventRouterOptions {
  client: Client;
  /** Task queue for orphan lifecycles started here. Default {@link TASK_QUEUE}. */
  taskQueue?: string;
  /** `idleTimeout` passed to new orphan lifecycles (the workflow's default when omitted). */
  orphanIdleTimeout?: Duration;
  /** Deadline for all Temporal calls of one `record()`. Default 8 s (SNS gives up after 15 s). */
  rpcTimeoutMs?: number;
  /** Recently recorded delivery keys remembered for dedupe. Default 10 000. */
  dedupeSize?: number;
  /** How long a delivery key is remembered. Default 3 h (the replay window). */
  dedupeTtlMs?: number;
  /** How long an open or click waits for others of its lifecycle to share one signal. Default 50 ms. */
  engagementLingerMs?: number;
}

/**
 * Batches opens and clicks per lifecycle: the first event of a lifecycle starts a short linger,
 * every event arriving meanwhile joins, and one `sesEvents` signal carries them all. Each
 * caller's promise settles with that signal, so the webhook answers SNS only once its event is
 * recorded in Temporal (a failed signal fails every caller: 5xx, SNS retries; the workflow dedupes).
 */
class EngagementBatcher {
  private readonly pending = new Map<string, { events: SesEvent[]; waiters: { resolve: () => void; reject: (err: unknown) => void }[] }>();
  private static readonly MAX = 100;

  constructor(
    private readonly client: Client,
    private readonly rpcTimeoutMs: number,
    private readonly lingerMs: number,
  ) {}

  add(workflowId: string, event: SesEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let batch = this.pending.get(workflowId);
      if (!batch) {
        batch = { events: [], waiters: [] };
        this.pending.set(workflowId, batch);
        const b = batch;
        setTimeout(() => this.flush(workflowId, b), this.lingerMs);
      }
      batch.events.push(event);
      batch.waiters.push({ resolve, reject });
      if (batch.events.length >= EngagementBatcher.MAX) this.flush(workflowId, batch);
    });
  }

  private flush(workflowId: string, batch: { events: SesEvent[]; waiters: { resolve: () => void; reject: (err: unknown) => void }[] }): void {
    if (this.pending.get(workflowId) !== batch) return; // flushed already (full)
    this.pending.delete(workflowId);
    this.client
      .withDeadline(Date.now() + this.rpcTimeoutMs, () => this.client.workflow.getHandle(workflowId).signal(sesEventsSignal, { events: batch.events } satisfies SesEventsSignal))
      .then(
        () => {
          for (const w of batch.waiters) w.resolve();
        },
        (err: unknown) => {
          for (const w of batch.waiters) w.reject(err);
        },
      );
  }
}

/** gRPC status INVALID_ARGUMENT (the request can never succeed as it is). */
const GRPC_INVALID_ARGUMENT = 3;

/** Workflow ids we accept from event content: our prefix, printable ASCII, bounded. */
const MESSAGE_WORKFLOW_ID = /^msg-[\x21-\x7e]{1,250}$/;
/** SES message ids are short and plain; anything else is never put into a visibility query. */
const QUERYABLE_SES_ID = /^[A-Za-z0-9._@+=:-]{1,256}$/;

/**
 * What is signalled for an event: the event without detail no rule reads. Opens and clicks (the
 * flood a tracking pixel can cause) keep at most two recipients, which is all rule 9 needs (one
 * recipient: whose engagement it is; two or more: the message's), and no user agent, IP or link.
 * Keeps signals small, so a run's history (and its replay) stays short.
 */
export function slimForSignal(event: SesEvent): SesEvent {
  if (event.type !== 'Open' && event.type !== 'Click') return event;
  const { engagement: _engagement, ...rest } = event;
  return { ...rest, recipients: event.recipients.slice(0, 2) };
}

/** Escapes a string for a double-quoted literal in a Temporal visibility query. */
export function visibilityLiteral(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** True when an error means "no such workflow, or it is already closed" (for signals). */
export function isWorkflowGone(err: unknown): boolean {
  // Signalling a completed/failed/terminated workflow fails with gRPC NOT_FOUND ("workflow
  // execution already completed"), which the client surfaces as WorkflowNotFoundError as well.
  return err instanceof WorkflowNotFoundError || (err instanceof Error && err.name === 'WorkflowNotFoundError');
}

/**
 * Routes SES events to lifecycles. Stateless apart from a bounded dedupe cache, so any number of
 * webhook instances can run side by side (the workflow dedupes by `event.id` anyway).
 */
export class EventRouter {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly rpcTimeoutMs: number;
  private readonly recent: LRUCache<string, string>;
  private readonly inFlight = new Map<string, Promise<RecordResult>>();
  /** Workflow ids checked to be message lifecycles (type), so a claim is verified once per instance. */
  private readonly lifecycleTypes = new LRUCache<string, { ours: boolean; batches: boolean }>({ max: 20_000, ttl: 24 * 3_600_000 });
  /** Engagement events waiting to be signalled together, per lifecycle (see {@link EngagementBatcher}). */
  private readonly batcher: EngagementBatcher;

  constructor(private readonly opts: EventRouterOptions) {
    this.client = opts.client;
    this.taskQueue = opts.taskQueue ?? TASK_QUEUE;
    this.rpcTimeoutMs = opts.rpcTimeoutMs ?? 8_000;
    this.recent = new LRUCache<string, string>({ max: opts.dedupeSize ?? 10_000, ttl: opts.dedupeTtlMs ?? 3 * 3_600_000 });
    this.batcher = new EngagementBatcher(this.client, this.rpcTimeoutMs, opts.engagementLingerMs ?? 50);
  }

  /** The dedupe key of an event: its SNS MessageId when it came in a verified envelope, else its identity. */
  static deliveryKey(event: SesEvent): string {
    return event.snsMessageId !== undefined ? `sns:${event.snsMessageId}` : `event:${event.id}`;
  }

  /** True when this event's delivery was recorded recently by this instance. */
  isRecentlyRecorded(event: SesEvent): boolean {
    return this.recent.has(EventRouter.deliveryKey(event));
  }

  /**
   * Records one event in Temporal: signals its message lifecycle, or an orphan lifecycle when the
   * message lifecycle is unknown or closed. A delivery recorded recently (same SNS MessageId, or
   * same event identity for raw delivery) is answered as `duplicate` without signalling again;
   * concurrent deliveries of one message share one attempt. `timings`, when given, gets the ms
   * of each Temporal call made (a duplicate makes none).
   *
   * @throws whatever Temporal throws when the event could not be recorded (unreachable server,
   *   deadline exceeded, unregistered search attribute...): the caller answers 5xx so SNS retries.
   */
  async record(event: SesEvent, timings?: StageTimings): Promise<RecordResult> {
    const key = EventRouter.deliveryKey(event);
    const seen = this.recent.get(key);
    if (seen !== undefined) return { outcome: 'duplicate', workflowId: seen };
    const pending = this.inFlight.get(key);
    if (pending) {
      const r = await pending;
      return { outcome: 'duplicate', workflowId: r.workflowId };
    }
    const attempt = this.client.withDeadline(Date.now() + this.rpcTimeoutMs, () => this.route(event, timings ?? {})).catch((err: unknown) => {
      // A request Temporal can never accept (an id or payload over its limits) is permanent:
      // retrying it for an hour changes nothing, so it is answered, counted and logged.
      if (isGrpcServiceError(err) && Number(err.code) === GRPC_INVALID_ARGUMENT) {
        return { outcome: 'refused', workflowId: '', reason: err.details || err.message } satisfies RecordResult;
      }
      if (err instanceof Error && isGrpcServiceError(err.cause) && Number(err.cause.code) === GRPC_INVALID_ARGUMENT) {
        return { outcome: 'refused', workflowId: '', reason: err.cause.details || err.message } satisfies RecordResult;
      }
      throw err;
    });
    this.inFlight.set(key, attempt);
    try {
      const result = await attempt;
      if (result.outcome !== 'refused') this.recent.set(key, result.workflowId);
      return result;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Whether `workflowId` is a message lifecycle (our type) and takes batches, checked once and cached. */
  private async lifecycleKind(workflowId: string, timings: StageTimings): Promise<{ ours: boolean; batches: boolean }> {
    const cached = this.lifecycleTypes.get(workflowId);
    if (cached !== undefined) return cached;
    const t0 = performance.now();
    try {
      const d = await this.client.workflow.getHandle(workflowId).describe();
      timings.describe = performance.now() - t0;
      const kind = { ours: d.type === WORKFLOW_TYPE.message, batches: d.memo?.[CORE_MEMO] === CURRENT_CORE };
      this.lifecycleTypes.set(workflowId, kind);
      return kind;
    } catch (err) {
      if (isWorkflowGone(err)) return { ours: false, batches: false };
      throw err;
    }
  }

  private async route(event: SesEvent, timings: StageTimings): Promise<RecordResult> {
    const claimed = event.lifecycleId;
    let target: string | undefined;
    if (claimed !== undefined && MESSAGE_WORKFLOW_ID.test(claimed)) target = claimed;
    else {
      const t0 = performance.now();
      target = await this.findBySesMessageId(event.sesMessageId);
      timings.lookup = performance.now() - t0;
    }
    // Only workflows of our own type are ever signalled: a `lifecycle-id` naming any other
    // workflow would lose the event there.
    const kind = target !== undefined ? await this.lifecycleKind(target, timings) : undefined;
    if (target !== undefined && !kind?.ours) target = undefined;
    if (target === undefined && event.type.startsWith('Unknown:')) {
      return { outcome: 'ignored', workflowId: '', reason: `event type ${event.type.slice(8)} is unknown to this version and no lifecycle sent message ${event.sesMessageId}` };
    }
    if (target !== undefined) {
      const t0 = performance.now();
      try {
        if (kind?.batches && (event.type === 'Open' || event.type === 'Click')) {
          // A tracking pixel can flood one lifecycle: its opens and clicks share signals.
          await this.batcher.add(target, slimForSignal(event));
        } else {
          await this.client.workflow.getHandle(target).signal(sesEventSignal, { event: slimForSignal(event) } satisfies SesEventSignal);
        }
        timings.signal = performance.now() - t0;
        return { outcome: 'signalled', workflowId: target };
      } catch (err) {
        if (!isWorkflowGone(err)) throw err;
      }
    }
    const t0 = performance.now();
    const orphaned = await this.orphan(event, claimed ?? target);
    timings.signal = performance.now() - t0;
    return orphaned;
  }

  /** Finds the message lifecycle that sent this SES message, preferring a running one. */
  private async findBySesMessageId(sesMessageId: string): Promise<string | undefined> {
    if (!QUERYABLE_SES_ID.test(sesMessageId)) return undefined;
    const query = `${SA.sesMessageIds.name} = ${visibilityLiteral(sesMessageId)}`;
    let first: string | undefined;
    let seen = 0;
    for await (const wf of this.client.workflow.list({ query, pageSize: 20 })) {
      if (wf.workflowId.startsWith(WORKFLOW_ID_PREFIX.message)) {
        if (wf.status.name === 'RUNNING') return wf.workflowId;
        first ??= wf.workflowId;
      }
      if (++seen >= 20) break;
    }
    return first;
  }

  private async orphan(event: SesEvent, claimedLifecycleId: string | undefined): Promise<RecordResult> {
    const workflowId = orphanWorkflowId(event.sesMessageId);
    const input: OrphanLifecycleInput = {
      sesMessageId: event.sesMessageId,
      ...(claimedLifecycleId !== undefined ? { claimedLifecycleId: claimedLifecycleId.slice(0, 256) } : {}),
      // Resolved here: a running orphan never reads a default that could change under it.
      idleTimeout: this.opts.orphanIdleTimeout ?? ORPHAN_IDLE_TIMEOUT,
    };
    // Starts the orphan lifecycle, or signals it when it runs; a closed one gets a new run.
    await this.client.workflow.signalWithStart(WORKFLOW_TYPE.orphan, {
      workflowId,
      taskQueue: this.taskQueue,
      args: [input],
      signal: sesEventSignal,
      signalArgs: [{ event: slimForSignal(event) } satisfies SesEventSignal],
      typedSearchAttributes: [
        { key: SA.kind, value: 'orphan' },
        { key: SA.sesMessageIds, value: [event.sesMessageId.slice(0, 1_000)] },
      ],
      staticSummary: `Orphan SES events for message ${event.sesMessageId}`.slice(0, 200),
      staticDetails: [
        `Events for SES message **${event.sesMessageId}** whose lifecycle is unknown or already closed.`,
        input.claimedLifecycleId ? `They name lifecycle **${input.claimedLifecycleId}**.` : 'They name no lifecycle (sent outside sendTracked?).',
        'Recorded here; hard bounces and complaints are still suppressed.',
      ].join('\n\n'),
    });
    return { outcome: 'orphaned', workflowId };
  }
}
