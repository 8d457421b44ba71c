/**
 * The `sendTracked()` client API: start one durable lifecycle per email and follow it.
 *
 * ```ts
 * const lc = await LifecycleClient.connect({ address: 'localhost:7233' });
 * const email = await lc.sendTracked({ from: 'app@example.com', to: ['a@example.com'], subject: 'Hi', text: 'Hello' },
 *   { idempotencyKey: 'order-1234-confirmation' });
 * const final = await email.result();
 * ```
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  type ConnectionOptions,
  type WorkflowHandle,
} from '@temporalio/client';
import { z } from 'zod';
import {
  CORE_MEMO,
  CURRENT_CORE,
  DEFAULT_POLICY,
  durationMs,
  keywordListBytes,
  MAX_TEMPLATE_DATA_CHARS,
  SA_VALUE_BUDGET_BYTES,
  SA,
  statusQuery,
  TASK_QUEUE,
  WORKFLOW_ID_PREFIX,
  WORKFLOW_TYPE,
  type EmailMessage,
  type LifecyclePolicy,
  type LifecycleResult,
  type LifecycleStatus,
  type MessageLifecycleInput,
} from './definitions';
import type { MessageStatus } from './lifecycle';
import { uniqueLower } from './lifecycle';
import { checkCallbackUrl } from './callbacks';

/** Thrown when `sendTracked()` input is invalid; nothing was started. `field` names the bad field. */
export class InvalidEmailInputError extends Error {
  override readonly name = 'InvalidEmailInputError';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/**
 * Thrown by `sendTracked()` when its idempotency key already names a lifecycle started with
 * different content (message, configuration set, policy or callback URL). Nothing was sent.
 */
export class IdempotencyKeyConflictError extends Error {
  override readonly name = 'IdempotencyKeyConflictError';
  constructor(
    readonly idempotencyKey: string,
    readonly lifecycleId: string,
  ) {
    super(`idempotency key "${idempotencyKey}" was already used for different content (lifecycle ${lifecycleId}); use a new key for a different email`);
  }
}

/** Memo field holding the content hash of a lifecycle's `sendTracked()` input. */
export const CONTENT_HASH_MEMO = 'contentHash';

/** JSON with sorted object keys, so equal content always hashes the same. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** SHA-256 of the validated input (what the caller asked for): compared on idempotency-key reuse. */
export function contentHashOf(input: SendTrackedInput): string {
  return createHash('sha256').update(canonicalJson(input)).digest('hex');
}

/** SES limit: at most 50 recipients (To + Cc + Bcc) per SendEmail call. */
export const MAX_RECIPIENTS = 50;
/** SES limit: total message size 40 MB (we keep bodies far below: 10 MB of text or html). */
export const MAX_BODY_CHARS = 10 * 1024 * 1024;

const NO_CRLF = /^[^\r\n]*$/;
// A pragmatic RFC 5321 check: local@domain, no spaces, no control characters, no angle brackets.
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be refused
const ADDRESS = /^[^\s@<>(),;:"\\[\]\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const addressSchema = z.string().max(320).regex(ADDRESS, 'not a valid email address');
// From may carry a display name: `Shop <shop@example.com>`.
const fromSchema = z
  .string()
  .max(640)
  .regex(NO_CRLF, 'must not contain CR or LF')
  .refine((v) => ADDRESS.test(/<([^<>]+)>\s*$/.exec(v)?.[1] ?? v), 'not a valid email address');
/** SES EmailTag names and values: ASCII letters, digits, `_ - . @` (1–256 characters). */
export const TAG_CHARS = /^[A-Za-z0-9_\-.@]+$/;
const tagName = z
  .string()
  .min(1)
  .max(256)
  .regex(TAG_CHARS, 'SES tag names allow only ASCII letters, digits, _ - . @')
  .refine((n) => !n.startsWith('ses:') && n !== 'lifecycle-id' && n !== 'lifecycle-attempt', 'reserved tag name');
const tagValue = z.string().min(1).max(256).regex(TAG_CHARS, 'SES tag values allow only ASCII letters, digits, _ - . @');
// SESv2 MessageHeader: name ≤126 characters (an RFC 5322 token), value printable ASCII ≤870.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,126}$/;
const HEADER_VALUE = /^[ -~]{0,870}$/;
/** SES template names: 1-64 ASCII letters, digits, `_` or `-`. */
export const TEMPLATE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Why `data` cannot be an SES `TemplateData` object, or `undefined` when it can: a plain JSON
 * object (strings, finite numbers, booleans, null, arrays, objects; nothing JSON would drop or
 * change, such as `undefined`, functions, dates, NaN), at most 32 levels deep, serialized at most
 * {@link MAX_TEMPLATE_DATA_CHARS} characters.
 */
export function templateDataProblem(data: unknown): string | undefined {
  const isPlain = (o: object): boolean => {
    const proto: unknown = Object.getPrototypeOf(o);
    return proto === Object.prototype || proto === null;
  };
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !isPlain(data)) return 'must be a JSON object ({ "name": "value", … })';
  const walk = (v: unknown, at: string, depth: number): string | undefined => {
    if (depth > 32) return `nested deeper than 32 levels at ${at}`;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return undefined;
    if (typeof v === 'number') return Number.isFinite(v) ? undefined : `${at} is not a finite number`;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const p = walk(v[i], `${at}[${i}]`, depth + 1);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    if (typeof v === 'object' && isPlain(v)) {
      for (const [k, x] of Object.entries(v)) {
        const p = walk(x, `${at}.${k}`, depth + 1);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    return `${at} is not a JSON value (${typeof v})`;
  };
  const p = walk(data, 'data', 0);
  if (p !== undefined) return p;
  const chars = JSON.stringify(data).length;
  if (chars > MAX_TEMPLATE_DATA_CHARS) return `serializes to ${chars} characters; SES allows at most ${MAX_TEMPLATE_DATA_CHARS}`;
  return undefined;
}

const duration = z.union([z.number().nonnegative().finite(), z.string()]).refine((d) => {
  try {
    durationMs(d);
    return true;
  } catch {
    return false;
  }
}, 'invalid duration: use ms or e.g. "30s", "15m", "48h", "7d"');

const inputSchema = z
  .object({
    from: fromSchema,
    to: z.array(addressSchema).min(1, 'at least one recipient is required'),
    cc: z.array(addressSchema).optional(),
    bcc: z.array(addressSchema).optional(),
    replyTo: z.array(addressSchema).max(50).optional(),
    subject: z.string().min(1, 'subject is required').max(998).regex(NO_CRLF, 'must not contain CR or LF').optional(),
    text: z.string().max(MAX_BODY_CHARS).optional(),
    html: z.string().max(MAX_BODY_CHARS).optional(),
    template: z
      .object({
        name: z.string().regex(TEMPLATE_NAME, 'SES template names are 1-64 ASCII letters, digits, _ or -'),
        data: z.custom<Record<string, unknown>>().superRefine((d, ctx) => {
          const problem = templateDataProblem(d);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        }),
      })
      .strict()
      .optional(),
    tags: z.record(tagName, tagValue).refine((t) => Object.keys(t).length <= 48, 'at most 48 tags').optional(),
    headers: z
      .record(z.string().regex(HEADER_NAME, 'header names allow only RFC 5322 token characters (no spaces, colons or CR/LF), at most 126'), z.string().regex(HEADER_VALUE, 'header values must be printable ASCII, at most 870 characters (no CR/LF)'))
      .refine((h) => Object.keys(h).every((k) => !/^(from|to|cc|bcc|subject|x-lifecycle-id|content-type|mime-version)$/i.test(k)), 'reserved header')
      .optional(),
    configurationSetName: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/).optional(),
    callbackUrl: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    policy: z
      .object({
        deliveryDeadline: duration.optional(),
        complaintWindow: duration.optional(),
        maxSendAttempts: z.number().int().min(1).max(10).optional(),
        resendBackoff: duration.optional(),
        ambiguousSendWait: duration.optional(),
        sendTimeout: duration.optional(),
        suppressOnHardBounce: z.boolean().optional(),
        suppressOnComplaint: z.boolean().optional(),
        checkSuppressionBeforeSend: z.boolean().optional(),
        maxHistoryEvents: z.number().int().min(50).max(9_000).optional(),
        maxSendRetries: z.number().int().min(0).max(200).optional(),
        sendRetryFor: duration.optional(),
        repairFromInsights: z.boolean().optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    const n = v.to.length + (v.cc?.length ?? 0) + (v.bcc?.length ?? 0);
    if (n > MAX_RECIPIENTS) ctx.addIssue({ code: 'custom', path: ['to'], message: `at most ${MAX_RECIPIENTS} recipients (To+Cc+Bcc) per email, got ${n}` });
    if (v.template !== undefined) {
      // Exactly one kind of content: the template has its own subject and bodies.
      for (const f of ['subject', 'text', 'html'] as const) {
        if (v[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `not allowed with template (the template has its own subject and body)` });
      }
    } else {
      if (v.subject === undefined) ctx.addIssue({ code: 'custom', path: ['subject'], message: 'subject is required (or a template)' });
      if (v.text === undefined && v.html === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'text or html body is required (or a template)' });
    }
    // Search-attribute budget: an upsert over the server's value limit would terminate the
    // lifecycle, so input that cannot fit is refused here, naming the field.
    const recipients = uniqueLower([...v.to, ...(v.cc ?? []), ...(v.bcc ?? [])]);
    const rb = keywordListBytes(recipients);
    if (rb > SA_VALUE_BUDGET_BYTES) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: `recipients (To+Cc+Bcc) take ${rb} bytes in the EmailRecipients search attribute; at most ${SA_VALUE_BUDGET_BYTES} fit (use fewer or shorter addresses)` });
    }
    const tags = Object.entries(v.tags ?? {}).map(([k, t]) => `${k}=${t}`);
    const tb = keywordListBytes(tags);
    if (tb > SA_VALUE_BUDGET_BYTES) ctx.addIssue({ code: 'custom', path: ['tags'], message: `tags take ${tb} bytes in the EmailTags search attribute; at most ${SA_VALUE_BUDGET_BYTES} fit (use fewer or shorter tags)` });
  });

