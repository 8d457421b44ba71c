/**
 * FROZEN copy of the v1 lifecycle rules, used only by the v1 workflow code (./message-lifecycle.ts)
 * so that open v1 lifecycles replay exactly. Never edit.
 *
 * The lifecycle rules of ses-lifecycle, as pure functions: no Temporal, no I/O.
 *
 * State is always *derived* from the set of events received plus a few facts the workflow
 * decides (which attempts were sent to whom, who was suppressed before sending, whether the
 * delivery deadline passed). Because derivation folds over a set keyed by event identity, any
 * permutation and any duplication of the same events gives the same state (ARCHITECTURE.md
 * lifecycle rules 1-3). This module is imported by the workflow, so it must stay deterministic.
 */

/** SES event types, as they appear in event-publishing JSON (`eventType`). */
export const SesEventType = {
  Send: 'Send',
  Reject: 'Reject',
  Bounce: 'Bounce',
  Complaint: 'Complaint',
  Delivery: 'Delivery',
  Open: 'Open',
  Click: 'Click',
  RenderingFailure: 'Rendering Failure',
  DeliveryDelay: 'DeliveryDelay',
  Subscription: 'Subscription',
} as const;
export type SesEventType = (typeof SesEventType)[keyof typeof SesEventType];

/** All known types, for validation. */
export const SES_EVENT_TYPES: readonly SesEventType[] = Object.values(SesEventType);

/** Bounce types SES reports. */
export const BounceType = { Permanent: 'Permanent', Transient: 'Transient', Undetermined: 'Undetermined' } as const;
export type BounceType = (typeof BounceType)[keyof typeof BounceType];

/**
 * Per-recipient outcome. Precedence among event-derived outcomes (rule 2):
 * complained > bounced > delivered > delayed > sent > pending. `suppressed` (skipped before
 * sending), `rejected` and `failed` (SES refused the API call) are terminal. `unconfirmed` means
 * no outcome by the delivery deadline; a later event still upgrades it.
 */
export const RecipientStatus = {
  Pending: 'pending',
  Sent: 'sent',
  Delayed: 'delayed',
  Delivered: 'delivered',
  Bounced: 'bounced',
  Complained: 'complained',
  Suppressed: 'suppressed',
  Rejected: 'rejected',
  Failed: 'failed',
  Unconfirmed: 'unconfirmed',
} as const;
export type RecipientStatus = (typeof RecipientStatus)[keyof typeof RecipientStatus];

/** Ranking of event-derived outcomes: higher wins regardless of arrival order. */
const OUTCOME_RANK: Record<RecipientStatus, number> = {
  pending: 0,
  sent: 1,
  unconfirmed: 1.5,
  delayed: 2,
  delivered: 3,
  bounced: 4,
  complained: 5,
  rejected: 6,
  failed: 6,
  suppressed: 7,
};

/** A normalized SES event: the one shape the workflow, webhook and tests agree on. */
export interface SesEvent {
  /**
   * Event identity, stable across SNS retries and across the two publishing paths (event
   * publishing and identity notifications) for the same underlying SES event.
   */
  id: string;
  /** SNS MessageId of the notification that carried it, when known (diagnostics only). */
  snsMessageId?: string;
  /** Known SES type, or the raw string of a type this version does not know (recorded, not acted on). */
  type: SesEventType | `Unknown:${string}`;
  /** SES's message id (`mail.messageId`). */
  sesMessageId: string;
  /** Our lifecycle id when the event carries it (tag `lifecycle-id` or header `X-Lifecycle-Id`). */
  lifecycleId?: string;
  /** ISO time of the event itself (not of its arrival). */
  timestamp: string;
  /** Recipients this event concerns, lower-cased. Send/Reject/Rendering Failure concern all destinations. */
  recipients: string[];
  /** How it reached us. */
  source: 'event-publishing' | 'notification' | 'insights'; // type only: v1 never receives insights events (rule 13 is v2)
  bounce?: { type: BounceType; subType: string; diagnosticCodes?: Record<string, string> };
  complaint?: { feedbackType?: string; subType?: string | null };
  delay?: { delayType?: string; expirationTime?: string };
  reject?: { reason?: string };
  failure?: { errorMessage?: string; templateName?: string };
  engagement?: { link?: string; ipAddress?: string; userAgent?: string };
  subscription?: { contactList?: string; source?: string };
}

