import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deriveRecipients,
  EventSet,
  initialFacts,
  messageStatus,
  softBounced,
  summarize,
  toSuppress,
  type LifecycleFacts,
  type SesEvent,
} from '../src/lifecycle';
import { parseSesEvent, parseSesEventText, SesEventParseError } from '../src/ses-events';
import { sesEvent, type EventKind } from './helpers/ses-json';

const fixture = (name: string): unknown => JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'ses', name), 'utf8'));
const parse = (name: string): SesEvent => {
  const r = parseSesEvent(fixture(name));
  if (r.kind !== 'event') throw new Error(`${name}: ${r.reason}`);
  return r.event;
};

function ev(type: string, recipients: string[], at: string, extra: { bounce?: [string, string]; messageId?: string } = {}): SesEvent {
  return sesEvent(type as EventKind, { messageId: extra.messageId ?? 'm1', recipients, at, ...(extra.bounce ? { bounce: extra.bounce } : {}) });
}

const factsFor = (recipients: string[], attempts: { id: string; rcpts: string[] }[] = [{ id: 'm1', rcpts: recipients }]): LifecycleFacts => ({
  ...initialFacts(recipients),
  attempts: attempts.map((a, i) => ({ attempt: i + 1, sesMessageId: a.id, recipients: a.rcpts, sentAt: '2026-01-01T00:00:00.000Z' })),
});