/** What to send, plus per-email options. */
export interface SendTrackedInput extends EmailMessage {
  /** SES configuration set with the SNS event destination (else the worker's default). */
  configurationSetName?: string;
  /** Overrides of the lifecycle policy (durations as ms or `'48h'`-style strings). */
  policy?: Partial<LifecyclePolicy>;
  /** App callback for state changes (optional). */
  callbackUrl?: string;
}

/** Options of one `sendTracked()` call. */
export interface SendTrackedOptions {
  /** The same key never sends twice, even when called concurrently or after the lifecycle closed. */
  idempotencyKey?: string;
}

/**
 * Validates `sendTracked()` input. Pure.
 *
 * @throws {InvalidEmailInputError} naming the first bad field (e.g. `to[2]`, `tags.campaign`).
 */
export function validateSendInput(input: unknown, opts: CallbackUrlOptions = {}): SendTrackedInput {
  const r = inputSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    // Unknown keys: name the key itself, not its parent.
    const path = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
    const field = path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '') || '(input)';
    // A bad record key (tag or header name): say what is allowed, not zod's "Invalid key in record".
    const message = issue.code === 'invalid_key' ? `invalid name: ${issue.issues[0]?.message ?? issue.message}` : issue.message;
    throw new InvalidEmailInputError(`invalid ${field}: ${message}`, field);
  }
  if (r.data.callbackUrl !== undefined) validateCallbackUrl(r.data.callbackUrl, opts);
  return r.data;
}

