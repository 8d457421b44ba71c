/**
 * Trusting an SNS signer of your own beside SNS (and the sandbox): its CA and the host its
 * signing certificates are served from. For integrators who test with their own signer or replay
 * recorded messages through the real webhook, without re-assembling the stack.
 */
import { X509Certificate } from 'node:crypto';
import { AMAZON_ROOT_CA_PEMS } from './amazon-roots';
import type { WebhookOptions } from './options';
import { DEFAULT_SNS_HOST_PATTERN } from './url-checks';

/** An integrator's own SNS signer. */
export interface SignerTrust {
  /**
   * CA certificate(s), PEM, that the signer's signing certificates chain to. Also trusted for the
   * HTTPS fetch of those certificates. The signing certificate itself must, like SNS's, name
   * `sns.amazonaws.com` (SAN, else CN), be valid now and not be a CA.
   */
  caPem: string;
  /**
   * `host[:port]` of the signer's SigningCertURL (and SubscribeURL), matched whole. An IP literal
   * is accepted only when the pattern names that address.
   */
  certHostPattern: RegExp;
}

/** A pattern matching whole values of any of `patterns`. */
export function anyOf(patterns: readonly RegExp[]): RegExp {
  return new RegExp(patterns.map((p) => `^(?:${p.source})$`).join('|'));
}

/**
 * The webhook options that trust `signer` in addition to the stack's usual signer: the sandbox
 * (its certificate host and CA) in sandbox mode, SNS (its hosts and Amazon Root CA 1-4) otherwise.
 *
 * @throws Error when `signer.caPem` holds no valid PEM certificate.
 */
export function signerTrustOptions(
  usual: { sandbox?: { certHost: RegExp; caPem: string } },
  signer: SignerTrust | undefined,
): Pick<WebhookOptions, 'certHostPattern' | 'subscribeHostPattern' | 'extraCaPem' | 'trustedCaPems'> {
  const { sandbox } = usual;
  if (signer === undefined) return sandbox ? { certHostPattern: sandbox.certHost, subscribeHostPattern: sandbox.certHost, extraCaPem: sandbox.caPem } : {};
  const blocks = signer.caPem.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('the SNS signer CA is not a PEM certificate');
  for (const b of blocks) new X509Certificate(b); // throws on a malformed certificate
  const usualHost = sandbox?.certHost ?? DEFAULT_SNS_HOST_PATTERN;
  const hosts = anyOf([usualHost, signer.certHostPattern]);
  return {
    certHostPattern: hosts,
    subscribeHostPattern: hosts,
    // Trusted for fetches (certificates, SubscribeURL) over HTTPS, public roots kept.
    extraCaPem: sandbox ? `${sandbox.caPem.trim()}\n${blocks.join('\n')}\n` : `${blocks.join('\n')}\n`,
    // Anchors of signing certificates: the usual signer's, plus the integrator's CA.
    trustedCaPems: [...(sandbox ? [sandbox.caPem] : AMAZON_ROOT_CA_PEMS), ...blocks],
  };
}
