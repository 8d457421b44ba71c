/**
 * AWS Signature Version 4 verification for the sandbox's SNS Query API, so only holders of the
 * sandbox's credentials can publish or subscribe (the AWS SDK, boto3 and the AWS CLI all sign this
 * way). The canonical request is rebuilt from the request as received: method, path, query,
 * the signed headers, and the SHA-256 of the body.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SnsApiError } from './errors';

/** A credential pair the sandbox accepts. */
export interface SandboxCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What is needed of a request to verify its signature. */
export interface SignedRequest {
  method: string;
  /** Path and query as received, e.g. `/` or `/?Action=…`. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body ('' when none). */
  body: string;
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_-]+),\s*Signature=([0-9a-f]{64})$/;
/** Largest clock difference accepted between `x-amz-date` and now (as AWS: 15 minutes). */
const MAX_SKEW_MS = 15 * 60_000;

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept, the rest %XX upper-case). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query.split('&').filter(Boolean).map((p) => {
    const i = p.indexOf('=');
    const k = decodeURIComponent((i < 0 ? p : p.slice(0, i)).replace(/\+/g, ' '));
    const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1).replace(/\+/g, ' '));
    return [uriEncode(k), uriEncode(v)] as const;
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function canonicalPath(path: string): string {
  // Non-S3 services: each segment URI-encoded once more (the SDK double-encodes).
  return path.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/') || '/';
}

function header(headers: SignedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

const sha256 = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');

/**
 * Verifies a request's SigV4 `Authorization` header against `accepted` credentials.
 *
 * @throws {SnsApiError} 403 `MissingAuthenticationToken` (no or unparsable header),
 *   `InvalidClientTokenId` (unknown access key id), `SignatureDoesNotMatch` (wrong signature,
 *   an unsigned `host`/`x-amz-date`, or a date more than 15 minutes off).
 */
export function verifySigV4(req: SignedRequest, accepted: readonly SandboxCredentials[], now = Date.now()): void {
  const auth = header(req.headers, 'authorization');
  const m = auth === undefined ? null : AUTH.exec(auth);
  if (!m) throw new SnsApiError('MissingAuthenticationToken', 403, 'Request is missing Authentication Token (the sandbox requires SigV4 with its credentials)');
  const [, accessKeyId, date, region, service, signedHeaderList, signature] = m as unknown as [string, string, string, string, string, string, string];
  const creds = accepted.find((c) => c.accessKeyId === accessKeyId);
  if (!creds) throw new SnsApiError('InvalidClientTokenId', 403, 'The security token included in the request is invalid.');
  const signedHeaders = signedHeaderList.split(';');
  const amzDate = header(req.headers, 'x-amz-date');
  if (!signedHeaders.includes('host') || amzDate === undefined || !signedHeaders.includes('x-amz-date') || !amzDate.startsWith(date)) {
    throw new SnsApiError('SignatureDoesNotMatch', 403, 'host and x-amz-date must be signed, and x-amz-date must match the credential scope');
  }
  const at = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!Number.isFinite(at) || Math.abs(now - at) > MAX_SKEW_MS) {
    throw new SnsApiError('SignatureDoesNotMatch', 403, 'Signature expired: x-amz-date is more than 15 minutes away from the sandbox clock');
  }
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${(header(req.headers, h) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const payloadHash = header(req.headers, 'x-amz-content-sha256') ?? sha256(req.body);
  const canonicalRequest = [req.method, canonicalPath(path), canonicalQuery(query), canonicalHeaders, signedHeaderList, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = Buffer.from(createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new SnsApiError('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match the signature you provided.');
  }
}
