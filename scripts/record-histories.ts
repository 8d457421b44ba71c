/**
 * Records workflow histories of every lifecycle path into test/replay/histories/<label>/, for the
 * replay suite (test/replay.test.ts): a workflow change that cannot replay them fails CI.
 *
 *   npm run replay:record -- v2      # records with the code in this checkout
 *
 * Runs the real product (embedded dev server on free ports, sandbox, webhook, worker) with
 * short policy durations, drives each path, waits for it to close (or cancels it), then saves
 * each workflow's history as JSON (the format `Worker.runReplayHistories` reads).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pino from 'pino';
import type { WorkflowHandle } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { startStack, throwawayStackConfig } from '../src/stack';
import { signedSesNotification } from '../bench/sns';
import { freePorts, resolveTemporalCli } from '../src/temporal-cli';
import { repairUpdate } from '../src/definitions';

const label = process.argv[2] ?? 'current';
const outDir = path.join(__dirname, '..', 'test', 'replay', 'histories', label);

async function main(): Promise<void> {
  const { config, remove } = await throwawayStackConfig('record', { CALLBACK_SECRET: 'record-histories-secret-0123456789', CALLBACK_ALLOWED_HOSTS: '127.0.0.1' });
  const [callbackPort] = await freePorts(1);
  // A callback receiver (the app side of the callback path).
  const received: string[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(callbackPort, '127.0.0.1', r));
  const stack = await startStack({ config, logger: pino({ level: 'warn' }), sandbox: { maxSendRate: 100, sns: { retryDelayMs: 200 } } });
  const run = Date.now().toString(36);
  const fast = { deliveryDeadline: '4s', complaintWindow: '1s', resendBackoff: '1s', ambiguousSendWait: '2s', sendTimeout: '3s' };
  const handles: { name: string; id: string; handle: () => WorkflowHandle }[] = [];
  const send = async (name: string, to: string, extra: Record<string, unknown> = {}, policy: Record<string, unknown> = {}) => {
    const [local, domain] = to.split('@') as [string, string];
    const e = await stack.lc.sendTracked({ from: 'app@example.com', to: [`${local}+${name}-${run}@${domain}`], subject: `replay ${name}`, text: 'x', policy: { ...fast, ...policy }, ...extra });
    handles.push({ name, id: e.id, handle: () => stack.client.workflow.getHandle(e.id) });
    return e;
  };
  try {
    const emails = await Promise.all([
      send('happy', 'success@simulator.amazonses.com'),
      send('bounce', 'bounce@simulator.amazonses.com'),
      send('complaint', 'complaint@simulator.amazonses.com'),
      send('ooto', 'ooto@simulator.amazonses.com'),
      send('suppressionlist', 'suppressionlist@simulator.amazonses.com'),
      send('delay', 'delay@sandbox.ses-lifecycle.test'),
      send('resend', 'softbounce@sandbox.ses-lifecycle.test'),
      send('deadline', 'silent@sandbox.ses-lifecycle.test'),
      send('callback', 'success@simulator.amazonses.com', { callbackUrl: `http://127.0.0.1:${callbackPort}/cb` }),
      send('multi', 'success@simulator.amazonses.com', { cc: [`bounce+multi-${run}@simulator.amazonses.com`] }),
    ]);
    // Continue-as-new: a tiny history budget and a few extra opens/clicks from the sandbox.
    const can = await send('continue-as-new', 'success@simulator.amazonses.com', {}, { maxHistoryEvents: 50, complaintWindow: '6s' });
    emails.push(can);
    const canStatus = await can.waitFor((s) => s.sesMessageIds.length > 0, { timeoutMs: 60_000 });
    for (let i = 0; i < 30; i++) {
      const at = new Date().toISOString();
      await postEvent(stack, {
        eventType: 'Open',
        mail: { timestamp: at, messageId: canStatus.sesMessageIds[0], source: 'app@example.com', destination: [canStatus.recipients[0]!.email], tags: { 'lifecycle-id': [can.id] } },
        open: { ipAddress: '192.0.2.1', timestamp: at, userAgent: `replay-${i}` },
      });
    }
    // SendEmail faults are consumed in order by the next calls: one at a time.
    stack.sandbox!.injectSendFaults([{ kind: 'throttle' }]);
    emails.push(await send('send-retry', 'success@simulator.amazonses.com'));
    await emails.at(-1)!.waitFor((s) => s.phase !== 'sending', { timeoutMs: 60_000 });
    // Ambiguous, proven: SES accepted, the connection was reset; the Send event proves it.
    stack.sandbox!.injectSendFaults([{ kind: 'accept-then-reset' }]);
    emails.push(await send('ambiguous-proven', 'success@simulator.amazonses.com'));
    await emails.at(-1)!.waitFor((s) => s.phase !== 'sending', { timeoutMs: 60_000 });
    // Ambiguous, not proven: reset before SES accepted; no Send event, resent after the wait.
    stack.sandbox!.injectSendFaults([{ kind: 'reset-before-accept' }]);
    emails.push(await send('ambiguous-resent', 'success@simulator.amazonses.com'));
    await emails.at(-1)!.waitFor((s) => s.phase !== 'sending', { timeoutMs: 60_000 });
    // A final SES refusal.
    stack.sandbox!.injectSendFaults([{ kind: 'error', code: 'MessageRejected' }]);
    emails.push(await send('send-failed', 'success@simulator.amazonses.com'));
    // Rule 13: the Delivery is lost on the way (sandbox chaos) and repaired from insights at the
    // deadline; and an on-demand repair (the `repair` update) of a lifecycle whose Bounce was lost.
    const lostTo = (name: string, local: string) => `${local}+${name}-${run}@simulator.amazonses.com`;
    stack.sandbox!.dropDeliveries([
      { recipients: [lostTo('repair-deadline', 'success')], eventTypes: ['Delivery'] },
      { recipients: [lostTo('repair-on-demand', 'bounce')], eventTypes: ['Bounce'] },
    ]);
    emails.push(await send('repair-deadline', 'success@simulator.amazonses.com'));
    const onDemand = await send('repair-on-demand', 'bounce@simulator.amazonses.com', {}, { deliveryDeadline: '8s' });
    emails.push(onDemand);
    await onDemand.waitFor((s) => (s.eventCounts.Send ?? 0) > 0, { timeoutMs: 60_000 });
    await stack.client.workflow.getHandle(onDemand.id).executeUpdate(repairUpdate);
    const cancel = await send('cancel', 'silent@sandbox.ses-lifecycle.test', {}, { deliveryDeadline: '60s' });
    await new Promise((r) => setTimeout(r, 1500));
    await stack.client.workflow.getHandle(cancel.id).cancel();
    await Promise.all(emails.map((e) => e.result().catch(() => undefined)));
    await stack.client.workflow.getHandle(cancel.id).result().catch(() => undefined);
    // An orphan: a Bounce for an SES message no lifecycle sent.
    const orphanId = await recordOrphan(stack.webhookUrl, stack);
    if (orphanId) handles.push({ name: 'orphan', id: orphanId, handle: () => stack.client.workflow.getHandle(orphanId) });
    mkdirSync(outDir, { recursive: true });
    const cli = (await resolveTemporalCli({})).path;
    // `temporal workflow show --output json` writes the standard history JSON (enum names, base64 payloads).
    const show = (workflowId: string, runId?: string): string =>
      execFileSync(cli, ['workflow', 'show', '--address', stack.temporalAddress, '--namespace', stack.namespace, '--workflow-id', workflowId, ...(runId ? ['--run-id', runId] : []), '--output', 'json'], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
    for (const h of handles) {
      const json = show(h.id);
      writeFileSync(path.join(outDir, `${h.name}.json`), json);
      console.log(`${h.name}: ${(JSON.parse(json) as { events: unknown[] }).events.length} events`);
    }
    // Continue-as-new: also save the runs before the last one (their histories end in ContinuedAsNew).
    const canId = handles.find((h) => h.name === 'continue-as-new')!.id;
    let n = 0;
    for await (const wf of stack.client.workflow.list({ query: `WorkflowId = "${canId}"` })) {
      writeFileSync(path.join(outDir, `continue-as-new-run-${++n}.json`), show(canId, wf.runId));
    }
    console.log(`continue-as-new runs saved: ${n}`);
  } finally {
    await stack.stop();
    receiver.close();
    remove();
  }
  console.log(`callbacks received: ${received.length}; histories in ${outDir}`);
}

/** Publishes a signed Bounce for an unknown SES message through the sandbox and returns the orphan id. */
async function recordOrphan(webhookUrl: string, stack: Awaited<ReturnType<typeof startStack>>): Promise<string | undefined> {
  const sesId = `0100019replay${Date.now()}-orphan`;
  const event = {
    eventType: 'Bounce',
    mail: { timestamp: new Date().toISOString(), messageId: sesId, source: 'app@example.com', destination: ['gone@example.com'], tags: {} },
    bounce: { bounceType: 'Permanent', bounceSubType: 'General', bouncedRecipients: [{ emailAddress: 'gone@example.com' }], timestamp: new Date().toISOString(), feedbackId: `fb-${Date.now()}` },
  };
  if (!(await postEvent(stack, event, webhookUrl))) return undefined;
  // Orphans stay open for their idle timeout (48 h): save the history of the open run.
  await new Promise((r) => setTimeout(r, 2000));
  return `orphan-${sesId}`;
}

/** Posts one SES event as a signed SNS notification to the webhook; true on 200. */
async function postEvent(stack: Awaited<ReturnType<typeof startStack>>, event: object, webhookUrl = stack.webhookUrl): Promise<boolean> {
  const { body, headers } = signedSesNotification(stack.sandbox!, stack.topicArn!, event);
  const res = await fetch(webhookUrl, { method: 'POST', headers, body });
  if (res.status !== 200) console.error(`event post answered ${res.status}: ${await res.text()}`);
  return res.status === 200;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
