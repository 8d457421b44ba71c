/**
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
  // Distinct from rejected so that a Reject and a Rendering Failure with the same time resolve
  // the same way in any order (rule 1); found by the model-based test.
  failed: 6.5,
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
  /**
   * How it reached us: SNS (event publishing or identity notifications), or `insights`: read
   * back from SESv2 GetMessageInsights by a repair (rule 13).
   */
  source: 'event-publishing' | 'notification' | 'insights';
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
  /** Why the recipient failed (Rendering Failure's errorMessage), when known. */
  failureReason?: string;
  /** `insights` when the event that set the current outcome was repaired from GetMessageInsights (rule 13). */
  outcomeSource?: 'insights';
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
  /** Opens and clicks over all recipients (multi-recipient messages cannot say whose). */
  engagement?: { opens: number; clicks: number };
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
function outcomeWithinMessage(email: string, events: readonly SesEvent[], tally?: EngagementTally): Omit<RecipientState, 'attempts' | 'email'> {
  const mine = events.filter((e) => e.recipients.includes(email));
  const state: Omit<RecipientState, 'attempts' | 'email'> = { status: 'pending', autoReplies: 0, opens: 0, clicks: 0 };
  const tallied = tally !== undefined && tally.recipients.length === 1 && tally.recipients[0] === email;
  const delivered = mine.filter((e) => e.type === 'Delivery');
  const earliest = (list: SesEvent[]): string | undefined => list.map((e) => e.timestamp).sort()[0];
  if (delivered.length > 0) state.deliveredAt = earliest(delivered);

  let rank = -1;
  let source: SesEvent['source'] | undefined;
  let current: SesEvent | undefined;
  const consider = (status: RecipientStatus, at: string | undefined): void => {
    const r = OUTCOME_RANK[status];
    // Ties resolve to the earliest timestamp so that the result does not depend on order.
    if (r > rank || (r === rank && at !== undefined && (state.outcomeAt === undefined || at < state.outcomeAt))) {
      rank = r;
      state.status = status;
      state.outcomeAt = at;
      source = current?.source;
    }
  };

  for (const e of mine) {
    current = e;
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
      case 'Click':
        // SES's open/click object names no recipient: only a single-recipient message tells who
        // engaged (rule 9). Multi-recipient engagement is counted per message, not per recipient.
        if (e.recipients.length === 1) {
          if (e.type === 'Open') state.opens += 1;
          else state.clicks += 1;
          consider('delivered', e.timestamp); // an open proves delivery
        }
        break;
      case 'Reject':
        consider('rejected', e.timestamp);
        break;
      case 'Rendering Failure':
        // Not sent: the template could not be rendered (rule 10). SES sent nothing, so this is a
        // failure of the send, not a refusal of the content.
        consider('failed', e.timestamp);
        if (e.failure?.errorMessage !== undefined) state.failureReason = e.failure.errorMessage;
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
  current = undefined;
  if (tallied) {
    state.opens += tally.opens;
    state.clicks += tally.clicks;
    consider('delivered', tally.firstAt);
  }
  if (source === 'insights') state.outcomeSource = 'insights';

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
export function deriveRecipients(events: EventSet | readonly SesEvent[], facts: LifecycleFacts, engagement: readonly EngagementTally[] = []): RecipientState[] {
  const list = events instanceof EventSet ? events.values() : [...events];
  const tallies = new Map(engagement.map((t) => [t.sesMessageId, t]));
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
    for (const t of engagement) if (t.recipients.length === 1 && t.recipients[0] === email) messageIds.add(t.sesMessageId);

    const perMessage = [...messageIds].map((id) => {
      const attempt = attemptOf(facts, id);
      return { id, order: attempt?.attempt ?? Number.MAX_SAFE_INTEGER, outcome: outcomeWithinMessage(email, byMessage.get(id) ?? [], tallies.get(id)) };
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
    // Permanent/Suppressed (SES's global suppression list) is not on the account list: it is added.
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
  'delivered',
  // Last: a recipient skipped because it was suppressed never hides a co-recipient's delivery.
  'suppressed',
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

/**
 * Derives the full summary, from an {@link EventStore} (bounded, what workflows keep) or an
 * {@link EventSet} (every event, for tests and small inputs). Both give the same state for the
 * same events (rule 11: compaction never changes an outcome).
 */
export function summarize(events: EventSet | EventStore, facts: LifecycleFacts, sending = false): LifecycleSummary {
  const store = events instanceof EventStore ? events : undefined;
  const list = store ? store.events() : (events as EventSet).values();
  const engagement = store ? store.engagement() : [];
  const recipients = deriveRecipients(list, facts, engagement);
  let eventCounts: Record<string, number> = {};
  if (store) eventCounts = store.counts();
  else for (const e of list) eventCounts[e.type] = (eventCounts[e.type] ?? 0) + 1;
  const ids = new Set<string>();
  for (const a of facts.attempts) if (a.sesMessageId) ids.add(a.sesMessageId);
  if (!store) for (const e of list) if (e.type === 'Send' && e.lifecycleId !== undefined) ids.add(e.sesMessageId);
  const engaged = { opens: 0, clicks: 0 };
  for (const t of engagement) {
    engaged.opens += t.opens;
    engaged.clicks += t.clicks;
  }
  if (!store) {
    for (const e of list) {
      if (e.type === 'Open') engaged.opens += 1;
      if (e.type === 'Click') engaged.clicks += 1;
    }
  }
  const summary: LifecycleSummary = {
    status: messageStatus(recipients, sending),
    recipients,
    sesMessageIds: [...ids].sort(),
    eventCounts,
    eventsRecorded: store ? store.size : list.length,
    engagement: engaged,
  };
  if (facts.sendError) summary.sendError = facts.sendError;
  return summary;
}

/** Opens and clicks of one SES message, counted instead of kept (rule 11). */
export interface EngagementTally {
  sesMessageId: string;
  opens: number;
  clicks: number;
  /** Earliest engagement time: proves delivery when the message had one recipient. */
  firstAt: string;
  /** The message's destination as the events gave it (lower-cased). */
  recipients: string[];
}

/** What an {@link EventStore} carries across continue-as-new: O(recipients), not O(events). */
export interface EventStoreSnapshot {
  events: SesEvent[];
  engagement: EngagementTally[];
  counts: Record<string, number>;
  /** Identities of the most recent events, for dedupe of events that were counted, not kept. */
  recentIds: string[];
  /** Events counted but not kept (redundant for every rule). */
  compacted: number;
}

/** Bounds of an {@link EventStore} (rule 11). */
export const STORE_LIMITS = {
  /** Identities remembered for dedupe beyond the kept events (SNS retries come within the hour). */
  recentIds: 500,
  /** Kept outcome events; beyond this only first-of-their-kind events are kept. */
  maxKept: 400,
} as const;

/**
 * The bounded event store of a lifecycle (rule 11). Dedupe by identity (rule 3) over the kept
 * events plus a window of recent identities. Opens and clicks are tallied per SES message, not
 * kept. An outcome event is kept unless an event of the same kind (message, type, bounce
 * type/subtype, complaint type) with an earlier or equal time already covers every recipient
 * it names, so derivation (earliest per kind, precedence) gives the same state; out-of-office
 * bounces are kept up to the cap because they are counted. Everything is counted.
 */
export class EventStore {
  private readonly kept = new Map<string, SesEvent>();
  private readonly tallies = new Map<string, EngagementTally>();
  private readonly recent: string[] = [];
  private readonly recentSet = new Set<string>();
  private readonly typeCounts: Record<string, number> = {};
  private compactedCount = 0;

  constructor(snapshot?: EventStoreSnapshot) {
    if (!snapshot) return;
    for (const e of snapshot.events) this.kept.set(e.id, e);
    for (const t of snapshot.engagement) this.tallies.set(t.sesMessageId, { ...t, recipients: [...t.recipients] });
    Object.assign(this.typeCounts, snapshot.counts);
    for (const id of snapshot.recentIds) this.remember(id);
    this.compactedCount = snapshot.compacted;
  }

  /** Records an event; false for a duplicate (already seen by identity). */
  add(event: SesEvent): boolean {
    if (this.kept.has(event.id) || this.recentSet.has(event.id)) return false;
    this.remember(event.id);
    this.typeCounts[event.type] = (this.typeCounts[event.type] ?? 0) + 1;
    if (event.type === 'Open' || event.type === 'Click') {
      const t = this.tallies.get(event.sesMessageId);
      if (t) {
        if (event.type === 'Open') t.opens += 1;
        else t.clicks += 1;
        if (event.timestamp < t.firstAt) t.firstAt = event.timestamp;
        for (const r of event.recipients) if (!t.recipients.includes(r) && t.recipients.length < 100) t.recipients.push(r);
      } else {
        this.tallies.set(event.sesMessageId, {
          sesMessageId: event.sesMessageId,
          opens: event.type === 'Open' ? 1 : 0,
          clicks: event.type === 'Click' ? 1 : 0,
          firstAt: event.timestamp,
          recipients: event.recipients.slice(0, 100),
        });
      }
      return true;
    }
    if (this.redundant(event)) {
      this.compactedCount += 1;
      return true;
    }
    this.kept.set(event.id, compactEvent(event));
    return true;
  }

  private redundant(e: SesEvent): boolean {
    const autoReplyShape = isAutoReplyBounce(e);
    if (autoReplyShape && this.kept.size < STORE_LIMITS.maxKept) return false;
    const key = kindKey(e);
    const covers = (r: string): boolean => {
      for (const k of this.kept.values()) if (kindKey(k) === key && k.timestamp <= e.timestamp && k.recipients.includes(r)) return true;
      return false;
    };
    if (e.recipients.length > 0 && e.recipients.every(covers)) return true;
    // Past the cap, keep only events that bring a new kind for a recipient: an earlier copy of
    // a kind already present changes at most a timestamp, never an outcome.
    if (this.kept.size >= STORE_LIMITS.maxKept) {
      const anyOfKind = (r: string): boolean => {
        for (const k of this.kept.values()) if (kindKey(k) === key && k.recipients.includes(r)) return true;
        return false;
      };
      return e.recipients.every(anyOfKind);
    }
    return false;
  }

  private remember(id: string): void {
    if (this.recentSet.has(id)) return;
    this.recent.push(id);
    this.recentSet.add(id);
    while (this.recent.length > STORE_LIMITS.recentIds) this.recentSet.delete(this.recent.shift()!);
  }

  has(id: string): boolean {
    return this.kept.has(id) || this.recentSet.has(id);
  }

  /** Kept outcome events (insertion order; derivation never depends on it). */
  events(): SesEvent[] {
    return [...this.kept.values()];
  }

  engagement(): EngagementTally[] {
    return [...this.tallies.values()];
  }

  /** Unique events recorded, kept or counted. */
  get size(): number {
    return Object.values(this.typeCounts).reduce((n, c) => n + c, 0);
  }

  counts(): Record<string, number> {
    return { ...this.typeCounts };
  }

  get compacted(): number {
    return this.compactedCount;
  }

  snapshot(): EventStoreSnapshot {
    return { events: this.events(), engagement: this.engagement(), counts: this.counts(), recentIds: [...this.recent], compacted: this.compactedCount };
  }
}

/**
 * Fact keys of an event, one per recipient it names (rule 13): what GetMessageInsights and SNS
 * both say, so that an insights-derived event and the SNS copy of the same fact collapse.
 * Insights give a type, a destination and a time (no feedback id, no SNS id), and the two
 * sources' times need not agree to the millisecond. So a fact that happens at most once per
 * recipient of an SES message (Send, Delivery, a Permanent or Undetermined bounce, Complaint,
 * Reject, Rendering Failure) is keyed without its time; a fact that can repeat (DeliveryDelay,
 * a Transient bounce, Open, Click, Subscription) is keyed with its time to the second.
 */
export function factKeys(e: SesEvent): string[] {
  let kind: string = e.type;
  if (e.type === 'Bounce') kind = `Bounce:${e.bounce?.type ?? ''}`;
  const once = e.type === 'Send' || e.type === 'Delivery' || e.type === 'Complaint' || e.type === 'Reject' || e.type === 'Rendering Failure' || (e.type === 'Bounce' && e.bounce?.type !== 'Transient');
  const when = once ? '' : `@${e.timestamp.slice(0, 19)}`;
  return e.recipients.map((r) => `${e.sesMessageId}|${r}|${kind}${when}`);
}

function kindKey(e: SesEvent): string {
  return `${e.sesMessageId}|${e.type}|${e.bounce?.type ?? ''}/${e.bounce?.subType ?? ''}|${e.complaint?.feedbackType ?? ''}`;
}

/** Drops detail that derivation does not need (engagement data, SNS ids, long diagnostics). */
export function compactEvent(e: SesEvent): SesEvent {
  const { engagement: _engagement, snsMessageId: _sns, ...rest } = e;
  if (rest.bounce?.diagnosticCodes) {
    const codes: Record<string, string> = {};
    for (const [k, v] of Object.entries(rest.bounce.diagnosticCodes)) codes[k] = v.slice(0, 300);
    rest.bounce = { ...rest.bounce, diagnosticCodes: codes };
  }
  return rest;
}
