/**
 * Public types of the local SES sandbox. See `index.ts` for the entry point.
 */
import type { SnsMessage, SnsMessageType, UnsignedSnsMessage } from './sns-signing';
import type { SandboxSqsOptions } from './sqs-delivery';

/**
 * The few methods the sandbox logs with. A pino logger fits; so does any object with these
 * methods. Fields come first, message second (pino's convention).
 */
export interface SandboxLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** SNS HTTP(S) delivery policy of the sandbox (SNS defaults: 3 retries, 20 s apart, 15 s timeout). */
export interface SandboxSnsOptions {
  /** Retries after the first attempt on 5xx, connection error or timeout. Default 3. */
  retries?: number;
  /** Delay between attempts. Default 20000. */
  retryDelayMs?: number;
  /** Per-attempt timeout. Default 15000. */
  timeoutMs?: number;
  /** Bound on concurrent POSTs to subscribers. Default 64. */
  maxInFlight?: number;
}

/** Misbehaviour on purpose, driven by a seeded PRNG so runs are reproducible. */
export interface SandboxChaosOptions {
  /** Probability (0..1) that a notification is delivered one extra time (same MessageId). */
  duplicateProbability?: number;
  /** Publish each message's events in shuffled order (e.g. Bounce before Delivery). */
  reorder?: boolean;
  /**
   * Probability (0..1) that an SES event is never handed to SNS (SNS gave up on the endpoint: the
   * event is lost, GetMessageInsights still reports it). Finer rules: {@link SesSandbox.dropDeliveries}.
   */
  dropProbability?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
}

/** Options of {@link startSesSandbox}. Every field has a default. */
export interface SandboxOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** SESv2 + SNS query API over HTTP. Default 0 (a free port). */
  port?: number;
  /** HTTPS server (signing certificate, SubscribeURL/UnsubscribeURL). Default 0. */
  httpsPort?: number;
  /** Default `'us-east-1'`. */
  region?: string;
  /** Default `'123456789012'`. */
  accountId?: string;
  /** Recipients per second (token bucket). Excess SendEmail → 429 TooManyRequestsException. Default 14. */
  maxSendRate?: number;
  /** Recipients per rolling 24 hours. Default 50000. */
  max24HourSend?: number;
  /** Account-level suppression list for BOUNCE and COMPLAINT. Default true. */
  accountSuppression?: boolean;
  /**
   * SignatureVersion of topics created without the `SignatureVersion` attribute. Default `'1'`
   * (RSA-SHA1), as SNS; `CreateTopic`/`SetTopicAttributes` `SignatureVersion=2` switch a topic to RSA-SHA256.
   */
  signatureVersion?: '1' | '2';
  sns?: SandboxSnsOptions;
  /**
   * The SQS API that SNS subscriptions with Protocol `sqs` (Endpoint = queue ARN of this region
   * and account) are delivered to, e.g. moto's server. Default: none (`sqs` subscriptions refused).
   */
  sqs?: SandboxSqsOptions;
  chaos?: SandboxChaosOptions;
  /** Delay between accepting SendEmail and publishing its first events; later events follow at the same pace. Default 50. */
  eventDelayMs?: number;
  /** Structured logger (e.g. pino). Default: silent. */
  logger?: SandboxLogger;
  /**
   * Credentials SNS API requests must be SigV4-signed with; no other pair is accepted. Default
   * {@link SANDBOX_CREDENTIALS} (public constants).
   */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * Folder where the sandbox keeps state across restarts (`sandbox-state.json`: the account
   * suppression list, configuration sets and their event destinations, the soft-bounce
   * simulator's memory). Default: none, everything in memory.
   */
  stateDir?: string;
  /** Latency of every PutSuppressedDestination answer (slow follow-ups), ms. Default 0. */
  suppressionDelayMs?: number;
  /**
   * GetMessageInsights calls per second before TooManyRequestsException. Default 1 (SES's
   * quota); load tests that are not about the quota raise it.
   */
  insightsRatePerSecond?: number;
}

/** A header of an accepted message. */
export interface MessageHeader {
  name: string;
  value: string;
}

