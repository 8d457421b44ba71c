/**
 * Repair from SES message insights (rule 13), end to end on the real stack: the sandbox drops
 * SNS deliveries (chaos mode), the lifecycle reaches its delivery deadline without an outcome,
 * reads GetMessageInsights through the rate-limited insights worker (real SESv2 client against
 * the sandbox), and records the lost events with source `insights`. A late SNS copy of a
 * repaired event is a duplicate; `repair --since` repairs open lifecycles on demand; the
 * insights rate limit is honoured (SES's TooManyRequestsException is never hit); a repair that
 * cannot read insights never fails the lifecycle.
 */
import { GetMessageInsightsCommand, type GetMessageInsightsCommandOutput } from '@aws-sdk/client-sesv2';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config';
import { repairUpdate, statusQuery, type LifecycleStatus } from '../src/definitions';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { formatRepair, repairLifecycles, type RepairReport } from '../src/repair';
import { startStack, type RunningStack } from '../src/stack';
import { statusReport } from '../src/status-report';
import { createSesClient } from '../src/worker';
import { insightsToEvents } from '../activities';
import { EventStore, factKeys } from '../src/lifecycle';
import { parseSesEvent } from '../src/ses-events';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';
import { sandboxSettled, stallBudget, waitWithProgress } from './helpers/wait';

const execFileAsync = promisify(execFile);
let stack: RunningStack;
const run = Date.now().toString(36);
const addr = (local: string, label: string, domain = 'simulator.amazonses.com'): string => `${local}+${label}-${run}@${domain}`;

beforeAll(async () => {
  quietRuntime();
  stack = await startStack({
    config: loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: 'repair' }),
    temporal: { address: getTestAddress(), namespace: getTestNamespace() },
    taskQueue: uniqueTaskQueue('repair'),
    webhookPort: 0,
    sandbox: { port: 0, httpsPort: 0, maxSendRate: 100, eventDelayMs: 20, sns: { retryDelayMs: 200 } },
    workflowBundle: { codePath: inject('workflowBundlePath') },
    logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
  });
});
afterAll(async () => {
  await stack?.stop();
});

const status = (id: string): Promise<LifecycleStatus> => stack.client.workflow.getHandle(id).query(statusQuery);

/** Waits until the lifecycle's status satisfies `pred`; progress is any change of its status. */
async function waitStatus(id: string, what: string, pred: (s: LifecycleStatus) => boolean, boundMs: number): Promise<LifecycleStatus> {
  let last: LifecycleStatus | undefined;
  await waitWithProgress(what, {
    done: async () => {
      last = await status(id);
      return pred(last);
    },
    progress: () => JSON.stringify([last?.phase, last?.status, last?.eventsRecorded, last?.followUps.length]).length + (last?.eventsRecorded ?? 0) * 1000 + (last?.followUps.length ?? 0) * 100_000,
    stallMs: () => stallBudget(boundMs),
    describe: () => JSON.stringify(last),
  });
  return last!;
}

