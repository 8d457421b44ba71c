/**
 * Confirms an SNS subscription by GETting its (already checked) SubscribeURL.
 */
import https from 'node:https';
import tls from 'node:tls';

/** Why a confirmation GET failed: `rejected` (SNS answered non-2xx) or `unreachable` (network/timeout). */
export class SubscriptionConfirmError extends Error {
  override readonly name = 'SubscriptionConfirmError';
  constructor(
    message: string,
    readonly kind: 'rejected' | 'unreachable',
  ) {
    super(message);
  }
}

/** Options of {@link confirmSubscription}. */
export interface ConfirmOptions {
  timeoutMs: number;
  /** Extra CA to trust for this request only (sandbox). Public roots stay trusted. */
  extraCaPem?: string;
}

/**
 * GETs a SubscribeURL. Redirects are not followed, the response body is read up to 64 KiB and
 * discarded, TLS is always verified.
 *
 * @throws {SubscriptionConfirmError} `rejected` on a non-2xx answer, `unreachable` on network
 *   errors or timeout.
 */
export function confirmSubscription(url: URL, opts: ConfirmOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = https.get(
      url,
      {
        timeout: opts.timeoutMs,
        signal: AbortSignal.timeout(opts.timeoutMs),
        headers: { 'user-agent': 'ses-lifecycle-webhook' },
        ...(opts.extraCaPem !== undefined ? { ca: [...tls.rootCertificates, opts.extraCaPem] } : {}),
      },
      (res) => {
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > 64 * 1024) res.destroy();
        });
        res.on('close', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new SubscriptionConfirmError(`SubscribeURL answered ${status}`, 'rejected'));
        });
        res.on('error', () => undefined);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(new SubscriptionConfirmError(`SubscribeURL unreachable: ${err.message}`, 'unreachable')));
  });
}
