/**
 * Shared definitions: the one contract between the client, the webhook, the worker and the
 * workflow. `defineSignal`/`defineQuery` only return `{ type, name }`, so importing this module
 * costs nothing and is safe inside the workflow sandbox (no Node built-ins here).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { EventStoreSnapshot, LifecycleSummary, SesEvent } from './lifecycle';

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

/** Payload of the `sesEvents` signal: several events of one lifecycle at once. */
export interface SesEventsSignal {
  events: SesEvent[];
}

/**
 * Delivers a batch of SES events (the webhook batches opens and clicks per lifecycle under a
 * flood, so one signal carries many). Handled by lifecycles with `core: 2` (memo {@link CORE_MEMO}).
 */
export const sesEventsSignal = defineSignal<[SesEventsSignal]>('sesEvents');

/** Most events one `sesEvents` signal carries (the webhook's batches are smaller). */
export const MAX_BATCH_EVENTS = 200;

/** Memo key holding a message lifecycle's code version (`core`), read by the webhook. */
export const CORE_MEMO = 'core';

/** Current state of a lifecycle. */
export interface LifecycleStatus extends LifecycleSummary {
  /** One readable line: status, phase, and per recipient what happened and why (absent in results of older versions). */
  headline?: string;
  lifecycleId: string;
  kind: 'message' | 'orphan';
  /** Where the workflow is in its life. */
  phase: 'sending' | 'awaiting-outcome' | 'complaint-window' | 'resend-backoff' | 'completed' | 'cancelled';
  attempts: { attempt: number; sesMessageId?: string; recipients: string[]; sentAt: string }[];
  /** Follow-ups run so far: suppressions, resends, callbacks, deadline expiry. */
  followUps: FollowUp[];
  /** The most recent events (bounded list, newest last). */
  latestEvents: { type: string; timestamp: string; recipients: string[]; sesMessageId: string; source?: 'insights' }[];
  /** Events recorded from GetMessageInsights by a repair (rule 13); absent when none. */
  repairedEvents?: number;
  /** Events that named this lifecycle but belong to an SES message it never sent (forwarded to that message's orphan). */
  foreignEvents?: number;
  /** For orphans: recipients left out of the EmailRecipients search attribute to fit its size limit. */
  recipientsTruncated?: number;
}

/** A follow-up action the lifecycle performed. */
export interface FollowUp {
  kind: 'suppressed' | 'suppression-failed' | 'resend' | 'deadline' | 'callback' | 'ambiguous-send' | 'send-retry' | 'foreign-event' | 'cancelled' | 'repair';
  at: string;
  detail: string;
}

/** The `status` query: the current {@link LifecycleStatus}. */
export const statusQuery = defineQuery<LifecycleStatus>('status');

/** What one repair from GetMessageInsights did (rule 13). */
export interface RepairResult {
  lifecycleId: string;
  /** SES message ids asked about. */
  asked: string[];
  /** Events recorded from insights (new facts), by type. */
  recorded: Record<string, number>;
  /** Insights events this lifecycle already knew (from SNS or an earlier repair). */
  known: number;
  /** Message ids GetMessageInsights could not answer for, with the reason (never fails the lifecycle). */
  unavailable: { sesMessageId: string; reason: string }[];
  status: string;
}

/**
 * The `repair` update: fetch GetMessageInsights for the lifecycle's SES message ids now and
 * record what SNS did not deliver (the `repair` CLI command). Answers when the repair is done.
 */
export const repairUpdate = defineUpdate<RepairResult, []>('repair');

/**
 * Task queue of the GetMessageInsights activity: `<lifecycle task queue>-insights`, served by
 * `createInsightsWorker` with a server-enforced rate below SES's limit for the operation.
 */
export function insightsTaskQueue(taskQueue: string): string {
  return `${taskQueue}-insights`;
}

/**
 * GetMessageInsights calls per second on {@link insightsTaskQueue} (SES allows about 1): half of
 * it, so that a call delayed on its way (a loaded machine, the network) still arrives more than
 * a second after the previous one.
 */
export const INSIGHTS_RATE_PER_SECOND = 0.5;

/** Typed search attributes; registered on the namespace at start-up (see README). */
export const SA = {
  status: defineSearchAttributeKey('EmailStatus', SearchAttributeType.KEYWORD),
  /**
   * Every recipient address, then one `<status>:<recipient>` keyword per recipient (e.g.
   * `delivered:bob@example.com`) as far as the value limit allows, so a search for one
   * recipient's outcome finds the email whatever the other recipients did. (One attribute for
   * both: SQL visibility stores, the dev server's included, allow only 3 KeywordList attributes.)
   */
  recipients: defineSearchAttributeKey('EmailRecipients', SearchAttributeType.KEYWORD_LIST),
  sesMessageIds: defineSearchAttributeKey('SesMessageIds', SearchAttributeType.KEYWORD_LIST),
  tags: defineSearchAttributeKey('EmailTags', SearchAttributeType.KEYWORD_LIST),
  kind: defineSearchAttributeKey('LifecycleKind', SearchAttributeType.KEYWORD),
} as const;

