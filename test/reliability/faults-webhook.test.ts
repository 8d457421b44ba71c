/**
 * Fault: the webhook is killed and restarted under load. 100 emails (success / bounce /
 * complaint) are in flight; the webhook on a fixed port is killed twice mid-stream (listening
 * stops and every open connection, busy or idle, is destroyed without an answer), stays down
 * for 1.5 s, and comes back on the same port. The sandbox's SNS retries (300 ms apart) must get
 * every event in: ledger all delivered, and the lifecycles recorded exactly the events SES
 * published (none lost, none counted twice).
 */
import { afterAll, expect, it, vi } from 'vitest';
import type { WebhookServer } from '../../src/webhook';
import { freePorts } from '../../src/temporal-cli';
import {
  describeUndelivered,
  duplicateSends,
  EXPECTED,
  ledgerFigures,
  outcomeOf,
  resultsWithProgress,
  simAddress,
  sleep,
  startFaultStack,
  startKillableWebhook,
  startPlainWebhook,
  sumRecorded,
  until,
  webhookOptionsFor,
  withFigure,
  type FaultStack,
  type KillableWebhook,
} from './helpers';
import { HANG_GUARD_MS, sandboxSettled } from '../helpers/wait';

// These scenarios take as long as the machine needs; their progress watchdogs decide failure.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

let stack: FaultStack | undefined;
let finalWebhook: WebhookServer | undefined;
let killable: KillableWebhook | undefined;
afterAll(async () => {
  await killable?.kill().catch(() => undefined);
  await finalWebhook?.close();
  await stack?.stop();
});

const KINDS = ['success', 'bounce', 'complaint'] as const;
const SENDS = 100;
const DOWN_MS = 1_500;

it(`webhook killed twice and restarted under load (${SENDS} sends): SNS retries get every event in, zero lost`, async () => {
  await withFigure(`webhook killed and restarted under load (${SENDS} sends, 2 kills)`, async (fig) => {
    const [port] = await freePorts(1);
    stack = await startFaultStack({
      name: 'faults-webhook',
      webhookPort: port!,
      // Events spread over the run (300 ms between a message's stages); SNS retries quickly and often.
      sandbox: { maxSendRate: 100, eventDelayMs: 300, sns: { retries: 40, retryDelayMs: 300, timeoutMs: 5_000 } },
    });
    const sandbox = stack.sandbox!;
    // Swap the stack's webhook for one on the same port that can be killed abruptly.
    await stack.webhook.close();
    const opts = webhookOptionsFor(stack);
    killable = await startKillableWebhook(opts, port!);

    const label = `wh${Date.now()}`;
    const kinds = Array.from({ length: SENDS }, (_, i) => KINDS[i % KINDS.length]!);
    const emails = await Promise.all(
      kinds.map((kind, i) =>
        stack!.lc.sendTracked({ from: 'app@example.com', to: [simAddress(kind, `${label}-${i}`)], subject: `${kind} ${i}`, text: 'x', policy: { deliveryDeadline: '12s', complaintWindow: '1s' } }),
      ),
    );
    const pending = resultsWithProgress(stack.client, emails, 45_000);
    pending.catch(() => undefined); // awaited below; don't let an early rejection go unhandled

    const published = () => ledgerFigures(sandbox).notifications.length;
    const atKill: number[] = [];
    for (const threshold of [40, 150]) {
      await until(`${threshold} notifications published`, () => (published() >= threshold ? true : undefined), 30_000, 20);
      atKill.push(published());
      await killable!.kill();
      killable = undefined;
      fig.injected += 1;
      await sleep(DOWN_MS);
      if (fig.injected < 2) killable = await startKillableWebhook(opts, port!);
      else finalWebhook = await startPlainWebhook(opts, port!); // the product's own entry point
    }

    const results = await pending;
    kinds.forEach((kind, i) => expect(results[i]!.recipients[0], `${kind} #${i}`).toMatchObject(EXPECTED[kind]));
    expect(results.filter((r) => r.sendError)).toEqual([]);
    expect(results.every((r, i) => outcomeOf(r).suppressedFollowUp === (kinds[i] !== 'success'))).toBe(true);

    await sandboxSettled(sandbox);
    const ledger = ledgerFigures(sandbox);
    fig.eventsPublished = ledger.distinct;
    fig.eventsRecorded = sumRecorded(results);
    fig.duplicateSends = duplicateSends(sandbox, results);
    const maxAttempts = Math.max(...ledger.notifications.map((e) => e.deliveries.length));
    fig.notes.push(
      `kills at ${atKill.join(' and ')} notifications published, ${DOWN_MS} ms down each; ${ledger.attemptsNoAnswer} attempts got no answer ` +
        `(refused/reset), ${ledger.attempts5xx} got 5xx; ${ledger.retried} notifications needed retries (max ${maxAttempts} attempts); ` +
        `${ledger.notifications.length} notifications all delivered; failed attempts by kind ${JSON.stringify(ledger.failures)}`,
    );
    expect(ledger.attemptsNoAnswer).toBeGreaterThan(0);
    expect(ledger.undelivered, describeUndelivered(ledger.undelivered)).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
});
