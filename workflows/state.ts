/**
 * `LifecycleState`: everything a message lifecycle knows, and what it derives from it. The
 * workflow body (./message-lifecycle.ts) is a thin loop over this class: after every await it
 * asks the state what to do, so nothing that changed during an await can be missed.
 *
 * Every change the loop must react to bumps `version` (an event recorded, an activity finished,
 * a timer fired); the loop waits for `version` to move past the value it started from, never for
 * a boolean that an await could clear.
 */
import {
  fitKeywordList,
  type CallbackPayload,
  type CarriedState,
  type FollowUp,
  type LifecyclePolicy,
  type LifecycleStatus,
  type MessageLifecycleInput,
} from '../src/definitions';
import { headline, suppressedOk } from './details';
import { EventStore, factKeys, initialFacts, summarize, type LifecycleFacts, type LifecycleSummary, type SesEvent } from '../src/lifecycle';

/** Follow-ups kept in state and shown (older ones are dropped: bounded). */
const MAX_FOLLOW_UPS = 50;
/** Events held while a send's SES message id is unknown (in flight or ambiguous). */
const MAX_HELD = 500;
/** Foreign events waiting to be forwarded to their orphan lifecycles. */
const MAX_FOREIGN_QUEUE = 100;
/** How many recent events the status query and the UI show. */
const LATEST_EVENTS = 20;
/** Fact keys of insights-derived events remembered for dedupe against late SNS copies (rule 13). */
const MAX_INSIGHT_FACTS = 1_000;

export class LifecycleState {
  version = 0;
  readonly store: EventStore;
  readonly facts: LifecycleFacts;
  followUps: FollowUp[];
  readonly suppressionsDone: Set<string>;
  /** Suppressions started and not finished (carried, re-run after continue-as-new). */
  readonly suppressionsPending: Set<string>;
  phase: LifecycleStatus['phase'];
  deadlineAt: number | undefined;
  windowEndsAt: number | undefined;
  resendDueAt: number | undefined;
  foreignEvents: number;
  /** Events of SES message ids no attempt knows yet, held while a send's outcome is open. */
  held: SesEvent[] = [];
  /** Foreign events to forward (bounded; beyond it they are counted and logged only). */
  readonly foreignQueue: SesEvent[] = [];
  /** True while a SendEmail is in flight or its outcome is ambiguous. */
  sendOpen = false;
  /** Fact keys recorded from GetMessageInsights (rule 13): a later SNS copy of one is a duplicate. */
  readonly insightFacts: Set<string>;
  repairedEvents: number;
  /** The deadline repair ran (once per lifecycle). */
  repairTried: boolean;
  /** Latest events for display (bounded). */
  private latest: LifecycleStatus['latestEvents'] = [];
  readonly callbacks: { queue: CallbackPayload[]; seq: number; last?: string };

  constructor(
    readonly input: MessageLifecycleInput,
    readonly policy: LifecyclePolicy,
  ) {
    const m = input.message;
    this.facts = initialFacts([...m.to, ...(m.cc ?? []), ...(m.bcc ?? [])]);
    const c = input.carried && 'v' in input.carried ? input.carried : undefined;
    if (c) {
      this.store = new EventStore(c.store);
      this.facts.attempts = c.attempts;
      this.facts.suppressed = c.suppressed;
      this.facts.deadlinePassed = c.deadlinePassed;
      if (c.sendError) this.facts.sendError = c.sendError;
      this.followUps = c.followUps;
      this.suppressionsDone = new Set(c.suppressionsDone);
      this.suppressionsPending = new Set(c.suppressionsPending);
      this.callbacks = c.callbacks;
      this.deadlineAt = c.deadlineAt;
      this.windowEndsAt = c.windowEndsAt;
      this.foreignEvents = c.foreignEvents;
      this.insightFacts = new Set(c.insightFacts ?? []);
      this.repairedEvents = c.repairedEvents ?? 0;
      this.repairTried = c.repairTried ?? false;
    } else {
      // A fresh lifecycle (v1 inputs never reach this class: they run workflows/v1).
      this.store = new EventStore();
      this.followUps = [];
      this.suppressionsDone = new Set();
      this.suppressionsPending = new Set();
      this.callbacks = { queue: [], seq: 0 };
      this.foreignEvents = 0;
      this.insightFacts = new Set();
      this.repairedEvents = 0;
      this.repairTried = false;
    }
    this.phase = c ? 'awaiting-outcome' : 'sending';
  }

