/**
 * Shared definitions: the one contract between the client, the webhook, the worker and the
 * workflow. `defineSignal`/`defineQuery` only return `{ type, name }`, so importing this module
 * costs nothing and is safe inside the workflow sandbox (no Node built-ins here).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { LifecycleSummary, SesEvent } from './lifecycle';

/** Default task queue for lifecycle workflows and their activities. */
export const TASK_QUEUE = 'ses-lifecycle';

/** EmailTag name that carries the lifecycle id on every message we send (SES tag charset). */
export const LIFECYCLE_TAG = 'lifecycle-id';
/** Header that carries the lifecycle id, for identity notifications and `mail.headers`. */
export const LIFECYCLE_HEADER = 'X-Lifecycle-Id';

/** Workflow id prefixes: readable in the Temporal UI. */
export const WORKFLOW_ID_PREFIX = { message: 'msg-', orphan: 'orphan-' } as const;

/** Workflow type names (the exported function names in `workflows/`). */
export const WORKFLOW_TYPE = { message: 'messageLifecycle', orphan: 'orphanLifecycle' } as const;

/** Payload of the `sesEvent` signal: one normalized SES event. */
export interface SesEventSignal {
  event: SesEvent;
}

/** Delivers one SES event to its lifecycle. Duplicates (same `event.id`) are ignored. */
export const sesEventSignal = defineSignal<[SesEventSignal]>('sesEvent');

/** Current state of a lifecycle. */
export interface LifecycleStatus extends LifecycleSummary {
  lifecycleId: string;
  kind: 'message' | 'orphan';
  /** Where the workflow is in its life. */
  phase: 'sending' | 'awaiting-outcome' | 'complaint-window' | 'resend-backoff' | 'completed';
  attempts: { attempt: number; sesMessageId?: string; recipients: string[]; sentAt: string }[];
  /** Follow-ups run so far: suppressions, resends, callbacks, deadline expiry. */
  followUps: FollowUp[];
  /** The most recent events (bounded list, newest last). */
  latestEvents: { type: string; timestamp: string; recipients: string[]; sesMessageId: string }[];
}

/** A follow-up action the lifecycle performed. */
export interface FollowUp {
  kind: 'suppressed' | 'resend' | 'deadline' | 'callback' | 'ambiguous-send';
  at: string;
  detail: string;
}

/** The `status` query: the current {@link LifecycleStatus}. */
export const statusQuery = defineQuery<LifecycleStatus>('status');

/** Typed search attributes; registered on the namespace at start-up (see README). */
export const SA = {
  status: defineSearchAttributeKey('EmailStatus', SearchAttributeType.KEYWORD),
  recipients: defineSearchAttributeKey('EmailRecipients', SearchAttributeType.KEYWORD_LIST),
  sesMessageIds: defineSearchAttributeKey('SesMessageIds', SearchAttributeType.KEYWORD_LIST),
  tags: defineSearchAttributeKey('EmailTags', SearchAttributeType.KEYWORD_LIST),
  kind: defineSearchAttributeKey('LifecycleKind', SearchAttributeType.KEYWORD),
} as const;

/** Search-attribute names and types, for registration (`temporal operator search-attribute create`). */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'KeywordList'> = {
  EmailStatus: 'Keyword',
  EmailRecipients: 'KeywordList',
  SesMessageIds: 'KeywordList',
  EmailTags: 'KeywordList',
  LifecycleKind: 'Keyword',
};

/** A duration as milliseconds or a Temporal duration string such as `'48h'`, `'7d'`, `'30s'`. */
export type Duration = number | string;

/** Lifecycle policy. Every duration has a production default; tests pass seconds. */
export interface LifecyclePolicy {
  /** No outcome by then → recipient `unconfirmed` and a follow-up runs. Default 72h. */
  deliveryDeadline: Duration;
  /** After the last outcome, stay open this long for complaints. Default 48h. */
  complaintWindow: Duration;
  /** Total SES messages per lifecycle, first send included (soft-bounce resends). Default 3. */
  maxSendAttempts: number;
  /** Backoff before the first resend; doubles each time. Default 15m. */
  resendBackoff: Duration;
  /** After an ambiguous send, wait this long for a Send event before resending. Default 5m. */
  ambiguousSendWait: Duration;
  /** Upper bound of one sendEmail activity (suppression check + SendEmail); a crashed worker is detected after it. Default 30s. */
  sendTimeout: Duration;
  /** Suppress hard-bounced and complained addresses. Default true. */
  suppressOnHardBounce: boolean;
  suppressOnComplaint: boolean;
  /** Skip recipients on the suppression list before sending. Default true. */
  checkSuppressionBeforeSend: boolean;
  /**
   * Continue-as-new once the history has this many events (heavy open/click traffic), well
   * before Temporal's 50k-event limit. State carries over. Default 8000.
   */
  maxHistoryEvents: number;
}

