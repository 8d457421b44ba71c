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
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

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

// ---------------------------------------------------------------------------------------------
// Callback destinations
//
// A callbackUrl is chosen by whoever calls sendTracked(), and the worker POSTs to it from inside
// the deployment: without a check it reaches loopback services, the cloud metadata endpoint
// (169.254.169.254, fd00:ec2::254) and private networks. So a destination must be http(s), carry
// no userinfo, and resolve only to public addresses, unless its host is explicitly allowed
// (`CALLBACK_ALLOWED_HOSTS`, for local development and tests). The static part runs when the
// email is submitted (InvalidEmailInputError naming `callbackUrl`); the DNS part runs at each POST,
// on the very addresses the connection then uses (no re-resolution between check and connect).

/** Address ranges a callback may not reach (unless its host is allowed), with their names. */
const FORBIDDEN_RANGES: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'this network'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'shared address space'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'ipv4', 'documentation'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['198.51.100.0', 24, 'ipv4', 'documentation'],
  ['203.0.113.0', 24, 'ipv4', 'documentation'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['64:ff9b:1::', 48, 'ipv6', 'local NAT64'],
  ['100::', 64, 'ipv6', 'discard'],
  ['2001:db8::', 32, 'ipv6', 'documentation'],
  ['fc00::', 7, 'ipv6', 'unique local (incl. fd00:ec2::254 metadata)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

/** The forbidden range `ip` falls in (its name), or undefined for a public address. */
export function forbiddenAddressRange(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 0) return 'not an IP address';
  if (family === 6) {
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms
    // reach the embedded IPv4 address: judge that one.
    const lower = ip.toLowerCase();
    const embedded = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1] ?? hexMappedV4(lower);
    if (embedded !== undefined) return forbiddenAddressRange(embedded);
  }
  for (const [net, prefix, type, name] of FORBIDDEN_RANGES) {
    const list = new BlockList();
    list.addSubnet(net, prefix, type);
    if (list.check(ip, family === 4 ? 'ipv4' : 'ipv6')) return name;
  }
  return undefined;
}

/** `::ffff:7f00:1` style IPv4-mapped addresses (as `URL` normalizes them) → `127.0.0.1`. */
function hexMappedV4(ip: string): string | undefined {
  const m = /^(?:::ffff:|::|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (!m) return undefined;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Options of the callback destination checks. */
export interface CallbackDestinationOptions {
  /** Hosts (names or IPs, compared case-insensitively) allowed to be loopback/private/link-local. */
  allowedHosts?: readonly string[];
  /** Refuse `http:` (aws mode). Default false. */
  requireHttps?: boolean;
}

/** Result of {@link checkCallbackUrl}. */
export type CallbackUrlCheck = { ok: true; url: URL; allowedHost: boolean } | { ok: false; reason: string };

function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

function isAllowedHost(url: URL, allowed: readonly string[] | undefined): boolean {
  const host = bareHost(url);
  return (allowed ?? []).some((h) => h.replace(/^\[|\]$/g, '').toLowerCase() === host);
}

/**
 * Checks a callback URL without DNS: http(s) (https only with `requireHttps`), no userinfo, and
 * no loopback/private/link-local IP literal or `localhost` name unless its host is allowed.
 */
export function checkCallbackUrl(raw: string, opts: CallbackDestinationOptions = {}): CallbackUrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: 'must be an http(s) URL' };
  if (opts.requireHttps && url.protocol !== 'https:') return { ok: false, reason: 'must be an https URL' };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'must not contain userinfo (user:password@); put credentials in your endpoint, callbacks are signed' };
  const allowedHost = isAllowedHost(url, opts.allowedHosts);
  if (!allowedHost) {
    const host = bareHost(url);
    if (isIP(host) !== 0) {
      const range = forbiddenAddressRange(host);
      if (range !== undefined) return { ok: false, reason: `must not point to a ${range} address (allow the host explicitly with CALLBACK_ALLOWED_HOSTS)` };
    } else if (host === 'localhost' || host.endsWith('.localhost')) {
      return { ok: false, reason: `must not point to a local host name (allow the host explicitly with CALLBACK_ALLOWED_HOSTS)` };
    }
  }
  return { ok: true, url, allowedHost };
}

/** A callback destination refused for good (never retried). */
export class CallbackDestinationError extends Error {
  override readonly name = 'CallbackDestinationError';
}

/**
 * A `lookup` for http(s).request that resolves as usual and refuses forbidden addresses, so the
 * check and the connection use the same addresses.
 */
export function guardedLookup(allowedHost: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list: LookupAddress[] = addresses;
      if (!allowedHost) {
        for (const a of list) {
          const range = forbiddenAddressRange(a.address);
          if (range !== undefined) return callback(new CallbackDestinationError(`callback host resolves to a ${range} address`), '', 0);
        }
      }
      if (list.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };
}
