/**
 * Signed SNS notifications carrying SES events for one lifecycle, as the sandbox's SNS would post
 * them (signed with the sandbox key, SignatureVersion 2 unless told).
 */
import { randomUUID } from 'node:crypto';
import type { SesSandbox, SnsMessage } from '../src/sandbox';
import { DEFAULT_CERT_PATH_PATTERN, SnsVerifier } from '../src/webhook';
import { sesEventJson, type EventKind } from '../test/helpers/ses-json';

/** A lifecycle whose email the sandbox accepted. */
export interface SentLifecycle {
  lifecycleId: string;
  sesMessageId: string;
  recipient: string;
}

/** A ready-to-post request. */
export interface SignedPost {
  body: string;
  headers: Record<string, string>;
  message: SnsMessage;
}

let seq = 0;

/**
 * Builds and signs one SNS Notification with an SES event of `kind` for `lc`. Every call yields a
 * distinct SNS MessageId and a distinct event timestamp, so every post is a new event.
 */
export function signedEvent(sandbox: SesSandbox, topicArn: string, kind: EventKind, lc: SentLifecycle, version: '1' | '2' = '2'): SignedPost {
  const at = new Date(Date.now() + (seq++ % 1000)).toISOString();
  const event = sesEventJson(kind, { messageId: lc.sesMessageId, recipients: [lc.recipient], at, lifecycleId: lc.lifecycleId });
  return signedSesNotification(sandbox, topicArn, event, version);
}

/**
 * Signs any SES event JSON as the SNS Notification SES would publish (with SES's Subject), with a
 * fresh SNS MessageId, and the headers SNS sends with it.
 */
export function signedSesNotification(sandbox: SesSandbox, topicArn: string, event: object, version?: '1' | '2'): SignedPost {
  const messageId = randomUUID();
  const message = sandbox.signMessage(
    {
      Type: 'Notification',
      MessageId: messageId,
      TopicArn: topicArn,
      Subject: 'Amazon SES Email Event Notification',
      Message: JSON.stringify(event),
      Timestamp: new Date().toISOString(),
      UnsubscribeURL: `${sandbox.httpsOrigin}/?Action=Unsubscribe&SubscriptionArn=${encodeURIComponent(`${topicArn}:bench`)}`,
    },
    version,
  );
  return {
    body: JSON.stringify(message),
    headers: {
      'content-type': 'text/plain; charset=UTF-8',
      'x-amz-sns-message-type': 'Notification',
      'x-amz-sns-message-id': messageId,
      'x-amz-sns-topic-arn': topicArn,
      'user-agent': 'Amazon Simple Notification Service Agent',
    },
    message,
  };
}

/** An SnsVerifier that trusts the sandbox's certificates (as the stack's webhook does). */
export function sandboxVerifier(sandbox: SesSandbox): SnsVerifier {
  return new SnsVerifier({
    certHostPattern: new RegExp(`^${sandbox.certHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
    certPathPattern: DEFAULT_CERT_PATH_PATTERN,
    timeoutMs: 5_000,
    // The sandbox CA: for the HTTPS fetch of the certificate, and as the chain's only anchor.
    fetchCaPem: sandbox.caCertPem,
    trustedCaPems: [sandbox.caCertPem],
  });
}