/** One message that SendEmail accepted. */
export interface AcceptedMessage {
  /** The SES message id returned to the caller (`0100…-…-000000`). */
  sesMessageId: string;
  from: string;
  destination: { to: string[]; cc: string[]; bcc: string[] };
  replyTo: string[];
  subject: string;
  /** EmailTags as sent. */
  tags: { name: string; value: string }[];
  /** Custom headers from `Content.Simple.Headers` (or every header of a raw message). */
  headers: MessageHeader[];
  configurationSetName: string | null;
  /** ISO timestamp. */
  acceptedAt: string;
  contentKind: 'simple' | 'raw' | 'template';
}

/** SES event types the sandbox publishes (event-publishing `eventType` values). */
export type SandboxEventType = 'Send' | 'Delivery' | 'Bounce' | 'Complaint' | 'DeliveryDelay' | 'Reject' | 'Open' | 'Click' | 'Rendering Failure' | 'Subscription';

/** One HTTP delivery attempt of an SNS message to one subscription. */
export interface DeliveryAttempt {
  /** ISO timestamp when the attempt started. */
  at: string;
  durationMs: number;
  /** HTTP status, when a response arrived. */
  statusCode?: number;
  /** Connection error or `timeout`, when no response arrived. */
  error?: string;
}

/** Delivery status of one ledger entry. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/**
 * One SNS message sent (or meant to be sent) to one subscription. The ledger is the truth for
 * "nothing lost": a notification is delivered iff some entry with its `snsMessageId` is
 * `delivered`.
 */
export interface LedgerEntry {
  snsMessageId: string;
  type: SnsMessageType;
  topicArn: string;
  /** `null` when the topic had no confirmed subscription (then `finalStatus` is `'failed'`). */
  subscriptionArn: string | null;
  endpoint: string | null;
  /** SES event type, for notifications carrying SES events. */
  eventType: SandboxEventType | null;
  sesMessageId: string | null;
  /** Recipients the event concerns (for Send: the whole destination). */
  recipients: string[];
  /** `true` for the extra copy injected by `chaos.duplicateProbability`. */
  duplicate: boolean;
  rawMessageDelivery: boolean;
  /** ISO time of publication (the SNS `Timestamp`). */
  publishedAt: string;
  /** The SNS `Message` (for SES events: the event JSON). */
  message: string;
  deliveries: DeliveryAttempt[];
  finalStatus: DeliveryStatus;
  /** Why the entry failed, when it did. */
  failureReason?: string;
}

/**
 * A fault consumed by the next PutSuppressedDestination call (queue order): how a follow-up
 * fails in production (slow API, IAM refusal, SES trouble, a connection lost mid-call).
 */
export type SuppressionFault =
  /** Answers normally, after `ms`. */
  | { kind: 'delay'; ms: number }
  /** 403 AccessDeniedException (missing ses:PutSuppressedDestination permission). Nothing stored. */
  | { kind: 'access-denied' }
  /** 500 InternalFailure. Nothing stored. */
  | { kind: 'internal' }
  /** The socket is destroyed without an answer (the client cannot know). Nothing stored. */
  | { kind: 'reset' };

/** SESv2 error codes a {@link SendFault} can inject. */
export type SendFaultErrorCode =
  | 'MessageRejected'
  | 'MailFromDomainNotVerifiedException'
  | 'AccountSuspendedException'
  | 'SendingPausedException'
  | 'BadRequestException'
  | 'LimitExceededException'
  | 'NotFoundException';

/** A fault consumed by the next SendEmail call (one fault per call, in queue order). */
export type SendFault =
  /** 429 TooManyRequestsException. Nothing sent. */
  | { kind: 'throttle' }
  /** That SESv2 error, with its real HTTP status unless `status` overrides it. Nothing sent. */
  | { kind: 'error'; code: SendFaultErrorCode; status?: number; message?: string }
  /** 500 InternalFailure. Nothing sent. */
  | { kind: 'internal' }
  /** The message IS accepted and its events published, but the answer waits `hangMs` (client times out). */
  | { kind: 'accept-then-hang'; hangMs: number }
  /** The message IS accepted and its events published, then the socket is destroyed without an answer. */
  | { kind: 'accept-then-reset' }
  /** The socket is destroyed before anything is accepted. Nothing sent. */
  | { kind: 'reset-before-accept' };

