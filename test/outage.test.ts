/**
 * Temporal stopped while SES events are being delivered: the webhook answers 5xx (nothing
 * recorded, so SNS must retry), the sandbox's SNS retries get the events in once Temporal is
 * back (same port, same SQLite file), and the ledger shows nothing lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config';
import { SEARCH_ATTRIBUTES } from '../src/definitions';
import { startStack, type RunningStack } from '../src/stack';
import { freePorts, startDevServer, type DevServer } from '../src/temporal-cli';
import { quietRuntime } from './helpers/stack';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-outage-'));
let server: DevServer | undefined;
let stack: RunningStack | undefined;
afterAll(async () => {
  await stack?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('Temporal down during delivery: webhook answers 5xx, SNS retries deliver everything after restart', async () => {
  quietRuntime();
  const [port] = await freePorts(1);
  const start = () =>
    startDevServer({ cliPath: inject('temporalCliPath'), dbFilename: path.join(dir, 'temporal.sqlite'), port: port!, namespace: 'default', searchAttributes: SEARCH_ATTRIBUTES });
  server = await start();
  stack = await startStack({
    config: loadConfig({ LOG_LEVEL: 'silent', SES_CONFIGURATION_SET: 'outage' }),
    temporal: { address: server.address, namespace: 'default' },
    taskQueue: 'outage',
    webhookPort: 0,
    // Events leave the sandbox 2 s after acceptance, so they meet a stopped Temporal.
    sandbox: { port: 0, httpsPort: 0, eventDelayMs: 2_000, sns: { retries: 12, retryDelayMs: 1_000, timeoutMs: 15_000 } },
    workflowBundle: { codePath: inject('workflowBundlePath') },
    logger: pino({ level: 'silent' }),
  });
  const sandbox = stack.sandbox!;
  const policy = { deliveryDeadline: '25s', complaintWindow: '1s' };
  const emails = await Promise.all(
    ['success', 'bounce', 'complaint'].map((local) =>
      stack!.lc.sendTracked({ from: 'app@example.com', to: [`${local}+outage@simulator.amazonses.com`], subject: local, text: 'x', policy }),
    ),
  );
  await expect.poll(() => sandbox.sentMessages().length, { timeout: 15_000 }).toBe(3);

  await server.stop(); // Temporal down before the first event is published
  await expect
    .poll(() => sandbox.ledger().filter((e) => e.deliveries.some((d) => (d.statusCode ?? 0) >= 500)).length, { timeout: 30_000, interval: 200 })
    .toBeGreaterThan(0);
  const refused = sandbox.ledger().filter((e) => e.deliveries.some((d) => (d.statusCode ?? 0) >= 500));
  expect(refused.every((e) => e.deliveries.every((d) => d.statusCode === undefined || d.statusCode >= 500 || d.statusCode < 300))).toBe(true);

  server = await start(); // same port, same database: lifecycles survive
  const finals = await Promise.all(emails.map((e) => e.result()));
  expect(finals.map((f) => f.recipients[0]!.status)).toEqual(['delivered', 'bounced', 'complained']);

  await sandbox.waitForIdle(30_000);
  const ledger = sandbox.ledger().filter((e) => e.type === 'Notification');
  expect(ledger.filter((e) => e.finalStatus !== 'delivered')).toEqual([]);
  const recorded = finals.reduce((n, f) => n + f.eventsRecorded, 0);
  expect(recorded).toBe(new Set(ledger.map((e) => e.snsMessageId)).size);
  console.log(`outage: ${refused.length} notifications were refused with 5xx while Temporal was down; all ${ledger.length} delivered after restart, 0 lost`);
});
