/**
 * The v2 lifecycle core under the conditions that broke v1 (one test per observed failure):
 * concurrent signals during follow-ups, floods, cancellation, search-attribute limits, foreign
 * events, routing integrity, bounded send retries, policy carried in the input, and semantics.
 * Real Temporal dev server, real SESv2 client against the sandbox, the product's own router.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSuppressedDestinationCommand, PutSuppressedDestinationCommand } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidEmailInputError, validateSendInput, type TrackedEmail } from '../src/client';
import { orphanWorkflowId, sesEventSignal, statusQuery, WORKFLOW_TYPE, type LifecycleStatus, type MessageLifecycleInput, type OrphanLifecycleInput } from '../src/definitions';
import { EventSet, initialFacts, summarize, type SesEvent } from '../src/lifecycle';
import { parseSesEvent } from '../src/ses-events';
import { EventRouter } from '../src/webhook/router';
import { sesEvent, type EventKind } from './helpers/ses-json';
import { startLifecycleStack, type LifecycleStack } from './helpers/stack';
import { getTestConnection } from './helpers/temporal';
import { HANG_GUARD_MS, stallBudget } from './helpers/wait';

let stack: LifecycleStack;
let router: EventRouter;
const FROM = 'app@example.com';

beforeAll(async () => {
  stack = await startLifecycleStack({ callbacks: { secret: 'core-test-callback-secret-0123', allowedHosts: ['127.0.0.1'] } });
  const { client } = await getTestConnection();
  router = new EventRouter({ client, taskQueue: stack.taskQueue, orphanIdleTimeout: '3s' });
});
afterAll(async () => {
  await stack?.stop();
});

let n = 0;
const unique = (local: string) => `${local}+c${Date.now()}${n++}@example.com`;
const sentWithId = (s: LifecycleStatus) => s.attempts.length > 0 && s.attempts.every((a) => a.sesMessageId !== undefined);
const waitBudget = () => stallBudget(0, 15_000);

async function signal(email: TrackedEmail, type: EventKind, recipients: string[], sesMessageId: string, extra: { bounce?: [string, string]; at?: string; lifecycleId?: string } = {}) {
  const { client } = await getTestConnection();
  const event = sesEvent(type, { messageId: sesMessageId, recipients, at: extra.at ?? new Date().toISOString(), lifecycleId: extra.lifecycleId ?? email.id, ...(extra.bounce ? { bounce: extra.bounce } : {}) });
  await client.workflow.getHandle(email.id).signal(sesEventSignal, { event });
}

async function suppressed(email: string): Promise<string | undefined> {
  try {
    const r = await stack.ses.send(new GetSuppressedDestinationCommand({ EmailAddress: email }));
    return r.SuppressedDestination?.Reason;
  } catch {
    return undefined;
  }
}

describe('v2 core', () => {
  it('item 1: a burst of hard bounces during suppressions is acted on at once, not at the next timer', async () => {
    const to = Array.from({ length: 50 }, (_, i) => unique(`r${i}`));
    // Long deadline and window: v1 ran the lagging suppressions only when a timer fired (here: 120 s).
    const email = await stack.lc.sendTracked({ from: FROM, to, subject: 'burst', text: 'x', policy: { deliveryDeadline: '120s', complaintWindow: '120s' } });
    const id = (await email.waitFor(sentWithId, { timeoutMs: waitBudget() })).attempts[0]!.sesMessageId!;
    await signal(email, 'Delivery', to, id);
    const bounced = to.slice(0, 20);
    await Promise.all(bounced.map((r, i) => signal(email, 'Bounce', [r], id, { at: new Date(Date.now() + 100 + i).toISOString() })));
    const s = await email.waitFor((x) => x.followUps.filter((f) => f.kind === 'suppressed').length === bounced.length, { timeoutMs: waitBudget(), intervalMs: 100 });
    expect(s.phase).toBe('complaint-window');
    for (const r of bounced) expect(await suppressed(r)).toBe('BOUNCE');
    const { client } = await getTestConnection();
    await client.workflow.getHandle(email.id).cancel();
  });

  it('item 2: a transient suppression failure is retried; a final one is recorded, and neither fails the lifecycle', async () => {
    const policy = { deliveryDeadline: '3s', complaintWindow: '2s' };
    // Transient: the connection is reset mid-call, then SES answers 500; the third try succeeds.
    stack.sandbox.injectSuppressionFaults([{ kind: 'reset' }, { kind: 'internal' }]);
    const a = unique('transient');
    const e1 = await stack.lc.sendTracked({ from: FROM, to: [a], subject: 'reset', text: 'x', policy });
    const id1 = (await e1.waitFor(sentWithId, { timeoutMs: waitBudget() })).attempts[0]!.sesMessageId!;
    await signal(e1, 'Bounce', [a], id1);
    const r1 = await e1.result();
    expect(r1.recipients[0]!.status).toBe('bounced');
    expect(r1.followUps.filter((f) => f.kind === 'suppressed').map((f) => f.detail)).toEqual([`${a} (BOUNCE)`]);
    expect(await suppressed(a)).toBe('BOUNCE');
    // Final: IAM refuses PutSuppressedDestination. Recorded, shown, and the lifecycle closes normally.
    stack.sandbox.injectSuppressionFaults([{ kind: 'access-denied' }]);
    const b = unique('denied');
    const e2 = await stack.lc.sendTracked({ from: FROM, to: [b], subject: 'denied', text: 'x', policy });
    const id2 = (await e2.waitFor(sentWithId, { timeoutMs: waitBudget() })).attempts[0]!.sesMessageId!;
    await signal(e2, 'Complaint', [b], id2);
    const r2 = await e2.result();
    expect(r2.phase).toBe('completed');
    expect(r2.recipients[0]!.status).toBe('complained');
    const failed = r2.followUps.filter((f) => f.kind === 'suppression-failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.detail).toMatch(/AccessDenied/);
    expect(await suppressed(b)).toBeUndefined();
  });

  it('item 3: cancelling a lifecycle closes it as cancelled with its summary; the last callback says so', async () => {
    const received: { phase: string; status: string }[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { phase: string; status: string });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const to = unique('cancel');
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb`;
      const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'cancel', text: 'x', policy: { deliveryDeadline: '120s' }, callbackUrl: url });
      await email.waitFor(sentWithId, { timeoutMs: waitBudget() });
      const { client } = await getTestConnection();
      await client.workflow.getHandle(email.id).cancel();
      const final = await email.result();
      expect(final.phase).toBe('cancelled');
      expect(final.recipients[0]).toMatchObject({ email: to, status: 'sent' });
      expect(final.followUps.some((f) => f.kind === 'cancelled')).toBe(true);
      expect((await client.workflow.getHandle(email.id).describe()).status.name).toBe('COMPLETED');
      expect(received.at(-1)).toMatchObject({ phase: 'cancelled', status: 'sent' });
    } finally {
      receiver.close();
    }
  });

  it('item 4: thousands of Opens keep the carried state bounded; a later Complaint is suppressed within seconds', async () => {
    const to = Array.from({ length: 50 }, (_, i) => `f${i}.${Date.now() % 100_000}@e.com`);
    const email = await stack.lc.sendTracked({ from: FROM, to, subject: 'flood', text: 'x', policy: { deliveryDeadline: '300s', complaintWindow: '300s', maxHistoryEvents: 600 } });
    const id = (await email.waitFor(sentWithId, { timeoutMs: waitBudget() })).attempts[0]!.sesMessageId!;
    await signal(email, 'Delivery', to, id);
    const { client } = await getTestConnection();
    const base = Date.now();
    const OPENS = 3_000;
    for (let i = 0; i < OPENS; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => signal(email, 'Open', to, id, { at: new Date(base + i + j).toISOString() })),
      );
    }
    const victim = to[7]!;
    const complainedAt = Date.now();
    await signal(email, 'Complaint', [victim], id);
    const s = await email.waitFor((x) => x.followUps.some((f) => f.kind === 'suppressed' && f.detail.startsWith(victim)), { timeoutMs: waitBudget(), intervalMs: 100 });
    console.log(`[flood] ${OPENS} opens: complaint suppressed ${Date.now() - complainedAt} ms after its signal`);
    expect(await suppressed(victim)).toBe('COMPLAINT');
    expect(s.engagement?.opens).toBe(OPENS);
    expect(s.eventCounts.Open).toBe(OPENS);
    // Several runs, each history short, each carried input small.
    const runs: { events: number; inputBytes: number }[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${email.id}"` })) {
      const h = await client.workflow.getHandle(email.id, wf.runId).fetchHistory();
      const started = h.events![0]!.workflowExecutionStartedEventAttributes!;
      runs.push({ events: h.events!.length, inputBytes: started.input!.payloads!.reduce((b, p) => b + (p.data?.length ?? 0), 0) });
    }
    console.log(`[flood] runs: ${JSON.stringify(runs)}`);
    // Under a continuous flood the server defers continue-as-new while signals keep arriving
    // (the task is retried with them); runs still stay far below Temporal's 10k-event warning.
    expect(runs.length).toBeGreaterThan(1);
    for (const r of runs) {
      expect(r.events).toBeLessThan(8_000);
      expect(r.inputBytes).toBeLessThan(96 * 1024);
    }
    await client.workflow.getHandle(email.id).cancel();
  }, HANG_GUARD_MS);

  it('item 5: input that cannot fit the search-attribute limits is refused naming the field', () => {
    const long = (i: number) => `${'a'.repeat(36)}${String(i).padStart(2, '0')}@example.com`; // 50 chars
    expect(() => validateSendInput({ from: FROM, to: Array.from({ length: 50 }, (_, i) => long(i)), subject: 's', text: 't' })).toThrow(InvalidEmailInputError);
    try {
      validateSendInput({ from: FROM, to: Array.from({ length: 50 }, (_, i) => long(i)), subject: 's', text: 't' });
    } catch (err) {
      expect((err as InvalidEmailInputError).field).toBe('to');
    }
    const tags = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`t${i}`, 'v'.repeat(180)]));
    expect(() => validateSendInput({ from: FROM, to: ['a@example.com'], subject: 's', text: 't', tags })).toThrow(/invalid tags: .*EmailTags/);
  });

  it('item 5: an orphan for 50 long recipients fits its search attributes and suppresses every one', async () => {
    const sesId = `0100orphan${Date.now()}-wide`;
    const to = Array.from({ length: 50 }, (_, i) => `${'b'.repeat(24)}${Date.now()}${String(i).padStart(2, '0')}@example.com`.slice(-44));
    const event = sesEvent('Bounce', { messageId: sesId, recipients: to, at: new Date().toISOString() });
    const r = await router.record(event);
    expect(r.outcome).toBe('orphaned');
    const { client } = await getTestConnection();
    const handle = client.workflow.getHandle(r.workflowId);
    const deadline = Date.now() + waitBudget();
    let s: LifecycleStatus | undefined;
    while (Date.now() < deadline) {
      s = await handle.query(statusQuery);
      if (s.followUps.filter((f) => f.kind === 'suppressed').length === to.length) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(s!.followUps.filter((f) => f.kind === 'suppressed')).toHaveLength(to.length);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(s!.sesMessageIds).toEqual([sesId]);
  });

  it('item 6: an event of a message the lifecycle never sent does not change it; it goes to that message’s orphan', async () => {
    const to = unique('foreign');
    const email = await stack.lc.sendTracked({ from: FROM, to: [to], subject: 'foreign', text: 'x', policy: { deliveryDeadline: '4s', complaintWindow: '3s' } });
    const id = (await email.waitFor(sentWithId, { timeoutMs: waitBudget() })).attempts[0]!.sesMessageId!;
    await signal(email, 'Delivery', [to], id);
    const otherId = `0100foreign${Date.now()}`;
    for (let i = 0; i < 5; i++) await signal(email, 'Bounce', [to], otherId, { at: new Date(Date.now() + i).toISOString() });
    await signal(email, 'Send', [to], `${otherId}-send`);
    const final = await email.result();
    expect(final.recipients[0]!.status).toBe('delivered');
    expect(final.sesMessageIds).toEqual([id]);
    expect(final.foreignEvents).toBe(6);
    expect(final.followUps.filter((f) => f.kind === 'foreign-event')).toHaveLength(6);
    const { client } = await getTestConnection();
    const orphan = await client.workflow.getHandle(orphanWorkflowId(otherId)).query(statusQuery);
    expect(orphan.kind).toBe('orphan');
    expect(orphan.eventsRecorded).toBe(5);
    // The bounce itself is genuine SES news about the address: the orphan still suppresses it (rule 7).
    expect(orphan.recipients[0]).toMatchObject({ email: to, status: 'bounced' });
  });

  it('item 7: a lifecycle-id naming a workflow that is not a message lifecycle is never signalled', async () => {
    const { client } = await getTestConnection();
    const fakeId = `msg-not-a-lifecycle-${Date.now()}`;
    const input: OrphanLifecycleInput = { sesMessageId: 'x', idleTimeout: '3s' };
    await client.workflow.start(WORKFLOW_TYPE.orphan, { workflowId: fakeId, taskQueue: stack.taskQueue, args: [input] });
    const sesId = `0100claim${Date.now()}`;
    const r = await router.record(sesEvent('Delivery', { messageId: sesId, recipients: ['x@example.com'], at: new Date().toISOString(), lifecycleId: fakeId }));
    expect(r).toMatchObject({ outcome: 'orphaned', workflowId: orphanWorkflowId(sesId) });
  });

  it('item 8: an SES message id too long for a plain orphan id still gets an orphan (no endless 503)', async () => {
    // SES ids are short; the parser admits up to 256 characters, more than `orphan-<id>` may hold.
    const sesId = `0100${'x'.repeat(250)}`;
    const r = await router.record(sesEvent('Complaint', { messageId: sesId, recipients: ['long@example.com'], at: new Date().toISOString() }));
    expect(r.outcome).toBe('orphaned');
    expect(r.workflowId).toMatch(/^orphan-h-[0-9a-f]{16}$/);
  });

  it('item 9: retryable send failures are bounded by the policy', async () => {
    stack.sandbox.injectSendFaults(Array.from({ length: 6 }, () => ({ kind: 'throttle' as const })));
    const email = await stack.lc.sendTracked({ from: FROM, to: [unique('throttled')], subject: 't', text: 'x', policy: { maxSendRetries: 3, deliveryDeadline: '2s', complaintWindow: '1s' } });
    const final = await email.result();
    expect(final.recipients[0]!.status).toBe('failed');
    expect(final.sendError?.message).toMatch(/gave up/);
    stack.sandbox.injectSendFaults([]);
  });

  it('a suppressed cc never hides a delivered recipient: EmailStatus delivered, and a per-recipient search finds it', async () => {
    const bob = unique('bob');
    const carol = unique('carol');
    await stack.ses.send(new PutSuppressedDestinationCommand({ EmailAddress: carol, Reason: 'BOUNCE' }));
    const email = await stack.lc.sendTracked({ from: FROM, to: [bob], cc: [carol], subject: 'cc', text: 'x', policy: { deliveryDeadline: '60s', complaintWindow: '60s' } });
    const id = (await email.waitFor(sentWithId, { timeoutMs: waitBudget() })).attempts[0]!.sesMessageId!;
    await signal(email, 'Delivery', [bob], id);
    const s = await email.waitFor((x) => x.recipients.every((r) => r.status !== 'sent' && r.status !== 'pending'), { timeoutMs: waitBudget() });
    expect(s.status).toBe('delivered');
    expect(s.recipients.map((r) => [r.email, r.status])).toEqual([
      [bob, 'delivered'],
      [carol, 'suppressed'],
    ]);
    const { client } = await getTestConnection();
    const found = async (query: string): Promise<string[]> => {
      const ids: string[] = [];
      for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
      return ids;
    };
    await expect.poll(() => found(`EmailRecipients = "delivered:${bob}" AND EmailStatus = "delivered"`), { timeout: waitBudget(), interval: 200 }).toEqual([email.id]);
    expect(await found(`EmailRecipients = "suppressed:${carol}"`)).toEqual([email.id]);
    await client.workflow.getHandle(email.id).cancel();
  });

  it('item 10: the policy is resolved once, at start, and carried in the input', async () => {
    const email = await stack.lc.sendTracked({ from: FROM, to: [unique('policy')], subject: 'p', text: 'x', policy: { deliveryDeadline: '2s', complaintWindow: '1s' } });
    await email.result();
    const { client } = await getTestConnection();
    const h = await client.workflow.getHandle(email.id).fetchHistory();
    const data = h.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!.data!;
    const input = JSON.parse(Buffer.from(data).toString('utf8')) as MessageLifecycleInput;
    expect(input.core).toBe(2);
    expect(input.policy).toMatchObject({ deliveryDeadline: '2s', complaintWindow: '1s', maxSendAttempts: 3, maxSendRetries: 30, sendRetryFor: '2h', suppressOnComplaint: true });
  });

  it('item 11: an unknown event type for a message no lifecycle sent starts nothing', async () => {
    const r0 = parseSesEvent({ eventType: 'FutureThing', mail: { messageId: `0100future${Date.now()}`, timestamp: new Date().toISOString(), destination: ['f@example.com'], tags: {} } });
    expect(r0.kind).toBe('event');
    const r = await router.record((r0 as { event: SesEvent }).event);
    expect(r.outcome).toBe('ignored');
  });
});

describe('item 11: semantics (pure)', () => {
  const at = '2026-01-01T00:00:01.000Z';
  it('a Rendering Failure is a failed send, not a rejection', () => {
    const r = parseSesEvent({ eventType: 'Rendering Failure', mail: { messageId: 'm1', timestamp: at, destination: ['a@example.com'], tags: {} }, failure: { errorMessage: 'Attribute name is missing', templateName: 'T' } });
    const s = summarize(new EventSet([(r as { event: SesEvent }).event]), initialFacts(['a@example.com']));
    expect(s.recipients[0]).toMatchObject({ status: 'failed', failureReason: 'Attribute name is missing' });
  });
  it('a Reject and a Rendering Failure with the same time give the same state in either order (found by the model test)', () => {
    const mail = { messageId: 'm3', timestamp: at, destination: ['a@example.com'], tags: {} };
    const rj = (parseSesEvent({ eventType: 'Reject', mail, reject: { reason: 'Bad content' } }) as { event: SesEvent }).event;
    const rf = (parseSesEvent({ eventType: 'Rendering Failure', mail, failure: { errorMessage: 'x', templateName: 'T' } }) as { event: SesEvent }).event;
    const facts = initialFacts(['a@example.com']);
    expect(summarize(new EventSet([rj, rf]), facts).recipients).toEqual(summarize(new EventSet([rf, rj]), facts).recipients);
  });
  it('an Open on a multi-recipient message marks no co-recipient delivered', () => {
    const facts = initialFacts(['a@example.com', 'b@example.com']);
    facts.attempts = [{ attempt: 1, sesMessageId: 'm2', recipients: ['a@example.com', 'b@example.com'], sentAt: at }];
    const events = [sesEvent('Delivery', { messageId: 'm2', recipients: ['a@example.com'], at }), sesEvent('Open', { messageId: 'm2', recipients: ['a@example.com', 'b@example.com'], at })];
    const s = summarize(new EventSet(events), facts);
    expect(s.recipients.map((r) => r.status)).toEqual(['delivered', 'sent']);
    expect(s.engagement).toEqual({ opens: 1, clicks: 0 });
  });
});
