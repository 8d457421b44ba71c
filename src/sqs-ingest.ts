/**
 * SQS ingestion: SES events from an SQS queue subscribed to the SES event topic, beside or
 * instead of the SNS webhook (no public HTTPS endpoint needed; the queue holds events while we
 * are down, and its redrive policy keeps what never succeeds in a dead-letter queue).
 *
 * ```ts
 * const ingest = await startSqsIngest({
 *   queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ses-events',
 *   temporal: { client },
 *   allowedTopicArns: ['arn:aws:sns:us-east-1:123456789012:ses-events'],
 * });
 * // ... later: finishes the batch in flight, then resolves.
 * await ingest.stop();
 * ```
 *
 * Each message is either an SNS envelope (the subscription's default: verified exactly as the
 * webhook verifies it, by the same code: TopicArn allowlist, replay window, signature,
 * certificate checks) or, with `RawMessageDelivery=true`, the SES event JSON itself. Both go
 * through the webhook's router (same lifecycle routing, orphans, dedupe). A message is deleted
 * only after Temporal recorded its event (or it needs nothing: a known duplicate, a non-SES
 * notification). Everything else is left in the queue:
 *
 * - temporary failures (Temporal unreachable, certificate fetch failed) come back after the
 *   visibility timeout and are retried, up to the queue's `maxReceiveCount`;
 * - messages that can never succeed (bad signature, foreign topic, malformed) are counted as
 *   `refused` and also left: after `maxReceiveCount` receives the redrive policy moves them to
 *   the dead-letter queue, where they can be inspected. Nothing is deleted unrecorded; a queue
 *   without a redrive policy shows them again every visibility timeout (init-aws always sets one).
 *
 * A batch that takes longer than half the visibility timeout gets its unfinished messages'
 * visibility extended (ChangeMessageVisibilityBatch), so no other consumer receives them meanwhile.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Duration } from './definitions';
import { SANDBOX_CREDENTIALS } from './sandbox';
import { parseSnsBody } from './webhook/envelope';
import { ingestEnvelope, ingestSesText, type IngestDeps, type IngestResult, type OutcomeSink } from './webhook/ingest';
import { RejectReason, type IngestCounts } from './webhook/metrics';
import { EventRouter } from './webhook/router';
import { SnsVerifier } from './webhook/sns-verify';
import { DEFAULT_CERT_PATH_PATTERN, DEFAULT_SNS_HOST_PATTERN } from './webhook/url-checks';

/** SQS's longest message retention: the default replay window of envelopes read from a queue. */
export const SQS_MAX_RETENTION_MS = 14 * 24 * 3_600_000;

/** Options of {@link startSqsIngest}. */
export interface SqsIngestOptions {
  /** The queue subscribed to the SES event topic. */
  queueUrl: string;
  /** An SQS client to use (not destroyed by `stop()`), or the config of one to create. Default: region from the queue URL, default credentials chain. */
  sqs?: SQSClient | SQSClientConfig;
  temporal: { client: Client; taskQueue?: string };
  /** TopicArns whose envelopes are accepted. Required unless `allowAnyTopic`. */
  allowedTopicArns: string[];
  /** Accept envelopes of any topic. DEVELOPMENT ONLY. */
  allowAnyTopic?: boolean;
  /**
   * Accept raw SES JSON (subscription attribute `RawMessageDelivery=true`). Default true: the
   * queue policy decides who may send to the queue (init-aws allows only the topic). Set false
   * to accept signed envelopes only.
   */
  rawMessageDelivery?: boolean;
  /** As for the webhook (see `WebhookOptions`): signing-certificate URL and trust checks. */
  certHostPattern?: RegExp;
  certPathPattern?: RegExp;
  subscribeHostPattern?: RegExp;
  /** SANDBOX ONLY: the sandbox CA (trust anchor of its signing certificate, TLS of its fetches). */
  extraCaPem?: string;
  trustedCaPems?: string[];
  certIntermediatePems?: string[];
  certSubjectNames?: string[];
  certFetchTimeoutMs?: number;
  confirmTimeoutMs?: number;
  /** Oldest accepted SNS Timestamp. Default 14 days (SQS's longest retention: a queue holds events for days by design). */
  replayWindowMs?: number;
  /** Deadline of the Temporal calls that record one event. Default 8000 ms. */
  temporalTimeoutMs?: number;
  orphanIdleTimeout?: Duration;
  /** Long-poll wait. Default 20 s (SQS's maximum). */
  waitTimeSeconds?: number;
  /** Messages per receive. Default 10 (SQS's maximum). */
  maxMessages?: number;
  /** Receive loops running at once. Default 2. */
  pollers?: number;
  /** Visibility timeout of the queue, seconds; a batch older than half of it is extended by it. Default: the queue's `VisibilityTimeout`. */
  visibilityTimeoutSeconds?: number;
  /** Pause after a failed receive or a batch where nothing could be recorded. Default 1000 ms. */
  backoffMs?: number;
  logger?: FastifyBaseLogger | false;
  /** Counters to update, or a prom-client registry to register them in. */
  metrics?: SqsIngestMetrics | { registry: Registry };
}