/**
 * Search-attribute names and types, for registration. At most 3 KeywordList attributes: SQL
 * visibility (PostgreSQL, MySQL, SQLite, so the dev server too) refuses more.
 *
 * Search-attribute names and types, for registration (`temporal operator search-attribute create`). */
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
   * before Temporal's 10k-event warning, and short enough to replay quickly. State carries over (bounded, see README). Default 2000.
   */
  maxHistoryEvents: number;
  /** Retryable SendEmail failures (throttling, 5xx) tolerated per attempt before giving up. Default 30. */
  maxSendRetries: number;
  /** ... and for at most this long per attempt. Default 2h. */
  sendRetryFor: Duration;
  /**
   * At the delivery deadline, before marking anyone `unconfirmed`, read GetMessageInsights for
   * the lifecycle's SES messages and record what SNS did not deliver (rule 13). Default true.
   */
  repairFromInsights: boolean;
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
  maxHistoryEvents: 2_000,
  maxSendRetries: 30,
  sendRetryFor: '2h',
  repairFromInsights: true,
});

/**
 * Patch ids (`patched()`), one per workflow change that open lifecycles must survive. Listed
 * here so a deploy note can name them; never reuse or remove one while a lifecycle started
 * before it may be open (README "Deploying workflow changes").
 */
export const PATCHES = {
  /** v2 orphan lifecycle: bounded state, one idle timer. Orphan histories without it run workflows/v1. */
  orphanCoreV2: 'orphan-core-v2',
  /** Message lifecycles: repair from GetMessageInsights at the delivery deadline (rule 13). Histories without it mark the deadline at once. */
  insightsRepair: 'insights-repair',
} as const;

/**
 * Continue-as-new once a run's history holds this many bytes, whatever its event count (signals
 * carry whole events): far below Temporal's 10 MB warning, and short enough that a worker that
 * lost its cache replays a run within its workflow-task timeout.
 */
export const MAX_RUN_HISTORY_BYTES = 2 * 1024 * 1024;

/** The code version new message lifecycles start with (see {@link MessageLifecycleInput.core}). */
export const CURRENT_CORE = 2 as const;

/** The email to send (validated by the client before anything starts). */
export interface EmailMessage {
  from: string;
  to: string[];
  cc?: string[];
  bcc?: string[];
  replyTo?: string[];
  /** Required unless `template` is given (then the template's subject is used). */
  subject?: string;
  text?: string;
  html?: string;
  /**
   * An SES email template instead of `subject`/`text`/`html`: sent as SESv2 `Content.Template`
   * (`TemplateName`, `TemplateData` = `JSON.stringify(data)`). A variable missing from `data` makes
   * SES publish a Rendering Failure (the recipients end `failed`, rule 10).
   */
  template?: EmailTemplateRef;
  /** User tags, sent as SES EmailTags (SES charset) and shown as search attribute `EmailTags`. */
  tags?: Record<string, string>;
  /** Extra headers (name → value). */
  headers?: Record<string, string>;
}

/** A stored SES email template and the data it is rendered with. */
export interface EmailTemplateRef {
  /** Template name (SES: 1-64 ASCII letters, digits, `_` or `-`). */
  name: string;
  /** Replacement data: a JSON object (serialized at most {@link MAX_TEMPLATE_DATA_CHARS} characters). */
  data: Record<string, unknown>;
}

/** SES limit on `TemplateData` (the JSON string), in characters. */
export const MAX_TEMPLATE_DATA_CHARS = 262_144;

/** Input of the `messageLifecycle` workflow. */
export interface MessageLifecycleInput {
  /**
   * Code version of the lifecycle, chosen at start and carried by continue-as-new: `2` runs the
   * v2 core; absent (inputs written before it) runs the frozen v1 code. Costs no history event,
   * unlike a `patched()` marker, which keeps the happy path within its budget.
   */
  core?: 2;
  lifecycleId: string;
  message: EmailMessage;
  configurationSetName?: string;
  /**
   * The policy, resolved by the client against {@link DEFAULT_POLICY} when the lifecycle starts
   * and carried from then on: a later change of a default never reaches a running lifecycle.
   * (v1 inputs may hold only the caller's overrides.)
   */
  policy?: Partial<LifecyclePolicy>;
  /** App callback URL for state changes (optional). */
  callbackUrl?: string;
  /** Carried over by continue-as-new; never set by callers. */
  carried?: CarriedState | CarriedStateV1;
}

