/**
 * Model-based test through the real workflow: fast-check generates SES event sets for 1-5
 * recipients (every type, both publishing shapes, duplicates, any interleaving), plays them
 * through the real webhook with real SNS signatures while follow-ups are slow (the sandbox
 * answers PutSuppressedDestination late), and checks that the workflow's state equals the pure
 * reducer's on the same set, and that every hard bounce or complaint is suppressed while the
 * lifecycle is still open (within the stall budget of its event, not at close).
 */
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config';
import { statusQuery, type LifecycleStatus } from '../src/definitions';
import { EventSet, initialFacts, summarize, type SesEvent } from '../src/lifecycle';
import { parseSesEventText } from '../src/ses-events';
import { startStack, type RunningStack } from '../src/stack';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';
import { HANG_GUARD_MS, stallBudget, waitWithProgress } from './helpers/wait';

let stack: RunningStack;
beforeAll(async () => {
  quietRuntime();
  stack = await startStack({
    config: loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: `model-${Date.now()}` }),
    temporal: { address: getTestAddress(), namespace: getTestNamespace() },
    taskQueue: uniqueTaskQueue('model'),
    webhookPort: 0,
    // Slow follow-ups: every suppression takes 400 ms to answer.
    sandbox: { port: 0, httpsPort: 0, maxSendRate: 100, sns: { retryDelayMs: 200 }, suppressionDelayMs: 400 },
    workflowBundle: { codePath: inject('workflowBundlePath') },
    logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
  });
});
afterAll(async () => {
  await stack?.stop();
});

type Kind = 'Send' | 'Delivery' | 'DeliveryDelay' | 'BounceHard' | 'BounceOoto' | 'BounceSoft' | 'BounceUndetermined' | 'Complaint' | 'Open' | 'Click' | 'Reject' | 'RenderingFailure' | 'Subscription';
interface Gen {
  kind: Kind;
  who: number[];
  offsetMs: number;
  identityShape: boolean;
  copies: number;
}

const genArb = (n: number): fc.Arbitrary<Gen> =>
  fc.record({
    kind: fc.constantFrom<Kind>('Send', 'Delivery', 'Delivery', 'DeliveryDelay', 'BounceHard', 'BounceOoto', 'BounceSoft', 'BounceUndetermined', 'Complaint', 'Open', 'Click', 'Reject', 'RenderingFailure', 'Subscription'),
    who: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { minLength: 1, maxLength: n }),
    offsetMs: fc.integer({ min: 0, max: 5_000 }),
    identityShape: fc.boolean(),
    copies: fc.integer({ min: 1, max: 2 }),
  });