/** A snapshot of the consumer's counters. */
export interface SqsIngestCounts extends IngestCounts {
  /** Messages received (a message received again counts again). */
  received: number;
  /** Can never succeed (bad signature, foreign topic, malformed): left for the dead-letter queue. */
  refused: Partial<Record<string, number>>;
  /** Could not be recorded now (Temporal, certificate fetch): left in the queue to come back. */
  failed: Partial<Record<string, number>>;
  deleted: number;
  /** Messages whose visibility was extended (once per extension). */
  visibilityExtended: number;
  /** now - SentTimestamp of the last message received, ms. */
  lastLagMs: number | undefined;
}

/** Counters of the SQS consumer, mirrored into a prom-client registry when one is given. */
export class SqsIngestMetrics implements OutcomeSink {
  private readonly counts: SqsIngestCounts = {
    received: 0,
    recorded: 0,
    signalled: 0,
    orphaned: 0,
    duplicate: 0,
    ignored: 0,
    refused: {},
    failed: {},
    deleted: 0,
    visibilityExtended: 0,
    subscriptionsConfirmed: 0,
    unsubscribeNotices: 0,
    lastLagMs: undefined,
  };
  private readonly counter: Counter<'outcome' | 'reason'> | undefined;
  private readonly events: Counter<'type'> | undefined;
  private readonly lag: Histogram | undefined;
  private readonly lastLag: Gauge | undefined;

