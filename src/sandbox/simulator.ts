/**
 * The SES mailbox simulator: decides what happens to each recipient of an accepted message and
 * builds the event-publishing JSON SES would publish for it. Pure functions: no I/O, no timers.
 *
 * Outcomes by address (local part before any `+label`, case-insensitive):
 * - `success@simulator.amazonses.com` and any non-simulator address: Delivery.
 * - `bounce@simulator…`: Bounce Permanent/General.
 * - `ooto@simulator…`: Delivery, then Bounce Transient/General (out-of-office auto-reply).
 * - `complaint@simulator…`: Delivery, then Complaint (abuse).
 * - `suppressionlist@simulator…`: Bounce Permanent/Suppressed (SES's global suppression list),
 *   with SES's diagnostic for it and reportingMTA `dns; amazonses.com`.
 * - Addresses on the account suppression list: Bounce Permanent/OnAccountSuppressionList.
 * - Sandbox-only, domain `sandbox.ses-lifecycle.test`: `delay@` → DeliveryDelay then Delivery;
 *   `softbounce@` → Bounce Transient/MailboxFull the first time that exact address is sent to,
 *   Delivery afterwards; `silent@` → no events at all; `open@` → Delivery then Open; `click@` →
 *   Delivery, Open, then Click; `unsubscribe@` → Delivery then Subscription (one-click
 *   unsubscribe); `reject@` → the whole message is rejected (Reject, as for a virus).
 * Message-level outcomes come first: content with the EICAR test string (or a `reject@`
 * recipient) → Send, then Reject `Bad content`; a template whose data lacks a variable → Send,
 * then Rendering Failure. Every other message with at least one non-silent recipient also gets one
 * Send event.
 */
import { randomUUID } from 'node:crypto';
import type { MessageHeader, SandboxEventType } from './types';
import { bareAddress, domainOf } from './util';

/** Domain of the mailbox simulator. */
export const SIMULATOR_DOMAIN = 'simulator.amazonses.com';
/** Domain of the sandbox-only simulator addresses. */
export const SANDBOX_DOMAIN = 'sandbox.ses-lifecycle.test';

/** What happens to one recipient. */
export type RecipientOutcome =
  | 'deliver'
  | 'bounce'
  | 'ooto'
  | 'complaint'
  | 'suppressionlist'
  | 'suppressed'
  | 'delay'
  | 'softbounce'
  | 'silent'
  | 'open'
  | 'click'
  | 'unsubscribe'
  | 'reject';

/** Facts the simulator needs about the account. */
export interface SimulatorContext {
  region: string;
  accountId: string;
  /** Is the address on the account suppression list, for a reason this message honours? */
  isSuppressed(address: string): boolean;
  /** Records a send to a `softbounce@` address; `true` the first time that exact address is seen. */
  firstSoftbounce(address: string): boolean;
}

/** What the simulator needs about an accepted message. */
export interface SimulatedMessage {
  sesMessageId: string;
  /** Bare or display-name form, as given. */
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo: string[];
  subject: string;
  /** Every header of the message as sent (the `mail.headers` list). */
  mailHeaders: MessageHeader[];
  /** `mail.tags`: EmailTags plus the automatic `ses:` tags. */
  tags: Record<string, string[]>;
  /** Epoch ms. */
  acceptedAt: number;
  dateHeader: string;
  /** Set when the template could not be rendered (SES publishes a Rendering Failure, sends nothing). */
  renderingFailure?: { errorMessage: string; templateName: string };
  /** The content carries a virus (EICAR): SES publishes a Reject and sends nothing. */
  virus?: boolean;
}

/** One event to publish: its stage orders it in time (0 = Send). */
export interface PlannedEvent {
  stage: number;
  eventType: SandboxEventType;
  recipients: string[];
  /** The event-publishing JSON object. */
  event: Record<string, unknown>;
}

const SIM_OUTCOMES: Readonly<Record<string, RecipientOutcome>> = {
  success: 'deliver',
  bounce: 'bounce',
  ooto: 'ooto',
  complaint: 'complaint',
  suppressionlist: 'suppressionlist',
};
const SANDBOX_OUTCOMES: Readonly<Record<string, RecipientOutcome>> = {
  delay: 'delay',
  softbounce: 'softbounce',
  silent: 'silent',
  success: 'deliver',
  open: 'open',
  click: 'click',
  unsubscribe: 'unsubscribe',
  reject: 'reject',
};

