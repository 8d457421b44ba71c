/**
 * SNS signature verification around `sns-validator` (AWS's validator, SignatureVersion 1 and 2).
 *
 * What the library does, and what this module adds:
 * - It fetches the signing certificate with the module-level `https.get` (through
 *   `https.globalAgent`), with no timeout, and caches every certificate it ever fetched in an
 *   unbounded module-level object. So (a) {@link checkSigningCertUrl} runs first and only URLs that
 *   pass the strict host/path pattern ever reach the library, (b) each verification is raced
 *   against a timeout (→ "unavailable", SNS retries), (c) concurrent first fetches of one URL are
 *   coalesced and cold fetches are capped, and (d) a small LRU records which certificate URLs the
 *   library has already fetched. Residual: the library's own cache never evicts; with the default
 *   patterns it can only hold certificates that AWS itself serves with HTTP 200 at
 *   `sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem` (a few per region over the
 *   life of a process), and a timed-out fetch keeps its socket until the agent's socket timeout.
 * - It reads only allowlisted keys: we hand it a fresh object built from the parsed envelope, so
 *   extra keys (such as the Lambda-style `SigningCertUrl`, which the library copies over
 *   `SigningCertURL` after our check would have run) cannot change what it verifies or fetches.
 * - It signs `UnsubscribeConfirmation` with the Notification key list (no `Token`), unlike SNS.
 *   {@link libraryView} compensates so genuine unsubscribe notices verify.
 */
import https from 'node:https';
import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import MessageValidator from 'sns-validator';
import { RejectReason, UnavailableReason } from './metrics';
import { checkSigningCertUrl } from './url-checks';

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
  /** Upper bound for one verification, certificate fetch included. */
  timeoutMs: number;
  /** Cold certificate fetches allowed at once (different URLs); more → unavailable. Default 4. */
  maxConcurrentCertFetches?: number;
}

/** Builds the object handed to the library: signed keys only, with the unsubscribe fix-up. */
export function libraryView(env: SnsEnvelope): Record<string, string> {
  const view: Record<string, string> = {
    Type: env.Type,
    MessageId: env.MessageId,
    TopicArn: env.TopicArn,
    Message: env.Message,
    Timestamp: env.Timestamp,
    SignatureVersion: env.SignatureVersion,
    Signature: env.Signature,
    SigningCertURL: env.SigningCertURL,
  };
  if (env.Type === 'Notification') {
    if (env.Subject !== undefined) view.Subject = env.Subject;
    return view;
  }
  view.SubscribeURL = env.SubscribeURL ?? '';
  view.Token = env.Token ?? '';
  if (env.Type === 'UnsubscribeConfirmation') {
    // The library signs `key\nvalue\n` for Message, MessageId, Subject, SubscribeURL, Timestamp,
    // TopicArn, Type when the type is not SubscriptionConfirmation: it leaves out Token, which SNS
    // signs between Timestamp and TopicArn. Appending `\nToken\n<token>` to the Timestamp value
    // yields exactly SNS's string to sign.
    view.Timestamp = `${env.Timestamp}\nToken\n${view.Token}`;
  }
  return view;
}

const validatorMessages: [RegExp, boolean, RejectReason | UnavailableReason][] = [
  [/signature is invalid/i, true, RejectReason.InvalidSignature],
  [/signature version .* not supported/i, true, RejectReason.UnsupportedSignatureVersion],
  [/invalid domain/i, true, RejectReason.CertUrlNotAllowed],
  [/missing required keys/i, true, RejectReason.Malformed],
];

/** Maps a library error to our taxonomy: only its judgments on the message are permanent. */
function classify(err: Error): SnsVerificationError {
  for (const [re, permanent, reason] of validatorMessages) {
    if (re.test(err.message)) return new SnsVerificationError(err.message, permanent, reason);
  }
  // Network and TLS errors, non-200 certificate responses, unusable certificate content.
  return new SnsVerificationError(`certificate unavailable: ${err.message}`, false, UnavailableReason.CertFetch);
}