describe('SES event parsing', () => {
  it('parses every documented event type from fixtures', () => {
    expect(parse('event-send.json')).toMatchObject({ type: 'Send', sesMessageId: 'EXAMPLE-send-1', lifecycleId: 'msg-abc', recipients: ['recipient@example.com'], source: 'event-publishing' });
    expect(parse('event-bounce-permanent.json')).toMatchObject({
      type: 'Bounce',
      lifecycleId: 'msg-from-tag',
      bounce: { type: 'Permanent', subType: 'General', diagnosticCodes: { 'recipient@example.com': 'smtp; 550 5.1.1 user unknown' } },
    });
    expect(parse('event-complaint.json')).toMatchObject({ type: 'Complaint', complaint: { feedbackType: 'abuse', subType: null } });
    expect(parse('event-open.json')).toMatchObject({ type: 'Open', engagement: { ipAddress: '192.0.2.1' } });
    expect(parse('event-click.json')).toMatchObject({ type: 'Click', engagement: { link: expect.stringContaining('docs.aws') as string } });
    expect(parse('event-reject.json')).toMatchObject({ type: 'Reject', reject: { reason: 'Bad content' } });
    expect(parse('event-rendering-failure.json')).toMatchObject({ type: 'Rendering Failure', failure: { templateName: 'MyTemplate' } });
    expect(parse('event-subscription.json')).toMatchObject({ type: 'Subscription', subscription: { contactList: 'ContactListName' } });
    expect(parse('seed003-delivery-delay.json')).toMatchObject({
      type: 'DeliveryDelay',
      delay: { delayType: 'TransientCommunicationFailure', expirationTime: '2020-06-16T00:25:40.914Z' },
      recipients: ['recipient@example.com'],
    });
  });

  it('parses identity notifications (notificationType) from seed 004, angle-bracket destinations included', () => {
    const d = parse('seed004-delivery.json');
    const b = parse('seed004-bounce-ooto.json');
    expect(d).toMatchObject({ type: 'Delivery', source: 'notification', recipients: ['ooto@simulator.amazonses.com'] });
    expect(b).toMatchObject({ type: 'Bounce', bounce: { type: 'Transient', subType: 'General' } });
    expect(d.lifecycleId).toBeUndefined();
  });

  it('takes the lifecycle id from the X-Lifecycle-Id header when tags lack it', () => {
    const json = fixture('event-bounce-permanent.json') as { mail: { tags: Record<string, string[]> } };
    delete json.mail.tags['lifecycle-id'];
    const r = parseSesEvent(json);
    expect(r.kind === 'event' && r.event.lifecycleId).toBe('msg-from-header');
  });

  it('gives the same identity to the same event via both publishing paths, and different ones to different events', () => {
    const viaEvent = parseSesEvent({ ...(fixture('seed004-delivery.json') as object), notificationType: undefined, eventType: 'Delivery' });
    const viaNotification = parseSesEvent(fixture('seed004-delivery.json'));
    expect(viaEvent.kind === 'event' && viaNotification.kind === 'event' && viaEvent.event.id === viaNotification.event.id).toBe(true);
    expect(parse('seed004-delivery.json').id).not.toBe(parse('seed004-bounce-ooto.json').id);
  });

  it('records unknown future event types instead of failing', () => {
    const r = parseSesEvent({ eventType: 'Teleport', mail: { timestamp: '2026-01-01T00:00:00Z', messageId: 'x', destination: ['a@b.c'] } });
    expect(r).toMatchObject({ kind: 'event', event: { type: 'Unknown:Teleport', recipients: ['a@b.c'] } });
  });

  it('treats non-SES JSON and plain strings as not-ses, not as errors', () => {
    expect(parseSesEventText('Successfully validated SNS topic for Amazon SES event publishing.').kind).toBe('not-ses');
    expect(parseSesEventText('{"hello":"world"}').kind).toBe('not-ses');
    expect(parseSesEventText('[1,2]').kind).toBe('not-ses');
    expect(parseSesEventText('{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}').kind).toBe('not-ses');
  });

  it('names the bad field of a malformed SES event', () => {
    const cases: [unknown, string][] = [
      [{ eventType: 'Bounce', mail: { timestamp: 't', messageId: 'x' } }, 'bounce'],
      [{ eventType: 'Bounce', mail: { timestamp: 't', messageId: 'x' }, bounce: { bounceType: 'Soft', bounceSubType: 'x', bouncedRecipients: [{ emailAddress: 'a@b' }], timestamp: 't' } }, 'bounce.bounceType'],
      [{ eventType: 'Delivery', mail: { timestamp: 't' }, delivery: { timestamp: 't', recipients: ['a@b'] } }, 'mail.messageId'],
      [{ eventType: 'Delivery', mail: { timestamp: 't', messageId: 'x' }, delivery: { timestamp: 't', recipients: [] } }, 'delivery.recipients'],
      [{ eventType: 'Complaint', mail: { timestamp: 't', messageId: 'x' }, complaint: { complainedRecipients: 'a@b', timestamp: 't' } }, 'complaint.complainedRecipients'],
    ];
    for (const [json, field] of cases) {
      let caught: unknown;
      try {
        parseSesEvent(json);
      } catch (err) {
        caught = err;
      }
      expect(caught, field).toBeInstanceOf(SesEventParseError);
      expect((caught as SesEventParseError).path).toBe(field);
    }
  });

  it('never crashes on arbitrary JSON: always a defined result or a SesEventParseError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('eventType', 'notificationType', 'other'), fc.constantFrom('Bounce', 'Delivery', 'Complaint', 'Open', 'X'), (body, key, type) => {
        const value = typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...body, [key]: type } : body;
        try {
          const r = parseSesEvent(value);
          expect(['event', 'not-ses']).toContain(r.kind);
        } catch (err) {
          expect(err).toBeInstanceOf(SesEventParseError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('lifecycle rules', () => {
  const A = 'a@example.com';
  const B = 'b@example.com';

  it('Bounce after Delivery ends bounced, in either order (seed 004 problem)', () => {
    const d = ev('Delivery', [A], '2026-01-01T00:00:01Z');
    const b = ev('Bounce', [A], '2026-01-01T00:00:05Z', { bounce: ['Permanent', 'General'] });
    for (const order of [[d, b], [b, d]]) {
      const [r] = deriveRecipients(new EventSet(order), factsFor([A]));
      expect(r).toMatchObject({ status: 'bounced', bounceKind: 'hard' });
    }
  });

  it('Transient/General after Delivery is an auto-reply: recipient stays delivered', () => {
    const events = new EventSet([parse('seed004-bounce-ooto.json'), parse('seed004-delivery.json')]);
    const facts = factsFor(['ooto@simulator.amazonses.com'], [{ id: '0000014e5f4b3ae8-seed004', rcpts: ['ooto@simulator.amazonses.com'] }]);
    const [r] = deriveRecipients(events, facts);
    expect(r).toMatchObject({ status: 'delivered', autoReplies: 1 });
    expect(toSuppress([r!])).toEqual([]);
  });

  it('Transient/General without Delivery is a soft bounce, candidate for resend', () => {
    const [r] = deriveRecipients(new EventSet([ev('Bounce', [A], '2026-01-01T00:00:05Z', { bounce: ['Transient', 'MailboxFull'] })]), factsFor([A]));
    expect(r).toMatchObject({ status: 'bounced', bounceKind: 'soft' });
    expect(softBounced([r!])).toEqual([A]);
    expect(toSuppress([r!])).toEqual([]);
  });

  it('Permanent/Suppressed (global list) is added to the account suppression list; Permanent/OnAccountSuppressionList is not', () => {
    const events = new EventSet([
      ev('Bounce', [A], '2026-01-01T00:00:05Z', { bounce: ['Permanent', 'Suppressed'] }),
      ev('Bounce', [B], '2026-01-01T00:00:05Z', { bounce: ['Permanent', 'OnAccountSuppressionList'] }),
    ]);
    const recipients = deriveRecipients(events, factsFor([A, B]));
    expect(recipients).toMatchObject([
      { email: A, status: 'bounced', bounceKind: 'hard', bounceSubType: 'Suppressed' },
      { email: B, status: 'bounced', bounceKind: 'hard', bounceSubType: 'OnAccountSuppressionList' },
    ]);
    expect(toSuppress(recipients)).toEqual([{ email: A, reason: 'BOUNCE' }]);
  });

  it('complaint outranks everything and triggers suppression', () => {
    const events = new EventSet([ev('Delivery', [A], '2026-01-01T00:00:01Z'), ev('Complaint', [A], '2026-01-01T01:00:00Z')]);
    const [r] = deriveRecipients(events, factsFor([A]));
    expect(r?.status).toBe('complained');
    expect(toSuppress([r!])).toEqual([{ email: A, reason: 'COMPLAINT' }]);
  });

  it('tracks each recipient separately and summarizes the message by its most severe recipient', () => {
    const events = new EventSet([ev('Delivery', [A], '2026-01-01T00:00:01Z'), ev('Bounce', [B], '2026-01-01T00:00:02Z', { bounce: ['Permanent', 'NoEmail'] })]);
    const s = summarize(events, factsFor([A, B]));
    expect(s.recipients.map((r) => r.status)).toEqual(['delivered', 'bounced']);
    expect(s.status).toBe('bounced');
  });

  it('a resend that is delivered wins over the earlier soft bounce', () => {
    const facts = factsFor([A], [
      { id: 'm1', rcpts: [A] },
      { id: 'm2', rcpts: [A] },
    ]);
    const events = new EventSet([
      ev('Delivery', [A], '2026-01-01T00:10:00Z', { messageId: 'm2' }),
      ev('Bounce', [A], '2026-01-01T00:00:05Z', { bounce: ['Transient', 'MailboxFull'], messageId: 'm1' }),
    ]);
    expect(deriveRecipients(events, facts)[0]).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('deadline marks recipients without an outcome unconfirmed; a later delivery still wins', () => {
    const facts = { ...factsFor([A, B]), deadlinePassed: true };
    const events = new EventSet([ev('Send', [A, B], '2026-01-01T00:00:00Z'), ev('Delivery', [A], '2026-01-01T00:00:01Z')]);
    expect(deriveRecipients(events, facts).map((r) => r.status)).toEqual(['delivered', 'unconfirmed']);
    events.add(ev('Delivery', [B], '2026-01-05T00:00:01Z'));
    expect(deriveRecipients(events, facts).map((r) => r.status)).toEqual(['delivered', 'delivered']);
  });

  it('suppressed recipients stay suppressed; a suppressed cc never hides a delivered recipient', () => {
    const facts = { ...factsFor([A, B], [{ id: 'm1', rcpts: [A] }]), suppressed: [B] };
    const s = summarize(new EventSet([ev('Delivery', [A], '2026-01-01T00:00:01Z')]), facts);
    expect(s.recipients.map((r) => r.status)).toEqual(['delivered', 'suppressed']);
    expect(messageStatus(s.recipients)).toBe('delivered');
    // Everybody suppressed: the message is suppressed.
    const all = summarize(new EventSet(), { ...factsFor([A, B], []), suppressed: [A, B] });
    expect(messageStatus(all.recipients)).toBe('suppressed');
  });

  it('an SES refusal marks recipients failed', () => {
    const facts: LifecycleFacts = { ...initialFacts([A]), sendError: { type: 'SesMessageRejected', message: 'x' } };
    expect(summarize(new EventSet(), facts).status).toBe('failed');
  });

  // Property: any permutation and any duplication of an event set yields the same state.
  const recipients = [A, B, 'c@example.com'];
  const eventArb = fc
    .record({
      type: fc.constantFrom('Send', 'Delivery', 'Bounce', 'Complaint', 'DeliveryDelay', 'Open'),
      who: fc.subarray(recipients, { minLength: 1 }),
      minute: fc.integer({ min: 0, max: 59 }),
      bounce: fc.constantFrom<[string, string]>(['Permanent', 'General'], ['Transient', 'General'], ['Transient', 'MailboxFull'], ['Undetermined', 'Undetermined']),
      message: fc.constantFrom('m1', 'm2'),
    })
    .map((e) => ev(e.type, e.who, `2026-01-01T00:${String(e.minute).padStart(2, '0')}:00.000Z`, { bounce: e.bounce, messageId: e.message }));

  it('property: permutations and duplicates of the same events give the same state', () => {
    const facts = factsFor(recipients, [
      { id: 'm1', rcpts: recipients },
      { id: 'm2', rcpts: [A] },
    ]);
    fc.assert(
      fc.property(
        fc.array(eventArb, { minLength: 0, maxLength: 12 }).chain((events) =>
          fc.tuple(
            fc.constant(events),
            fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }),
            fc.array(fc.nat({ max: Math.max(0, events.length - 1) }), { maxLength: 8 }),
          ),
        ),
        fc.boolean(),
        ([events, shuffled, dupIdx], deadline) => {
          const withDupes = [...shuffled, ...(events.length ? dupIdx.map((i) => events[i]!) : [])];
          const f = { ...facts, deadlinePassed: deadline };
          const a = summarize(new EventSet(events), f);
          const b = summarize(new EventSet(withDupes), f);
          expect(b).toEqual(a);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('property: duplicates never change the number of recorded events', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 10 }), (events) => {
        const set = new EventSet(events);
        const size = set.size;
        for (const e of events) expect(set.add(e)).toBe(false);
        expect(set.size).toBe(size);
      }),
    );
  });
});
