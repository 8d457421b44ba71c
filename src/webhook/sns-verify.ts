/**
 * SNS signature verification (SignatureVersion 1 = RSA-SHA1, 2 = RSA-SHA256), done here end to
 * end so that every step is bounded and checked:
 *
 * 1. **Canonical string**: SNS signs `Key\nValue\n` pairs. A value containing a newline could
 *    shift text between keys (`MessageId = "<id>\nSubject\n<subject>"` with `Subject` removed
 *    builds the same string), so every signed field except `Message` must be free of CR and LF,
 *    as SNS always sends them ({@link SIGNED_SINGLE_LINE_FIELDS}).
 * 2. **Certificate URL**: https, strict host and path patterns ({@link checkSigningCertUrl}).
 * 3. **Certificate fetch**: one fetch per URL at a time (concurrent messages share it), each
 *    bounded by `timeoutMs` and a 64 KiB body, at most `maxConcurrentFetchesPerHost` per host, so
 *    slow or hanging URLs never delay a message whose certificate lives elsewhere; failures are
 *    remembered briefly (`failureTtlMs`) so retries of a bad URL cost nothing.
 * 4. **Certificate checks**: the leaf is within its validity dates, is not a CA, names an SNS
 *    signing identity (`sns.amazonaws.com`, or the region-specific names AWS uses) in its SAN or
 *    subject CN, and chains to a trust anchor: Amazon Root CA 1-4 by default (intermediates come
 *    from the PEM itself, from `intermediatePems`, or from the leaf's "CA Issuers" URL on
 *    `crt.*.amazontrust.com`); in sandbox mode the sandbox CA instead.
 * 5. **Cache**: verified certificates (their keys) are kept in a bounded LRU, re-checked for expiry
 *    on every use.
 */
import { createVerify, X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import { AMAZON_ROOT_CA_PEMS } from './amazon-roots';
import { RejectReason, UnavailableReason } from './metrics';
import { checkSigningCertUrl, matchesWhole } from './url-checks';

/** The SNS message types we accept. */
export const SNS_MESSAGE_TYPES = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const;
export type SnsMessageType = (typeof SNS_MESSAGE_TYPES)[number];

/** A parsed SNS HTTP(S) envelope (only the fields we use). */
export interface SnsEnvelope {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: string;
  Signature: string;
  SigningCertURL: string;
  Subject?: string;
  SubscribeURL?: string;
  Token?: string;
}

/** Envelope fields SNS never puts a line break in: a CR or LF in one of them is a forgery attempt. */
export const SIGNED_SINGLE_LINE_FIELDS = ['Type', 'MessageId', 'TopicArn', 'Timestamp', 'Subject', 'SubscribeURL', 'Token', 'SignatureVersion', 'Signature', 'SigningCertURL'] as const;

/** Verification failed. `permanent` failures are 403s; the others are 503s (SNS retries). */
export class SnsVerificationError extends Error {
  override readonly name = 'SnsVerificationError';
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly reason: RejectReason | UnavailableReason,
  ) {
    super(message);
  }
}

/** Options of {@link SnsVerifier}. */
export interface SnsVerifierOptions {
  certHostPattern: RegExp;
  certPathPattern: RegExp;
  /** Upper bound for one certificate fetch (and for one verification, fetches included). */
  timeoutMs: number;
  /**
   * Trust anchors (PEM) the signing certificate must chain to. Default: Amazon Root CA 1-4 (from
   * `tls.rootCertificates`, else the copies shipped in `amazon-roots.ts`).
   */
  trustedCaPems?: readonly string[];
  /** Intermediate CA certificates (PEM) to build chains with, besides those in the fetched PEM. */
  intermediatePems?: readonly string[];
  /** Extra CA (PEM, one or a bundle) trusted for the HTTPS connection that fetches certificates (sandbox). */
  fetchCaPem?: string;
  /**
   * Names the signing certificate may carry (SAN dNSName, else subject CN). Default: derived from
   * the certificate URL's region ({@link expectedSigningCertNames}).
   */
  certSubjectNames?: readonly string[];
  /** URLs an intermediate may be fetched from ("CA Issuers"). Default `http://crt.<x>.amazontrust.com/<x>.cer`. */
  issuerUrlPattern?: RegExp;
  /** Concurrent certificate fetches per host; more → unavailable (SNS retries). Default 16. */
  maxConcurrentFetchesPerHost?: number;
  /** Concurrent certificate fetches in total. Default 256. */
  maxConcurrentFetches?: number;
  /** Verified certificates kept. Default 64. */
  maxCachedCertificates?: number;
  /** How long a failed certificate URL is answered from memory. Default 5000 ms. */
  failureTtlMs?: number;
  /** Clock (ms since epoch), for certificate validity. Default `Date.now`. */
  now?: () => number;
}

