/**
 * Fault consequence found by the Temporal-outage test: after an outage, SNS retries bring a
 * message's events back in any order. An out-of-office Bounce (Transient/General) that is
 * recorded before its Delivery looks like a soft bounce, so the lifecycle enters its resend
 * backoff. When the Delivery (and then a Complaint) arrive during the backoff, the lifecycle must
 * react at once: no resend (it is an auto-reply), the complaint suppresses the address now, and
 * the lifecycle closes at max(deadline, outcome + complaint window) — not only after the full
 * resend backoff (default 15 min, doubling per attempt).
 *
 * Events are posted to the real webhook as signed SNS notifications, in the order an outage
 * can produce, for a message whose own sandbox events are silent.
 */
import { GetSuppressedDestinationCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { afterAll, expect, it, vi } from 'vitest';
import { sesEventJson } from '../helpers/ses-json';
import { duplicateSends, postSignedEvent, resultsWithProgress, simAddress, startFaultStack, until, withFigure, type FaultStack } from './helpers';
import { HANG_GUARD_MS } from '../helpers/wait';

// These scenarios take as long as the machine needs; their progress watchdogs decide failure.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

let stack: FaultStack | undefined;
let ses: SESv2Client | undefined;
afterAll(async () => {
  ses?.destroy();
  await stack?.stop();
});

const BACKOFF_MS = 20_000;

it('an out-of-office Bounce recorded before its Delivery: the resend backoff ends when the Delivery arrives; a Complaint meanwhile suppresses at once', async () => {
  await withFigure('OOTO bounce before its Delivery (reordered) + complaint during the resend backoff', async (fig) => {
    stack = await startFaultStack({ name: 'faults-backoff', sandbox: { maxSendRate: 50 } });
    const sandbox = stack.sandbox!;
    ses = new SESv2Client({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials, maxAttempts: 1 });
    const to = simAddress('silent', `ooto${Date.now()}`); // the sandbox publishes nothing for it: the test does
    const email = await stack.lc.sendTracked({
      from: 'app@example.com',
      to: [to],
      subject: 'reordered ooto',
      text: 'x',
      policy: { deliveryDeadline: '3s', complaintWindow: '1s', resendBackoff: BACKOFF_MS },
    });
    const sent = await email.waitFor((s) => s.attempts[0]?.sesMessageId !== undefined, { timeoutMs: 15_000 });
    const messageId = sent.attempts[0]!.sesMessageId!;
    const t0 = Date.now();
    const at = (ms: number): string => new Date(t0 + ms).toISOString();
    const post = async (e: Record<string, unknown>): Promise<void> => {
      const r = await postSignedEvent(stack!, e);
      expect(r).toMatchObject({ status: 200, body: { status: 'recorded' } });
      fig.eventsPublished += 1;
    };

    // The order an outage can produce: Send, then the auto-reply Bounce, the Delivery only later.
    await post(sesEventJson('Send', { messageId, recipients: [to], at: at(0), lifecycleId: email.id }));
    await post(sesEventJson('Bounce', { messageId, recipients: [to], at: at(300), bounce: ['Transient', 'General'], lifecycleId: email.id }));
    await email.waitFor((s) => s.phase === 'resend-backoff', { timeoutMs: 10_000 });
    fig.injected = 1;
    await post(sesEventJson('Delivery', { messageId, recipients: [to], at: at(200), lifecycleId: email.id }));
    await post(sesEventJson('Complaint', { messageId, recipients: [to], at: at(400), lifecycleId: email.id }));
    const complainedAt = Date.now();

    // Suppression of the complained address: measured (up to the whole backoff), then judged.
    await until(
      'the complained address on the account suppression list',
      () =>
        ses!.send(new GetSuppressedDestinationCommand({ EmailAddress: to })).then(
          (o) => o.SuppressedDestination?.Reason,
          () => undefined,
        ),
      BACKOFF_MS + 10_000,
      200,
    );
    const suppressionLatency = Date.now() - complainedAt;
    const status = await email.status();
    fig.notes.push(`suppression ${suppressionLatency} ms after the Complaint (resend backoff ${BACKOFF_MS} ms); phase then: ${status.phase}`);
    expect(suppressionLatency, 'complaint suppression waited for the resend backoff').toBeLessThan(5_000);

    const [final] = await resultsWithProgress(stack.client, [email], 10_000);
    const closedAfter = Date.now() - t0;
    fig.eventsRecorded = final!.eventsRecorded;
    fig.duplicateSends = duplicateSends(sandbox, [final!]);
    fig.notes.push(`closed ${closedAfter} ms after the first event`);
    expect(final!.recipients[0]).toMatchObject({ status: 'complained', autoReplies: 1, attempts: 1 });
    expect(final!.followUps.filter((f) => f.kind === 'resend')).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
}, HANG_GUARD_MS);