  bump(): void {
    this.version += 1;
  }

  /** SES message ids of this lifecycle's attempts: the only messages whose events change it (rule 12). */
  attemptIds(): Set<string> {
    return new Set(this.facts.attempts.flatMap((a) => (a.sesMessageId !== undefined ? [a.sesMessageId] : [])));
  }

  /**
   * The `sesEvent` signal handler. Synchronous: records or holds the event and bumps the
   * version. Events of a message this lifecycle never sent are foreign (rule 12).
   */
  onEvent(event: SesEvent): void {
    if (this.store.has(event.id)) return;
    if (event.source === 'insights') {
      this.onInsightEvent(event);
      return;
    }
    if (this.insightFacts.size > 0 && this.attemptIds().has(event.sesMessageId)) {
      // Rule 13: the SNS copy of a fact already repaired from insights is a duplicate; an event
      // that also names other recipients is recorded for those only.
      const keys = factKeys(event);
      const fresh = event.recipients.filter((_, i) => !this.insightFacts.has(keys[i]!));
      if (fresh.length === 0) return;
      if (fresh.length < event.recipients.length) event = { ...event, recipients: fresh };
    }
    if (this.attemptIds().has(event.sesMessageId)) {
      if (this.store.add(event)) {
        this.noteLatest(event);
        this.bump();
      }
      return;
    }
    if (this.sendOpen) {
      if (this.held.some((h) => h.id === event.id)) return;
      if (this.held.length < MAX_HELD) this.held.push(event);
      this.bump();
      return;
    }
    this.foreign(event);
  }

  /**
   * Records an event read back from GetMessageInsights (rule 13) unless this lifecycle already
   * knows its fact (from SNS or an earlier repair). Returns true when it was new.
   */
  onInsightEvent(event: SesEvent): boolean {
    if (this.store.has(event.id) || !this.attemptIds().has(event.sesMessageId)) return false;
    const [key] = factKeys(event);
    if (key === undefined || this.insightFacts.has(key)) return false;
    const known = new Set(this.store.events().flatMap(factKeys));
    if (known.has(key)) return false;
    if (!this.store.add(event)) return false;
    this.insightFacts.add(key);
    if (this.insightFacts.size > MAX_INSIGHT_FACTS) this.insightFacts.delete(this.insightFacts.values().next().value!);
    this.repairedEvents += 1;
    this.noteLatest(event);
    this.bump();
    return true;
  }

  private foreign(event: SesEvent): void {
    this.foreignEvents += 1;
    if (this.foreignQueue.length < MAX_FOREIGN_QUEUE && !this.foreignQueue.some((f) => f.id === event.id)) this.foreignQueue.push(event);
    this.bump();
  }

  /** A held event that proves an ambiguous send: SES published an event for a message carrying our lifecycle id. */
  proofOfAmbiguousSend(): SesEvent | undefined {
    const known = this.attemptIds();
    return this.held.find((e) => e.lifecycleId === this.input.lifecycleId && !known.has(e.sesMessageId));
  }

  /** Once a send's outcome is settled: held events are recorded or become foreign. */
  releaseHeld(): void {
    this.sendOpen = false;
    const held = this.held;
    this.held = [];
    for (const e of held) this.onEvent(e);
    this.bump();
  }

  private noteLatest(e: SesEvent): void {
    this.latest.push({ type: e.type, timestamp: e.timestamp, recipients: e.recipients.slice(0, 5), sesMessageId: e.sesMessageId, ...(e.source === 'insights' ? { source: 'insights' as const } : {}) });
    this.latest.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
    if (this.latest.length > LATEST_EVENTS) this.latest.splice(0, this.latest.length - LATEST_EVENTS);
  }