/** A running sandbox. Call {@link SesSandbox.close} when done. */
export interface SesSandbox {
  /** `http://HOST:PORT`: pass as `endpoint` to `SESv2Client` and `SNSClient`. */
  readonly endpoint: string;
  /** `https://localhost:HTTPSPORT`. */
  readonly httpsOrigin: string;
  /** The sandbox's own CA (PEM). Trust it explicitly, in sandbox mode only. */
  readonly caCertPem: string;
  /** `localhost:HTTPSPORT`: the host a webhook must allow for SigningCertURL/SubscribeURL in sandbox mode. */
  readonly certHost: string;
  /** The `SigningCertURL` of every message this sandbox signs. */
  readonly signingCertUrl: string;
  readonly region: string;
  readonly accountId: string;
  /** The credentials SNS API calls must be signed with (SESv2 calls are not checked). */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * Creates a configuration set, an SNS topic (default name `<name>-events`), an HTTP(S)
   * subscription of `webhookUrl` to it (or an SQS subscription of `queueArn`, needing the `sqs`
   * option; the queue policy must let the topic SendMessage), and an event destination for all event types. The
   * subscription confirmation is posted to the webhook (a real handshake); this resolves once
   * everything is created, not necessarily confirmed (see {@link waitForSubscriptionConfirmed}).
   *
   * @throws {Error} when the configuration set exists or the webhook URL is not http(s).
   */
  createConfigurationSet(
    name: string,
    opts: { webhookUrl: string; topicName?: string; rawMessageDelivery?: boolean } | { queueArn: string; topicName?: string; rawMessageDelivery?: boolean },
  ): Promise<{ topicArn: string; subscriptionArn: string }>;
  /**
   * Resolves when the topic has at least one subscription and all of them are confirmed.
   *
   * @throws {Error} on timeout (default 10 s) or when the sandbox closes first.
   */
  waitForSubscriptionConfirmed(topicArn: string, timeoutMs?: number): Promise<void>;
  /** Everything SendEmail accepted, oldest first (copies). */
  sentMessages(): AcceptedMessage[];
  /** Every SNS message published to a subscription, with its attempts (copies). */
  ledger(): LedgerEntry[];
  /**
   * Resolves when no event is waiting to be published and no SNS message is pending delivery
   * or retry.
   *
   * @throws {Error} on timeout (default 30 s; the message counts the pending work) or on close.
   */
  waitForIdle(timeoutMs?: number): Promise<void>;
  /** Queues faults; each is consumed by one later SendEmail call, in order. */
  injectSendFaults(faults: SendFault[]): void;
  /** Queues faults; each is consumed by one later PutSuppressedDestination call, in order. */
  injectSuppressionFaults(faults: SuppressionFault[]): void;
  /** Changes the send rate (recipients per second) of the token bucket. */
  setMaxSendRate(n: number): void;
  /**
   * Chaos: from now on, SES events matching a rule are never handed to SNS (lost, as when SNS
   * gives up on an endpoint); GetMessageInsights still reports them. Replaces earlier rules; `[]`
   * stops dropping.
   */
  dropDeliveries(rules: import('./ses-service').DropRule[]): void;
  /** Events dropped by {@link dropDeliveries} or `chaos.dropProbability`, oldest first. */
  droppedEvents(): import('./ses-service').DroppedEvent[];
  /** Hands every dropped event to SNS now (late copies, as after a redrive); returns how many. */
  redeliverDropped(): number;
  /** Queues faults; each is consumed by one later GetMessageInsights call, in order. */
  injectInsightsFaults(faults: import('./ses-service').InsightsFault[]): void;
  /** GetMessageInsights calls: answered, refused by the rate limit (TooManyRequestsException), unknown ids. */
  insightsStats(): { calls: number; throttled: number; notFound: number; recent: { at: number; outcome: string }[] };
  /**
   * Signs an SNS message with the sandbox's signing key, as SNS would (uses the configured
   * SignatureVersion unless `version` is given). For webhook tests that forge messages.
   */
  signMessage(msg: UnsignedSnsMessage, version?: '1' | '2'): SnsMessage;
  /** Closes both servers, aborts in-flight posts and cancels every timer. Idempotent. */
  close(): Promise<void>;
}
