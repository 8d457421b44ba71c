/**
 * Outcome counters of the SNS webhook. A plain object you can read at any time (tests, logs),
 * mirrored into a prom-client registry when one is passed in (the metrics listener serves it).
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** Why a request was refused for good (4xx). Stable strings: they are metric labels. */
export const RejectReason = {
  PayloadTooLarge: 'payload-too-large',
  UnsupportedMediaType: 'unsupported-media-type',
  Malformed: 'malformed',
  MessageTypeMismatch: 'message-type-mismatch',
  UnknownMessageType: 'unknown-message-type',
  UnsupportedSignatureVersion: 'unsupported-signature-version',
  CertUrlNotAllowed: 'cert-url-not-allowed',
  /** The certificate at an allowed URL failed its checks (subject, validity, chain). */
  CertNotTrusted: 'cert-not-trusted',
  InvalidSignature: 'invalid-signature',
  TopicNotAllowed: 'topic-not-allowed',
  StaleTimestamp: 'stale-timestamp',
  SubscribeUrlNotAllowed: 'subscribe-url-not-allowed',
  InvalidSesEvent: 'invalid-ses-event',
  RawDeliveryDisabled: 'raw-delivery-disabled',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Why a request could not be handled now and SNS should retry (5xx). */
export const UnavailableReason = {
  CertFetch: 'cert-fetch',
  CertFetchTimeout: 'cert-fetch-timeout',
  CertFetchBusy: 'cert-fetch-busy',
  Temporal: 'temporal',
  ConfirmFailed: 'confirm-failed',
  Internal: 'internal',
} as const;
export type UnavailableReason = (typeof UnavailableReason)[keyof typeof UnavailableReason];

/**
 * Where one message's time went, in ms, filled in as its stages run (a stage that did not run
 * stays absent): `verify` the signature check, `lookup` the visibility search by SES message id,
 * `describe` the check that the named workflow is a message lifecycle (cached per instance, so
 * only a lifecycle's first event pays it), `signal` the signal (or signal-with-start) itself.
 */
export interface StageTimings {
  verify?: number;
  lookup?: number;
  describe?: number;
  signal?: number;
}

/** The stages of {@link StageTimings}, in the order they run. */
export const INGEST_STAGES = ['verify', 'lookup', 'describe', 'signal'] as const satisfies readonly (keyof StageTimings)[];

/** What every ingestion path (webhook, SQS) counts of the notifications it handled. */
export interface IngestCounts {
  /** Events handed to Temporal: `signalled + orphaned`. */
  recorded: number;
  signalled: number;
  orphaned: number;
  /** Known duplicates: handled (answered 200 / deleted) without signalling again. */
  duplicate: number;
  /** Valid notifications whose Message is not an SES event, or an unknown event type for an unknown message (handled, nothing recorded). */
  ignored: number;
  subscriptionsConfirmed: number;
  unsubscribeNotices: number;
}

/** A snapshot of the counters. */
export interface WebhookCounts extends IngestCounts {
  /** Requests that reached the SNS route's handler (after body parsing). */
  received: number;
  /** Events Temporal can never accept (INVALID_ARGUMENT): 200 so SNS stops retrying, logged. */
  refused: number;
  rejected: Partial<Record<RejectReason, number>>;
  unavailable: Partial<Record<UnavailableReason, number>>;
}

type Outcome = Exclude<keyof WebhookCounts, 'rejected' | 'unavailable' | 'recorded'>;

/** Counters for webhook outcomes. One instance per app (pass the same one to share). */
export class WebhookMetrics {
  private readonly counts: WebhookCounts = {
    received: 0,
    recorded: 0,
    signalled: 0,
    orphaned: 0,
    refused: 0,
    duplicate: 0,
    ignored: 0,
    subscriptionsConfirmed: 0,
    unsubscribeNotices: 0,
    rejected: {},
    unavailable: {},
  };
  private readonly counter: Counter<'outcome' | 'reason'> | undefined;
  private readonly events: Counter<'type'> | undefined;
  private readonly eventCounts: Record<string, number> = {};
  private readonly stageSeconds: Histogram<'stage'> | undefined;

  /**
   * @param opts.registry prom-client registry to register `ses_webhook_requests_total` in.
   * @throws Error from prom-client when that metric name is already registered there.
   */
  constructor(opts: { registry?: Registry } = {}) {
    this.counter = opts.registry
      ? new Counter({
          name: 'ses_webhook_requests_total',
          help: 'SNS webhook requests by outcome (received, signalled, orphaned, duplicate, ignored, rejected, unavailable, ...) and reason',
          labelNames: ['outcome', 'reason'],
          registers: [opts.registry],
        })
      : undefined;
    this.events = opts.registry
      ? new Counter({ name: 'ses_events_total', help: 'SES events recorded by the webhook, by event type', labelNames: ['type'], registers: [opts.registry] })
      : undefined;
    this.stageSeconds = opts.registry
      ? new Histogram({
          name: 'ses_webhook_stage_seconds',
          help: 'Time of each stage of an SNS request: handler (the whole route handler), verify (signature), lookup (visibility search by SES message id), describe (lifecycle type check, first event of a lifecycle only), signal',
          labelNames: ['stage'],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers: [opts.registry],
        })
      : undefined;
  }

  /** Observes the stage times of one request (ms; `handler` is the whole route handler). */
  stages(t: StageTimings & { handler: number }): void {
    if (!this.stageSeconds) return;
    this.stageSeconds.observe({ stage: 'handler' }, t.handler / 1000);
    for (const stage of INGEST_STAGES) {
      const ms = t[stage];
      if (ms !== undefined) this.stageSeconds.observe({ stage }, ms / 1000);
    }
  }

  /** Counts one recorded SES event by type (unknown future types are counted as `Unknown`). */
  event(type: string): void {
    const label = type.startsWith('Unknown:') ? 'Unknown' : type;
    this.eventCounts[label] = (this.eventCounts[label] ?? 0) + 1;
    this.events?.inc({ type: label });
  }

  /** Recorded events by type so far. */
  eventsByType(): Record<string, number> {
    return { ...this.eventCounts };
  }

  /** Counts one outcome. `signalled` and `orphaned` also count as `recorded`. */
  inc(outcome: Outcome): void {
    this.counts[outcome] += 1;
    this.counter?.inc({ outcome, reason: '' });
    if (outcome === 'signalled' || outcome === 'orphaned') {
      this.counts.recorded += 1;
      this.counter?.inc({ outcome: 'recorded', reason: '' });
    }
  }

  /** Counts a permanent refusal (4xx). */
  rejected(reason: RejectReason): void {
    this.counts.rejected[reason] = (this.counts.rejected[reason] ?? 0) + 1;
    this.counter?.inc({ outcome: 'rejected', reason });
  }

  /** Counts a temporary failure (5xx, SNS retries). */
  unavailable(reason: UnavailableReason): void {
    this.counts.unavailable[reason] = (this.counts.unavailable[reason] ?? 0) + 1;
    this.counter?.inc({ outcome: 'unavailable', reason });
  }

  /** A copy of the current counts. */
  snapshot(): WebhookCounts {
    return { ...this.counts, rejected: { ...this.counts.rejected }, unavailable: { ...this.counts.unavailable } };
  }
}