  /**
   * @param opts.registry registers `ses_sqs_messages_total{outcome,reason}`, `ses_sqs_events_total{type}`,
   *   `ses_sqs_lag_seconds` (histogram of now - SentTimestamp) and `ses_sqs_last_lag_seconds`.
   */
  constructor(opts: { registry?: Registry } = {}) {
    const registers = opts.registry ? [opts.registry] : undefined;
    this.counter = registers
      ? new Counter({ name: 'ses_sqs_messages_total', help: 'SQS messages by outcome (received, signalled, orphaned, duplicate, ignored, refused, failed, deleted, visibility-extended) and reason', labelNames: ['outcome', 'reason'], registers })
      : undefined;
    this.events = registers ? new Counter({ name: 'ses_sqs_events_total', help: 'SES events recorded from SQS, by event type', labelNames: ['type'], registers }) : undefined;
    this.lag = registers
      ? new Histogram({ name: 'ses_sqs_lag_seconds', help: 'Age of SQS messages when received (now - SentTimestamp)', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400], registers })
      : undefined;
    this.lastLag = registers ? new Gauge({ name: 'ses_sqs_last_lag_seconds', help: 'now - SentTimestamp of the last SQS message received', registers }) : undefined;
  }

  inc(outcome: Parameters<OutcomeSink['inc']>[0] | 'received' | 'deleted' | 'visibilityExtended', n = 1): void {
    // An event Temporal can never accept is handled like an ignored one: deleted, counted, logged.
    const key = outcome === 'refused' ? 'ignored' : outcome;
    this.counts[key] += n;
    this.counter?.inc({ outcome: key, reason: '' }, n);
    if (key === 'signalled' || key === 'orphaned') {
      this.counts.recorded += n;
      this.counter?.inc({ outcome: 'recorded', reason: '' }, n);
    }
  }

  event(type: string): void {
    this.events?.inc({ type: type.startsWith('Unknown:') ? 'Unknown' : type });
  }

  refused(reason: string): void {
    this.counts.refused[reason] = (this.counts.refused[reason] ?? 0) + 1;
    this.counter?.inc({ outcome: 'refused', reason });
  }

  failed(reason: string): void {
    this.counts.failed[reason] = (this.counts.failed[reason] ?? 0) + 1;
    this.counter?.inc({ outcome: 'failed', reason });
  }

  lagMs(ms: number): void {
    this.counts.lastLagMs = ms;
    this.lag?.observe(ms / 1000);
    this.lastLag?.set(ms / 1000);
  }

  snapshot(): SqsIngestCounts {
    return { ...this.counts, refused: { ...this.counts.refused }, failed: { ...this.counts.failed } };
  }
}

/** A running consumer. */
export interface SqsIngest {
  metrics: SqsIngestMetrics;
  /** Stops receiving, finishes the batches in flight (their deletes included), then resolves. Idempotent. */
  stop(): Promise<void>;
}

