/**
 * Amazon SNS message signing, exactly as SNS does it for HTTP(S) subscriptions.
 *
 * Exported on its own so webhook tests can forge and tamper with messages: sign a message with
 * the sandbox's key ({@link SesSandbox.signMessage}) or with a key of their own, change a field
 * after signing, and check that verification fails.
 *
 * String to sign, as `Key\nValue\n` pairs in this order:
 * - Notification: Message, MessageId, Subject (only if present), Timestamp, TopicArn, Type.
 * - SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId, SubscribeURL,
 *   Timestamp, Token, TopicArn, Type.
 * SignatureVersion 1 signs with RSA-SHA1, version 2 with RSA-SHA256; the signature is base64.
 */
import { createSign, createVerify } from 'node:crypto';

/** The three SNS message types that reach an HTTP(S) endpoint. */
export const SNS_MESSAGE_TYPES = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const;
/** An SNS message type (`x-amz-sns-message-type`). */
export type SnsMessageType = (typeof SNS_MESSAGE_TYPES)[number];

/** SNS signature versions: `'1'` is RSA-SHA1, `'2'` is RSA-SHA256. */
export type SnsSignatureVersion = '1' | '2';

/** The fields of an SNS message that take part in (or carry) its signature. */
export interface UnsignedSnsMessage {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  /** Notifications only, and only when the publisher set one (SES event notifications: `Amazon SES Email Event Notification`). */
  Subject?: string;
  /** Subscription and unsubscribe confirmations only. */
  Token?: string;
  /** Subscription and unsubscribe confirmations only. */
  SubscribeURL?: string;
  /** Notifications only; not signed. */
  UnsubscribeURL?: string;
}

/** A complete SNS HTTP(S) message body (the JSON object SNS posts). */
export interface SnsMessage extends UnsignedSnsMessage {
  SignatureVersion: SnsSignatureVersion;
  Signature: string;
  SigningCertURL: string;
}

/**
 * Builds the exact string SNS signs for `msg`.
 *
 * @throws {Error} when a confirmation lacks `Token` or `SubscribeURL`, or `Type` is unknown.
 */
export function buildStringToSign(msg: UnsignedSnsMessage): string {
  const pair = (key: string, value: string): string => `${key}\n${value}\n`;
  switch (msg.Type) {
    case 'Notification':
      return (
        pair('Message', msg.Message) +
        pair('MessageId', msg.MessageId) +
        (msg.Subject !== undefined ? pair('Subject', msg.Subject) : '') +
        pair('Timestamp', msg.Timestamp) +
        pair('TopicArn', msg.TopicArn) +
        pair('Type', msg.Type)
      );
    case 'SubscriptionConfirmation':
    case 'UnsubscribeConfirmation': {
      if (msg.Token === undefined || msg.SubscribeURL === undefined) {
        throw new Error(`SNS ${msg.Type} needs Token and SubscribeURL to be signed`);
      }
      return (
        pair('Message', msg.Message) +
        pair('MessageId', msg.MessageId) +
        pair('SubscribeURL', msg.SubscribeURL) +
        pair('Timestamp', msg.Timestamp) +
        pair('Token', msg.Token) +
        pair('TopicArn', msg.TopicArn) +
        pair('Type', msg.Type)
      );
    }
    default: {
      const t: never = msg.Type;
      throw new Error(`unknown SNS message type ${String(t)}`);
    }
  }
}

function algorithm(version: SnsSignatureVersion): string {
  return version === '1' ? 'RSA-SHA1' : 'RSA-SHA256';
}

/**
 * Signs `msg` the way SNS does and returns the base64 signature.
 *
 * @param privateKeyPem PEM (PKCS#1 or PKCS#8) RSA private key matching the signing certificate.
 * @throws {Error} from {@link buildStringToSign}, or when the key cannot be read.
 */
export function signSnsMessage(msg: UnsignedSnsMessage, privateKeyPem: string, version: SnsSignatureVersion): string {
  const signer = createSign(algorithm(version));
  signer.update(buildStringToSign(msg), 'utf8');
  signer.end();
  return signer.sign(privateKeyPem, 'base64');
}

/**
 * Verifies an SNS signature against a certificate (or public key) PEM. A convenience for tests;
 * the webhook (`src/webhook/sns-verify.ts`) also fetches and checks the certificate.
 */
export function verifySnsSignature(msg: SnsMessage, certificatePem: string): boolean {
  const verifier = createVerify(algorithm(msg.SignatureVersion));
  verifier.update(buildStringToSign(msg), 'utf8');
  verifier.end();
  return verifier.verify(certificatePem, msg.Signature, 'base64');
}

/**
 * Returns a complete, signed SNS message body for `msg`.
 *
 * @throws {Error} as {@link signSnsMessage}.
 */
export function buildSignedSnsMessage(
  msg: UnsignedSnsMessage,
  opts: { privateKeyPem: string; version: SnsSignatureVersion; signingCertUrl: string },
): SnsMessage {
  const Signature = signSnsMessage(msg, opts.privateKeyPem, opts.version);
  // Field order follows what SNS posts (JSON field order is not significant to verifiers).
  const out: SnsMessage = {
    Type: msg.Type,
    MessageId: msg.MessageId,
    ...(msg.Token !== undefined ? { Token: msg.Token } : {}),
    TopicArn: msg.TopicArn,
    ...(msg.Subject !== undefined ? { Subject: msg.Subject } : {}),
    Message: msg.Message,
    ...(msg.SubscribeURL !== undefined ? { SubscribeURL: msg.SubscribeURL } : {}),
    Timestamp: msg.Timestamp,
    SignatureVersion: opts.version,
    Signature,
    SigningCertURL: opts.signingCertUrl,
    ...(msg.UnsubscribeURL !== undefined ? { UnsubscribeURL: msg.UnsubscribeURL } : {}),
  };
  return out;
}