describe('event identity across SNS and insights (rule 13)', () => {
  const sesId = '0100019aaaa-0000-000000';
  const at = '2026-12-01T10:00:00.120Z';
  const sns = (type: string, part: Record<string, unknown>, destination = ['a@example.com', 'b@example.com']) => {
    const r = parseSesEvent({ eventType: type, mail: { timestamp: at, messageId: sesId, destination, tags: { 'lifecycle-id': ['msg-x'] } }, ...part });
    if (r.kind !== 'event') throw new Error(r.reason);
    return r.event;
  };
  const insights = (events: { Timestamp: Date; Type: string; Details?: object }[], dest = 'a@example.com') => insightsToEvents(sesId, 'msg-x', { Insights: [{ Destination: dest, Events: events }] });

  it('once-per-recipient facts collapse whatever their times; repeatable facts by the second', () => {
    // A Delivery for two recipients from SNS; insights say it for one, 400 ms later.
    const delivery = sns('Delivery', { delivery: { timestamp: at, recipients: ['a@example.com', 'b@example.com'] } });
    const [fromInsights] = insights([{ Timestamp: new Date(Date.parse(at) + 400), Type: 'DELIVERY' }]);
    expect(fromInsights).toMatchObject({ type: 'Delivery', source: 'insights', recipients: ['a@example.com'], lifecycleId: 'msg-x' });
    expect(factKeys(delivery)).toContain(factKeys(fromInsights!)[0]);
    // A hard bounce: SNS has a feedback id, insights do not; the fact is the same.
    const bounce = sns('Bounce', { bounce: { bounceType: 'Permanent', bounceSubType: 'General', bouncedRecipients: [{ emailAddress: 'a@example.com', diagnosticCode: 'smtp; 550' }], timestamp: at, feedbackId: 'fb-1' } }, ['a@example.com']);
    const [ib] = insights([{ Timestamp: new Date(Date.parse(at) + 900), Type: 'BOUNCE', Details: { Bounce: { BounceType: 'PERMANENT', BounceSubType: 'General', DiagnosticCode: 'smtp; 550' } } }]);
    expect(ib).toMatchObject({ bounce: { type: 'Permanent', subType: 'General', diagnosticCodes: { 'a@example.com': 'smtp; 550' } } });
    expect(factKeys(ib!)).toEqual(factKeys(bounce));
    // A DeliveryDelay repeats: the same second collapses, another second is another fact.
    const delay = sns('DeliveryDelay', { deliveryDelay: { timestamp: at, delayType: 'TransientCommunicationFailure', delayedRecipients: [{ emailAddress: 'a@example.com' }] } }, ['a@example.com']);
    const [same, later] = insights([
      { Timestamp: new Date(Date.parse(at) + 500), Type: 'DELIVERY_DELAY' },
      { Timestamp: new Date(Date.parse(at) + 60_000), Type: 'DELIVERY_DELAY' },
    ]);
    expect(factKeys(same!)).toEqual(factKeys(delay));
    expect(factKeys(later!)).not.toEqual(factKeys(delay));
    // Engagement and unknown types are not repaired; a repaired event is derived like any other.
    expect(insights([{ Timestamp: new Date(at), Type: 'OPEN' }, { Timestamp: new Date(at), Type: 'SOMETHING_NEW' }])).toEqual([]);
    const store = new EventStore();
    expect(store.add(fromInsights!)).toBe(true);
    expect(store.events()[0]!.source).toBe('insights');
  });
});

describe('sandbox GetMessageInsights', () => {
  it('answers from the ledger in the SESv2 shape, NotFoundException for unknown ids, about 1 call/s', async () => {
    const sandbox = stack.sandbox!;
    const to = addr('bounce', 'shape');
    sandbox.dropDeliveries([{ recipients: [to] }]);
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'insights shape', text: 'x', policy: { deliveryDeadline: '1h', repairFromInsights: false } });
    const ses = createSesClient({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
    try {
      await waitWithProgress('the sandbox to drop the Send and Bounce', { done: () => sandbox.droppedEvents().filter((d) => d.recipients[0] === to).length === 2, progress: () => sandbox.droppedEvents().length, stallMs: () => stallBudget(0) });
      const id = sandbox.sentMessages().find((m) => m.destination.to[0] === to)!.sesMessageId;
      let out: GetMessageInsightsCommandOutput | undefined;
      let throttled = 0;
      for (let tries = 0; !out; tries++) {
        try {
          out = await ses.send(new GetMessageInsightsCommand({ MessageId: id }));
        } catch (err) {
          expect((err as Error).name).toBe('TooManyRequestsException');
          throttled += 1;
          await new Promise((r) => setTimeout(r, 1100));
        }
      }
      expect(out.MessageId).toBe(id);
      expect(out.FromEmailAddress).toBe('app@example.com');
      expect(out.Subject).toBe('insights shape');
      expect(out.EmailTags).toContainEqual({ Name: 'lifecycle-id', Value: email.id });
      expect(out.Insights).toHaveLength(1);
      const insight = out.Insights![0]!;
      expect(insight.Destination).toBe(to);
      expect(insight.Events!.map((e) => e.Type)).toEqual(['SEND', 'BOUNCE']);
      expect(insight.Events![1]!.Timestamp).toBeInstanceOf(Date);
      expect(insight.Events![1]!.Details).toEqual({ Bounce: { BounceType: 'PERMANENT', BounceSubType: 'General', DiagnosticCode: 'smtp; 550 5.1.1 user unknown' } });
      // The next call within the same second is refused like SES refuses it.
      const before = sandbox.insightsStats();
      await expect(ses.send(new GetMessageInsightsCommand({ MessageId: id }))).rejects.toMatchObject({ name: 'TooManyRequestsException' });
      expect(sandbox.insightsStats().throttled).toBe(before.throttled + 1);
      await new Promise((r) => setTimeout(r, 1100));
      await expect(ses.send(new GetMessageInsightsCommand({ MessageId: '0100-unknown-000000' }))).rejects.toMatchObject({ name: 'NotFoundException' });
      expect(throttled).toBeGreaterThanOrEqual(0);
    } finally {
      sandbox.dropDeliveries([]);
      ses.destroy();
      await stack.client.workflow.getHandle(email.id).cancel();
    }
  });
});