/** State carried across continue-as-new by the v2 core: O(recipients + attempts), never O(events). */
export interface CarriedState {
  v: 2;
  store: EventStoreSnapshot;
  attempts: LifecycleStatus['attempts'];
  suppressed: string[];
  sendError?: { type: string; message: string };
  deadlinePassed: boolean;
  followUps: FollowUp[];
  /** Suppressions done, and ones started but not finished (re-run: they are idempotent). */
  suppressionsDone: string[];
  suppressionsPending: string[];
  callbacks: { queue: CallbackPayload[]; seq: number; last?: string };
  deadlineAt?: number;
  windowEndsAt?: number;
  foreignEvents: number;
  /** Fact keys recorded from GetMessageInsights (rule 13), and how many events they gave. */
  insightFacts?: string[];
  repairedEvents?: number;
  repairTried?: boolean;
}

/** State carried across continue-as-new by v1 lifecycles (workflows/v1); read by v2 when a v1 run continues as new. */
export interface CarriedStateV1 {
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
  /** Stay open this long after the last event. Default {@link ORPHAN_IDLE_TIMEOUT}. */
  idleTimeout?: Duration;
  suppressOnHardBounce?: boolean;
  suppressOnComplaint?: boolean;
  /** Events to record at start (a message lifecycle forwarding events it never sent). */
  initialEvents?: SesEvent[];
  carried?: { events: SesEvent[]; followUps: FollowUp[]; suppressionsDone: string[] } | OrphanCarriedState;
}

/** Default idle timeout of orphan lifecycles (resolved by the router into the input). */
export const ORPHAN_IDLE_TIMEOUT = '48h';

/** v2 orphan state carried across continue-as-new. */
export interface OrphanCarriedState {
  v: 2;
  store: EventStoreSnapshot;
  followUps: FollowUp[];
  suppressionsDone: string[];
  suppressionsPending: string[];
  lastEventAt: number;
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
  /** Input that cannot fit Temporal's limits (search-attribute size): refused before starting. */
  InputTooLarge: 'InputTooLarge',
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

/** A {@link Duration} as people read it: `"48h"` stays `"48h"`, `172800000` becomes `"48h"`. */
export function formatDuration(d: Duration): string {
  if (typeof d === 'string') return d.trim();
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit]!;
    if (d >= size && d % size === 0) return `${d / size}${unit}`;
  }
  return `${d}ms`;
}

/**
 * Byte limit of one search-attribute value (a KeywordList counts as one value), as Temporal
 * servers enforce it by default (`limit.searchAttributeSizeOfValue`, 2 KiB). Our upserts stay
 * below it with room to spare: an upsert over it terminates the workflow.
 */
export const SA_VALUE_BUDGET_BYTES = 2_000;

/** UTF-8 byte length, without TextEncoder (not every workflow sandbox version has it). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

/** Size of a KeywordList value as the server measures it (its JSON encoding). */
export function keywordListBytes(values: readonly string[]): number {
  return utf8Length(JSON.stringify(values));
}

/** The longest prefix of `values` whose KeywordList fits {@link SA_VALUE_BUDGET_BYTES}; `dropped` counts the rest. */
export function fitKeywordList(values: readonly string[], budget = SA_VALUE_BUDGET_BYTES): { values: string[]; dropped: number } {
  // Linear: `["a","b"]` is 2 bytes of brackets, each value its JSON string, commas between.
  // (It runs on every lifecycle loop iteration, replays included.)
  const out: string[] = [];
  let bytes = 2;
  for (const v of values) {
    const add = utf8Length(JSON.stringify(v)) + (out.length > 0 ? 1 : 0);
    if (bytes + add > budget) break;
    bytes += add;
    out.push(v);
  }
  return { values: out, dropped: values.length - out.length };
}

/** Longest workflow id we create (servers refuse ids over 1000 characters by default). */
const MAX_ID_CHARS = 255;

/**
 * Workflow id of the orphan lifecycle of an SES message id: readable when the id is plain and
 * short, else `orphan-h-<64-bit FNV-1a hex>` so that any SES id (however long) gets a valid id.
 * Pure and deterministic: the webhook and workflows compute the same id.
 */
export function orphanWorkflowId(sesMessageId: string): string {
  const plain = `${WORKFLOW_ID_PREFIX.orphan}${sesMessageId}`;
  if (plain.length <= MAX_ID_CHARS && /^[\x21-\x7e]+$/.test(sesMessageId)) return plain;
  return `${WORKFLOW_ID_PREFIX.orphan}h-${fnv1a(sesMessageId, 0x811c9dc5)}${fnv1a(sesMessageId, 0x01000193)}`;
}

function fnv1a(s: string, seed: number): string {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