  addFollowUp(kind: FollowUp['kind'], detail: string): void {
    this.followUps.push({ kind, at: new Date().toISOString(), detail: detail.slice(0, 500) });
    if (this.followUps.length > MAX_FOLLOW_UPS) this.followUps.splice(0, this.followUps.length - MAX_FOLLOW_UPS);
  }

  summary(): LifecycleSummary {
    return summarize(this.store, this.facts, this.phase === 'sending');
  }

  snapshot(s = this.summary()): LifecycleStatus {
    return {
      headline: headline(s, 'message', this.phase, suppressedOk(this.suppressionsDone, this.followUps)),
      ...s,
      lifecycleId: this.input.lifecycleId,
      kind: 'message',
      phase: this.phase,
      attempts: this.facts.attempts,
      followUps: this.followUps,
      latestEvents: this.latest.length > 0 ? this.latest : this.store.events().slice(-LATEST_EVENTS).map((e) => ({ type: e.type, timestamp: e.timestamp, recipients: e.recipients.slice(0, 5), sesMessageId: e.sesMessageId })),
      ...(this.foreignEvents > 0 ? { foreignEvents: this.foreignEvents } : {}),
      ...(this.repairedEvents > 0 ? { repairedEvents: this.repairedEvents } : {}),
    };
  }

  /** SES message ids for the `SesMessageIds` search attribute, sized to fit. */
  searchableIds(s: LifecycleSummary): string[] {
    return fitKeywordList(s.sesMessageIds).values;
  }

  /** Queues an app callback when the state changed since the last one (one signed POST per change). */
  queueCallback(s: LifecycleSummary): void {
    if (!this.input.callbackUrl) return;
    const final = this.phase === 'completed' || this.phase === 'cancelled';
    const fingerprint = [final ? this.phase : '', s.status, ...s.recipients.map((r) => `${r.email}=${r.status}`)].join('|');
    if (fingerprint === this.callbacks.last) return;
    this.callbacks.last = fingerprint;
    this.callbacks.seq += 1;
    this.callbacks.queue.push({
      eventId: `${this.input.lifecycleId}:${this.callbacks.seq}`,
      lifecycleId: this.input.lifecycleId,
      status: s.status,
      phase: this.phase,
      recipients: s.recipients.map((r) => ({
        email: r.email,
        status: r.status,
        ...(r.bounceType !== undefined ? { bounceType: r.bounceType } : {}),
        ...(r.bounceSubType !== undefined ? { bounceSubType: r.bounceSubType } : {}),
      })),
      sesMessageIds: s.sesMessageIds,
      at: new Date().toISOString(),
    });
    // Bounded: an app that is down for long keeps only the latest state changes.
    if (this.callbacks.queue.length > 20) this.callbacks.queue.splice(0, this.callbacks.queue.length - 20);
  }

  /** What continues as new: O(recipients + attempts). */
  carried(): CarriedState {
    return {
      v: 2,
      store: this.store.snapshot(),
      attempts: this.facts.attempts,
      suppressed: this.facts.suppressed,
      deadlinePassed: this.facts.deadlinePassed,
      followUps: this.followUps,
      suppressionsDone: [...this.suppressionsDone],
      suppressionsPending: [...this.suppressionsPending],
      callbacks: this.callbacks,
      foreignEvents: this.foreignEvents,
      ...(this.insightFacts.size > 0 ? { insightFacts: [...this.insightFacts], repairedEvents: this.repairedEvents } : {}),
      ...(this.repairTried ? { repairTried: true } : {}),
      ...(this.facts.sendError ? { sendError: this.facts.sendError } : {}),
      ...(this.deadlineAt !== undefined ? { deadlineAt: this.deadlineAt } : {}),
      ...(this.windowEndsAt !== undefined ? { windowEndsAt: this.windowEndsAt } : {}),
    };
  }
}
