/**
 * Parsing of SES event JSON into normalized {@link SesEvent}s. Pure functions: no I/O.
 *
 * Accepts both shapes SES produces: event publishing through a configuration set (`eventType`,
 * ten types, carries `mail.tags`) and identity feedback notifications (`notificationType`:
 * Bounce, Complaint, Delivery; no tags). Parsing is lenient about fields we do not use (SES may
 * add fields at any time) and strict about the ones we do, with errors that name the field.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { LIFECYCLE_HEADER, LIFECYCLE_TAG } from './definitions';
import { normalizeAddress, SES_EVENT_TYPES, type SesEvent, type SesEventType } from './lifecycle';

/** Thrown when a payload that claims to be an SES event is malformed. `path` names the bad field. */
export class SesEventParseError extends Error {
  override readonly name = 'SesEventParseError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

const isoTime = z.string().min(1).max(64);
const address = z.string().min(1).max(1024);

const mailSchema = z.looseObject({
  timestamp: isoTime.optional(),
  messageId: z.string().min(1).max(256),
  source: z.string().max(1024).optional(),
  destination: z.array(address).max(1000).optional(),
  headers: z.array(z.looseObject({ name: z.string(), value: z.string() })).max(500).optional(),
  commonHeaders: z.looseObject({}).optional(),
  tags: z.record(z.string(), z.array(z.string())).optional(),
});

const recipientList = z.array(z.looseObject({ emailAddress: address, diagnosticCode: z.string().max(4096).optional() })).max(1000);

const bounceSchema = z.looseObject({
  bounceType: z.enum(['Permanent', 'Transient', 'Undetermined']),
  bounceSubType: z.string().max(128),
  bouncedRecipients: recipientList.min(1),
  timestamp: isoTime,
  feedbackId: z.string().max(512).optional(),
});

const complaintSchema = z.looseObject({
  complainedRecipients: recipientList.min(1),
  timestamp: isoTime,
  feedbackId: z.string().max(512).optional(),
  complaintFeedbackType: z.string().max(128).optional(),
  complaintSubType: z.string().max(128).nullable().optional(),
});

const deliverySchema = z.looseObject({
  timestamp: isoTime,
  recipients: z.array(address).min(1).max(1000),
});

const delaySchema = z.looseObject({
  timestamp: isoTime,
  delayType: z.string().max(128).optional(),
  expirationTime: isoTime.optional(),
  delayedRecipients: recipientList.min(1),
});

const engagementSchema = z.looseObject({
  timestamp: isoTime,
  ipAddress: z.string().max(128).optional(),
  userAgent: z.string().max(2048).optional(),
  link: z.string().max(8192).optional(),
});

const subscriptionSchema = z.looseObject({
  timestamp: isoTime.optional(),
  contactList: z.string().max(256).optional(),
  source: z.string().max(256).optional(),
});

/** Result of looking at a JSON value that may or may not be an SES event. */
export type SesParseResult =
  | { kind: 'event'; event: SesEvent }
  /** Valid JSON that is not an SES event at all (e.g. SES's topic validation notice). */
  | { kind: 'not-ses'; reason: string };

function fail(err: z.ZodError, prefix: string): never {
  const issue = err.issues[0];
  const path = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
  throw new SesEventParseError(`invalid SES event: ${path}: ${issue?.message ?? 'invalid'}`, path);
}

function parsePart<T>(schema: z.ZodType<T>, value: unknown, path: string): T {
  if (value === undefined) throw new SesEventParseError(`invalid SES event: ${path} is missing`, path);
  const r = schema.safeParse(value);
  if (!r.success) fail(r.error, path);
  return r.data;
}

/**
 * JSON of a value, cut at `maxDepth` levels and `maxChars` characters: identity material for
 * events whose fields we do not interpret, safe on hostile input (JSON.stringify of a value
 * nested thousands of levels deep overflows the stack).
 */
export function boundedJson(value: unknown, maxDepth = 8, maxChars = 4096): string {
  let out = '';
  const walk = (v: unknown, depth: number): void => {
    if (out.length >= maxChars) return;
    if (v === null || typeof v !== 'object') {
      out += JSON.stringify(v) ?? 'null';
      return;
    }
    if (depth >= maxDepth) {
      out += '"…"';
      return;
    }
    if (Array.isArray(v)) {
      out += '[';
      v.forEach((x, i) => {
        if (i) out += ',';
        if (out.length < maxChars) walk(x, depth + 1);
      });
      out += ']';
      return;
    }
    out += '{';
    Object.keys(v)
      .sort()
      .forEach((k, i) => {
        if (i) out += ',';
        out += `${JSON.stringify(k)}:`;
        if (out.length < maxChars) walk((v as Record<string, unknown>)[k], depth + 1);
      });
    out += '}';
  };
  walk(value, 0);
  return out.slice(0, maxChars);
}

/** Computes a stable identity for an event from its content (rule 3: duplicates change nothing). */
export function eventIdentity(parts: { type: string; sesMessageId: string; timestamp: string; recipients: readonly string[]; extra?: string }): string {
  const h = createHash('sha256');
  h.update([parts.type, parts.sesMessageId, parts.timestamp, [...parts.recipients].sort().join(','), parts.extra ?? ''].join('\u0000'));
  return `ev-${h.digest('hex').slice(0, 32)}`;
}

/** Finds our lifecycle id in `mail.tags`, else in the original `X-Lifecycle-Id` header. */
export function findLifecycleId(mail: { tags?: Record<string, string[]>; headers?: { name: string; value: string }[] }): string | undefined {
  const tag = mail.tags?.[LIFECYCLE_TAG]?.[0];
  if (tag) return tag;
  const header = mail.headers?.find((h) => h.name.toLowerCase() === LIFECYCLE_HEADER.toLowerCase());
  return header?.value.trim() || undefined;
}

/**
 * Parses one SES event (an already JSON-decoded object).
 *
 * @returns `{ kind: 'event' }` for SES events, including unknown future types (recorded as
 *   `Unknown:<type>`), or `{ kind: 'not-ses' }` for JSON that is clearly not an SES event.
 * @throws {SesEventParseError} when the payload claims to be an SES event but is malformed.
 */
export function parseSesEvent(value: unknown, opts: { snsMessageId?: string } = {}): SesParseResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'not-ses', reason: 'not a JSON object' };
  }
  const obj = value as Record<string, unknown>;
  const rawType = typeof obj.eventType === 'string' ? obj.eventType : typeof obj.notificationType === 'string' ? obj.notificationType : undefined;
  if (rawType === undefined) {
    return { kind: 'not-ses', reason: 'no eventType or notificationType' };
  }
  const source: SesEvent['source'] = typeof obj.eventType === 'string' ? 'event-publishing' : 'notification';
  if (rawType === 'AmazonSnsSubscriptionSucceeded') {
    return { kind: 'not-ses', reason: 'SES topic subscription notice' };
  }
  const mail = parsePart(mailSchema, obj.mail, 'mail');
  const destination = (mail.destination ?? []).map(normalizeAddress);
  const known = (SES_EVENT_TYPES as readonly string[]).includes(rawType);
  const type: SesEvent['type'] = known ? (rawType as SesEventType) : `Unknown:${rawType.slice(0, 64)}`;
  const base = {
    sesMessageId: mail.messageId,
    source,
    ...(opts.snsMessageId !== undefined ? { snsMessageId: opts.snsMessageId } : {}),
  };
  const lifecycleId = findLifecycleId(mail);
  let recipients: string[] = destination;
  let timestamp = mail.timestamp ?? '';
  let extra = '';
  const details: Partial<SesEvent> = {};

  switch (type) {
    case 'Bounce': {
      const b = parsePart(bounceSchema, obj.bounce, 'bounce');
      recipients = b.bouncedRecipients.map((r) => normalizeAddress(r.emailAddress));
      timestamp = b.timestamp;
      extra = `${b.feedbackId ?? ''}|${b.bounceType}/${b.bounceSubType}`;
      const codes: Record<string, string> = {};
      for (const r of b.bouncedRecipients) if (r.diagnosticCode) codes[normalizeAddress(r.emailAddress)] = r.diagnosticCode;
      details.bounce = { type: b.bounceType, subType: b.bounceSubType, ...(Object.keys(codes).length ? { diagnosticCodes: codes } : {}) };
      break;
    }
    case 'Complaint': {
      const c = parsePart(complaintSchema, obj.complaint, 'complaint');
      recipients = c.complainedRecipients.map((r) => normalizeAddress(r.emailAddress));
      timestamp = c.timestamp;
      extra = `${c.feedbackId ?? ''}|${c.complaintFeedbackType ?? ''}`;
      details.complaint = {
        ...(c.complaintFeedbackType !== undefined ? { feedbackType: c.complaintFeedbackType } : {}),
        ...(c.complaintSubType !== undefined ? { subType: c.complaintSubType } : {}),
      };
      break;
    }
    case 'Delivery': {
      const d = parsePart(deliverySchema, obj.delivery, 'delivery');
      recipients = d.recipients.map(normalizeAddress);
      timestamp = d.timestamp;
      break;
    }
    case 'DeliveryDelay': {
      const d = parsePart(delaySchema, obj.deliveryDelay, 'deliveryDelay');
      recipients = d.delayedRecipients.map((r) => normalizeAddress(r.emailAddress));
      timestamp = d.timestamp;
      details.delay = {
        ...(d.delayType !== undefined ? { delayType: d.delayType } : {}),
        ...(d.expirationTime !== undefined ? { expirationTime: d.expirationTime } : {}),
      };
      break;
    }
    case 'Open':
    case 'Click': {
      const e = parsePart(engagementSchema, type === 'Open' ? obj.open : obj.click, type === 'Open' ? 'open' : 'click');
      timestamp = e.timestamp;
      extra = `${e.link ?? ''}|${e.ipAddress ?? ''}|${e.userAgent ?? ''}`;
      details.engagement = {
        ...(e.link !== undefined ? { link: e.link } : {}),
        ...(e.ipAddress !== undefined ? { ipAddress: e.ipAddress } : {}),
        ...(e.userAgent !== undefined ? { userAgent: e.userAgent } : {}),
      };
      break;
    }
    case 'Reject': {
      const r = obj.reject as { reason?: unknown } | undefined;
      details.reject = typeof r?.reason === 'string' ? { reason: r.reason.slice(0, 1024) } : {};
      break;
    }
    case 'Rendering Failure': {
      const f = obj.failure as { errorMessage?: unknown; templateName?: unknown } | undefined;
      details.failure = {
        ...(typeof f?.errorMessage === 'string' ? { errorMessage: f.errorMessage.slice(0, 2048) } : {}),
        ...(typeof f?.templateName === 'string' ? { templateName: f.templateName.slice(0, 256) } : {}),
      };
      break;
    }
    case 'Subscription': {
      const s = parsePart(subscriptionSchema, obj.subscription, 'subscription');
      if (s.timestamp) timestamp = s.timestamp;
      extra = `${s.contactList ?? ''}|${boundedJson(obj.subscription, 8, 2048)}`;
      details.subscription = {
        ...(s.contactList !== undefined ? { contactList: s.contactList } : {}),
        ...(s.source !== undefined ? { source: s.source } : {}),
      };
      break;
    }
    case 'Send':
      break; // type + message id + time + recipients identify it
    default:
      extra = boundedJson(obj);
      break;
  }
  if (!timestamp) throw new SesEventParseError('invalid SES event: mail.timestamp is missing', 'mail.timestamp');

  const event: SesEvent = {
    id: eventIdentity({ type, sesMessageId: mail.messageId, timestamp, recipients, extra }),
    type,
    timestamp,
    recipients: [...new Set(recipients)],
    ...base,
    ...(lifecycleId !== undefined ? { lifecycleId } : {}),
    ...details,
  };
  return { kind: 'event', event };
}

/**
 * Parses the text of an SES event (what SNS carries in `Message`, or a raw-delivery body).
 * Text that is not JSON, or JSON that is not an SES event, gives `not-ses`.
 *
 * @throws {SesEventParseError} for SES events with malformed fields.
 */
export function parseSesEventText(text: string, opts: { snsMessageId?: string } = {}): SesParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'not-ses', reason: 'Message is not JSON' };
  }
  return parseSesEvent(value, opts);
}
