/**
 * Fault: the Temporal server is SIGKILLed mid-run — sends in flight (paced at 4/s, so some are
 * accepted and some not yet sent) and SES events arriving — and restarted on the same port with
 * the same SQLite file. While it is down the webhook cannot record events and answers 5xx; the
 * sandbox's SNS retries deliver them once it is back. Every lifecycle must end in its documented
 * state, with no duplicate SendEmail, and the ledger must show nothing lost.
 */
import { afterAll, expect, it, vi } from 'vitest';
import {
  describeUndelivered,
  duplicateSends,
  EXPECTED,
  ledgerFigures,
  simAddress,
  startFaultStack,
  startOwnTemporal,
  resultsWithProgress,
  sumRecorded,
  until,
  withFigure,
  type FaultStack,
  type OwnTemporal,
} from './helpers';
import { HANG_GUARD_MS, sandboxSettled } from '../helpers/wait';

// These scenarios take as long as the machine needs; their progress watchdogs decide failure.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

let temporal: OwnTemporal | undefined;
let stack: FaultStack | undefined;
afterAll(async () => {
  await stack?.stop();
  await temporal?.dispose();
});

const KINDS = ['success', 'bounce', 'complaint', 'ooto'] as const;
const SENDS = 12;

it('Temporal SIGKILLed and restarted mid-run: webhook answers 5xx meanwhile, SNS retries deliver, every lifecycle ends right', async () => {
  await withFigure(`Temporal server SIGKILL + restart mid-run (${SENDS} sends)`, async (fig) => {
    temporal = await startOwnTemporal();
    stack = await startFaultStack({
      name: 'faults-temporal',
      temporal: { address: temporal.address, namespace: 'default' },
      // Paced at 4 sends/s; a message's events follow 400 ms apart; SNS retries every second for long enough.
      sandbox: { maxSendRate: 4, eventDelayMs: 400, sns: { retries: 40, retryDelayMs: 1_000, timeoutMs: 12_000 } },
    });
    const sandbox = stack.sandbox!;
    const label = `tk${Date.now()}`;
    const kinds = Array.from({ length: SENDS }, (_, i) => KINDS[i % KINDS.length]!);
    // deliveryDeadline: longer than the outage, or events held up by it would arrive after the
    // recipient was already declared unconfirmed (and go to an orphan lifecycle). resendBackoff
    // stays at its default (15 min): after the outage an out-of-office Bounce may be retried in
    // before its Delivery, and the lifecycle must not sit out the backoff (faults-reorder-backoff).
    const policy = { deliveryDeadline: '20s', complaintWindow: '1s', sendTimeout: '3s', ambiguousSendWait: '10s' };
    const emails = await Promise.all(
      kinds.map((kind, i) => stack!.lc.sendTracked({ from: 'app@example.com', to: [simAddress(kind, `${label}-${i}`)], subject: `${kind} ${i}`, text: 'x', policy })),
    );

    // Kill once a few messages are accepted and their first events are on their way.
    await until('3 messages accepted', () => (sandbox.sentMessages().length >= 3 ? true : undefined), 20_000, 20);
    const acceptedAtKill = sandbox.sentMessages().length;
    const publishedAtKill = ledgerFigures(sandbox).notifications.length;
    const killedAt = Date.now();
    await temporal.kill();
    fig.injected = 1;

    // While it is down, the webhook answers 5xx (nothing recorded, so SNS must retry).
    await until('a 5xx answer from the webhook', () => (ledgerFigures(sandbox).attempts5xx > 0 ? true : undefined), 30_000, 100);
    await temporal.restart(); // same port, same SQLite file
    const downMs = Date.now() - killedAt;

    // Budget: a send whose task was lost with the server waits ambiguousSendWait for a Send
    // event that never comes, resends, then waits out its delivery deadline.
    const results = await resultsWithProgress(stack.client, emails, 55_000);
    kinds.forEach((kind, i) => expect(results[i]!.recipients[0], `${kind} #${i}`).toMatchObject(EXPECTED[kind]));
    expect(results.filter((r) => r.sendError)).toEqual([]);

    await sandboxSettled(sandbox);
    const ledger = ledgerFigures(sandbox);
    const refused = ledger.notifications.filter((e) => e.deliveries.some((d) => (d.statusCode ?? 0) >= 500));
    // A refused notification was never answered 2xx before it was finally delivered, and never 4xx.
    expect(ledger.notifications.every((e) => e.deliveries.every((d) => d.statusCode === undefined || d.statusCode >= 500 || d.statusCode < 300))).toBe(true);
    const ambiguous = results.filter((r) => r.followUps.some((f) => f.kind === 'ambiguous-send')).length;
    const proven = results.filter((r) => r.followUps.some((f) => f.detail.includes('Send event proves'))).length;
    const resent = results.filter((r) => r.followUps.some((f) => f.detail.includes('resending'))).length;
    fig.eventsPublished = ledger.distinct;
    fig.eventsRecorded = sumRecorded(results);
    fig.duplicateSends = duplicateSends(sandbox, results);
    fig.notes.push(
      `killed with ${acceptedAtKill}/${SENDS} sends accepted and ${publishedAtKill} notifications published; down ${(downMs / 1000).toFixed(1)} s; ` +
        `${refused.length} notifications answered 5xx (${ledger.attempts5xx} attempts), all delivered after restart; ` +
        `${ambiguous} lifecycles lost their send activity with the server (${proven} proven accepted by a Send event and not resent, ` +
        `${resent} never reached SES and were resent after ambiguousSendWait); failed attempts by kind ${JSON.stringify(ledger.failures)}`,
    );
    expect(refused.length).toBeGreaterThan(0);
    expect(ledger.undelivered, describeUndelivered(ledger.undelivered)).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
}, HANG_GUARD_MS);