/** Verifies SNS message signatures. One instance per app. */
export class SnsVerifier {
  private readonly validator: MessageValidator;
  /** Certificate URLs the library has fetched (and therefore caches): verifying with them is local. */
  private readonly fetchedCertUrls = new LRUCache<string, true>({ max: 64 });
  private readonly coldFetches = new Map<string, Promise<unknown>>();
  private readonly maxCold: number;

  constructor(private readonly opts: SnsVerifierOptions) {
    // The library re-checks `https` + `.pem` + host pattern with url.parse; ours is stricter.
    this.validator = new MessageValidator(opts.certHostPattern);
    this.maxCold = opts.maxConcurrentCertFetches ?? 4;
  }

  /** True when a message signed with this certificate URL verifies without a network fetch. */
  hasCertificate(url: string): boolean {
    return this.fetchedCertUrls.has(url);
  }

  /**
   * Verifies an envelope's signature.
   *
   * @throws {SnsVerificationError} `permanent` for unsupported SignatureVersion, a certificate URL
   *   outside the allowed pattern, or a bad signature; not permanent when the certificate could not
   *   be fetched in time (or too many first fetches are under way).
   */
  async verify(env: SnsEnvelope): Promise<void> {
    if (env.SignatureVersion !== '1' && env.SignatureVersion !== '2') {
      throw new SnsVerificationError('unsupported SignatureVersion', true, RejectReason.UnsupportedSignatureVersion);
    }
    const check = checkSigningCertUrl(env.SigningCertURL, this.opts.certHostPattern, this.opts.certPathPattern);
    if (!check.ok) throw new SnsVerificationError(`SigningCertURL ${check.reason}`, true, RejectReason.CertUrlNotAllowed);
    const certUrl = env.SigningCertURL;

    if (!this.fetchedCertUrls.has(certUrl)) {
      const pending = this.coldFetches.get(certUrl);
      if (pending) {
        // Someone is fetching this certificate: wait for them instead of fetching it again.
        await pending.catch(() => undefined);
        if (!this.fetchedCertUrls.has(certUrl)) {
          throw new SnsVerificationError('certificate unavailable', false, UnavailableReason.CertFetch);
        }
      } else if (this.coldFetches.size >= this.maxCold) {
        throw new SnsVerificationError('too many certificate fetches under way', false, UnavailableReason.CertFetchBusy);
      } else {
        const attempt = this.validate(env);
        this.coldFetches.set(certUrl, attempt);
        try {
          return await attempt;
        } finally {
          this.coldFetches.delete(certUrl);
        }
      }
    }
    return this.validate(env);
  }

  private validate(env: SnsEnvelope): Promise<void> {
    const { timeoutMs } = this.opts;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new SnsVerificationError(`verification timed out after ${timeoutMs} ms`, false, UnavailableReason.CertFetchTimeout));
      }, timeoutMs);
      try {
        this.validator.validate(libraryView(env), (err) => {
          if (!err || /signature is invalid/i.test(err.message)) this.fetchedCertUrls.set(env.SigningCertURL, true);
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) reject(classify(err));
          else resolve();
        });
      } catch (err) {
        settled = true;
        clearTimeout(timer);
        reject(classify(err instanceof Error ? err : new Error(String(err))));
      }
    });
  }
}

/**
 * Adds a CA certificate to the ones `https.globalAgent` trusts, keeping the public roots.
 *
 * SANDBOX ONLY. sns-validator fetches certificates through `https.globalAgent` and offers no way to
 * pass a CA, and the local sandbox serves its certificate over HTTPS with its own CA. This sets
 * `https.globalAgent.options.ca = [...tls.rootCertificates, pem]` (idempotent, additive), which
 * affects every request in this process that uses the global agent: call it only when a sandbox
 * CA is configured. It never disables verification. (Certificates from NODE_EXTRA_CA_CERTS are
 * not carried over, because `ca` replaces the default trust store.)
 */
export function trustExtraCaForCertificateFetches(pem: string): void {
  const current = https.globalAgent.options.ca;
  const list: (string | Buffer)[] = current === undefined ? [...tls.rootCertificates] : Array.isArray(current) ? [...current] : [current];
  if (!list.some((c) => c.toString() === pem)) list.push(pem);
  https.globalAgent.options.ca = list;
}