/** Default "CA Issuers" URL pattern: Amazon Trust Services' intermediate download hosts. */
export const DEFAULT_ISSUER_URL_PATTERN = /^http:\/\/crt\.[a-z0-9]{1,16}\.amazontrust\.com\/[a-z0-9]{1,16}\.cer$/;

/**
 * The exact string SNS signs for an envelope.
 *
 * - Notification: Message, MessageId, Subject (when present), Timestamp, TopicArn, Type.
 * - SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId, SubscribeURL,
 *   Timestamp, Token, TopicArn, Type.
 */
export function snsStringToSign(env: SnsEnvelope): string {
  const pair = (key: string, value: string): string => `${key}\n${value}\n`;
  if (env.Type === 'Notification') {
    return (
      pair('Message', env.Message) +
      pair('MessageId', env.MessageId) +
      (env.Subject !== undefined ? pair('Subject', env.Subject) : '') +
      pair('Timestamp', env.Timestamp) +
      pair('TopicArn', env.TopicArn) +
      pair('Type', env.Type)
    );
  }
  return (
    pair('Message', env.Message) +
    pair('MessageId', env.MessageId) +
    pair('SubscribeURL', env.SubscribeURL ?? '') +
    pair('Timestamp', env.Timestamp) +
    pair('Token', env.Token ?? '') +
    pair('TopicArn', env.TopicArn) +
    pair('Type', env.Type)
  );
}

/** The name of the first signed field (other than Message) that holds a CR or LF, if any. */
export function fieldWithLineBreak(env: SnsEnvelope): string | undefined {
  for (const key of SIGNED_SINGLE_LINE_FIELDS) {
    const v = env[key];
    if (typeof v === 'string' && /[\r\n]/.test(v)) return key;
  }
  return undefined;
}

/**
 * Names an SNS signing certificate may carry for a certificate served at `certHost`:
 * `sns.amazonaws.com` everywhere, plus the region-specific names AWS uses for newer commercial
 * regions (`sns-signing.<region>.amazonaws.com`), GovCloud (`sns-us-gov-west-1.amazonaws.com`)
 * and China (`sns-<region>.amazonaws.com.cn`).
 */
export function expectedSigningCertNames(certHost: string): string[] {
  const names = ['sns.amazonaws.com'];
  const m = /^sns\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(certHost);
  const region = m?.[1];
  if (region === undefined) return names;
  if (m?.[2] !== undefined) return [...names, `sns-${region}.amazonaws.com.cn`, 'sns.amazonaws.com.cn'];
  if (region.startsWith('us-gov-')) return [...names, 'sns-us-gov-west-1.amazonaws.com', `sns-${region}.amazonaws.com`];
  return [...names, `sns-signing.${region}.amazonaws.com`];
}

let amazonRoots: X509Certificate[] | undefined;
/** Amazon Root CA 1-4: from Node's bundled root store when present, else the shipped copies. */
export function amazonRootCas(): X509Certificate[] {
  if (amazonRoots) return amazonRoots;
  const isAmazonRoot = (c: X509Certificate) => /^CN=Amazon Root CA [1-4]$/m.test(c.subject) && /^O=Amazon$/m.test(c.subject) && c.ca;
  const bundled = tls.rootCertificates.map((p) => new X509Certificate(p)).filter(isAmazonRoot);
  amazonRoots = bundled.length >= 4 ? bundled : AMAZON_ROOT_CA_PEMS.map((p) => new X509Certificate(p));
  return amazonRoots;
}

/** Splits a PEM bundle into certificates. @throws Error when there is none or one is invalid. */
function parsePemBundle(text: string, max = 8): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0 || blocks.length > max) throw new Error('no PEM certificate, or too many');
  return blocks.map((b) => new X509Certificate(b));
}

function validAt(cert: X509Certificate, now: number): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= now && now <= to;
}

/** `child` was issued and signed by `issuer`. */
function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

class FetchError extends Error {}
class CertificateRejected extends Error {}