/** One SES SendEmail attempt inside a lifecycle (soft-bounce resends add attempts). */
export interface SendAttempt {
  attempt: number;
  /** SES message id; absent when the outcome is unknown (ambiguous send) until a Send event shows it. */
  sesMessageId?: string;
  recipients: string[];
  sentAt: string;
}

/** Facts the workflow decided, which the event set alone cannot tell. */
export interface LifecycleFacts {
  /** All intended recipients (To, Cc, Bcc), lower-cased, in input order. */
  recipients: string[];
  attempts: SendAttempt[];
  /** Recipients skipped before sending because they were on a suppression list. */
  suppressed: string[];
  /** Set when SES refused the send for good (non-retryable error type). */
  sendError?: { type: string; message: string };
  /** True once the delivery deadline passed. */
  deadlinePassed: boolean;
}

/** What we know about one recipient, derived. */
export interface RecipientState {
  email: string;
  status: RecipientStatus;
  /** For bounced recipients: hard (Permanent/Undetermined) or soft (Transient). */
  bounceKind?: 'hard' | 'soft';
  bounceType?: string;
  bounceSubType?: string;
  diagnosticCode?: string;
  /** Out-of-office replies recorded after delivery (Transient/General), which do not change the outcome. */
  autoReplies: number;
  opens: number;
  clicks: number;
  complaintFeedbackType?: string;
  /** ISO time of the event that set the current outcome. */
  outcomeAt?: string;
  deliveredAt?: string;
  /** Number of send attempts that included this recipient. */
  attempts: number;
}

/** Message-level status, the value of the `EmailStatus` search attribute. */
export type MessageStatus = RecipientStatus | 'sending';

/** The derived summary of a lifecycle. */
export interface LifecycleSummary {
  status: MessageStatus;
  recipients: RecipientState[];
  sesMessageIds: string[];
  /** Counts of recorded events by type (after dedupe). */
  eventCounts: Record<string, number>;
  /** Number of unique events recorded. */
  eventsRecorded: number;
  sendError?: { type: string; message: string };
}

/** An empty fact set for the given recipients. */
export function initialFacts(recipients: readonly string[]): LifecycleFacts {
  return { recipients: uniqueLower(recipients), attempts: [], suppressed: [], deadlinePassed: false };
}

/** Lower-cases and de-duplicates email addresses, keeping first-seen order. */
export function uniqueLower(addresses: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    const l = normalizeAddress(a);
    if (!out.includes(l)) out.push(l);
  }
  return out;
}

/**
 * Extracts the bare address from `Name <a@b>` or `<a@b>` forms and lower-cases it, so events
 * (whose `destination` may carry display names or angle brackets) match our recipients.
 */
export function normalizeAddress(address: string): string {
  const m = /<([^<>]+)>\s*$/.exec(address);
  return (m ? m[1]! : address).trim().toLowerCase();
}

/**
 * A set of events keyed by identity. Adding a duplicate is a no-op (rule 3). Keeps insertion
 * order only for display; derivation never depends on it.
 */
export class EventSet {
  private readonly byId = new Map<string, SesEvent>();

  constructor(events: Iterable<SesEvent> = []) {
    for (const e of events) this.add(e);
  }

