/**
 * Fault: the worker process is SIGKILLed while its `sendEmail` activity waits for SES.
 *
 * The worker runs in a child process (test/reliability/worker-proc.ts) so it can really die.
 * - After SES accepted: the sandbox accepts the message (and publishes its events, Send
 *   included) but holds the HTTP answer; the worker is killed; a new worker takes over; the
 *   activity times out (policy sendTimeout 3 s) → ambiguous → the Send event proves the first
 *   attempt went through → no second SendEmail, the lifecycle ends delivered.
 * - Before SES accepted: an HTTP proxy in front of the sandbox holds the SendEmail request (SES
 *   never sees it); the worker is killed; the new worker's lifecycle times out the activity,
 *   waits `ambiguousSendWait` for a Send event that never comes, resends once, ends delivered,
 *   with exactly one accepted message.
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import {
  acceptedFor,
  duplicateSends,
  ledgerFigures,
  resultsWithProgress,
  simAddress,
  startFaultStack,
  startSesProxy,
  startWorkerProcess,
  sumRecorded,
  until,
  withFigure,
  type FaultStack,
  type SesProxy,
  type WorkerProcess,
} from './helpers';
import { HANG_GUARD_MS, sandboxSettled } from '../helpers/wait';

// These scenarios take as long as the machine needs; their progress watchdogs decide failure.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

let stack: FaultStack;
const procs: WorkerProcess[] = [];
let proxy: SesProxy | undefined;

beforeAll(async () => {
  stack = await startFaultStack({ name: 'faults-worker', withoutWorker: true, sandbox: { maxSendRate: 50, sns: { retryDelayMs: 200 } } });
});
afterAll(async () => {
  for (const p of procs) await p.kill();
  await proxy?.close();
  await stack?.stop();
});

async function worker(sesEndpoint: string): Promise<WorkerProcess> {
  const p = await startWorkerProcess({
    temporalAddress: stack.temporalAddress,
    namespace: stack.namespace,
    taskQueue: stack.taskQueue,
    sesEndpoint,
    configurationSetName: stack.configurationSetName,
  });
  procs.push(p);
  return p;
}

const POLICY = { sendTimeout: '3s', deliveryDeadline: '3s', complaintWindow: '1s' };

it('worker SIGKILLed after SES accepted: the Send event proves it, no second SendEmail, ends delivered', async () => {
  await withFigure('worker killed during sendEmail, after SES accepted', async (fig) => {
    const sandbox = stack.sandbox!;
    const first = await worker(sandbox.endpoint);
    // SES accepts (and publishes Send, Delivery) but its answer never reaches the worker.
    sandbox.injectSendFaults([{ kind: 'accept-then-hang', hangMs: 120_000 }]);
    const to = simAddress('success', `after${Date.now()}`);
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'kill after accept', text: 'x', policy: { ...POLICY, ambiguousSendWait: '30s' } });
    const accepted = await until('SES to accept the message', () => acceptedFor(sandbox, email.id)[0], 20_000, 50);
    // The Send event reached the webhook (and so the lifecycle) before the kill.
    await until('the Send notification to be delivered', () =>
      ledgerFigures(sandbox).notifications.find((e) => e.sesMessageId === accepted.sesMessageId && e.eventType === 'Send' && e.finalStatus === 'delivered'),
    );
    const status = await email.status();
    expect(status.phase).toBe('sending'); // the activity is still waiting for SES's answer
    await first.kill();
    fig.injected = 1;
    expect((await first.exited).signal).toBe('SIGKILL');

    await worker(sandbox.endpoint);
    const final = (await resultsWithProgress(stack.client, [email], 40_000))[0]!;
    expect(final.recipients[0]).toMatchObject({ email: to, status: 'delivered', attempts: 1 });
    expect(acceptedFor(sandbox, email.id)).toHaveLength(1);
    expect(final.attempts).toEqual([expect.objectContaining({ attempt: 1, sesMessageId: accepted.sesMessageId })]);
    const ambiguous = final.followUps.filter((f) => f.kind === 'ambiguous-send').map((f) => f.detail);
    expect(ambiguous.some((d) => d.includes('Send event proves SES accepted'))).toBe(true);
    expect(ambiguous.some((d) => d.includes('resending'))).toBe(false);

    await sandboxSettled(sandbox);
    const ledger = ledgerFigures(sandbox);
    const mine = new Set(ledger.notifications.filter((e) => e.sesMessageId === accepted.sesMessageId).map((e) => e.snsMessageId));
    fig.eventsPublished = mine.size;
    fig.eventsRecorded = sumRecorded([final]);
    fig.duplicateSends = duplicateSends(sandbox, [final]);
    fig.notes.push(`SendEmail calls accepted: ${acceptedFor(sandbox, email.id).length}; follow-ups: ${ambiguous.join(' | ')}`);
    expect(ledger.undelivered).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
  // Leave no worker polling the queue for the next test.
  for (const p of procs.splice(0)) await p.stop();
});

it('worker SIGKILLed before SES accepted: resent once after the bounded wait, exactly one accepted message, ends delivered', async () => {
  await withFigure('worker killed during sendEmail, before SES accepted', async (fig) => {
    const sandbox = stack.sandbox!;
    proxy = await startSesProxy(sandbox.endpoint);
    const first = await worker(proxy.endpoint);
    const before = sandbox.sentMessages().length;
    proxy.stallSendEmail = true; // SendEmail reaches the proxy, never SES
    const to = simAddress('success', `before${Date.now()}`);
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'kill before accept', text: 'x', policy: { ...POLICY, ambiguousSendWait: '3s' } });
    await until('the SendEmail request to be held', () => (proxy!.stalled >= 1 ? true : undefined), 20_000, 50);
    await first.kill();
    fig.injected = 1;
    await until('the held request to be abandoned by the dead worker', () => (proxy!.abandoned >= 1 ? true : undefined), 5_000, 50);
    proxy.stallSendEmail = false;
    expect(acceptedFor(sandbox, email.id)).toHaveLength(0);

    await worker(proxy.endpoint);
    const final = (await resultsWithProgress(stack.client, [email], 40_000))[0]!;
    expect(final.recipients[0]).toMatchObject({ email: to, status: 'delivered', attempts: 1 });
    const accepted = acceptedFor(sandbox, email.id);
    expect(accepted).toHaveLength(1);
    expect(sandbox.sentMessages().length - before).toBe(1);
    expect(final.attempts).toEqual([expect.objectContaining({ attempt: 1, sesMessageId: accepted[0]!.sesMessageId })]);
    const ambiguous = final.followUps.filter((f) => f.kind === 'ambiguous-send').map((f) => f.detail);
    expect(ambiguous.some((d) => d.includes('no Send event within the wait; resending'))).toBe(true);

    await sandboxSettled(sandbox);
    const ledger = ledgerFigures(sandbox);
    const mine = new Set(ledger.notifications.filter((e) => e.sesMessageId === accepted[0]!.sesMessageId).map((e) => e.snsMessageId));
    fig.eventsPublished = mine.size;
    fig.eventsRecorded = sumRecorded([final]);
    fig.duplicateSends = duplicateSends(sandbox, [final]);
    fig.notes.push(`SendEmail held by proxy: ${proxy.stalled}, abandoned by the killed worker: ${proxy.abandoned}; accepted: ${accepted.length}; follow-ups: ${ambiguous.join(' | ')}`);
    expect(ledger.undelivered).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
});