/** SES JSON for one generated event (event publishing with our tag, or identity-notification shape). */
function json(g: Gen, sesId: string, lifecycleId: string, recipients: string[], base: number, i: number): Record<string, unknown> {
  const at = new Date(base + g.offsetMs).toISOString();
  const who = g.who.map((k) => recipients[k]!);
  const rcpts = who.map((emailAddress) => ({ emailAddress }));
  const identity = g.identityShape && (g.kind === 'Delivery' || g.kind.startsWith('Bounce') || g.kind === 'Complaint');
  const mail = identity
    ? { timestamp: new Date(base).toISOString(), source: 'app@example.com', messageId: sesId, destination: recipients }
    : { timestamp: new Date(base).toISOString(), source: 'app@example.com', messageId: sesId, destination: recipients, tags: { 'lifecycle-id': [lifecycleId] } };
  const head = (t: string) => (identity ? { notificationType: t, mail } : { eventType: t, mail });
  const bounce = (bounceType: string, bounceSubType: string) => ({ ...head('Bounce'), bounce: { bounceType, bounceSubType, bouncedRecipients: rcpts.map((r) => ({ ...r, diagnosticCode: 'smtp; 550 5.1.1 user unknown' })), timestamp: at, feedbackId: `fb-${i}-${bounceType}` } });
  switch (g.kind) {
    case 'Send':
      return { eventType: 'Send', mail: { ...mail, tags: { 'lifecycle-id': [lifecycleId] } }, send: {} };
    case 'Delivery':
      return { ...head('Delivery'), delivery: { timestamp: at, recipients: who, processingTimeMillis: 10, smtpResponse: '250 ok' } };
    case 'DeliveryDelay':
      return { eventType: 'DeliveryDelay', mail, deliveryDelay: { timestamp: at, delayType: 'MailboxFull', delayedRecipients: rcpts } };
    case 'BounceHard':
      return bounce('Permanent', 'General');
    case 'BounceOoto':
      return bounce('Transient', 'General');
    case 'BounceSoft':
      return bounce('Transient', 'MailboxFull');
    case 'BounceUndetermined':
      return bounce('Undetermined', 'Undetermined');
    case 'Complaint':
      return { ...head('Complaint'), complaint: { complainedRecipients: rcpts, timestamp: at, feedbackId: `c-${i}`, complaintFeedbackType: 'abuse' } };
    case 'Open':
      return { eventType: 'Open', mail, open: { timestamp: at, ipAddress: '192.0.2.1', userAgent: `ua-${i}` } };
    case 'Click':
      return { eventType: 'Click', mail, click: { timestamp: at, ipAddress: '192.0.2.1', userAgent: `ua-${i}`, link: 'https://example.com/', linkTags: {} } };
    case 'Reject':
      return { eventType: 'Reject', mail, reject: { reason: 'Bad content' } };
    case 'RenderingFailure':
      return { eventType: 'Rendering Failure', mail, failure: { errorMessage: 'Attribute missing', templateName: 'T' } };
    case 'Subscription':
      return { eventType: 'Subscription', mail, subscription: { contactList: 'L', timestamp: at, source: 'UnsubscribeHeader', newTopicPreferences: {}, oldTopicPreferences: {} } };
  }
}

