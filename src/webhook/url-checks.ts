/**
 * Strict checks of the two URLs an SNS message asks us to fetch: `SigningCertURL` (the
 * certificate that signed it) and `SubscribeURL` (the confirmation link). Both are attacker
 * controlled until the signature is verified (and SigningCertURL is fetched *before* that), so a
 * loose check is an SSRF: these functions are pure and decide on the parsed URL only.
 */
import { isIP } from 'node:net';

/**
 * Default host pattern for both URLs: an AWS SNS regional endpoint, `sns.<region>.amazonaws.com`
 * for the commercial and GovCloud partitions and `sns.cn-<…>.amazonaws.com.cn` for China, where
 * `<region>` has the shape of a real AWS region name (`us-east-1`, `ap-southeast-4`,
 * `us-gov-west-1`). No port. Deliberately not `sns.<anything>.amazonaws.com`: that would admit
 * `sns.s3.amazonaws.com` (the S3 bucket named "sns"), `sns.s3-external-1.amazonaws.com`, and any
 * other AWS service that serves customer content under `*.amazonaws.com`.
 */
export const DEFAULT_SNS_HOST_PATTERN = /^sns\.(?:(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d{1,2}|us-gov-[a-z]+-\d{1,2})\.amazonaws\.com$|^sns\.cn-[a-z]+-\d{1,2}\.amazonaws\.com\.cn$/;

/** Default path pattern for certificate URLs, as AWS serves them. */
export const DEFAULT_CERT_PATH_PATTERN = /^\/SimpleNotificationService-[0-9a-f]+\.pem$/;

/** Result of a URL check: the parsed URL, or a short reason (for logs, never for responses). */
export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * True when `pattern` matches the whole of `value`. Anchoring is enforced here (a pattern passed
 * without `^…$` still has to match everything), and `g`/`y` flags cannot leak `lastIndex` state.
 */
export function matchesWhole(pattern: RegExp, value: string): boolean {
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  const m = re.exec(value);
  return m !== null && m.index === 0 && m[0] === value;
}

/** Printable ASCII without spaces, quotes or backslashes: anything else is not a URL SNS sends. */
const SAFE_URL_CHARS = /^[\x21-\x7e]+$/;

function commonChecks(raw: unknown, hostPattern: RegExp, maxLength: number): UrlCheck {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > maxLength) return { ok: false, reason: 'missing or too long' };
  if (!SAFE_URL_CHARS.test(raw) || raw.includes('\\') || raw.includes('"')) return { ok: false, reason: 'unexpected characters' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (url.protocol !== 'https:') return { ok: false, reason: 'not https' };
  const authority = raw.slice('https://'.length).split(/[/?#]/)[0] ?? '';
  if (url.username !== '' || url.password !== '' || authority.includes('@')) {
    return { ok: false, reason: 'userinfo not allowed' };
  }
  if (url.hash !== '' || raw.includes('#')) return { ok: false, reason: 'fragment not allowed' };
  const bareHost = url.hostname.replace(/^\[|\]$/g, '');
  // An IP literal only when the pattern names that very address: a pattern that would also admit
  // another address (a documentation one, TEST-NET / 2001:db8::) admits no IP at all.
  const ipVersion = isIP(bareHost);
  if (ipVersion !== 0) {
    const canary = ipVersion === 4 ? (bareHost === '192.0.2.254' ? '192.0.2.253' : '192.0.2.254') : '[2001:db8::fe]';
    const other = url.port === '' ? canary : `${canary}:${url.port}`;
    if (!matchesWhole(hostPattern, url.host) || matchesWhole(hostPattern, other)) return { ok: false, reason: 'IP literal not allowed' };
  }
  // `url.host` includes a non-default port, so the default patterns (which have no `:port`)
  // reject every explicit port. A sandbox pattern may allow its own port explicitly.
  if (!matchesWhole(hostPattern, url.host)) return { ok: false, reason: 'host not allowed' };
  return { ok: true, url };
}

/**
 * Checks a `SigningCertURL` before anything fetches it.
 *
 * Rules: https; host matches `hostPattern` exactly (tested against `host`, i.e. hostname plus any
 * non-default port); no userinfo, query or fragment; an IP literal only when `hostPattern` names
 * that address (never with a pattern that would admit any other IP); path matches `pathPattern` and
 * ends in `.pem`; and the string is already in canonical form (`https://<host><path>`), so no
 * other URL parser (a proxy's, a legacy `url.parse`) can read it differently from WHATWG `URL` here.
 */
export function checkSigningCertUrl(raw: unknown, hostPattern: RegExp, pathPattern: RegExp = DEFAULT_CERT_PATH_PATTERN): UrlCheck {
  const r = commonChecks(raw, hostPattern, 1024);
  if (!r.ok) return r;
  const { url } = r;
  if (url.search !== '' || (raw as string).includes('?')) return { ok: false, reason: 'query not allowed' };
  if (!url.pathname.endsWith('.pem') || !matchesWhole(pathPattern, url.pathname)) return { ok: false, reason: 'path not allowed' };
  if (raw !== `https://${url.host}${url.pathname}`) return { ok: false, reason: 'not in canonical form' };
  return r;
}

/**
 * Checks a `SubscribeURL` before we GET it to confirm a subscription.
 *
 * Rules: https; host matches `hostPattern` exactly (no port unless the pattern allows one); no
 * userinfo, IP literal or fragment; and when the URL names a `TopicArn` it must be the message's
 * own topic. The caller fetches the returned, parsed URL (never the raw string).
 */
export function checkSubscribeUrl(raw: unknown, hostPattern: RegExp, topicArn: string): UrlCheck {
  const r = commonChecks(raw, hostPattern, 4096);
  if (!r.ok) return r;
  const action = r.url.searchParams.get('Action');
  if (action !== null && action !== 'ConfirmSubscription') return { ok: false, reason: 'unexpected Action' };
  const topic = r.url.searchParams.get('TopicArn');
  if (topic !== null && topic !== topicArn) return { ok: false, reason: 'TopicArn differs from the message' };
  return r;
}
