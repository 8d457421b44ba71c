/**
 * Fault: duplicate storm and reorder storm. The same mix of emails to every simulator address
 * runs twice: once calm, once with the sandbox's chaos mode (every notification delivered twice
 * with probability 0.5, each message's events published in shuffled order), over more than a
 * thousand SES events. Rule 1 and 3: the final per-recipient states must be identical, and the
 * ledger must show every published event recorded exactly once.
 */
import { afterAll, expect, it, vi } from 'vitest';
import type { LifecycleResult } from '../../src/definitions';
import type { TrackedEmail } from '../../src/client';
import {
  ADDRESS_KINDS,
  describeUndelivered,
  duplicateSends,
  EXPECTED,
  ledgerFigures,
  outcomeOf,
  policyBoundMs,
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

const PER_KIND = 55; // 8 kinds × 55 = 440 emails, ≈ 1 100 SES events per run
const MIX = Array.from({ length: PER_KIND }, () => ADDRESS_KINDS).flat();
// Reordered events of one message are spread over a few hundred ms; the resend backoff must be
// longer than that, or an out-of-office Bounce seen before its Delivery would look soft.
const POLICY = { deliveryDeadline: '10s', complaintWindow: '1s', resendBackoff: '2s' };

const stacks: FaultStack[] = [];
afterAll(async () => {
  for (const s of stacks) await s.stop();
});

interface Run {
  results: LifecycleResult[];
  outcomes: Record<string, unknown>[];
  ms: number;
}

async function sendMix(stack: FaultStack, label: string): Promise<Run> {
  const started = Date.now();
  const emails: TrackedEmail[] = [];
  // Start in chunks so the client does not open hundreds of RPCs at once.
  for (let i = 0; i < MIX.length; i += 50) {
    emails.push(
      ...(await Promise.all(
        MIX.slice(i, i + 50).map((kind, j) =>
          stack.lc.sendTracked({ from: 'app@example.com', to: [simAddress(kind, `${label}-${i + j}`)], subject: `${kind} ${i + j}`, text: 'x', policy: POLICY }),
        ),
      )),
    );
  }
  const results = await resultsWithProgress(stack.client, emails, policyBoundMs(POLICY));
  return { results, outcomes: results.map(outcomeOf), ms: Date.now() - started };
}

let calm: Run | undefined;

it(`calm run: ${MIX.length} emails to every simulator address reach their documented outcomes`, async () => {
  await withFigure(`calm baseline (${MIX.length} emails, all simulator addresses)`, async (fig) => {
    const stack = await startFaultStack({ name: 'faults-calm', sandbox: { maxSendRate: 500, sns: { retryDelayMs: 200 } } });
    stacks.push(stack);
    const run = await sendMix(stack, `calm${Date.now()}`);
    MIX.forEach((kind, i) => expect(run.results[i]!.recipients[0], `${kind} #${i}`).toMatchObject(EXPECTED[kind]));
    await sandboxSettled(stack.sandbox!);
    const ledger = ledgerFigures(stack.sandbox!);
    fig.eventsPublished = ledger.distinct;
    fig.eventsRecorded = sumRecorded(run.results);
    fig.duplicateSends = duplicateSends(stack.sandbox!, run.results);
    fig.notes.push(`${MIX.length} emails, ${ledger.distinct} events, ${(run.ms / 1000).toFixed(1)} s`);
    expect(ledger.undelivered, describeUndelivered(ledger.undelivered)).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
    calm = run;
  });
});

it(`duplicate + reorder storm: the same ${MIX.length} emails end in states identical to the calm run`, async () => {
  await withFigure(`duplicate storm (p=0.5) + reorder storm (${MIX.length} emails)`, async (fig) => {
    expect(calm, 'the calm run must pass first').toBeDefined();
    const stack = await startFaultStack({
      name: 'faults-chaos',
      sandbox: { maxSendRate: 500, sns: { retryDelayMs: 200 }, chaos: { duplicateProbability: 0.5, reorder: true, seed: 20_26 } },
    });
    stacks.push(stack);
    const run = await sendMix(stack, `chaos${Date.now()}`);
    await sandboxSettled(stack.sandbox!);
    const ledger = ledgerFigures(stack.sandbox!);
    fig.injected = ledger.duplicateCopies + ledger.distinct; // every event reordered, plus the extra copies
    fig.eventsPublished = ledger.distinct;
    fig.eventsRecorded = sumRecorded(run.results);
    fig.duplicateSends = duplicateSends(stack.sandbox!, run.results);
    const differing = run.outcomes.map((o, i) => ({ i, kind: MIX[i], calm: calm!.outcomes[i], chaos: o })).filter((d) => JSON.stringify(d.calm) !== JSON.stringify(d.chaos));
    fig.notes.push(
      `${MIX.length} emails, ${ledger.distinct} events reordered, ${ledger.duplicateCopies} duplicate deliveries (${ledger.notifications.length} notifications); ` +
        `${differing.length} final states differ from calm; ${(run.ms / 1000).toFixed(1)} s`,
    );
    expect(differing.slice(0, 5)).toEqual([]);
    expect(ledger.duplicateCopies).toBeGreaterThan(ledger.distinct / 3);
    expect(ledger.distinct).toBeGreaterThan(1_000);
    expect(ledger.undelivered, describeUndelivered(ledger.undelivered)).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
});