/** Which callback destinations are acceptable (see `checkCallbackUrl`). */
export interface CallbackUrlOptions {
  /** Hosts allowed to be loopback/private/link-local (`CALLBACK_ALLOWED_HOSTS`). */
  callbackAllowedHosts?: readonly string[];
  /** Refuse http callback URLs (aws mode). */
  callbackRequireHttps?: boolean;
}

/**
 * Refuses a callback URL with userinfo, or pointing to a loopback, private or link-local IP or to
 * `localhost`, unless its host is allowed. (Host names are resolved and checked again at each POST.)
 *
 * @throws {InvalidEmailInputError} with field `callbackUrl`.
 */
export function validateCallbackUrl(url: string, opts: CallbackUrlOptions = {}): void {
  const check = checkCallbackUrl(url, {
    ...(opts.callbackAllowedHosts !== undefined ? { allowedHosts: opts.callbackAllowedHosts } : {}),
    ...(opts.callbackRequireHttps !== undefined ? { requireHttps: opts.callbackRequireHttps } : {}),
  });
  if (!check.ok) throw new InvalidEmailInputError(`invalid callbackUrl: ${check.reason}`, 'callbackUrl');
}

/** Workflow id for an idempotency key: readable when the key is tag-safe, hashed otherwise. */
export function lifecycleIdFor(idempotencyKey?: string): string {
  if (idempotencyKey === undefined) return `${WORKFLOW_ID_PREFIX.message}${randomUUID()}`;
  if (idempotencyKey.length === 0 || idempotencyKey.length > 1000) throw new InvalidEmailInputError('invalid idempotencyKey: 1 to 1000 characters', 'idempotencyKey');
  if (/^[A-Za-z0-9_\-.@]{1,200}$/.test(idempotencyKey)) return `${WORKFLOW_ID_PREFIX.message}${idempotencyKey}`;
  return `${WORKFLOW_ID_PREFIX.message}k-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 40)}`;
}

