/**
 * Fault: an SES throttling storm. The account's MaxSendRate (3/s) is far below the offered load
 * (30 sends at once). The worker paces SendEmail to the MaxSendRate it reads from GetAccount
 * (SES_PACE_TO_SEND_RATE=true → `maxTaskQueueActivitiesPerSecond`), so every send eventually
 * succeeds, none is dropped or duplicated, and the accepted rate never exceeds the quota (the
 * sandbox's token bucket holds one second's worth, so any 1-s window may see up to 2 × rate).
 * Throttled calls (429 TooManyRequestsException, retried by the lifecycle) are counted from the
 * worker's own `ses_errors_total` metric and reported.
 */
import { afterAll, expect, it, vi } from 'vitest';
import { workerMetrics } from '../../src/metrics';
import {
  acceptedFor,
  describeUndelivered,
  duplicateSends,
  ledgerFigures,
  maxInWindow,
  resultsWithProgress,
  simAddress,
  startFaultStack,
  sumRecorded,
  withFigure,
  type FaultStack,
} from './helpers';
import { HANG_GUARD_MS, sandboxSettled } from '../helpers/wait';

// These scenarios take as long as the machine needs; their progress watchdogs decide failure.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

let stack: FaultStack | undefined;
afterAll(async () => {
  await stack?.stop();
});

async function throttledSends(): Promise<number> {
  const m = await workerMetrics.sesErrors.get();
  return m.values.filter((v) => v.labels.type === 'SesThrottled' && v.labels.operation === 'SendEmail').reduce((n, v) => n + v.value, 0);
}

const RATE = 3;
const SENDS = 30;

it(`throttling storm: ${SENDS} sends at once against MaxSendRate ${RATE}/s — all succeed, none dropped, rate within quota`, async () => {
  await withFigure(`SES throttling storm (${SENDS} sends, MaxSendRate ${RATE}/s, paced)`, async (fig) => {
    stack = await startFaultStack({ name: 'faults-throttle', pace: true, sandbox: { maxSendRate: RATE, sns: { retryDelayMs: 200 } } });
    const sandbox = stack.sandbox!;
    const throttledBefore = await throttledSends();
    const label = `thr${Date.now()}`;
    const started = Date.now();
    const emails = await Promise.all(
      Array.from({ length: SENDS }, (_, i) =>
        stack!.lc.sendTracked({ from: 'app@example.com', to: [simAddress('success', `${label}-${i}`)], subject: `storm ${i}`, text: 'x', policy: { deliveryDeadline: '3s', complaintWindow: '1s' } }),
      ),
    );
    const results = await resultsWithProgress(stack.client, emails, 45_000);
    const elapsed = Date.now() - started;
    const throttled = (await throttledSends()) - throttledBefore;

    // Every send eventually succeeded, exactly once.
    expect(results.map((r) => r.recipients[0]!.status)).toEqual(Array(SENDS).fill('delivered'));
    expect(results.filter((r) => r.sendError)).toEqual([]);
    const sent = sandbox.sentMessages();
    expect(emails.map((e) => acceptedFor(sandbox, e.id, sent).length)).toEqual(Array(SENDS).fill(1));

    // The accepted rate stayed within the quota.
    const times = sent.map((m) => Date.parse(m.acceptedAt)).sort((a, b) => a - b);
    const peak1s = maxInWindow(times, 1_000);
    const spanS = (times[times.length - 1]! - times[0]!) / 1_000;
    const sustained = (times.length - RATE) / spanS; // beyond the initial bucket
    expect(peak1s).toBeLessThanOrEqual(2 * RATE);
    expect(sustained).toBeLessThanOrEqual(RATE * 1.05);

    await sandboxSettled(sandbox);
    const ledger = ledgerFigures(sandbox);
    fig.injected = throttled;
    fig.eventsPublished = ledger.distinct;
    fig.eventsRecorded = sumRecorded(results);
    fig.duplicateSends = duplicateSends(sandbox, results);
    fig.notes.push(
      `injected = SendEmail calls refused with 429 (each retried by its lifecycle); ${SENDS} sends at MaxSendRate ${RATE}/s: all delivered in ${(elapsed / 1000).toFixed(1)} s; 429s (retried) ${throttled}; ` +
        `peak accepted in any 1-s window ${peak1s} (bucket allows ${2 * RATE}); sustained ${sustained.toFixed(2)}/s`,
    );
    expect(ledger.undelivered, describeUndelivered(ledger.undelivered)).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
});