  /** Adds an event; returns false when an event with the same identity is already present. */
  add(event: SesEvent): boolean {
    if (this.byId.has(event.id)) return false;
    this.byId.set(event.id, event);
    return true;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get size(): number {
    return this.byId.size;
  }

  values(): SesEvent[] {
    return [...this.byId.values()];
  }
}

/** True when a bounce is the classic out-of-office signature: Transient/General. */
export function isAutoReplyBounce(event: SesEvent): boolean {
  return event.type === 'Bounce' && event.bounce?.type === 'Transient' && event.bounce.subType === 'General';
}

function attemptOf(facts: LifecycleFacts, sesMessageId: string): SendAttempt | undefined {
  return facts.attempts.find((a) => a.sesMessageId === sesMessageId);
}

/**
 * Derives the outcome of one recipient within one SES message from that message's events.
 * Pure and order-independent: it looks at the set of event kinds present, never their order.
 */
function outcomeWithinMessage(email: string, events: readonly SesEvent[]): Omit<RecipientState, 'attempts' | 'email'> {
  const mine = events.filter((e) => e.recipients.includes(email));
  const state: Omit<RecipientState, 'attempts' | 'email'> = { status: 'pending', autoReplies: 0, opens: 0, clicks: 0 };
  const delivered = mine.filter((e) => e.type === 'Delivery');
  const earliest = (list: SesEvent[]): string | undefined => list.map((e) => e.timestamp).sort()[0];
  if (delivered.length > 0) state.deliveredAt = earliest(delivered);

  let rank = -1;
  const consider = (status: RecipientStatus, at: string | undefined): void => {
    const r = OUTCOME_RANK[status];
    // Ties resolve to the earliest timestamp so that the result does not depend on order.
    if (r > rank || (r === rank && at !== undefined && (state.outcomeAt === undefined || at < state.outcomeAt))) {
      rank = r;
      state.status = status;
      state.outcomeAt = at;
    }
  };

  for (const e of mine) {
    switch (e.type) {
      case 'Send':
        consider('sent', e.timestamp);
        break;
      case 'DeliveryDelay':
        consider('delayed', e.timestamp);
        break;
      case 'Delivery':
        consider('delivered', e.timestamp);
        break;
      case 'Open':
        state.opens += 1;
        consider('delivered', e.timestamp); // an open proves delivery
        break;
      case 'Click':
        state.clicks += 1;
        consider('delivered', e.timestamp);
        break;
      case 'Reject':
      case 'Rendering Failure':
        consider('rejected', e.timestamp);
        break;
      case 'Complaint':
        consider('complained', e.timestamp);
        break;
      case 'Bounce':
        if (isAutoReplyBounce(e) && delivered.length > 0) {
          state.autoReplies += 1;
          consider('delivered', delivered.map((d) => d.timestamp).sort()[0]);
        } else {
          consider('bounced', e.timestamp);
        }
        break;
      default:
        break; // Subscription and unknown types are recorded but do not change the outcome.
    }
  }

  // Details that must also be order-independent: choose deterministically among candidates.
  const complaint = mine.filter((e) => e.type === 'Complaint').sort(byTimeThenId)[0];
  if (complaint?.complaint?.feedbackType) state.complaintFeedbackType = complaint.complaint.feedbackType;
  if (state.status === 'bounced') {
    const bounces = mine.filter((e) => e.type === 'Bounce' && !(isAutoReplyBounce(e) && delivered.length > 0));
    // A hard bounce outranks a soft one for the same recipient.
    const hard = bounces.filter((b) => b.bounce?.type !== 'Transient').sort(byTimeThenId)[0];
    const chosen = hard ?? bounces.sort(byTimeThenId)[0];
    if (chosen?.bounce) {
      state.bounceKind = chosen.bounce.type === 'Transient' ? 'soft' : 'hard';
      state.bounceType = chosen.bounce.type;
      state.bounceSubType = chosen.bounce.subType;
      const code = chosen.bounce.diagnosticCodes?.[email];
      if (code !== undefined) state.diagnosticCode = code;
    }
  }
  return state;
}

function byTimeThenId(a: SesEvent, b: SesEvent): number {
  return a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Derives every recipient's state from the event set and the workflow's facts.
 *
 * Across attempts (soft-bounce resends), a recipient's outcome is the outcome of the latest
 * attempt that included it, except that a complaint or hard bounce on any attempt wins.
 */
export function deriveRecipients(events: EventSet | readonly SesEvent[], facts: LifecycleFacts): RecipientState[] {
  const list = events instanceof EventSet ? events.values() : [...events];
  const byMessage = new Map<string, SesEvent[]>();
  for (const e of list) {
    const arr = byMessage.get(e.sesMessageId);
    if (arr) arr.push(e);
    else byMessage.set(e.sesMessageId, [e]);
  }

  return facts.recipients.map((email): RecipientState => {
    const attemptsForMe = facts.attempts.filter((a) => a.recipients.includes(email)).sort((a, b) => a.attempt - b.attempt);
    const base: RecipientState = { email, status: 'pending', autoReplies: 0, opens: 0, clicks: 0, attempts: attemptsForMe.length };
    if (facts.suppressed.includes(email)) return { ...base, status: 'suppressed' };

    // Messages that concern this recipient: known attempts, plus any message whose events name
    // the recipient (covers a Send event that proves an ambiguous attempt went through).
    const messageIds = new Set<string>();
    for (const a of attemptsForMe) if (a.sesMessageId) messageIds.add(a.sesMessageId);
    for (const [id, evs] of byMessage) if (evs.some((e) => e.recipients.includes(email))) messageIds.add(id);

    const perMessage = [...messageIds].map((id) => {
      const attempt = attemptOf(facts, id);
      return { id, order: attempt?.attempt ?? Number.MAX_SAFE_INTEGER, outcome: outcomeWithinMessage(email, byMessage.get(id) ?? []) };
    });
    perMessage.sort((a, b) => a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

    let state: RecipientState = { ...base };
    // A complaint or hard bounce on any attempt sticks; otherwise the latest attempt speaks
    // (a resend that has no news yet shows as sent, not as the earlier soft bounce).
    const sticky = perMessage.find((m) => m.outcome.status === 'complained') ?? perMessage.find((m) => m.outcome.bounceKind === 'hard');
    const chosen = sticky ?? perMessage[perMessage.length - 1];
    if (chosen) state = { ...state, ...chosen.outcome };
    state.opens = perMessage.reduce((n, m) => n + m.outcome.opens, 0);
    state.clicks = perMessage.reduce((n, m) => n + m.outcome.clicks, 0);
    state.autoReplies = perMessage.reduce((n, m) => n + m.outcome.autoReplies, 0);

    if (state.status === 'pending' && chosen !== undefined) state.status = 'sent';
    if (facts.sendError && state.status === 'pending') state.status = 'failed';
    if (facts.deadlinePassed && OUTCOME_RANK[state.status] < OUTCOME_RANK.delivered && !isTerminal(state.status)) {
      state.status = 'unconfirmed';
    }
    return state;
  });
}

/** Statuses that end a recipient's story (no further event is expected to change them). */
export function isTerminal(status: RecipientStatus): boolean {
  return status === 'suppressed' || status === 'rejected' || status === 'failed';
}

/** True when the recipient has an outcome (no longer waiting for delivery news). */
export function hasOutcome(r: RecipientState): boolean {
  return OUTCOME_RANK[r.status] >= OUTCOME_RANK.delivered || r.status === 'unconfirmed';
}

/** Recipients whose latest outcome is a soft bounce (candidates for a resend). */
export function softBounced(recipients: readonly RecipientState[]): string[] {
  return recipients.filter((r) => r.status === 'bounced' && r.bounceKind === 'soft').map((r) => r.email);
}

/** Recipients that must be suppressed: hard bounces and complaints (rule 5). */
export function toSuppress(recipients: readonly RecipientState[]): { email: string; reason: 'BOUNCE' | 'COMPLAINT' }[] {
  const out: { email: string; reason: 'BOUNCE' | 'COMPLAINT' }[] = [];
  for (const r of recipients) {
    if (r.status === 'complained') out.push({ email: r.email, reason: 'COMPLAINT' });
    // A bounce because the address is already on the account list needs no new suppression.
    else if (r.status === 'bounced' && r.bounceKind === 'hard' && r.bounceSubType !== 'OnAccountSuppressionList') {
      out.push({ email: r.email, reason: 'BOUNCE' });
    }
  }
  return out;
}

/** Severity order for the message-level status: the most severe recipient status wins. */
const MESSAGE_SEVERITY: readonly RecipientStatus[] = [
  'complained',
  'bounced',
  'rejected',
  'failed',
  'unconfirmed',
  'pending',
  'sent',
  'delayed',
  'suppressed',
  'delivered',
];

/**
 * Message-level status: one word for the `EmailStatus` search attribute. The most severe
 * recipient status wins, so `EmailStatus="bounced"` finds every lifecycle where anyone bounced,
 * and `delivered` means every (non-suppressed) recipient was delivered.
 */
export function messageStatus(recipients: readonly RecipientState[], sending = false): MessageStatus {
  if (recipients.length === 0) return sending ? 'sending' : 'pending';
  for (const s of MESSAGE_SEVERITY) {
    if (recipients.some((r) => r.status === s)) {
      if ((s === 'pending' || s === 'sent') && sending) return 'sending';
      return s;
    }
  }
  return 'pending';
}

/** Derives the full summary. */
export function summarize(events: EventSet, facts: LifecycleFacts, sending = false): LifecycleSummary {
  const recipients = deriveRecipients(events, facts);
  const eventCounts: Record<string, number> = {};
  for (const e of events.values()) eventCounts[e.type] = (eventCounts[e.type] ?? 0) + 1;
  const ids = new Set<string>();
  for (const a of facts.attempts) if (a.sesMessageId) ids.add(a.sesMessageId);
  for (const e of events.values()) if (e.type === 'Send' && e.lifecycleId !== undefined) ids.add(e.sesMessageId);
  const summary: LifecycleSummary = {
    status: messageStatus(recipients, sending),
    recipients,
    sesMessageIds: [...ids].sort(),
    eventCounts,
    eventsRecorded: events.size,
  };
  if (facts.sendError) summary.sendError = facts.sendError;
  return summary;
}