function positiveInt(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min || x > max) throw new Error(`SQS ingest option ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return x;
}

const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$/;

/** Region of a queue URL (`https://sqs.<region>.amazonaws.com/...`), if it names one. */
function regionOfQueueUrl(url: string): string | undefined {
  return /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?\//.exec(url)?.[1];
}

/**
 * Starts consuming `queueUrl`. Reads the queue's VisibilityTimeout first (unless given), so a
 * wrong URL or missing permission fails here, not later.
 *
 * @throws Error naming the option for invalid options; the SQS error for GetQueueAttributes.
 */
export async function startSqsIngest(opts: SqsIngestOptions): Promise<SqsIngest> {
  let queueUrl: URL;
  try {
    queueUrl = new URL(opts.queueUrl);
  } catch {
    throw new Error(`SQS ingest option queueUrl is not a URL: ${opts.queueUrl}`);
  }
  if (queueUrl.protocol !== 'https:' && queueUrl.protocol !== 'http:') throw new Error('SQS ingest option queueUrl must be http(s)');
  const topics = opts.allowedTopicArns ?? [];
  if (topics.length === 0 && opts.allowAnyTopic !== true) throw new Error('SQS ingest option allowedTopicArns must list at least one TopicArn (or set allowAnyTopic: true, for development only)');
  for (const arn of topics) if (!TOPIC_ARN.test(arn)) throw new Error(`SQS ingest option allowedTopicArns: not an SNS TopicArn: ${arn}`);
  const waitTimeSeconds = positiveInt('waitTimeSeconds', opts.waitTimeSeconds, 20, 0, 20);
  const maxMessages = positiveInt('maxMessages', opts.maxMessages, 10, 1, 10);
  const pollers = positiveInt('pollers', opts.pollers, 2, 1, 64);
  const backoffMs = positiveInt('backoffMs', opts.backoffMs, 1_000, 0, 600_000);
  const log: FastifyBaseLogger = opts.logger === false || opts.logger === undefined ? (pino({ level: opts.logger === false ? 'silent' : 'info' })) : opts.logger;
  const qlog = log.child({ queueUrl: opts.queueUrl });

  const ownClient = !(opts.sqs instanceof SQSClient);
  const sqs = opts.sqs instanceof SQSClient ? opts.sqs : new SQSClient({ ...(regionOfQueueUrl(opts.queueUrl) ? { region: regionOfQueueUrl(opts.queueUrl) } : {}), ...(opts.sqs ?? {}) });
  const metrics = opts.metrics instanceof SqsIngestMetrics ? opts.metrics : new SqsIngestMetrics(opts.metrics ?? {});

  let visibilityTimeoutSeconds = opts.visibilityTimeoutSeconds;
  try {
    if (visibilityTimeoutSeconds === undefined) {
      const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: opts.queueUrl, AttributeNames: ['VisibilityTimeout'] }));
      visibilityTimeoutSeconds = Number(a.Attributes?.VisibilityTimeout ?? 30);
    }
  } catch (err) {
    if (ownClient) sqs.destroy();
    throw new Error(`SQS ingest: GetQueueAttributes of ${opts.queueUrl} failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  }
  const visibility = positiveInt('visibilityTimeoutSeconds', visibilityTimeoutSeconds, 30, 1, 43_200);

  const extraCaPem = opts.extraCaPem;
  const trustedCaPems = opts.trustedCaPems ?? (extraCaPem !== undefined ? [extraCaPem] : undefined);
  const verifier = new SnsVerifier({
    certHostPattern: opts.certHostPattern ?? DEFAULT_SNS_HOST_PATTERN,
    certPathPattern: opts.certPathPattern ?? DEFAULT_CERT_PATH_PATTERN,
    timeoutMs: opts.certFetchTimeoutMs ?? 5_000,
    ...(trustedCaPems !== undefined ? { trustedCaPems } : {}),
    ...(opts.certIntermediatePems !== undefined ? { intermediatePems: opts.certIntermediatePems } : {}),
    ...(opts.certSubjectNames !== undefined ? { certSubjectNames: opts.certSubjectNames } : {}),
    ...(extraCaPem !== undefined ? { fetchCaPem: extraCaPem } : {}),
  });
  const replayWindowMs = opts.replayWindowMs ?? SQS_MAX_RETENTION_MS;
  const router = new EventRouter({
    client: opts.temporal.client,
    rpcTimeoutMs: opts.temporalTimeoutMs ?? 8_000,
    dedupeTtlMs: Math.min(replayWindowMs, 24 * 3_600_000),
    ...(opts.temporal.taskQueue !== undefined ? { taskQueue: opts.temporal.taskQueue } : {}),
    ...(opts.orphanIdleTimeout !== undefined ? { orphanIdleTimeout: opts.orphanIdleTimeout } : {}),
  });
  const deps: IngestDeps = {
    verifier,
    router,
    sink: metrics,
    allowAnyTopic: opts.allowAnyTopic === true,
    allowedTopicArns: new Set(topics),
    replayWindowMs,
    now: Date.now,
    subscribeHostPattern: opts.subscribeHostPattern ?? DEFAULT_SNS_HOST_PATTERN,
    confirmTimeoutMs: opts.confirmTimeoutMs ?? 5_000,
    extraCaPem,
  };
  const acceptRaw = opts.rawMessageDelivery !== false;
  if (opts.allowAnyTopic === true) qlog.warn('SQS ingest accepts envelopes of ANY SNS topic (allowAnyTopic): development only');

  /** What one message amounts to. */
  const handle = async (m: Message): Promise<IngestResult> => {
    const body = m.Body ?? '';
    const parsed = parseSnsBody(body);
    switch (parsed.kind) {
      case 'malformed':
        return { kind: 'rejected', reason: RejectReason.Malformed, httpStatus: 400, detail: parsed.detail };
      case 'unknown-type':
        return { kind: 'rejected', reason: RejectReason.UnknownMessageType, httpStatus: 400, detail: parsed.type };
      case 'raw': {
        if (!acceptRaw) return { kind: 'rejected', reason: RejectReason.RawDeliveryDisabled, httpStatus: 400 };
        const mlog = qlog.child({ sqsMessageId: m.MessageId, raw: true });
        return ingestSesText(deps, parsed.text, undefined, mlog);
      }
      case 'envelope': {
        const env = parsed.envelope;
        return ingestEnvelope(deps, env, qlog.child({ sqsMessageId: m.MessageId, snsMessageId: env.MessageId, topicArn: env.TopicArn, snsType: env.Type }));
      }
    }
  };

  let stopping = false;
  const receiveAborts = new Set<AbortController>();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    wakeups.add(() => {
      clearTimeout(t);
      resolve();
    });
  });
  const wakeups = new Set<() => void>();

  const processBatch = async (messages: Message[]): Promise<{ deleted: number; failed: number }> => {
    const pending = new Map<string, Message>();
    for (const m of messages) if (m.ReceiptHandle) pending.set(m.ReceiptHandle, m);
    // Extend the visibility of what is still unfinished every half timeout.
    const extender = setInterval(() => {
      const entries = [...pending.values()].slice(0, 10).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: visibility }));
      if (entries.length === 0) return;
      sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: opts.queueUrl, Entries: entries })).then(
        (r) => {
          metrics.inc('visibilityExtended', r.Successful?.length ?? 0);
          qlog.info({ extended: r.Successful?.length ?? 0, visibilityTimeoutSeconds: visibility }, 'SQS batch still in progress: visibility extended');
        },
        (err: unknown) => qlog.warn({ err }, 'ChangeMessageVisibilityBatch failed'),
      );
    }, Math.max(500, (visibility * 1000) / 2));
    const toDelete: Message[] = [];
    let failed = 0;
    try {
      await Promise.all(
        messages.map(async (m) => {
          let r: IngestResult;
          try {
            r = await handle(m);
          } catch (err) {
            qlog.error({ err, sqsMessageId: m.MessageId }, 'SQS message handling failed (bug): left in the queue');
            r = { kind: 'unavailable', reason: 'internal', httpStatus: 503 };
          }
          if (r.kind === 'done') {
            toDelete.push(m);
          } else if (r.kind === 'rejected') {
            metrics.refused(r.reason);
            qlog.warn({ sqsMessageId: m.MessageId, reason: r.reason, detail: r.detail, receiveCount: m.Attributes?.ApproximateReceiveCount }, 'SQS message refused: left for the dead-letter queue');
          } else {
            failed++;
            metrics.failed(r.reason);
            qlog.warn({ sqsMessageId: m.MessageId, reason: r.reason, err: r.detail, receiveCount: m.Attributes?.ApproximateReceiveCount }, 'SQS message not recorded now: left in the queue to come back');
          }
          if (r.kind !== 'done' && m.ReceiptHandle) pending.delete(m.ReceiptHandle);
        }),
      );
      if (toDelete.length > 0) {
        const r = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: opts.queueUrl, Entries: toDelete.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        metrics.inc('deleted', r.Successful?.length ?? 0);
        // A failed delete only means the message comes back: recorded already, it is then a duplicate.
        if ((r.Failed?.length ?? 0) > 0) qlog.warn({ failed: r.Failed }, 'DeleteMessageBatch: some messages not deleted (they come back as duplicates)');
      }
    } finally {
      clearInterval(extender);
    }
    return { deleted: toDelete.length, failed };
  };

  const poll = async (): Promise<void> => {
    while (!stopping) {
      const abort = new AbortController();
      receiveAborts.add(abort);
      let messages: Message[];
      try {
        const r = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: opts.queueUrl,
            MaxNumberOfMessages: maxMessages,
            WaitTimeSeconds: waitTimeSeconds,
            MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
          }),
          { abortSignal: abort.signal },
        );
        messages = r.Messages ?? [];
      } catch (err) {
        if (stopping) break;
        metrics.failed('receive');
        qlog.warn({ err }, 'SQS ReceiveMessage failed; retrying');
        await sleep(backoffMs);
        continue;
      } finally {
        receiveAborts.delete(abort);
      }
      if (messages.length === 0) continue;
      const now = Date.now();
      for (const m of messages) {
        metrics.inc('received');
        const sent = Number(m.Attributes?.SentTimestamp);
        if (Number.isFinite(sent)) metrics.lagMs(Math.max(0, now - sent));
      }
      // Once received, a batch is finished even while stopping (graceful stop).
      const { deleted, failed } = await processBatch(messages);
      if (deleted === 0 && failed > 0 && !stopping) await sleep(backoffMs);
    }
  };

  const loops = Array.from({ length: pollers }, () => poll());
  const all = Promise.all(loops);
  qlog.info({ pollers, waitTimeSeconds, maxMessages, visibilityTimeoutSeconds: visibility, rawMessageDelivery: acceptRaw }, 'SQS ingest started');
  let stopped: Promise<void> | undefined;
  return {
    metrics,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        for (const a of receiveAborts) a.abort();
        for (const w of wakeups) w();
        await all;
        if (ownClient) sqs.destroy();
        qlog.info(metrics.snapshot(), 'SQS ingest stopped');
      })();
      return stopped;
    },
  };
}

/** Options of the `ingest-sqs` command. */
export interface IngestSqsCliOptions {
  queueUrl: string;
  sqsEndpoint?: string;
  raw: boolean;
  pollers: string;
  visibilityTimeout?: string;
}

/**
 * The `ingest-sqs` consumer options from the config and command options (without `temporal`):
 * the webhook's topic allowlist and replay settings; in sandbox mode the local sandbox's signing
 * host and CA, read from the sandbox itself (`SANDBOX_PORT`), and its credentials for SQS.
 *
 * @throws Error naming the option or the unreachable sandbox.
 */
export async function ingestSqsCliOptions(
  config: { mode: 'sandbox' | 'aws'; aws: { region: string }; webhook: { allowedTopicArns: readonly string[] }; sandbox: { port: number } },
  o: IngestSqsCliOptions,
): Promise<Omit<SqsIngestOptions, 'temporal'>> {
  const pollers = Number(o.pollers);
  const visibility = o.visibilityTimeout !== undefined ? Number(o.visibilityTimeout) : undefined;
  const base: Omit<SqsIngestOptions, 'temporal'> = {
    queueUrl: o.queueUrl,
    allowedTopicArns: [...config.webhook.allowedTopicArns],
    rawMessageDelivery: o.raw,
    pollers,
    ...(visibility !== undefined ? { visibilityTimeoutSeconds: visibility } : {}),
  };
  if (config.mode === 'aws') {
    return { ...base, sqs: { region: regionOfQueueUrl(o.queueUrl) ?? config.aws.region, ...(o.sqsEndpoint !== undefined ? { endpoint: o.sqsEndpoint } : {}) } };
  }
  const sandboxUrl = `http://127.0.0.1:${config.sandbox.port}`;
  let info: { certHost: string; region: string };
  let ca: string;
  try {
    info = (await (await fetch(`${sandboxUrl}/_sandbox/info`, { signal: AbortSignal.timeout(5_000) })).json()) as { certHost: string; region: string };
    ca = await (await fetch(`${sandboxUrl}/_sandbox/ca.pem`, { signal: AbortSignal.timeout(5_000) })).text();
  } catch (err) {
    throw new Error(`cannot reach the local SES sandbox at ${sandboxUrl} (is \`ses-lifecycle dev\` running? For real AWS set SES_LIFECYCLE_MODE=aws)`, { cause: err });
  }
  const host = new RegExp(`^${info.certHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return {
    ...base,
    certHostPattern: host,
    subscribeHostPattern: host,
    extraCaPem: ca,
    sqs: { region: info.region, credentials: { ...SANDBOX_CREDENTIALS }, ...(o.sqsEndpoint !== undefined ? { endpoint: o.sqsEndpoint } : {}) },
  };
}