/** GETs a small body over http(s), bounded in time and size; no redirects. */
function fetchSmall(url: URL, timeoutMs: number, caPem: string | undefined, maxBytes = 64 * 1024): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const options = {
      agent: false as const,
      timeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'user-agent': 'ses-lifecycle-webhook' },
      ...(url.protocol === 'https:' && caPem !== undefined ? { ca: [...tls.rootCertificates, caPem] } : {}),
    };
    const onResponse = (res: http.IncomingMessage): void => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new FetchError(`HTTP ${res.statusCode ?? 0}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) res.destroy(new FetchError('certificate response too large'));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', (err) => reject(new FetchError(err.message)));
    };
    const req = url.protocol === 'https:' ? https.get(url, options, onResponse) : http.get(url, options, onResponse);
    req.on('timeout', () => req.destroy(new FetchError(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof FetchError ? err : new FetchError(err.name === 'AbortError' ? `timed out after ${timeoutMs} ms` : err.message)));
  });
}

interface CachedCert {
  cert: X509Certificate;
}

/** Verifies SNS message signatures. One instance per app. */
export class SnsVerifier {
  private readonly anchors: X509Certificate[];
  private readonly intermediates: X509Certificate[];
  private readonly issuerUrlPattern: RegExp;
  private readonly certs: LRUCache<string, CachedCert>;
  private readonly failures: LRUCache<string, SnsVerificationError>;
  private readonly issuers = new LRUCache<string, X509Certificate>({ max: 16 });
  private readonly pending = new Map<string, Promise<CachedCert>>();
  private readonly perHost = new Map<string, number>();
  private total = 0;
  private readonly now: () => number;

  constructor(private readonly opts: SnsVerifierOptions) {
    // Each entry may be one PEM certificate or a bundle of several.
    this.anchors = opts.trustedCaPems ? opts.trustedCaPems.flatMap((p) => parsePemBundle(p, 64)) : amazonRootCas();
    if (this.anchors.length === 0) throw new Error('SnsVerifier: no trust anchor');
    this.intermediates = (opts.intermediatePems ?? []).flatMap((p) => parsePemBundle(p, 64));
    this.issuerUrlPattern = opts.issuerUrlPattern ?? DEFAULT_ISSUER_URL_PATTERN;
    this.certs = new LRUCache({ max: opts.maxCachedCertificates ?? 64 });
    this.failures = new LRUCache({ max: 1024, ttl: opts.failureTtlMs ?? 5_000 });
    this.now = opts.now ?? Date.now;
  }

  /** True when a message signed with this certificate URL verifies without a network fetch. */
  hasCertificate(url: string): boolean {
    return this.certs.has(url);
  }

  /**
   * Verifies an envelope's signature.
   *
   * @throws {SnsVerificationError} `permanent` for unsupported SignatureVersion, a signed field
   *   with a line break, a certificate URL outside the allowed pattern, a certificate that fails
   *   its checks, or a bad signature; not permanent when the certificate could not be fetched in
   *   time (or too many fetches are under way for its host).
   */
  async verify(env: SnsEnvelope): Promise<void> {
    if (env.SignatureVersion !== '1' && env.SignatureVersion !== '2') {
      throw new SnsVerificationError('unsupported SignatureVersion', true, RejectReason.UnsupportedSignatureVersion);
    }
    const broken = fieldWithLineBreak(env);
    if (broken !== undefined) throw new SnsVerificationError(`${broken} contains a line break`, true, RejectReason.Malformed);
    const check = checkSigningCertUrl(env.SigningCertURL, this.opts.certHostPattern, this.opts.certPathPattern);
    if (!check.ok) throw new SnsVerificationError(`SigningCertURL ${check.reason}`, true, RejectReason.CertUrlNotAllowed);

    const { cert } = await this.certificate(check.url);
    if (!validAt(cert, this.now())) {
      this.certs.delete(check.url.href);
      throw new SnsVerificationError('signing certificate expired', true, RejectReason.CertNotTrusted);
    }
    let ok: boolean;
    try {
      const verifier = createVerify(env.SignatureVersion === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
      verifier.update(snsStringToSign(env), 'utf8');
      ok = verifier.verify(cert.publicKey, env.Signature, 'base64');
    } catch {
      ok = false;
    }
    if (!ok) throw new SnsVerificationError('signature is invalid', true, RejectReason.InvalidSignature);
  }

  /** The verified certificate at `url`: cached, or fetched once for all concurrent callers. */
  private certificate(url: URL): Promise<CachedCert> {
    const key = url.href;
    const cached = this.certs.get(key);
    if (cached) return Promise.resolve(cached);
    const failed = this.failures.get(key);
    if (failed) return Promise.reject(failed);
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;

    const host = url.host;
    const hostCount = this.perHost.get(host) ?? 0;
    if (hostCount >= (this.opts.maxConcurrentFetchesPerHost ?? 16) || this.total >= (this.opts.maxConcurrentFetches ?? 256)) {
      return Promise.reject(new SnsVerificationError('too many certificate fetches under way', false, UnavailableReason.CertFetchBusy));
    }
    this.perHost.set(host, hostCount + 1);
    this.total += 1;
    const attempt = this.load(url)
      .then((entry) => {
        this.certs.set(key, entry);
        return entry;
      })
      .catch((err: unknown) => {
        const e = this.classify(err);
        this.failures.set(key, e);
        throw e;
      })
      .finally(() => {
        this.pending.delete(key);
        this.total -= 1;
        const n = (this.perHost.get(host) ?? 1) - 1;
        if (n <= 0) this.perHost.delete(host);
        else this.perHost.set(host, n);
      });
    this.pending.set(key, attempt);
    return attempt;
  }

  private classify(err: unknown): SnsVerificationError {
    if (err instanceof SnsVerificationError) return err;
    if (err instanceof CertificateRejected) return new SnsVerificationError(`signing certificate refused: ${err.message}`, true, RejectReason.CertNotTrusted);
    const message = err instanceof Error ? err.message : String(err);
    const timeout = /timed out/.test(message);
    return new SnsVerificationError(`certificate unavailable: ${message}`, false, timeout ? UnavailableReason.CertFetchTimeout : UnavailableReason.CertFetch);
  }

  /** Fetches, parses and checks the certificate at `url`. */
  private async load(url: URL): Promise<CachedCert> {
    const deadline = Date.now() + this.opts.timeoutMs;
    const body = await fetchSmall(url, this.opts.timeoutMs, this.opts.fetchCaPem);
    let bundle: X509Certificate[];
    try {
      bundle = parsePemBundle(body.toString('latin1'));
    } catch (err) {
      throw new CertificateRejected(`not a PEM certificate (${(err as Error).message})`);
    }
    const leaf = bundle[0]!;
    const now = this.now();
    if (!validAt(leaf, now)) throw new CertificateRejected(`outside its validity (${leaf.validFrom} – ${leaf.validTo})`);
    if (leaf.ca) throw new CertificateRejected('is a CA certificate');
    const names = this.opts.certSubjectNames ?? expectedSigningCertNames(url.host);
    if (!names.some((n) => leaf.checkHost(n, { subject: 'default', wildcards: false, partialWildcards: false }) !== undefined)) {
      throw new CertificateRejected(`names none of ${names.join(', ')}`);
    }
    await this.checkChain(leaf, bundle.slice(1), now, deadline);
    return { cert: leaf };
  }

  /** Walks from `leaf` to a trust anchor through valid CA certificates. */
  private async checkChain(leaf: X509Certificate, extra: X509Certificate[], now: number, deadline: number): Promise<void> {
    const pool = [...extra, ...this.intermediates, ...this.issuers.values()];
    let current = leaf;
    let fetched = 0;
    for (let depth = 0; depth < 5; depth++) {
      if (this.anchors.some((a) => a.fingerprint256 === current.fingerprint256 || (validAt(a, now) && issuedBy(current, a)))) return;
      let issuer = pool.find((p) => p.ca && validAt(p, now) && p.fingerprint256 !== current.fingerprint256 && issuedBy(current, p));
      if (!issuer && fetched < 2) {
        const fromUrl = await this.fetchIssuer(current, deadline);
        fetched += 1;
        if (fromUrl && fromUrl.ca && validAt(fromUrl, now) && issuedBy(current, fromUrl)) {
          this.issuers.set(fromUrl.fingerprint256, fromUrl);
          issuer = fromUrl;
        }
      }
      if (!issuer) throw new CertificateRejected('does not chain to a trusted CA');
      current = issuer;
    }
    throw new CertificateRejected('certificate chain too long');
  }

  /** The issuer named by a certificate's "CA Issuers" URL, when that URL is an allowed one. */
  private async fetchIssuer(cert: X509Certificate, deadline: number): Promise<X509Certificate | undefined> {
    const raw = /CA Issuers - URI:(\S+)/.exec(cert.infoAccess ?? '')?.[1];
    if (raw === undefined || !matchesWhole(this.issuerUrlPattern, raw)) return undefined;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new FetchError(`timed out after ${this.opts.timeoutMs} ms`);
    const body = await fetchSmall(new URL(raw), remaining, this.opts.fetchCaPem);
    try {
      const text = body.toString('latin1');
      return text.includes('-----BEGIN CERTIFICATE-----') ? parsePemBundle(text)[0] : new X509Certificate(body);
    } catch {
      return undefined;
    }
  }
}