/** Defaults for {@link LifecyclePolicy}. */
export const DEFAULT_POLICY: Readonly<LifecyclePolicy> = Object.freeze({
  deliveryDeadline: '72h',
  complaintWindow: '48h',
  maxSendAttempts: 3,
  resendBackoff: '15m',
  ambiguousSendWait: '5m',
  sendTimeout: '30s',
  suppressOnHardBounce: true,
  suppressOnComplaint: true,
  checkSuppressionBeforeSend: true,
  maxHistoryEvents: 8_000,
});

/** The email to send (validated by the client before anything starts). */
export interface EmailMessage {
  from: string;
  to: string[];
  cc?: string[];
  bcc?: string[];
  replyTo?: string[];
  subject: string;
  text?: string;
  html?: string;
  /** User tags, sent as SES EmailTags (SES charset) and shown as search attribute `EmailTags`. */
  tags?: Record<string, string>;
  /** Extra headers (name → value). */
  headers?: Record<string, string>;
}

/** Input of the `messageLifecycle` workflow. */
export interface MessageLifecycleInput {
  lifecycleId: string;
  message: EmailMessage;
  configurationSetName?: string;
  policy?: Partial<LifecyclePolicy>;
  /** App callback URL for state changes (optional). */
  callbackUrl?: string;
  /** Carried over by continue-as-new; never set by callers. */
  carried?: CarriedState;
}

/** State carried across continue-as-new. */
export interface CarriedState {
  events: SesEvent[];
  attempts: LifecycleStatus['attempts'];
  suppressed: string[];
  sendError?: { type: string; message: string };
  deadlinePassed: boolean;
  followUps: FollowUp[];
  suppressionsDone: string[];
  /** Callbacks not yet delivered, the last sequence number used, and the last state notified. */
  callbacks?: { queue: CallbackPayload[]; seq: number; last?: string };
  /** Epoch ms of the delivery deadline / end of the complaint window, when set. */
  deadlineAt?: number;
  windowEndsAt?: number;
}

/** Input of the `orphanLifecycle` workflow (events whose lifecycle is unknown or closed). */
export interface OrphanLifecycleInput {
  sesMessageId: string;
  /** Lifecycle id the events named, if any (e.g. a closed lifecycle). */
  claimedLifecycleId?: string;
  /** Stay open this long after the last event. Default 48h. */
  idleTimeout?: Duration;
  suppressOnHardBounce?: boolean;
  suppressOnComplaint?: boolean;
  carried?: { events: SesEvent[]; followUps: FollowUp[]; suppressionsDone: string[] };
}

/** Body of an app callback (one per state change; `eventId` is stable across retries). */
export interface CallbackPayload {
  eventId: string;
  lifecycleId: string;
  status: string;
  phase: LifecycleStatus['phase'];
  recipients: { email: string; status: string; bounceType?: string; bounceSubType?: string }[];
  sesMessageIds: string[];
  at: string;
}

/** Final result of a lifecycle: the per-recipient summary. */
export type LifecycleResult = LifecycleStatus;

/** Stable error `type` strings used in ApplicationFailures (one list, see activities/ses-errors). */
export const ErrorType = {
  SesThrottled: 'SesThrottled',
  SesUnavailable: 'SesUnavailable',
  SesAmbiguous: 'SesAmbiguous',
  SesMessageRejected: 'SesMessageRejected',
  SesMailFromDomainNotVerified: 'SesMailFromDomainNotVerified',
  SesAccountSuspended: 'SesAccountSuspended',
  SesSendingPaused: 'SesSendingPaused',
  SesBadRequest: 'SesBadRequest',
  SesLimitExceeded: 'SesLimitExceeded',
  SesNotFound: 'SesNotFound',
  SesAccessDenied: 'SesAccessDenied',
  SesUnknown: 'SesUnknown',
  CallbackRejected: 'CallbackRejected',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Converts a {@link Duration} to milliseconds.
 *
 * @throws {RangeError} for anything that is not a non-negative number or `<number><ms|s|m|h|d>`.
 */
export function durationMs(d: Duration): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new RangeError(`invalid duration: ${d}`);
    return d;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(d);
  if (!m) throw new RangeError(`invalid duration "${d}": use a number of ms or e.g. "30s", "15m", "48h", "7d"`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}