/** The simulator key of an address: lower-cased local part without `+label`, and domain. */
function simKey(address: string): { local: string; domain: string } {
  const a = bareAddress(address).toLowerCase();
  const at = a.lastIndexOf('@');
  const local = at < 0 ? a : a.slice(0, at);
  const plus = local.indexOf('+');
  return { local: plus < 0 ? local : local.slice(0, plus), domain: domainOf(a) };
}

/**
 * Decides the outcome for one recipient. Simulator addresses win over the suppression list
 * (SES does not check the list for them); any other address on the list is suppressed.
 */
export function classifyRecipient(address: string, ctx: SimulatorContext): RecipientOutcome {
  const { local, domain } = simKey(address);
  if (domain === SIMULATOR_DOMAIN) return SIM_OUTCOMES[local] ?? 'deliver';
  if (ctx.isSuppressed(bareAddress(address))) return 'suppressed';
  if (domain === SANDBOX_DOMAIN) {
    const outcome = SANDBOX_OUTCOMES[local] ?? 'deliver';
    if (outcome === 'softbounce') {
      return ctx.firstSoftbounce(bareAddress(address).toLowerCase()) ? 'softbounce' : 'deliver';
    }
    return outcome;
  }
  return 'deliver';
}

/** SES-shaped id (`0100` + 12 hex of epoch ms, a UUID, `-000000`), for message and feedback ids. */
export function sesStyleId(now = Date.now()): string {
  return `0100${now.toString(16).padStart(12, '0')}-${randomUUID()}-000000`;
}

/** RFC 5322 date, e.g. `Mon, 20 Nov 2023 12:34:56 +0000`. */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

const REMOTE_MTA_IP = '203.0.113.25';
/** Who opens and clicks in the sandbox (documentation addresses, a browser user agent). */
const ENGAGEMENT_IP = '192.0.2.1';
const ENGAGEMENT_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
/** The contact list named by `unsubscribe@` Subscription events. */
export const SANDBOX_CONTACT_LIST = 'ses-lifecycle-sandbox';
/** What SES writes in `diagnosticCode` for an address on its global suppression list. */
export const GLOBAL_SUPPRESSION_DIAGNOSTIC =
  'Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address. For more information about how to remove an address from the suppression list, see the Amazon SES Developer Guide: http://docs.aws.amazon.com/ses/latest/DeveloperGuide/remove-from-suppressionlist.html ';
/** The reportingMTA of bounces SES generates itself (suppression lists): no remote MTA was contacted. */
const SES_REPORTING_MTA = 'dns; amazonses.com';
/** Outgoing IP of SES's sending MTA, in `ses:outgoing-ip` (Delivery events only). */
const OUTGOING_IP = '54.240.8.97';
const SUPPRESSION_DIAGNOSTIC =
  'Amazon SES did not send the message to this address because it is on the suppression list for your account. For more information about removing addresses from the suppression list, see the Amazon SES Developer Guide at https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html';

/**
 * Builds the `mail` object shared by every event of a message.
 */
export function buildMailObject(msg: SimulatedMessage, ctx: SimulatorContext): Record<string, unknown> {
  const commonHeaders: Record<string, unknown> = {
    from: [msg.from],
    ...(msg.replyTo.length > 0 ? { replyTo: msg.replyTo } : {}),
    date: msg.dateHeader,
    ...(msg.to.length > 0 ? { to: msg.to } : {}),
    ...(msg.cc.length > 0 ? { cc: msg.cc } : {}),
    messageId: msg.sesMessageId,
    subject: msg.subject,
  };
  const fromDomain = domainOf(msg.from);
  return {
    timestamp: new Date(msg.acceptedAt).toISOString(),
    source: msg.from,
    sourceArn: `arn:aws:ses:${ctx.region}:${ctx.accountId}:identity/${fromDomain || bareAddress(msg.from)}`,
    sendingAccountId: ctx.accountId,
    messageId: msg.sesMessageId,
    destination: [...msg.to, ...msg.cc, ...msg.bcc],
    headersTruncated: false,
    headers: msg.mailHeaders.map((h) => ({ name: h.name, value: h.value })),
    commonHeaders,
    tags: msg.tags,
  };
}

