/**
 * App callbacks: signed JSON POSTs on each lifecycle state change.
 *
 * Each request carries:
 * - `X-Ses-Lifecycle-Event-Id`: `<lifecycleId>:<sequence>`, unique per state change; retries of
 *   the same change reuse it, so apps can deduplicate.
 * - `X-Ses-Lifecycle-Timestamp`: Unix seconds when this attempt was signed.
 * - `X-Ses-Lifecycle-Signature`: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
 *
 * Verify with {@link verifyCallbackSignature} (or the same three lines in any language):
 * recompute the HMAC over the raw body, compare in constant time, refuse old timestamps.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header names (lower-case, as Node exposes them). */
export const CALLBACK_HEADERS = {
  eventId: 'x-ses-lifecycle-event-id',
  timestamp: 'x-ses-lifecycle-timestamp',
  signature: 'x-ses-lifecycle-signature',
} as const;

/** Signs a callback body: `v1=<hex>`. */
export function signCallback(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Verifies a callback request.
 *
 * @returns true when the signature matches and the timestamp is within `toleranceSec` (default 300).
 */
export function verifyCallbackSignature(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  opts: { toleranceSec?: number; now?: number } = {},
): boolean {
  const ts = Number(headers[CALLBACK_HEADERS.timestamp]);
  const sig = headers[CALLBACK_HEADERS.signature];
  if (!Number.isInteger(ts) || typeof sig !== 'string') return false;
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(now - ts) > (opts.toleranceSec ?? 300)) return false;
  const expected = Buffer.from(signCallback(secret, ts, rawBody));
  const given = Buffer.from(sig);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
