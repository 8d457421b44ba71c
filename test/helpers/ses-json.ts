/**
 * Builders of SES event-publishing JSON in the documented shapes, for tests that signal events
 * directly (the webhook tests use the sandbox's real SNS posts instead).
 */
import { parseSesEvent } from '../../src/ses-events';
import type { SesEvent } from '../../src/lifecycle';

export type EventKind = 'Send' | 'Delivery' | 'Bounce' | 'Complaint' | 'DeliveryDelay' | 'Open';

export interface EventJsonOptions {
  messageId: string;
  recipients: string[];
  at: string;
  bounce?: [string, string];
  lifecycleId?: string;
}

/** SES event JSON for one message, as event publishing would carry it. */
export function sesEventJson(type: EventKind, o: EventJsonOptions): Record<string, unknown> {
  const mail = {
    timestamp: '2026-01-01T00:00:00.000Z',
    source: 'app@example.com',
    messageId: o.messageId,
    destination: o.recipients,
    tags: o.lifecycleId ? { 'lifecycle-id': [o.lifecycleId] } : {},
  };
  const rcpts = o.recipients.map((emailAddress) => ({ emailAddress }));
  switch (type) {
    case 'Send':
      return { eventType: 'Send', mail: { ...mail, timestamp: o.at }, send: {} };
    case 'Delivery':
      return { eventType: 'Delivery', mail, delivery: { timestamp: o.at, recipients: o.recipients, processingTimeMillis: 10 } };
    case 'Bounce': {
      const [bounceType, bounceSubType] = o.bounce ?? ['Permanent', 'General'];
      return { eventType: 'Bounce', mail, bounce: { bounceType, bounceSubType, bouncedRecipients: rcpts, timestamp: o.at, feedbackId: `fb-${o.at}-${bounceType}` } };
    }
    case 'Complaint':
      return { eventType: 'Complaint', mail, complaint: { complainedRecipients: rcpts, timestamp: o.at, feedbackId: `c-${o.at}`, complaintFeedbackType: 'abuse' } };
    case 'DeliveryDelay':
      return { eventType: 'DeliveryDelay', mail, deliveryDelay: { timestamp: o.at, delayType: 'MailboxFull', delayedRecipients: rcpts } };
    case 'Open':
      return { eventType: 'Open', mail, open: { timestamp: o.at, ipAddress: '192.0.2.1', userAgent: 'x' } };
  }
}

/** A normalized event, parsed by the product's own parser from {@link sesEventJson}. */
export function sesEvent(type: EventKind, o: EventJsonOptions): SesEvent {
  const r = parseSesEvent(sesEventJson(type, o));
  if (r.kind !== 'event') throw new Error(`not an SES event: ${r.reason}`);
  return r.event;
}