let seq = 0;
async function post(message: Record<string, unknown>): Promise<number> {
  seq += 1;
  const signed = stack.sandbox!.signMessage({
    Type: 'Notification',
    MessageId: `model-${Date.now()}-${seq}`,
    TopicArn: stack.topicArn!,
    Subject: 'Amazon SES Email Event Notification',
    Message: JSON.stringify(message),
    Timestamp: new Date().toISOString(),
  } as never);
  const res = await fetch(stack.webhookUrl, { method: 'POST', headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' }, body: JSON.stringify(signed) });
  await res.arrayBuffer();
  return res.status;
}

const view = (s: Pick<LifecycleStatus, 'recipients'>) =>
  s.recipients.map((r) => ({ email: r.email, status: r.status, bounceType: r.bounceType, bounceSubType: r.bounceSubType, autoReplies: r.autoReplies, opens: r.opens, clicks: r.clicks }));

let run = 0;
it('the workflow agrees with the pure reducer on generated event sets, and suppresses while open', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 5 }).chain((n) => fc.tuple(fc.constant(n), fc.array(genArb(n), { minLength: 1, maxLength: 10 }), fc.array(fc.integer(), { minLength: 20, maxLength: 20 }))),
      async ([n, gens, order]) => {
        run += 1;
        const recipients = Array.from({ length: n }, (_, i) => `silent+m${run}x${i}.${Date.now() % 1e6}@sandbox.ses-lifecycle.test`);
        const email = await stack.lc.sendTracked({ from: 'app@example.com', to: recipients, subject: `model ${run}`, text: 'x', policy: { deliveryDeadline: '300s', complaintWindow: '300s' } });
        const sent = await email.waitFor((s) => s.attempts.length > 0 && s.attempts.every((a) => a.sesMessageId !== undefined), { timeoutMs: stallBudget(0) });
        const sesId = sent.attempts[0]!.sesMessageId!;
        // Identity notifications carry no lifecycle id: the webhook finds the lifecycle in visibility.
        await waitWithProgress('the SES message id in visibility', {
          done: async () => {
            for await (const _ of stack.client.workflow.list({ query: `SesMessageIds = "${sesId}"` })) return true;
            return false;
          },
          progress: () => 0,
          stallMs: stallBudget(0),
        });
        const base = Date.now();
        const messages = gens.map((g, i) => json(g, sesId, email.id, recipients, base, i));
        const parsed: SesEvent[] = messages.map((m) => {
          const r = parseSesEventText(JSON.stringify(m));
          if (r.kind !== 'event') throw new Error(`generator produced a non-event: ${JSON.stringify(m)}`);
          return r.event;
        });
        // Duplicates, then any interleaving.
        const plays = gens.flatMap((g, i) => Array.from({ length: g.copies }, () => i));
        const keyed = plays.map((p, k) => ({ p, key: order[k % order.length]! + k * 7919 }));
        keyed.sort((a, b) => a.key - b.key);
        for (let k = 0; k < keyed.length; k += 4) {
          const statuses = await Promise.all(keyed.slice(k, k + 4).map(({ p }) => post(messages[p]!)));
          expect(statuses.every((st) => st === 200), `webhook answers ${statuses.join(',')}`).toBe(true);
        }
        const unique = new EventSet(parsed);
        let s: LifecycleStatus = await email.status();
        await waitWithProgress('the lifecycle to record every event', {
          done: async () => {
            s = await email.status();
            return s.eventsRecorded === unique.size;
          },
          progress: () => s.eventsRecorded,
          stallMs: stallBudget(0),
        });
        const facts = initialFacts(recipients);
        facts.attempts = s.attempts;
        const expected = summarize(unique, facts);
        expect(view(s)).toEqual(view(expected));
        // Rule 5: every complaint and hard bounce suppressed while the lifecycle is open.
        const must = expected.recipients.filter((r) => r.status === 'complained' || (r.status === 'bounced' && r.bounceKind === 'hard')).map((r) => r.email);
        await waitWithProgress(`suppression of ${must.join(', ') || 'nobody'}`, {
          done: async () => {
            s = await stack.client.workflow.getHandle(email.id).query(statusQuery);
            return must.every((m) => s.followUps.some((f) => f.kind === 'suppressed' && f.detail.startsWith(`${m} `)));
          },
          progress: () => s.followUps.length,
          stallMs: stallBudget(0),
        });
        expect(s.phase).not.toBe('completed');
        await stack.client.workflow.getHandle(email.id).cancel();
      },
    ),
    { numRuns: 25, seed: 20_261_201, endOnFailure: true },
  );
}, HANG_GUARD_MS);

it('a burst of opens through the webhook shares signals: every open counted, far fewer signals than opens', async () => {
  const to = `silent+burst${Date.now() % 1e6}@sandbox.ses-lifecycle.test`;
  const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'burst', text: 'x', policy: { deliveryDeadline: '300s', complaintWindow: '300s' } });
  const sent = await email.waitFor((s) => s.attempts.some((a) => a.sesMessageId !== undefined), { timeoutMs: stallBudget(0) });
  const sesId = sent.attempts[0]!.sesMessageId!;
  const base = Date.now();
  const OPENS = 60;
  const statuses = await Promise.all(
    Array.from({ length: OPENS }, (_, i) =>
      post({ eventType: 'Open', mail: { timestamp: new Date(base).toISOString(), source: 'app@example.com', messageId: sesId, destination: [to], tags: { 'lifecycle-id': [email.id] } }, open: { timestamp: new Date(base + i).toISOString(), ipAddress: '192.0.2.1', userAgent: `burst-${i}` } }),
    ),
  );
  expect(statuses.every((st) => st === 200)).toBe(true);
  const s = await email.waitFor((x) => (x.engagement?.opens ?? 0) === OPENS, { timeoutMs: stallBudget(0) });
  expect(s.recipients[0]).toMatchObject({ status: 'delivered', opens: OPENS });
  const history = await stack.client.workflow.getHandle(email.id).fetchHistory();
  const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
  console.log(`[burst] ${OPENS} opens in ${signals} signals`);
  expect(signals).toBeLessThan(OPENS / 2);
  await stack.client.workflow.getHandle(email.id).cancel();
}, HANG_GUARD_MS);