/**
 * Plans every event of a message: one Send (stage 0) unless all recipients are silent, then
 * per recipient its outcome's events at stages 1, 2, … . `eventTime(stage)` gives the event
 * timestamps, so Delivery is later than Send and an ooto Bounce later than its Delivery,
 * whatever order they are published in.
 */
export function planEvents(msg: SimulatedMessage, ctx: SimulatorContext, eventTime: (stage: number) => number): PlannedEvent[] {
  const mail = buildMailObject(msg, ctx);
  const iso = (stage: number): string => new Date(eventTime(stage)).toISOString();
  const recipients = [...msg.to, ...msg.cc, ...msg.bcc];
  const out: PlannedEvent[] = [];
  const perRecipient = recipients.map((r) => ({ r, outcome: classifyRecipient(r, ctx) }));

  // Message-level outcomes: SES accepted the call (Send), then sent nothing to anyone.
  if (msg.renderingFailure) {
    // SES's Rendering Failure record: the mail object has no headers (nothing was rendered).
    const { headers: _h, commonHeaders: _c, ...bare } = mail;
    return [
      { stage: 0, eventType: 'Send', recipients, event: { eventType: 'Send', mail, send: {} } },
      { stage: 1, eventType: 'Rendering Failure', recipients, event: { eventType: 'Rendering Failure', mail: bare, failure: { errorMessage: msg.renderingFailure.errorMessage, templateName: msg.renderingFailure.templateName } } },
    ];
  }
  if (msg.virus === true || perRecipient.some((p) => p.outcome === 'reject')) {
    return [
      { stage: 0, eventType: 'Send', recipients, event: { eventType: 'Send', mail, send: {} } },
      { stage: 1, eventType: 'Reject', recipients, event: { eventType: 'Reject', mail, reject: { reason: 'Bad content' } } },
    ];
  }

  if (perRecipient.some((p) => p.outcome !== 'silent')) {
    out.push({ stage: 0, eventType: 'Send', recipients, event: { eventType: 'Send', mail, send: {} } });
  }

  // SES adds `ses:outgoing-ip` to Delivery events only (the other events never left SES's MTA,
  // or left it before the IP mattered); its automatic tags exist only with a configuration set.
  const deliveryMail = 'ses:configuration-set' in msg.tags ? { ...mail, tags: { ...msg.tags, 'ses:outgoing-ip': [OUTGOING_IP] } } : mail;
  const delivery = (r: string, stage: number): PlannedEvent => ({
    stage,
    eventType: 'Delivery',
    recipients: [r],
    event: {
      eventType: 'Delivery',
      mail: deliveryMail,
      delivery: {
        timestamp: iso(stage),
        processingTimeMillis: eventTime(stage) - msg.acceptedAt,
        recipients: [bareAddress(r)],
        smtpResponse: '250 2.6.0 Message received',
        remoteMtaIp: REMOTE_MTA_IP,
        reportingMTA: `a8-70.smtp-out.${ctx.region}.amazonses.com`,
      },
    },
  });
  const bounce = (r: string, stage: number, bounceType: string, bounceSubType: string, status: string, diagnosticCode: string, reportingMTA: string, remoteMtaIp: string | null = REMOTE_MTA_IP): PlannedEvent => ({
    stage,
    eventType: 'Bounce',
    recipients: [r],
    event: {
      eventType: 'Bounce',
      mail,
      bounce: {
        feedbackId: sesStyleId(eventTime(stage)),
        bounceType,
        bounceSubType,
        bouncedRecipients: [{ emailAddress: bareAddress(r), action: 'failed', status, diagnosticCode }],
        timestamp: iso(stage),
        ...(remoteMtaIp !== null ? { remoteMtaIp } : {}),
        reportingMTA,
      },
    },
  });
  const dsnMta = `dsn; e226-55.smtp-out.${ctx.region}.amazonses.com`;

  for (const { r, outcome } of perRecipient) {
    switch (outcome) {
      case 'deliver':
        out.push(delivery(r, 1));
        break;
      case 'bounce':
        out.push(bounce(r, 1, 'Permanent', 'General', '5.1.1', 'smtp; 550 5.1.1 user unknown', dsnMta));
        break;
      case 'ooto':
        out.push(delivery(r, 1));
        out.push(bounce(r, 2, 'Transient', 'General', '4.0.0', 'smtp; 250 2.0.0 Out of office auto-reply', dsnMta));
        break;
      case 'complaint':
        out.push(delivery(r, 1));
        out.push({
          stage: 2,
          eventType: 'Complaint',
          recipients: [r],
          event: {
            eventType: 'Complaint',
            mail,
            complaint: {
              feedbackId: sesStyleId(eventTime(2)),
              complaintSubType: null,
              complainedRecipients: [{ emailAddress: bareAddress(r) }],
              timestamp: iso(2),
              userAgent: 'Amazon SES Mailbox Simulator',
              complaintFeedbackType: 'abuse',
              arrivalDate: iso(2),
            },
          },
        });
        break;
      case 'suppressionlist':
        // SES's global suppression list, as the simulator address reproduces it.
        out.push(bounce(r, 1, 'Permanent', 'Suppressed', '5.1.1', GLOBAL_SUPPRESSION_DIAGNOSTIC, SES_REPORTING_MTA, null));
        break;
      case 'suppressed':
        out.push(bounce(r, 1, 'Permanent', 'OnAccountSuppressionList', '5.1.1', SUPPRESSION_DIAGNOSTIC, SES_REPORTING_MTA, null));
        break;
      case 'delay':
        out.push({
          stage: 1,
          eventType: 'DeliveryDelay',
          recipients: [r],
          event: {
            eventType: 'DeliveryDelay',
            mail,
            deliveryDelay: {
              timestamp: iso(1),
              delayType: 'TransientCommunicationFailure',
              expirationTime: new Date(eventTime(1) + 14 * 60 * 60 * 1000).toISOString(),
              delayedRecipients: [{ emailAddress: bareAddress(r), status: '4.4.1', diagnosticCode: 'smtp; 421 4.4.1 Unable to connect to remote host' }],
              reportingMTA: `a8-70.smtp-out.${ctx.region}.amazonses.com`,
            },
          },
        });
        out.push(delivery(r, 2));
        break;
      case 'softbounce':
        out.push(bounce(r, 1, 'Transient', 'MailboxFull', '5.2.2', 'smtp; 552 5.2.2 Mailbox full', dsnMta));
        break;
      case 'silent':
      case 'reject': // handled above, for the whole message
        break;
      case 'open':
      case 'click':
        out.push(delivery(r, 1));
        out.push({ stage: 2, eventType: 'Open', recipients: [r], event: { eventType: 'Open', mail, open: { ipAddress: ENGAGEMENT_IP, timestamp: iso(2), userAgent: ENGAGEMENT_UA } } });
        if (outcome === 'click') {
          out.push({
            stage: 3,
            eventType: 'Click',
            recipients: [r],
            event: { eventType: 'Click', mail, click: { ipAddress: ENGAGEMENT_IP, link: 'https://example.com/sandbox-link', linkTags: {}, timestamp: iso(3), userAgent: ENGAGEMENT_UA } },
          });
        }
        break;
      case 'unsubscribe':
        out.push(delivery(r, 1));
        out.push({
          stage: 2,
          eventType: 'Subscription',
          recipients: [r],
          event: {
            eventType: 'Subscription',
            mail,
            subscription: {
              contactList: SANDBOX_CONTACT_LIST,
              timestamp: iso(2),
              source: 'UnsubscribeHeader',
              newTopicPreferences: { unsubscribeAll: true, topicSubscriptionStatus: [] },
              oldTopicPreferences: { unsubscribeAll: false, topicSubscriptionStatus: [] },
            },
          },
        });
        break;
      default: {
        const never: never = outcome;
        throw new Error(`unhandled outcome ${String(never)}`);
      }
    }
  }
  return out;
}