/** Options to connect to Temporal: local dev server, a self-hosted cluster, or Temporal Cloud. */
export interface ConnectOptions {
  /** host:port of the Temporal frontend. Default `localhost:7233`. */
  address?: string;
  namespace?: string;
  /** TLS (mTLS for Temporal Cloud certificates): `true` for system roots, or the SDK's TLS config. */
  tls?: ConnectionOptions['tls'];
  /** Temporal Cloud API key (implies TLS). */
  apiKey?: string;
  taskQueue?: string;
  /** Callback URL for sends that name none. */
  defaultCallbackUrl?: string;
  /** Callback hosts allowed to be loopback/private/link-local (`CALLBACK_ALLOWED_HOSTS`). */
  callbackAllowedHosts?: readonly string[];
  /** Refuse http callback URLs (aws mode). */
  callbackRequireHttps?: boolean;
}

/** Signature of the `messageLifecycle` workflow, for typed handles. */
type LifecycleWorkflow = (input: MessageLifecycleInput) => Promise<LifecycleResult>;

/** A tracked email: its lifecycle id and ways to follow it. */
export class TrackedEmail {
  constructor(
    /** Lifecycle id = Temporal workflow id (`msg-...`). */
    readonly id: string,
    private readonly handle: WorkflowHandle<LifecycleWorkflow>,
  ) {}

  /** Current state (a Temporal query; works on running and closed lifecycles). */
  async status(): Promise<LifecycleStatus> {
    return this.handle.query(statusQuery);
  }

  /** Waits for the lifecycle to complete and returns the final per-recipient summary. */
  async result(): Promise<LifecycleResult> {
    return this.handle.result();
  }

  /**
   * Polls the status until `until` holds (a message status, or a predicate) and returns it.
   *
   * @throws {Error} on timeout, with the last status seen.
   */
  async waitFor(until: MessageStatus | ((s: LifecycleStatus) => boolean), opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<LifecycleStatus> {
    const test = typeof until === 'function' ? until : (s: LifecycleStatus) => s.status === until;
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let last: LifecycleStatus | undefined;
    for (;;) {
      last = await this.status();
      if (test(last)) return last;
      if (Date.now() > deadline) throw new Error(`lifecycle ${this.id}: timed out waiting; last status ${last.status} (${last.phase})`);
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
    }
  }
}

/** The client of ses-lifecycle: starts and follows lifecycles. */
export class LifecycleClient {
  readonly taskQueue: string;

  /** Callback URL used when a send names none (`CALLBACK_URL`). */
  readonly defaultCallbackUrl: string | undefined;

  private readonly callbackOptions: CallbackUrlOptions;

  constructor(
    /** The underlying Temporal client (shared, not owned unless created by `connect`). */
    readonly temporal: Client,
    opts: { taskQueue?: string; defaultCallbackUrl?: string } & CallbackUrlOptions = {},
    private readonly ownedConnection?: Connection,
  ) {
    this.taskQueue = opts.taskQueue ?? TASK_QUEUE;
    this.defaultCallbackUrl = opts.defaultCallbackUrl;
    this.callbackOptions = {
      ...(opts.callbackAllowedHosts !== undefined ? { callbackAllowedHosts: opts.callbackAllowedHosts } : {}),
      ...(opts.callbackRequireHttps !== undefined ? { callbackRequireHttps: opts.callbackRequireHttps } : {}),
    };
  }

