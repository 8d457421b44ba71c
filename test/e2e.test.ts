/**
 * End to end over real HTTP: sendTracked → SESv2 client → local SES sandbox → signed SNS posts →
 * webhook (signature verification on) → Temporal → final per-recipient state, for every
 * simulator address; then the same with chaos (duplicates and reordering) on, which must give
 * the same final states. The sandbox ledger proves nothing was lost.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config';
import type { LifecycleResult } from '../src/definitions';
import { startStack, type RunningStack } from '../src/stack';
import type { SandboxOptions } from '../src/sandbox';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';
import pino from 'pino';
import { sandboxSettled } from './helpers/wait';

const stacks: RunningStack[] = [];
afterAll(async () => {
  for (const s of stacks) await s.stop();
});

async function stackWith(sandbox: SandboxOptions): Promise<RunningStack> {
  quietRuntime();
  const config = loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: `e2e-${stacks.length}` });
  const stack = await startStack({
    config,
    temporal: { address: getTestAddress(), namespace: getTestNamespace() },
    taskQueue: uniqueTaskQueue('e2e'),
    webhookPort: 0,
    sandbox: { port: 0, httpsPort: 0, maxSendRate: 100, sns: { retryDelayMs: 200 }, ...sandbox },
    workflowBundle: { codePath: inject('workflowBundlePath') },
    logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
  });
  stacks.push(stack);
  return stack;
}

/** Address → expected final recipient status (and details). */
const CASES = [
  { local: 'success', domain: 'simulator.amazonses.com', status: 'delivered' },
  { local: 'bounce', domain: 'simulator.amazonses.com', status: 'bounced', bounceKind: 'hard' },
  { local: 'ooto', domain: 'simulator.amazonses.com', status: 'delivered', autoReplies: 1 },
  { local: 'complaint', domain: 'simulator.amazonses.com', status: 'complained' },
  { local: 'suppressionlist', domain: 'simulator.amazonses.com', status: 'bounced', bounceSubType: 'Suppressed' },
  { local: 'delay', domain: 'sandbox.ses-lifecycle.test', status: 'delivered' },
  { local: 'softbounce', domain: 'sandbox.ses-lifecycle.test', status: 'delivered', attempts: 2 },
  { local: 'silent', domain: 'sandbox.ses-lifecycle.test', status: 'unconfirmed' },
] as const;

type Outcome = Record<string, Partial<LifecycleResult['recipients'][number]>>;

async function runAll(stack: RunningStack, label: string): Promise<{ outcome: Outcome; results: LifecycleResult[] }> {
  const emails = await Promise.all(
    CASES.map((c) =>
      stack.lc.sendTracked({
        from: 'app@example.com',
        to: [`${c.local}+${label}@${c.domain}`],
        subject: `e2e ${c.local}`,
        text: 'hello',
        tags: { suite: 'e2e' },
        policy: { deliveryDeadline: '8s', complaintWindow: '1s', resendBackoff: '300ms' },
      }),
    ),
  );
  const results = await Promise.all(emails.map((e) => e.result()));
  const outcome: Outcome = {};
  results.forEach((r, i) => {
    const rec = r.recipients[0]!;
    outcome[CASES[i]!.local] = {
      status: rec.status,
      ...(rec.bounceKind ? { bounceKind: rec.bounceKind } : {}),
      ...(rec.bounceSubType ? { bounceSubType: rec.bounceSubType } : {}),
      autoReplies: rec.autoReplies,
      attempts: rec.attempts,
    };
  });
  return { outcome, results };
}

function expectOutcome(outcome: Outcome): void {
  for (const c of CASES) {
    const { local, domain: _d, ...expected } = c;
    expect(outcome[local], local).toMatchObject(expected);
  }
}

describe('end to end: sandbox SES → signed SNS → webhook → Temporal', () => {
  let calm: Outcome;

  it('every simulator address reaches its documented outcome, nothing lost', async () => {
    const stack = await stackWith({});
    const { outcome, results } = await runAll(stack, `calm${Date.now()}`);
    expectOutcome(outcome);
    calm = outcome;
    await sandboxSettled(stack.sandbox!);
    const ledger = stack.sandbox!.ledger().filter((e) => e.type === 'Notification');
    expect(ledger.length).toBeGreaterThan(10);
    expect(ledger.filter((e) => e.finalStatus !== 'delivered')).toEqual([]);
    // Every published SES event is recorded in its lifecycle exactly once.
    const recorded = results.reduce((n, r) => n + r.eventsRecorded, 0);
    expect(recorded).toBe(new Set(ledger.map((e) => e.snsMessageId)).size);
    // Hard bounces and complaints were suppressed in the SES account list.
    const bounced = results[1]!;
    expect(bounced.followUps.some((f) => f.kind === 'suppressed')).toBe(true);
  });

  it('with chaos (duplicates, reordering) the final states are the same', async () => {
    const stack = await stackWith({ chaos: { duplicateProbability: 0.5, reorder: true, seed: 7 } });
    const { outcome, results } = await runAll(stack, `chaos${Date.now()}`);
    expect(outcome).toEqual(calm);
    await sandboxSettled(stack.sandbox!);
    const ledger = stack.sandbox!.ledger().filter((e) => e.type === 'Notification');
    expect(ledger.some((e) => e.duplicate)).toBe(true);
    expect(ledger.filter((e) => e.finalStatus !== 'delivered')).toEqual([]);
    const recorded = results.reduce((n, r) => n + r.eventsRecorded, 0);
    expect(recorded).toBe(new Set(ledger.map((e) => e.snsMessageId)).size);
  });
});
