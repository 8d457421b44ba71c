/**
 * messageLifecycle on a real Temporal dev server, sending through the real SESv2 client to the
 * local SES sandbox over HTTP. Events are signalled directly here (built from the documented
 * SES formats and parsed by the product's parser) so each test controls order and timing; the
 * webhook tests cover the SNS path end to end.
 */
import { GetSuppressedDestinationCommand } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidEmailInputError, type TrackedEmail } from '../src/client';
import { LIFECYCLE_TAG, sesEventSignal, type LifecycleStatus } from '../src/definitions';
import { sesEvent, type EventKind } from './helpers/ses-json';
import { startLifecycleStack, type LifecycleStack } from './helpers/stack';
import { getTestConnection } from './helpers/temporal';
import { stallBudget } from './helpers/wait';

let stack: LifecycleStack;
const FROM = 'app@example.com';
// The lifecycle closes at max(deadline, outcome + complaint window): keep both short.
const fast = { complaintWindow: '1s', deliveryDeadline: '4s', resendBackoff: '500ms', ambiguousSendWait: '3s' };

beforeAll(async () => {
  // A short SES request timeout so that a hung SendEmail becomes an ambiguous outcome quickly.
  stack = await startLifecycleStack({ requestTimeoutMs: 1_500 });
});
afterAll(async () => {
  await stack?.stop();
});

let n = 0;
const unique = (local: string) => `${local}+t${Date.now()}${n++}@example.com`;
const accepted = (lifecycleId: string) => stack.sandbox.sentMessages().filter((m) => m.tags.some((t) => t.name === LIFECYCLE_TAG && t.value === lifecycleId));

async function signal(email: TrackedEmail, type: EventKind, recipients: string[], sesMessageId: string, extra: { bounce?: [string, string]; atOffsetMs?: number; at?: string } = {}) {
  const { client } = await getTestConnection();
  const at = extra.at ?? new Date(Date.now() + (extra.atOffsetMs ?? 0)).toISOString();
  const event = sesEvent(type, { messageId: sesMessageId, recipients, at, lifecycleId: email.id, ...(extra.bounce ? { bounce: extra.bounce } : {}) });
  await client.workflow.getHandle(email.id).signal(sesEventSignal, { event });
}

const sentWithId = (s: LifecycleStatus) => s.attempts.length > 0 && s.attempts.every((a) => a.sesMessageId !== undefined);