  /** Connects to Temporal. @throws the SDK's connection error when the server is unreachable. */
  static async connect(opts: ConnectOptions = {}): Promise<LifecycleClient> {
    const connection = await Connection.connect({
      address: opts.address ?? 'localhost:7233',
      ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
      ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey, tls: opts.tls ?? true } : {}),
    });
    const client = new Client({ connection, namespace: opts.namespace ?? 'default' });
    return new LifecycleClient(
      client,
      {
        ...(opts.taskQueue !== undefined ? { taskQueue: opts.taskQueue } : {}),
        ...(opts.defaultCallbackUrl !== undefined ? { defaultCallbackUrl: opts.defaultCallbackUrl } : {}),
        ...(opts.callbackAllowedHosts !== undefined ? { callbackAllowedHosts: opts.callbackAllowedHosts } : {}),
        ...(opts.callbackRequireHttps !== undefined ? { callbackRequireHttps: opts.callbackRequireHttps } : {}),
      },
      connection,
    );
  }

  /**
   * Validates the input, then starts one durable lifecycle that sends the email through SES and
   * tracks it. With an idempotency key, a second call (even concurrent, even after completion)
   * returns the existing lifecycle and never sends again.
   *
   * @throws {InvalidEmailInputError} when the input is invalid (nothing is started).
   * @throws {IdempotencyKeyConflictError} when the key was already used for different content.
   */
  async sendTracked(input: SendTrackedInput, opts: SendTrackedOptions = {}): Promise<TrackedEmail> {
    const valid = validateSendInput(input, this.callbackOptions);
    const lifecycleId = lifecycleIdFor(opts.idempotencyKey);
    const { configurationSetName, policy, callbackUrl = this.defaultCallbackUrl, ...message } = valid;
    if (callbackUrl !== undefined && valid.callbackUrl === undefined) validateCallbackUrl(callbackUrl, this.callbackOptions);
    const wfInput: MessageLifecycleInput = {
      core: CURRENT_CORE,
      lifecycleId,
      message,
      ...(configurationSetName !== undefined ? { configurationSetName } : {}),
      // Resolved once, here: the lifecycle carries every field, so a later change of a default
      // never reaches a running lifecycle.
      policy: { ...DEFAULT_POLICY, ...policy },
      ...(callbackUrl !== undefined ? { callbackUrl } : {}),
    };
    const recipients = uniqueLower([...message.to, ...(message.cc ?? []), ...(message.bcc ?? [])]);
    const tags = Object.entries(message.tags ?? {}).map(([k, v]) => `${k}=${v}`);
    const contentHash = contentHashOf(valid);
    let handle: WorkflowHandle<LifecycleWorkflow>;
    try {
      handle = await this.temporal.workflow.start<LifecycleWorkflow>(WORKFLOW_TYPE.message, {
        workflowId: lifecycleId,
        taskQueue: this.taskQueue,
        args: [wfInput],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { [CONTENT_HASH_MEMO]: contentHash, [CORE_MEMO]: CURRENT_CORE },
        typedSearchAttributes: [
          { key: SA.status, value: 'sending' },
          { key: SA.recipients, value: recipients },
          { key: SA.kind, value: 'message' },
          ...(tags.length ? [{ key: SA.tags, value: tags }] : []),
        ],
        staticSummary: `To ${recipients.slice(0, 3).join(', ')}${recipients.length > 3 ? ` (+${recipients.length - 3})` : ''}: ${message.subject ?? `template ${message.template?.name ?? ''}`}`.slice(0, 200),
        staticDetails: [`**From:** ${message.from}`, `**To:** ${recipients.join(', ')}`, message.template ? `**Template:** ${message.template.name}` : `**Subject:** ${message.subject ?? ''}`, tags.length ? `**Tags:** ${tags.join(', ')}` : '']
          .filter(Boolean)
          .join('\n\n'),
      });
    } catch (err) {
      // REJECT_DUPLICATE: the lifecycle for this key already ran to completion. Never send again.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      handle = this.temporal.workflow.getHandle<LifecycleWorkflow>(lifecycleId);
    }
    if (opts.idempotencyKey !== undefined) {
      // The key may name an existing lifecycle (USE_EXISTING, or a closed one): same content only.
      // A lifecycle without a stored hash (started before hashes were stored) is accepted.
      const stored = (await handle.describe()).memo?.[CONTENT_HASH_MEMO];
      if (typeof stored === 'string' && stored !== contentHash) throw new IdempotencyKeyConflictError(opts.idempotencyKey, lifecycleId);
    }
    return new TrackedEmail(lifecycleId, handle);
  }

  /** A handle on an existing lifecycle by id. */
  get(lifecycleId: string): TrackedEmail {
    return new TrackedEmail(lifecycleId, this.temporal.workflow.getHandle<LifecycleWorkflow>(lifecycleId));
  }

  /** Closes the connection if this client created it. */
  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }
}

/** Default policy, re-exported for callers that display it. */
export { DEFAULT_POLICY };
