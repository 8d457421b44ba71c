/**
 * Parsing of what SNS POSTs: the JSON envelope (Notification, SubscriptionConfirmation,
 * UnsubscribeConfirmation), or, with raw message delivery, the SES JSON itself. Pure functions.
 */
import { z } from 'zod';
import { SNS_MESSAGE_TYPES, type SnsEnvelope } from './sns-verify';

const str = (max: number) => z.string().max(max);

/** The envelope fields we use; unknown fields are ignored (and never reach the verifier). */
const envelopeSchema = z.looseObject({
  Type: str(64),
  MessageId: str(128).min(1),
  TopicArn: str(512).min(1),
  Message: str(512 * 1024),
  Timestamp: str(64).min(1),
  SignatureVersion: str(8),
  Signature: str(4096).min(1),
  SigningCertURL: str(2048).min(1),
  Subject: str(1024).nullable().optional(),
  SubscribeURL: str(4096).optional(),
  Token: str(4096).optional(),
});

/** Result of {@link parseSnsBody}. */
export type ParsedBody =
  /** An SNS envelope of a known type (signature not yet verified). */
  | { kind: 'envelope'; envelope: SnsEnvelope }
  /** An SNS envelope whose `Type` we do not handle. */
  | { kind: 'unknown-type'; type: string }
  /** A JSON object without SNS envelope fields: SES JSON under raw message delivery. */
  | { kind: 'raw'; text: string }
  /** Not JSON, or an envelope with missing/invalid fields. `detail` is for logs only. */
  | { kind: 'malformed'; detail: string };

function looksLikeEnvelope(value: Record<string, unknown>): boolean {
  return 'Type' in value && ('Signature' in value || 'SigningCertURL' in value || 'TopicArn' in value || 'MessageId' in value);
}

/** Parses a request body. Never throws. */
export function parseSnsBody(text: string): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'malformed', detail: 'body is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'malformed', detail: 'body is not a JSON object' };
  const obj = value as Record<string, unknown>;
  if (!looksLikeEnvelope(obj)) return { kind: 'raw', text };
  const r = envelopeSchema.safeParse(obj);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { kind: 'malformed', detail: `envelope field ${issue?.path.map(String).join('.') ?? '?'}: ${issue?.message ?? 'invalid'}` };
  }
  const e = r.data;
  if (!(SNS_MESSAGE_TYPES as readonly string[]).includes(e.Type)) return { kind: 'unknown-type', type: e.Type.slice(0, 64) };
  const envelope: SnsEnvelope = {
    Type: e.Type as SnsEnvelope['Type'],
    MessageId: e.MessageId,
    TopicArn: e.TopicArn,
    Message: e.Message,
    Timestamp: e.Timestamp,
    SignatureVersion: e.SignatureVersion,
    Signature: e.Signature,
    SigningCertURL: e.SigningCertURL,
    ...(typeof e.Subject === 'string' ? { Subject: e.Subject } : {}),
    ...(e.SubscribeURL !== undefined ? { SubscribeURL: e.SubscribeURL } : {}),
    ...(e.Token !== undefined ? { Token: e.Token } : {}),
  };
  if (envelope.Type !== 'Notification' && (envelope.SubscribeURL === undefined || envelope.Token === undefined)) {
    return { kind: 'malformed', detail: 'confirmation without SubscribeURL or Token' };
  }
  return { kind: 'envelope', envelope };
}

/**
 * Checks an SNS `Timestamp` against the replay window.
 *
 * SNS retries resend the same signed message with its original Timestamp, for up to an hour with
 * custom delivery policies, so the window must be generous (default 3 h). A small future skew
 * (5 min) is tolerated for clock differences.
 *
 * @returns a short reason when the timestamp is unusable or outside the window, else undefined.
 */
export function checkTimestamp(timestamp: string, now: number, windowMs: number, futureSkewMs = 5 * 60_000): string | undefined {
  const t = Date.parse(timestamp);
  if (!Number.isFinite(t)) return 'Timestamp is not a date';
  if (t < now - windowMs) return 'Timestamp is older than the replay window';
  if (t > now + futureSkewMs) return 'Timestamp is in the future';
  return undefined;
}