describe('messageLifecycle (real Temporal, real SES client → sandbox)', () => {
  it('reaches delivered when a Delivery event is signalled, with a lean history', async () => {
    const to = unique('success');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'Hello', text: 'Hi', tags: { campaign: 'welcome' }, policy: fast }, {});
    const sent = await email.waitFor(sentWithId, { timeoutMs: 20_000 });
    const id = sent.attempts[0]!.sesMessageId!;
    expect(sent.status).toBe('sent');
    const acc = accepted(email.id);
    expect(acc).toHaveLength(1);
    expect(acc[0]!.headers).toContainEqual({ name: 'X-Lifecycle-Id', value: email.id });
    expect(acc[0]!.tags).toContainEqual({ name: 'campaign', value: 'welcome' });

    // One signal at a time (each in its own workflow task), as SES events usually arrive:
    // this measures the unbatched, worst realistic history.
    await signal(email, 'Send', [to], id);
    await email.waitFor((s) => s.eventsRecorded === 1, { timeoutMs: 10_000 });
    await signal(email, 'Delivery', [to], id, { atOffsetMs: 10 });
    const final = await email.result();
    expect(final.status).toBe('delivered');
    expect(final.recipients).toEqual([expect.objectContaining({ email: to, status: 'delivered' })]);
    expect(final.phase).toBe('completed');

    const { client } = await getTestConnection();
    const history = await client.workflow.getHandle(email.id).fetchHistory();
    const count = history.events?.length ?? 0;
    console.log(`happy path history events (send → Send event → Delivery → complaint window): ${count}`);
    expect(count).toBe(26);
  });

  it('Bounce after Delivery ends bounced, suppresses the address, and a later send to it is skipped', async () => {
    const to = unique('hard');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: fast });
    const id = (await email.waitFor(sentWithId, { timeoutMs: 20_000 })).attempts[0]!.sesMessageId!;
    await signal(email, 'Delivery', [to], id);
    await signal(email, 'Bounce', [to], id, { bounce: ['Permanent', 'General'], atOffsetMs: 50 });
    const final = await email.result();
    expect(final.status).toBe('bounced');
    expect(final.recipients[0]).toMatchObject({ status: 'bounced', bounceKind: 'hard' });
    expect(final.followUps.some((f) => f.kind === 'suppressed')).toBe(true);
    const sup = await stack.ses.send(new GetSuppressedDestinationCommand({ EmailAddress: to }));
    expect(sup.SuppressedDestination?.Reason).toBe('BOUNCE');

    const before = stack.sandbox.sentMessages().length;
    const again = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'Again', text: 'T', policy: fast });
    const second = await again.result();
    expect(second.status).toBe('suppressed');
    expect(second.recipients[0]?.status).toBe('suppressed');
    expect(accepted(again.id)).toHaveLength(0);
    expect(stack.sandbox.sentMessages().length).toBe(before);
  });

  it('Transient/General after Delivery stays delivered with an auto-reply', async () => {
    const to = unique('ooto');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: fast });
    const id = (await email.waitFor(sentWithId, { timeoutMs: 20_000 })).attempts[0]!.sesMessageId!;
    await signal(email, 'Bounce', [to], id, { bounce: ['Transient', 'General'], atOffsetMs: 100 });
    await signal(email, 'Delivery', [to], id);
    const final = await email.result();
    expect(final.recipients[0]).toMatchObject({ status: 'delivered', autoReplies: 1 });
    expect(final.followUps.filter((f) => f.kind === 'suppressed' || f.kind === 'resend')).toEqual([]);
  });

  it('throttling (429) is retried and then succeeds, with exactly one accepted message', async () => {
    stack.sandbox.injectSendFaults([{ kind: 'throttle' }, { kind: 'throttle' }]);
    const to = unique('throttled');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: fast });
    const id = (await email.waitFor(sentWithId, { timeoutMs: 30_000 })).attempts[0]!.sesMessageId!;
    expect(accepted(email.id)).toHaveLength(1);
    await signal(email, 'Delivery', [to], id);
    expect((await email.result()).status).toBe('delivered');
  });

  it('a non-retryable SES error ends the lifecycle failed with the error type', async () => {
    stack.sandbox.injectSendFaults([{ kind: 'error', code: 'MessageRejected', message: 'Email address is not verified.' }]);
    const email = await stack.lc.sendTracked({ from: FROM, to: [unique('rejected')], subject: 'S', text: 'T', policy: fast });
    const final = await email.result();
    expect(final.status).toBe('failed');
    expect(final.sendError?.type).toBe('SesMessageRejected');
    expect(final.recipients[0]?.status).toBe('failed');
    expect(accepted(email.id)).toHaveLength(0);
  });

  it('the delivery deadline marks recipients unconfirmed', async () => {
    const email = await stack.lc.sendTracked({ from: FROM, to: [unique('silent')], subject: 'S', text: 'T', policy: { ...fast, deliveryDeadline: '2s' } });
    const final = await email.result();
    expect(final.status).toBe('unconfirmed');
    expect(final.followUps.some((f) => f.kind === 'deadline')).toBe(true);
  });

  it('a soft bounce is resent and the second attempt’s delivery ends delivered', async () => {
    const to = unique('soft');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: fast });
    const first = (await email.waitFor(sentWithId, { timeoutMs: 20_000 })).attempts[0]!.sesMessageId!;
    await signal(email, 'Bounce', [to], first, { bounce: ['Transient', 'MailboxFull'] });
    const resent = await email.waitFor((s) => s.attempts.length === 2 && sentWithId(s), { timeoutMs: 20_000 });
    const second = resent.attempts[1]!.sesMessageId!;
    expect(second).not.toBe(first);
    expect(accepted(email.id)).toHaveLength(2);
    await signal(email, 'Delivery', [to], second);
    const final = await email.result();
    expect(final.recipients[0]).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(final.attempts.map((a) => a.attempt)).toEqual([1, 2]);
  });

  it('the same idempotency key twice, concurrently, produces one SendEmail', async () => {
    const key = `order-${Date.now()}`;
    const input = { from: FROM, to: [unique('idem')], subject: 'S', text: 'T', policy: { ...fast, deliveryDeadline: '2s' } };
    const [a, b] = await Promise.all([stack.lc.sendTracked(input, { idempotencyKey: key }), stack.lc.sendTracked(input, { idempotencyKey: key })]);
    expect(a.id).toBe(b.id);
    await a.result();
    const c = await stack.lc.sendTracked(input, { idempotencyKey: key }); // after completion too
    expect(c.id).toBe(a.id);
    expect(accepted(a.id)).toHaveLength(1);
  });

  it('an ambiguous send (accepted, answer lost) is not resent when the Send event proves it went through', async () => {
    stack.sandbox.injectSendFaults([{ kind: 'accept-then-hang', hangMs: 4_000 }]);
    const to = unique('ambiguous');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: { ...fast, ambiguousSendWait: '20s' } });
    await email.waitFor((s) => s.followUps.some((f) => f.kind === 'ambiguous-send'), { timeoutMs: 20_000 });
    const acc = accepted(email.id);
    expect(acc).toHaveLength(1);
    await signal(email, 'Send', [to], acc[0]!.sesMessageId);
    const s = await email.waitFor(sentWithId, { timeoutMs: 20_000 });
    expect(s.attempts[0]?.sesMessageId).toBe(acc[0]!.sesMessageId);
    await signal(email, 'Delivery', [to], acc[0]!.sesMessageId);
    expect((await email.result()).status).toBe('delivered');
    expect(accepted(email.id)).toHaveLength(1);
  });

  it('an ambiguous send with no Send event is resent after the bounded wait', async () => {
    stack.sandbox.injectSendFaults([{ kind: 'reset-before-accept' }]);
    const to = unique('lost');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: { ...fast, ambiguousSendWait: '2s' } });
    const s = await email.waitFor(sentWithId, { timeoutMs: 30_000 });
    expect(s.followUps.filter((f) => f.kind === 'ambiguous-send').length).toBeGreaterThanOrEqual(2);
    expect(accepted(email.id)).toHaveLength(1);
    await signal(email, 'Delivery', [to], s.attempts[0]!.sesMessageId!);
    expect((await email.result()).status).toBe('delivered');
  });

  it('continues as new under heavy open traffic, carrying the state over', async () => {
    const to = unique('opens');
    // The lifecycle must stay open while 30 signals go one by one: the deadline scales with load.
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'S', text: 'T', policy: { ...fast, deliveryDeadline: stallBudget(8_000, 0), maxHistoryEvents: 60 } });
    const id = (await email.waitFor(sentWithId, { timeoutMs: 20_000 })).attempts[0]!.sesMessageId!;
    await signal(email, 'Delivery', [to], id);
    const base = Date.now();
    const at = (i: number) => new Date(base + 1_000 + i).toISOString();
    // One at a time, so that each signal costs its own workflow task (no batching): the history
    // then certainly crosses the limit.
    for (let i = 0; i < 30; i++) {
      await signal(email, 'Open', [to], id, { at: at(i) });
      await email.waitFor((st) => st.eventsRecorded === i + 2, { timeoutMs: 10_000, intervalMs: 50 });
    }
    // A duplicate of the first open, after continue-as-new, is still recognised.
    await signal(email, 'Open', [to], id, { at: at(0) });
    const final = await email.result();
    expect(final.recipients[0]).toMatchObject({ status: 'delivered', opens: 30 });
    expect(final.eventsRecorded).toBe(31);
    const { client } = await getTestConnection();
    const continued = async () => {
      let n = 0;
      for await (const wf of client.workflow.list({ query: `WorkflowId = "${email.id}"` })) if (wf.status.name === 'CONTINUED_AS_NEW') n += 1;
      return n;
    };
    // Visibility is eventually consistent: poll.
    await expect.poll(continued, { timeout: 15_000, interval: 300 }).toBeGreaterThanOrEqual(1);
  });

  it('validates input before anything starts, naming the field', async () => {
    const bad: [unknown, string][] = [
      [{ from: FROM, to: ['not-an-address'], subject: 'S', text: 'T' }, 'to[0]'],
      [{ from: FROM, to: Array.from({ length: 51 }, (_, i) => `r${i}@example.com`), subject: 'S', text: 'T' }, 'to'],
      [{ from: FROM, to: ['a@example.com'], subject: 'S\r\nBcc: x@evil.example', text: 'T' }, 'subject'],
      [{ from: 'a@example.com\r\nBcc: x@evil.example', to: ['a@example.com'], subject: 'S', text: 'T' }, 'from'],
      [{ from: FROM, to: ['a@example.com'], subject: 'S' }, 'text'],
      [{ from: FROM, to: ['a@example.com'], subject: 'S', text: 'T', tags: { 'bad tag': 'x' } }, 'tags.bad tag'],
      [{ from: FROM, to: ['a@example.com'], subject: 'S', text: 'T', tags: { campaign: 'spring sale!' } }, 'tags.campaign'],
      [{ from: FROM, to: ['a@example.com'], subject: 'S', text: 'T', policy: { deliveryDeadline: 'soon' } }, 'policy.deliveryDeadline'],
    ];
    for (const [input, field] of bad) {
      const err = await stack.lc.sendTracked(input as never).catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(InvalidEmailInputError);
      expect((err as InvalidEmailInputError).field, JSON.stringify(input).slice(0, 80)).toBe(field);
    }
  });
});