describe('repair from insights (rule 13)', () => {
  it('SNS deliveries lost for a bounce and a delivery: at the deadline the outcomes are repaired from insights, source shown', async () => {
    const sandbox = stack.sandbox!;
    const bounce = addr('bounce', 'lost');
    const success = addr('success', 'lost');
    sandbox.dropDeliveries([{ recipients: [bounce, success], eventTypes: ['Bounce', 'Delivery'] }]);
    const policy = { deliveryDeadline: '3s', complaintWindow: '1s' };
    const [b, d] = await Promise.all([
      stack.lc.sendTracked({ from: 'app@example.com', to: [bounce], subject: 'lost bounce', text: 'x', policy }),
      stack.lc.sendTracked({ from: 'app@example.com', to: [success], subject: 'lost delivery', text: 'x', policy }),
    ]);
    const [rb, rd] = await Promise.all([b.result(), d.result()]);
    sandbox.dropDeliveries([]);
    expect(sandbox.droppedEvents().filter((x) => [bounce, success].includes(x.recipients[0]!)).map((x) => x.eventType).sort()).toEqual(['Bounce', 'Delivery']);

    expect(rb.recipients[0]).toMatchObject({ email: bounce, status: 'bounced', bounceKind: 'hard', bounceType: 'Permanent', bounceSubType: 'General', diagnosticCode: 'smtp; 550 5.1.1 user unknown', outcomeSource: 'insights' });
    expect(rb.eventCounts).toEqual({ Send: 1, Bounce: 1 });
    expect(rb.repairedEvents).toBe(1);
    expect(rb.followUps.map((f) => f.kind)).toContain('repair');
    expect(rb.followUps.find((f) => f.kind === 'repair')!.detail).toMatch(/^deadline: GetMessageInsights for 1 SES message\(s\): recorded Bounce 1; 1 already known/);
    // The repaired hard bounce is suppressed like any other (rule 5), and nobody is unconfirmed.
    expect(rb.followUps.some((f) => f.kind === 'suppressed' && f.detail.startsWith(bounce))).toBe(true);
    expect(rb.followUps.some((f) => f.kind === 'deadline')).toBe(false);

    expect(rd.recipients[0]).toMatchObject({ email: success, status: 'delivered', outcomeSource: 'insights' });
    expect(rd.status).toBe('delivered');
    expect(rd.eventCounts).toEqual({ Send: 1, Delivery: 1 });
    expect(rd.latestEvents.find((e) => e.type === 'Delivery')).toMatchObject({ source: 'insights' });
    const text = statusReport(rd);
    expect(text).toContain('from SES message insights (the SNS event never arrived)');
    expect(text).toContain('1 from SES message insights (source insights)');
  });

  it('a late SNS copy of a repaired event is a duplicate; insights of events SNS delivered are already known', async () => {
    const sandbox = stack.sandbox!;
    const late = addr('success', 'late');
    sandbox.dropDeliveries([{ recipients: [late], eventTypes: ['Delivery'] }]);
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [late], subject: 'late copy', text: 'x', policy: { deliveryDeadline: '2s', complaintWindow: '10m' } });
    const repaired = await waitStatus(email.id, 'the deadline repair', (s) => (s.repairedEvents ?? 0) > 0, 2_000);
    sandbox.dropDeliveries([]);
    expect(repaired.recipients[0]!.status).toBe('delivered');
    const ledgerBefore = sandbox.ledger().length;
    expect(sandbox.redeliverDropped()).toBeGreaterThanOrEqual(1);
    await sandboxSettled(sandbox);
    const copies = sandbox.ledger().slice(ledgerBefore).filter((e) => e.eventType === 'Delivery' && e.recipients.includes(late));
    expect(copies.map((c) => c.finalStatus)).toEqual(['delivered']); // the webhook took it (2xx)
    const after = await status(email.id);
    expect(after.eventCounts).toEqual({ Send: 1, Delivery: 1 });
    expect(after.eventsRecorded).toBe(2);
    expect(after.repairedEvents).toBe(1);

    // The other order: SNS delivered everything, then a repair finds nothing new.
    const again = await stack.client.workflow.getHandle(email.id).executeUpdate(repairUpdate);
    expect(again).toMatchObject({ lifecycleId: email.id, recorded: {}, known: 2, unavailable: [], status: 'delivered' });
    expect((await status(email.id)).eventsRecorded).toBe(2);
    await stack.client.workflow.getHandle(email.id).cancel();
  });

  it('`repair --since` repairs open lifecycles on demand and says what it recorded', async () => {
    const sandbox = stack.sandbox!;
    const since = new Date(Date.now() - 1000);
    const to = [addr('bounce', 'demand'), addr('success', 'demand')];
    sandbox.dropDeliveries([{ recipients: to, eventTypes: ['Bounce', 'Delivery'] }]);
    const emails = await Promise.all(to.map((t) => stack.lc.sendTracked({ from: 'app@example.com', to: [t], subject: 'on demand', text: 'x', policy: { deliveryDeadline: '1h', complaintWindow: '1s' } })));
    // Visibility must show them open and `sent` (the Send event arrived; nothing else will).
    const ids = new Set(emails.map((e) => e.id));
    let seen = 0;
    await waitWithProgress('the lifecycles to show as sent in visibility', {
      done: async () => {
        seen = 0;
        for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'messageLifecycle' AND ExecutionStatus = 'Running' AND EmailStatus = 'sent' AND StartTime >= '${since.toISOString()}'` })) if (ids.has(wf.workflowId)) seen += 1;
        return seen === ids.size;
      },
      progress: () => seen,
      stallMs: () => stallBudget(0),
    });
    // The command itself, against the test server (its lifecycles repair through this stack's insights worker).
    const { stdout } = await execFileAsync(process.execPath, [path.join(__dirname, '..', 'bin', 'ses-lifecycle.js'), 'repair', '--since', since.toISOString(), '--json'], {
      env: { ...process.env, TEMPORAL_ADDRESS: getTestAddress(), TEMPORAL_NAMESPACE: getTestNamespace(), LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      timeout: stallBudget(60_000),
    });
    const report = JSON.parse(stdout) as RepairReport;
    sandbox.dropDeliveries([]);
    const mine = report.repaired.filter((r) => ids.has(r.lifecycleId));
    expect(mine).toHaveLength(2);
    expect(report.failed).toEqual([]);
    const byStatus = Object.fromEntries(mine.map((r) => [r.status, r]));
    expect(byStatus.bounced).toMatchObject({ recorded: { Bounce: 1 }, known: 1 });
    expect(byStatus.delivered).toMatchObject({ recorded: { Delivery: 1 }, known: 1 });
    // A second sweep (programmatic) records nothing twice (visibility may still list them as sent).
    const second = await repairLifecycles(stack.client, { since });
    for (const r of second.repaired.filter((x) => ids.has(x.lifecycleId))) expect(r.recorded).toEqual({});
    const text = formatRepair(report);
    expect(text).toMatch(/open lifecycle\(s\) without an outcome since/);
    expect(text).toContain(`${emails[0]!.id}  bounced  recorded Bounce 1; 1 already known`);
    // Settled by the repair (the lifecycles stay open until their 1 h deadline; rule 6).
    const bounced = await waitStatus(emails[0]!.id, 'the repaired bounce to be suppressed', (s) => s.followUps.some((f) => f.kind === 'suppressed'), 0);
    expect(bounced.recipients[0]).toMatchObject({ status: 'bounced', outcomeSource: 'insights' });
    expect(bounced.phase).toBe('complaint-window');
    expect(bounced.followUps.find((f) => f.kind === 'repair')!.detail).toMatch(/^on demand: /);
    expect((await status(emails[1]!.id)).recipients[0]).toMatchObject({ status: 'delivered', outcomeSource: 'insights' });
    await Promise.all(emails.map((e) => stack.client.workflow.getHandle(e.id).cancel()));
  });

  it('the insights rate limit is honoured: many repairs at once are spaced, and a refused call is retried, never lost', async () => {
    const sandbox = stack.sandbox!;
    const n = 6;
    const to = Array.from({ length: n }, (_, i) => addr('success', `rate${i}`));
    sandbox.dropDeliveries([{ recipients: to, eventTypes: ['Delivery'] }]);
    const before = sandbox.insightsStats();
    const emails = await Promise.all(to.map((t) => stack.lc.sendTracked({ from: 'app@example.com', to: [t], subject: 'rate', text: 'x', policy: { deliveryDeadline: '2s', complaintWindow: '1s' } })));
    const results = await Promise.all(emails.map((e) => e.result()));
    sandbox.dropDeliveries([]);
    expect(results.map((r) => r.recipients[0]!.status)).toEqual(Array(n).fill('delivered'));
    expect(results.every((r) => r.repairedEvents === 1)).toBe(true);
    const after = sandbox.insightsStats();
    const throttled = after.throttled - before.throttled;
    // One answered GetMessageInsights per lifecycle; a call SES refused was retried.
    expect(after.calls - before.calls).toBe(n + throttled);
    // Unspaced, n calls at once meet n - 1 refusals (SES answers about one per second).
    expect(throttled).toBeLessThan(n / 2);
  });

  it('a repair that cannot read insights (AccessDenied, NotFound) never fails the lifecycle', async () => {
    const sandbox = stack.sandbox!;
    const denied = addr('success', 'denied');
    const unknown = addr('success', 'unknown');
    sandbox.dropDeliveries([{ recipients: [denied, unknown], eventTypes: ['Delivery'] }]);
    sandbox.injectInsightsFaults([{ kind: 'access-denied' }, { kind: 'not-found' }]);
    const policy = { deliveryDeadline: '2s', complaintWindow: '1s' };
    const a = await stack.lc.sendTracked({ from: 'app@example.com', to: [denied], subject: 'denied', text: 'x', policy });
    const ra = await a.result();
    const b = await stack.lc.sendTracked({ from: 'app@example.com', to: [unknown], subject: 'unknown', text: 'x', policy });
    const rb = await b.result();
    sandbox.dropDeliveries([]);
    for (const r of [ra, rb]) {
      expect(r.phase).toBe('completed');
      expect(r.recipients[0]!.status).toBe('unconfirmed');
      expect(r.followUps.some((f) => f.kind === 'deadline')).toBe(true);
    }
    expect(ra.followUps.find((f) => f.kind === 'repair')!.detail).toMatch(/insights unavailable: .*SesAccessDenied/);
    expect(statusReport(ra)).toMatch(/repair FAILED: /);
    expect(rb.followUps.find((f) => f.kind === 'repair')!.detail).toMatch(/insights unavailable: .*NotFoundException/);
  });
});
