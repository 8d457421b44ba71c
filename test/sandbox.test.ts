/**
 * The local SES sandbox, exercised the way the product uses it: the real SESv2 and SNS SDK
 * clients over HTTP, and a real HTTP receiver that verifies every SNS message with
 * `sns-validator` (trusting the sandbox's CA explicitly; TLS verification stays on).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import tls from 'node:tls';
import {
  CreateConfigurationSetCommand,
  CreateConfigurationSetEventDestinationCommand,
  DeleteSuppressedDestinationCommand,
  GetAccountCommand,
  GetConfigurationSetCommand,
  GetConfigurationSetEventDestinationsCommand,
  GetSuppressedDestinationCommand,
  ListConfigurationSetsCommand,
  ListSuppressedDestinationsCommand,
  PutSuppressedDestinationCommand,
  SESv2Client,
  SendEmailCommand,
  UpdateConfigurationSetEventDestinationCommand,
  type SendEmailCommandInput,
} from '@aws-sdk/client-sesv2';
import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  PublishCommand,
  SetTopicAttributesCommand,
  SNSClient,
  SubscribeCommand,
  UnsubscribeCommand,
} from '@aws-sdk/client-sns';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildStringToSign, signSnsMessage, startSesSandbox, verifySnsSignature, type SandboxLogger, type SandboxOptions, type SesSandbox, type SnsMessage } from '../src/sandbox';
import { loadFactor, sandboxSettled } from './helpers/wait';

// sns-validator ships no types; describe the little we use.
interface SnsValidator {
  validate(msg: string | object, cb: (err: Error | null, msg?: unknown) => void): void;
}
const requireCjs = createRequire(__filename);
const MessageValidator = requireCjs('sns-validator') as new (hostPattern?: RegExp) => SnsValidator;
const validator = new MessageValidator(/^localhost:\d+$/);

function validate(body: string): Promise<void> {
  return new Promise((resolve, reject) => validator.validate(body, (err) => (err ? reject(err) : resolve())));
}

// ------------------------------------------------------------------------------------------
// Helpers

const originalCa = https.globalAgent.options.ca;
const sandboxes: SesSandbox[] = [];
const receivers: Receiver[] = [];

/** Starts a sandbox that the global https agent (used by sns-validator) trusts. */
async function sandbox(opts: SandboxOptions = {}): Promise<SesSandbox> {
  const sb = await startSesSandbox({ eventDelayMs: 5, sns: { retryDelayMs: 50, timeoutMs: 2000 }, ...opts });
  sandboxes.push(sb);
  const current = https.globalAgent.options.ca;
  const list = Array.isArray(current) ? current : current ? [current] : [...tls.rootCertificates];
  https.globalAgent.options.ca = [...list, sb.caCertPem];
  return sb;
}

function ses(sb: SesSandbox): SESv2Client {
  return new SESv2Client({ region: sb.region, endpoint: sb.endpoint, credentials: sb.credentials, maxAttempts: 1 });
}

function sns(sb: SesSandbox): SNSClient {
  return new SNSClient({ region: sb.region, endpoint: sb.endpoint, credentials: sb.credentials, maxAttempts: 1 });
}

interface Post {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  status: number;
}

/** What the receiver answers: a status code, or 'hang' (never answer). */
type Behaviour = (post: Omit<Post, 'status'>, attemptOfThisMessage: number) => number | 'hang';

/** A tiny SNS subscriber: records posts, confirms subscriptions through SubscribeURL. */
class Receiver {
  readonly posts: Post[] = [];
  readonly errors: Error[] = [];
  private server!: http.Server;
  private readonly seen = new Map<string, number>();
  url = '';

  constructor(
    private readonly sb: SesSandbox,
    private readonly behaviour: Behaviour = () => 200,
  ) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const id = String(req.headers['x-amz-sns-message-id']);
        const n = (this.seen.get(id) ?? 0) + 1;
        this.seen.set(id, n);
        const post = { path: req.url ?? '', headers: req.headers, body };
        const answer = this.behaviour(post, n);
        this.posts.push({ ...post, status: answer === 'hang' ? 0 : answer });
        if (answer === 'hang') return;
        res.statusCode = answer;
        res.end();
        if (req.headers['x-amz-sns-message-type'] === 'SubscriptionConfirmation' && answer < 300) {
          this.confirm(body).catch((err: Error) => this.errors.push(err));
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    receivers.push(this);
    return this;
  }

  private async confirm(body: string): Promise<void> {
    await validate(body);
    const msg = JSON.parse(body) as SnsMessage;
    const res = await httpsGet(msg.SubscribeURL ?? '', this.sb.caCertPem);
    if (res.status !== 200) throw new Error(`confirmation failed: ${res.status} ${res.body}`);
  }

  /** Parsed notification envelopes received on `path` (all, including retries/duplicates). */
  notifications(path?: string): SnsMessage[] {
    return this.posts
      .filter((p) => p.headers['x-amz-sns-message-type'] === 'Notification' && (path === undefined || p.path === path))
      .map((p) => JSON.parse(p.body) as SnsMessage);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: [...tls.rootCertificates, ca], agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function httpJson(method: string, url: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const res = await fetch(url, { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

/** Runs `fn`, expecting an SDK error; returns it. */
async function sdkError(fn: () => Promise<unknown>): Promise<{ name: string; $metadata?: { httpStatusCode?: number }; $fault?: string; message: string }> {
  try {
    await fn();
  } catch (err) {
    return err as { name: string; $metadata?: { httpStatusCode?: number }; $fault?: string; message: string };
  }
  throw new Error('expected an error, got success');
}

function simple(to: string[], extra: Partial<SendEmailCommandInput> = {}): SendEmailCommandInput {
  return {
    FromEmailAddress: 'sender@example.com',
    Destination: { ToAddresses: to },
    Content: { Simple: { Subject: { Data: 'Hello' }, Body: { Text: { Data: 'Hi there' } } } },
    ...extra,
  };
}

interface SesEventJson {
  eventType: string;
  mail: {
    messageId: string;
    destination: string[];
    timestamp: string;
    headers: { name: string; value: string }[];
    commonHeaders: { subject: string; from: string[]; to?: string[]; messageId: string };
    tags: Record<string, string[]>;
  };
  bounce?: { bounceType: string; bounceSubType: string; feedbackId: string; bouncedRecipients: { emailAddress: string; status: string; diagnosticCode: string }[]; timestamp: string };
  complaint?: { complaintFeedbackType: string; feedbackId: string; userAgent: string; arrivalDate: string; complainedRecipients: { emailAddress: string }[]; timestamp: string };
  delivery?: { recipients: string[]; processingTimeMillis: number; smtpResponse: string; reportingMTA: string; timestamp: string };
  deliveryDelay?: { delayType: string; expirationTime: string; delayedRecipients: { emailAddress: string; status: string }[]; timestamp: string };
}

function eventTime(e: SesEventJson): string {
  return e.bounce?.timestamp ?? e.complaint?.timestamp ?? e.delivery?.timestamp ?? e.deliveryDelay?.timestamp ?? e.mail.timestamp;
}

/** Distinct events (by SNS MessageId) grouped by SES message id, in event-timestamp order. */
function eventsByMessage(notifications: SnsMessage[]): Map<string, SesEventJson[]> {
  const byId = new Map<string, SesEventJson>();
  for (const n of notifications) byId.set(n.MessageId, JSON.parse(n.Message) as SesEventJson);
  const out = new Map<string, SesEventJson[]>();
  for (const e of byId.values()) {
    const list = out.get(e.mail.messageId) ?? [];
    list.push(e);
    out.set(e.mail.messageId, list);
  }
  for (const list of out.values()) list.sort((a, b) => eventTime(a).localeCompare(eventTime(b)) || (a.eventType === 'Send' ? -1 : 1));
  return out;
}

function describeEvent(e: SesEventJson): string {
  if (e.bounce) return `Bounce:${e.bounce.bounceType}/${e.bounce.bounceSubType}`;
  return e.eventType;
}

afterEach(async () => {
  await Promise.all(sandboxes.splice(0).map((s) => s.close()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

afterAll(() => {
  https.globalAgent.options.ca = originalCa;
});

// ------------------------------------------------------------------------------------------

describe('SNS signing', () => {
  it('builds the documented string to sign', () => {
    const base = { MessageId: 'm-1', TopicArn: 'arn:aws:sns:us-east-1:123456789012:t', Message: 'hello', Timestamp: '2024-01-01T00:00:00.000Z' };
    expect(buildStringToSign({ ...base, Type: 'Notification' })).toBe(
      'Message\nhello\nMessageId\nm-1\nTimestamp\n2024-01-01T00:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:123456789012:t\nType\nNotification\n',
    );
    expect(buildStringToSign({ ...base, Type: 'Notification', Subject: 'S' })).toContain('MessageId\nm-1\nSubject\nS\nTimestamp\n');
    expect(buildStringToSign({ ...base, Type: 'SubscriptionConfirmation', Token: 'tok', SubscribeURL: 'https://x/' })).toBe(
      'Message\nhello\nMessageId\nm-1\nSubscribeURL\nhttps://x/\nTimestamp\n2024-01-01T00:00:00.000Z\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:123456789012:t\nType\nSubscriptionConfirmation\n',
    );
    expect(() => buildStringToSign({ ...base, Type: 'UnsubscribeConfirmation' })).toThrow(/Token and SubscribeURL/);
  });

  it('signs messages that verify, and tampering breaks them', async () => {
    const sb = await sandbox();
    const msg = sb.signMessage({ Type: 'Notification', MessageId: 'x', TopicArn: 'arn:aws:sns:us-east-1:123456789012:t', Message: '{}', Timestamp: new Date().toISOString() });
    expect(msg.SigningCertURL).toBe(sb.signingCertUrl);
    expect(msg.SigningCertURL).toMatch(/^https:\/\/localhost:\d+\/SimpleNotificationService-[0-9a-f]{32}\.pem$/);
    await validate(JSON.stringify(msg));
    await expect(validate(JSON.stringify({ ...msg, Message: '{"x":1}' }))).rejects.toThrow(/signature is invalid/);
    const v1 = sb.signMessage({ Type: 'Notification', MessageId: 'y', TopicArn: 'arn:aws:sns:us-east-1:123456789012:t', Message: '{}', Timestamp: new Date().toISOString() }, '1');
    expect(v1.SignatureVersion).toBe('1');
    await validate(JSON.stringify(v1));
    const cert = await httpsGet(sb.signingCertUrl, sb.caCertPem);
    expect(verifySnsSignature(v1, cert.body)).toBe(true);
    // A signature made with some other key does not verify against the sandbox's certificate.
    const { generateKeyPairSync } = await import('node:crypto');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const forged = { ...msg, Signature: signSnsMessage(msg, other, '2') };
    expect(verifySnsSignature(forged, cert.body)).toBe(false);
  });
});

describe('SESv2 API through the real SDK', () => {
  it('GetAccount and the suppression list', async () => {
    const sb = await sandbox({ maxSendRate: 7, max24HourSend: 1234 });
    const c = ses(sb);
    const account = await c.send(new GetAccountCommand({}));
    expect(account.SendQuota).toEqual({ Max24HourSend: 1234, MaxSendRate: 7, SentLast24Hours: 0 });
    expect(account.SendingEnabled).toBe(true);
    expect(account.ProductionAccessEnabled).toBe(true);
    expect(account.SuppressionAttributes?.SuppressedReasons).toEqual(['BOUNCE', 'COMPLAINT']);

    await c.send(new PutSuppressedDestinationCommand({ EmailAddress: 'Gone+x@Example.com', Reason: 'BOUNCE' }));
    await c.send(new PutSuppressedDestinationCommand({ EmailAddress: 'angry@example.com', Reason: 'COMPLAINT' }));
    const got = await c.send(new GetSuppressedDestinationCommand({ EmailAddress: 'gone+x@example.com' }));
    expect(got.SuppressedDestination?.EmailAddress).toBe('Gone+x@Example.com');
    expect(got.SuppressedDestination?.Reason).toBe('BOUNCE');
    expect(got.SuppressedDestination?.LastUpdateTime).toBeInstanceOf(Date);
    expect(Math.abs((got.SuppressedDestination?.LastUpdateTime?.getTime() ?? 0) - Date.now())).toBeLessThan(10_000);

    const all = await c.send(new ListSuppressedDestinationsCommand({}));
    expect(all.SuppressedDestinationSummaries?.map((s) => s.EmailAddress).sort()).toEqual(['Gone+x@Example.com', 'angry@example.com'].sort());
    const complaints = await c.send(new ListSuppressedDestinationsCommand({ Reasons: ['COMPLAINT'] }));
    expect(complaints.SuppressedDestinationSummaries?.map((s) => s.EmailAddress)).toEqual(['angry@example.com']);
    const page = await c.send(new ListSuppressedDestinationsCommand({ PageSize: 1 }));
    expect(page.SuppressedDestinationSummaries).toHaveLength(1);
    expect(page.NextToken).toBeTruthy();
    const page2 = await c.send(new ListSuppressedDestinationsCommand({ PageSize: 1, NextToken: page.NextToken }));
    expect(page2.SuppressedDestinationSummaries).toHaveLength(1);
    expect(page2.NextToken).toBeUndefined();

    await c.send(new DeleteSuppressedDestinationCommand({ EmailAddress: 'gone+x@example.com' }));
    const missing = await sdkError(() => c.send(new GetSuppressedDestinationCommand({ EmailAddress: 'gone+x@example.com' })));
    expect(missing.name).toBe('NotFoundException');
    expect(missing.$metadata?.httpStatusCode).toBe(404);
    expect((await sdkError(() => c.send(new DeleteSuppressedDestinationCommand({ EmailAddress: 'nobody@example.com' })))).name).toBe('NotFoundException');
    const bad = await sdkError(() => c.send(new PutSuppressedDestinationCommand({ EmailAddress: 'x@example.com', Reason: 'SPAM' as 'BOUNCE' })));
    expect(bad.name).toBe('BadRequestException');
  });

  it('configuration sets and SNS event destinations', async () => {
    const sb = await sandbox();
    const c = ses(sb);
    const s = sns(sb);
    const topic = await s.send(new CreateTopicCommand({ Name: 'ses-events' }));
    expect(topic.TopicArn).toBe('arn:aws:sns:us-east-1:123456789012:ses-events');

    await c.send(new CreateConfigurationSetCommand({ ConfigurationSetName: 'app' }));
    expect((await sdkError(() => c.send(new CreateConfigurationSetCommand({ ConfigurationSetName: 'app' })))).name).toBe('AlreadyExistsException');
    expect((await sdkError(() => c.send(new CreateConfigurationSetCommand({ ConfigurationSetName: 'bad name!' })))).name).toBe('BadRequestException');
    const got = await c.send(new GetConfigurationSetCommand({ ConfigurationSetName: 'app' }));
    expect(got.ConfigurationSetName).toBe('app');
    expect(got.SendingOptions?.SendingEnabled).toBe(true);
    expect((await sdkError(() => c.send(new GetConfigurationSetCommand({ ConfigurationSetName: 'nope' })))).name).toBe('NotFoundException');
    expect((await c.send(new ListConfigurationSetsCommand({}))).ConfigurationSets).toEqual(['app']);

    await c.send(
      new CreateConfigurationSetEventDestinationCommand({
        ConfigurationSetName: 'app',
        EventDestinationName: 'to-sns',
        EventDestination: { Enabled: true, MatchingEventTypes: ['BOUNCE', 'COMPLAINT'], SnsDestination: { TopicArn: topic.TopicArn } },
      }),
    );
    const noTopic = await sdkError(() =>
      c.send(
        new CreateConfigurationSetEventDestinationCommand({
          ConfigurationSetName: 'app',
          EventDestinationName: 'other',
          EventDestination: { Enabled: true, MatchingEventTypes: ['SEND'], SnsDestination: { TopicArn: 'arn:aws:sns:us-east-1:123456789012:missing' } },
        }),
      ),
    );
    expect(noTopic.name).toBe('BadRequestException');
    await c.send(
      new UpdateConfigurationSetEventDestinationCommand({
        ConfigurationSetName: 'app',
        EventDestinationName: 'to-sns',
        EventDestination: { Enabled: true, MatchingEventTypes: ['SEND', 'DELIVERY', 'BOUNCE'], SnsDestination: { TopicArn: topic.TopicArn } },
      }),
    );
    const dests = await c.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: 'app' }));
    expect(dests.EventDestinations).toEqual([
      { Name: 'to-sns', Enabled: true, MatchingEventTypes: ['SEND', 'DELIVERY', 'BOUNCE'], SnsDestination: { TopicArn: topic.TopicArn } },
    ]);
    const unknownDest = await sdkError(() =>
      c.send(new UpdateConfigurationSetEventDestinationCommand({ ConfigurationSetName: 'app', EventDestinationName: 'nope', EventDestination: { Enabled: false } })),
    );
    expect(unknownDest.name).toBe('NotFoundException');
  });

  it('validates SendEmail like SES: tags, recipients, configuration set', async () => {
    const sb = await sandbox();
    const c = ses(sb);
    const ok = await c.send(new SendEmailCommand(simple(['success@simulator.amazonses.com'], { EmailTags: [{ Name: 'lifecycle-id', Value: 'lc_1.a-b@c' }] })));
    expect(ok.MessageId).toMatch(/^0100[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-000000$/);

    for (const tags of [[{ Name: 'bad tag', Value: 'x' }], [{ Name: 'ok', Value: 'no/slash' }], [{ Name: 'x'.repeat(257), Value: 'x' }], [{ Name: 'ok', Value: 'é' }]]) {
      const err = await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com'], { EmailTags: tags }))));
      expect(err.name).toBe('BadRequestException');
      expect(err.$metadata?.httpStatusCode).toBe(400);
    }
    const many = Array.from({ length: 51 }, (_, i) => `r${i}@example.com`);
    expect((await sdkError(() => c.send(new SendEmailCommand(simple(many))))).message).toMatch(/exceeds 50/);
    expect((await sdkError(() => c.send(new SendEmailCommand(simple([]))))).name).toBe('BadRequestException');
    expect((await sdkError(() => c.send(new SendEmailCommand(simple(['not-an-address']))))).name).toBe('BadRequestException');
    const noSet = await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com'], { ConfigurationSetName: 'missing' }))));
    expect(noSet.name).toBe('NotFoundException');
    expect(noSet.$metadata?.httpStatusCode).toBe(404);
    expect(sb.sentMessages()).toHaveLength(1);
    expect(sb.sentMessages()[0]?.tags).toEqual([{ name: 'lifecycle-id', value: 'lc_1.a-b@c' }]);
  });

  it('throttles beyond maxSendRate with a real 429 TooManyRequestsException', async () => {
    const sb = await sandbox({ maxSendRate: 2 });
    const c = ses(sb);
    await c.send(new SendEmailCommand(simple(['a@example.com'])));
    await c.send(new SendEmailCommand(simple(['b@example.com'])));
    const err = await sdkError(() => c.send(new SendEmailCommand(simple(['c@example.com']))));
    expect(err.name).toBe('TooManyRequestsException');
    expect(err.$metadata?.httpStatusCode).toBe(429);
    expect(sb.sentMessages()).toHaveLength(2);
    sb.setMaxSendRate(1000);
    await new Promise((r) => setTimeout(r, 20));
    await c.send(new SendEmailCommand(simple(['c@example.com'])));
    expect((await c.send(new GetAccountCommand({}))).SendQuota).toMatchObject({ MaxSendRate: 1000, SentLast24Hours: 3 });
  });

  it('injected faults surface as the right SDK exceptions', async () => {
    const sb = await sandbox();
    const c = ses(sb);
    const codes = ['MessageRejected', 'MailFromDomainNotVerifiedException', 'AccountSuspendedException', 'SendingPausedException', 'BadRequestException', 'LimitExceededException', 'NotFoundException'] as const;
    sb.injectSendFaults([{ kind: 'throttle' }, ...codes.map((code) => ({ kind: 'error' as const, code })), { kind: 'internal' }]);
    const throttled = await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com']))));
    expect([throttled.name, throttled.$metadata?.httpStatusCode]).toEqual(['TooManyRequestsException', 429]);
    for (const code of codes) {
      const err = await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com']))));
      expect(err.name).toBe(code);
      expect(err.$metadata?.httpStatusCode).toBe(code === 'NotFoundException' ? 404 : 400);
      expect(err.$fault).toBe('client');
    }
    const internal = await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com']))));
    expect(internal.$metadata?.httpStatusCode).toBe(500);
    expect(internal.$fault).toBe('server');
    expect(internal.name).toBe('InternalFailure');
    expect(sb.sentMessages()).toHaveLength(0);

    // Faults over HTTP, with a status override.
    const posted = await httpJson('POST', `${sb.endpoint}/_sandbox/faults`, [{ kind: 'error', code: 'MessageRejected', status: 403 }, { kind: 'reset-before-accept' }]);
    expect(posted.status).toBe(200);
    const rejected = await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com']))));
    expect([rejected.name, rejected.$metadata?.httpStatusCode]).toEqual(['MessageRejected', 403]);
    await sdkError(() => c.send(new SendEmailCommand(simple(['a@example.com']))));
    expect(sb.sentMessages()).toHaveLength(0);
    expect((await httpJson('POST', `${sb.endpoint}/_sandbox/faults`, [{ kind: 'nope' }])).status).toBe(400);
    expect(() => sb.injectSendFaults([{ kind: 'error', code: 'Nope' as 'MessageRejected' }])).toThrow();

    // Ambiguous outcomes: the message is accepted but the caller never gets the answer.
    sb.injectSendFaults([{ kind: 'accept-then-hang', hangMs: 5000 }, { kind: 'accept-then-reset' }]);
    const hung = await sdkError(() => c.send(new SendEmailCommand(simple(['hang@example.com'])), { abortSignal: AbortSignal.timeout(300) }));
    expect(hung.name).toMatch(/Abort|Timeout/);
    const reset = await sdkError(() => c.send(new SendEmailCommand(simple(['reset@example.com']))));
    expect(reset.message).toMatch(/socket hang up|ECONNRESET/i);
    expect(sb.sentMessages().map((m) => m.destination.to[0])).toEqual(['hang@example.com', 'reset@example.com']);
    const after = await c.send(new SendEmailCommand(simple(['after@example.com'])));
    expect(after.MessageId).toBeTruthy();
  });

  it('answers unknown operations and bad JSON with clear errors', async () => {
    const sb = await sandbox();
    const unknown = await httpJson('GET', `${sb.endpoint}/v2/email/contact-lists`);
    expect(unknown.status).toBe(404);
    expect(unknown.text).toMatch(/does not implement GET \/v2\/email\/contact-lists/);
    const res = await fetch(`${sb.endpoint}/v2/email/outbound-emails`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('BadRequestException');
  });
});

describe('SNS Query API through the real SDK', () => {
  it('topics, subscriptions, the confirmation handshake and unsubscribe', async () => {
    const sb = await sandbox();
    const rx = await new Receiver(sb).start();
    const s = sns(sb);
    const { TopicArn } = await s.send(new CreateTopicCommand({ Name: 'events' }));
    expect((await s.send(new CreateTopicCommand({ Name: 'events' }))).TopicArn).toBe(TopicArn);
    const pending = await s.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: `${rx.url}/sns` }));
    expect(pending.SubscriptionArn).toBe('pending confirmation');
    await sb.waitForSubscriptionConfirmed(TopicArn ?? '', 5000);
    expect(rx.errors).toEqual([]);

    const confirmation = rx.posts.find((p) => p.headers['x-amz-sns-message-type'] === 'SubscriptionConfirmation');
    expect(confirmation?.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(confirmation?.headers['user-agent']).toBe('Amazon Simple Notification Service Agent');
    const confirmMsg = JSON.parse(confirmation?.body ?? '{}') as SnsMessage;
    expect(confirmMsg.SubscribeURL).toMatch(new RegExp(`^https://${sb.certHost}/\\?Action=ConfirmSubscription&TopicArn=${TopicArn}&Token=[0-9a-f]+$`));

    const subs = await s.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
    expect(subs.Subscriptions).toHaveLength(1);
    const sub = subs.Subscriptions?.[0];
    expect(sub).toMatchObject({ TopicArn, Protocol: 'http', Endpoint: `${rx.url}/sns`, Owner: sb.accountId });
    expect(sub?.SubscriptionArn).toMatch(new RegExp(`^${TopicArn}:[0-9a-f-]{36}$`));
    const attrs = await s.send(new GetTopicAttributesCommand({ TopicArn }));
    expect(attrs.Attributes).toMatchObject({ TopicArn, SubscriptionsConfirmed: '1', SubscriptionsPending: '0' });

    const second = await s.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: `${rx.url}/raw`, Attributes: { RawMessageDelivery: 'true' }, ReturnSubscriptionArn: true }));
    expect(second.SubscriptionArn).toMatch(/^arn:aws:sns:/);
    await sb.waitForSubscriptionConfirmed(TopicArn ?? '', 5000);

    await s.send(new UnsubscribeCommand({ SubscriptionArn: second.SubscriptionArn }));
    await sandboxSettled(sb);
    const unsub = rx.posts.find((p) => p.headers['x-amz-sns-message-type'] === 'UnsubscribeConfirmation');
    expect(unsub?.path).toBe('/raw');
    const unsubMsg = JSON.parse(unsub?.body ?? '{}') as SnsMessage;
    expect(unsubMsg.Token).toBeTruthy();
    const cert = await httpsGet(unsubMsg.SigningCertURL, sb.caCertPem);
    expect(verifySnsSignature(unsubMsg, cert.body)).toBe(true);
    expect((await s.send(new ListSubscriptionsByTopicCommand({ TopicArn }))).Subscriptions).toHaveLength(1);

    // Publish with a Subject: signed with Subject in the string to sign; still verifies.
    const published = await s.send(new PublishCommand({ TopicArn, Message: 'plain text', Subject: 'Greetings' }));
    await sandboxSettled(sb);
    const note = rx.notifications('/sns').find((n) => n.MessageId === published.MessageId);
    expect(note).toMatchObject({ Subject: 'Greetings', Message: 'plain text' });
    await validate(JSON.stringify(note));
    await expect(validate(JSON.stringify({ ...note, Subject: 'Other' }))).rejects.toThrow(/signature is invalid/);

    const missing = await sdkError(() => s.send(new GetTopicAttributesCommand({ TopicArn: 'arn:aws:sns:us-east-1:123456789012:nope' })));
    expect(missing.name).toBe('NotFoundException');
    const badProto = await sdkError(() => s.send(new SubscribeCommand({ TopicArn, Protocol: 'email', Endpoint: 'a@example.com' })));
    expect(badProto.name).toBe('InvalidParameterException');
  });
});

describe('the SNS API is locked to the sandbox credentials', () => {
  it('refuses GET Publish/Subscribe and unsigned or wrongly signed POSTs; SigV4 with the credentials works; SubscribeURL links still work', async () => {
    const sb = await sandbox();
    const rx = await new Receiver(sb).start();
    const s = sns(sb);
    const { TopicArn } = await s.send(new CreateTopicCommand({ Name: 'locked' }));
    await s.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: `${rx.url}/sns` }));
    await sb.waitForSubscriptionConfirmed(TopicArn ?? '', 5000); // the GET SubscribeURL link works unsigned
    const canary = http.createServer((_req, res) => res.end());
    let canaryHits = 0;
    canary.on('request', () => (canaryHits += 1));
    await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r));
    const canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}/x`;
    try {
      const bounce = JSON.stringify({ eventType: 'Bounce', mail: { messageId: 'forged' } });
      const ledgerBefore = sb.ledger().length;
      for (const base of [sb.endpoint, sb.httpsOrigin]) {
        const get = (q: string) => (base.startsWith('https') ? httpsGet(`${base}/?${q}`, sb.caCertPem) : fetch(`${base}/?${q}`).then(async (r) => ({ status: r.status, body: await r.text() })));
        const publish = await get(`Action=Publish&TopicArn=${TopicArn}&Message=${encodeURIComponent(bounce)}`);
        expect(publish.status, base).toBe(403);
        expect(publish.body).toContain('<Code>AuthorizationError</Code>');
        expect((await get(`Action=Subscribe&TopicArn=${TopicArn}&Protocol=http&Endpoint=${encodeURIComponent(canaryUrl)}`)).status).toBe(403);
        expect((await get(`Action=ListTopics`)).status).toBe(403); // read-only, but unsigned
      }
      // Unsigned POST (what curl or a browser form would send).
      const unsigned = await fetch(`${sb.endpoint}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `Action=Publish&TopicArn=${TopicArn}&Message=${encodeURIComponent(bounce)}` });
      expect(unsigned.status).toBe(403);
      expect(await unsigned.text()).toContain('<Code>MissingAuthenticationToken</Code>');
      // Real SDK, other access key / right key with another secret.
      const other = new SNSClient({ region: sb.region, endpoint: sb.endpoint, credentials: { accessKeyId: 'AKIAOTHERKEY00000000', secretAccessKey: sb.credentials.secretAccessKey }, maxAttempts: 1 });
      expect((await sdkError(() => other.send(new PublishCommand({ TopicArn, Message: bounce })))).name).toBe('InvalidClientTokenId');
      // The old `sandbox`/`sandbox` pair is not accepted, not even with the default credentials.
      const legacy = new SNSClient({ region: sb.region, endpoint: sb.endpoint, credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' }, maxAttempts: 1 });
      expect((await sdkError(() => legacy.send(new PublishCommand({ TopicArn, Message: bounce })))).name).toBe('InvalidClientTokenId');
      const wrongSecret = new SNSClient({ region: sb.region, endpoint: sb.endpoint, credentials: { accessKeyId: sb.credentials.accessKeyId, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
      expect((await sdkError(() => wrongSecret.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: canaryUrl })))).name).toBe('SignatureDoesNotMatch');
      await sandboxSettled(sb);
      expect(sb.ledger().length).toBe(ledgerBefore);
      expect(canaryHits).toBe(0);
      // The right credentials work, over HTTP and HTTPS endpoints.
      expect((await s.send(new PublishCommand({ TopicArn, Message: 'hello', Subject: 'Greetings' }))).MessageId).toBeTruthy();
      await sandboxSettled(sb);
      expect(sb.ledger().length).toBe(ledgerBefore + 1);
    } finally {
      await new Promise((r) => canary.close(r));
    }
  });

  it('custom credentials replace the defaults entirely', async () => {
    const credentials = { accessKeyId: 'AKIACUSTOMSANDBOX001', secretAccessKey: 'custom-secret-0123456789' };
    const sb = await sandbox({ credentials });
    expect(sb.credentials).toEqual(credentials);
    expect((await sns(sb).send(new CreateTopicCommand({ Name: 'custom' }))).TopicArn).toMatch(/:custom$/);
    const legacy = new SNSClient({ region: sb.region, endpoint: sb.endpoint, credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' }, maxAttempts: 1 });
    expect((await sdkError(() => legacy.send(new CreateTopicCommand({ Name: 'x' })))).name).toBe('InvalidClientTokenId');
  });
});

describe('SES events as signed SNS notifications', () => {
  it('publishes the mailbox simulator sequences, verified by sns-validator', async () => {
    const sb = await sandbox();
    const rx = await new Receiver(sb).start();
    const { topicArn } = await sb.createConfigurationSet('app', { webhookUrl: `${rx.url}/sns` });
    await sb.waitForSubscriptionConfirmed(topicArn, 5000);
    const c = ses(sb);
    await c.send(new PutSuppressedDestinationCommand({ EmailAddress: 'suppressed@example.com', Reason: 'BOUNCE' }));

    const cases: [string, string[]][] = [
      ['success@simulator.amazonses.com', ['Send', 'Delivery']],
      ['Success+label@Simulator.AmazonSES.com', ['Send', 'Delivery']],
      ['someone@example.com', ['Send', 'Delivery']],
      ['bounce@simulator.amazonses.com', ['Send', 'Bounce:Permanent/General']],
      ['ooto@simulator.amazonses.com', ['Send', 'Delivery', 'Bounce:Transient/General']],
      ['complaint@simulator.amazonses.com', ['Send', 'Delivery', 'Complaint']],
      ['suppressionlist@simulator.amazonses.com', ['Send', 'Bounce:Permanent/Suppressed']],
      ['suppressed@example.com', ['Send', 'Bounce:Permanent/OnAccountSuppressionList']],
      ['delay@sandbox.ses-lifecycle.test', ['Send', 'DeliveryDelay', 'Delivery']],
      ['softbounce@sandbox.ses-lifecycle.test', ['Send', 'Bounce:Transient/MailboxFull']],
      ['softbounce@sandbox.ses-lifecycle.test', ['Send', 'Delivery']],
      ['silent@sandbox.ses-lifecycle.test', []],
    ];
    const ids: string[] = [];
    for (const [i, [address]] of cases.entries()) {
      const out = await c.send(
        new SendEmailCommand({
          ...simple([address], {
            ConfigurationSetName: 'app',
            EmailTags: [{ Name: 'lifecycle-id', Value: `lc-${i}` }],
          }),
          Content: {
            Simple: {
              Subject: { Data: `case ${i}` },
              Body: { Text: { Data: 'text' }, Html: { Data: '<p>html</p>' } },
              Headers: [{ Name: 'X-Lifecycle-Id', Value: `lc-${i}` }],
            },
          },
        }),
      );
      ids.push(out.MessageId ?? '');
    }
    await sandboxSettled(sb);

    const notifications = rx.notifications('/sns');
    await Promise.all(rx.posts.map((p) => validate(p.body)));
    const byMessage = eventsByMessage(notifications);
    for (const [i, [address, expected]] of cases.entries()) {
      const events = byMessage.get(ids[i] ?? '') ?? [];
      expect({ address, i, events: events.map(describeEvent) }).toEqual({ address, i, events: expected });
      for (const e of events) {
        expect(e.mail.destination).toEqual([address]);
        expect(e.mail.tags).toMatchObject({ 'lifecycle-id': [`lc-${i}`], 'ses:configuration-set': ['app'], 'ses:from-domain': ['example.com'] });
        expect(e.mail.tags).toMatchObject({ 'ses:operation': ['SendEmail'], 'ses:source-tls-version': ['TLSv1.3'] });
        expect(Object.keys(e.mail.tags)).toEqual(expect.arrayContaining(['ses:source-ip', 'ses:caller-identity']));
        // As in SES's published examples: the outgoing IP only on Delivery events.
        expect('ses:outgoing-ip' in e.mail.tags, `${e.eventType} ses:outgoing-ip`).toBe(e.eventType === 'Delivery');
        expect(e.mail.headers).toContainEqual({ name: 'X-Lifecycle-Id', value: `lc-${i}` });
        expect(e.mail.headers.map((h) => h.name)).toEqual(expect.arrayContaining(['From', 'To', 'Subject', 'Message-ID', 'Date', 'MIME-Version', 'Content-Type']));
        expect(e.mail.commonHeaders).toMatchObject({ subject: `case ${i}`, from: ['sender@example.com'], to: [address], messageId: ids[i] });
        expect(eventTime(e) >= e.mail.timestamp).toBe(true);
      }
    }
    const get = (i: number, type: string): SesEventJson | undefined => byMessage.get(ids[i] ?? '')?.find((e) => e.eventType === type);
    expect(get(3, 'Bounce')?.bounce?.bouncedRecipients[0]).toMatchObject({ emailAddress: 'bounce@simulator.amazonses.com', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' });
    expect(get(3, 'Bounce')?.bounce?.feedbackId).toBeTruthy();
    // suppressionlist@: SES's global suppression list (Permanent/Suppressed), not the account list.
    expect(get(6, 'Bounce')?.bounce).toMatchObject({
      bounceType: 'Permanent',
      bounceSubType: 'Suppressed',
      reportingMTA: 'dns; amazonses.com',
      bouncedRecipients: [{ emailAddress: 'suppressionlist@simulator.amazonses.com', action: 'failed', status: '5.1.1', diagnosticCode: expect.stringMatching(/^Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address\./) as unknown }],
    });
    expect(get(6, 'Bounce')?.bounce).not.toHaveProperty('remoteMtaIp');
    expect(get(7, 'Bounce')?.bounce).toMatchObject({ bounceSubType: 'OnAccountSuppressionList', reportingMTA: 'dns; amazonses.com', bouncedRecipients: [{ diagnosticCode: expect.stringMatching(/suppression list for your account/) as unknown }] });
    expect(get(5, 'Complaint')?.complaint).toMatchObject({ complaintFeedbackType: 'abuse', complainedRecipients: [{ emailAddress: 'complaint@simulator.amazonses.com' }] });
    expect(get(5, 'Complaint')?.complaint?.feedbackId).toBeTruthy();
    expect(get(0, 'Delivery')?.delivery).toMatchObject({ recipients: ['success@simulator.amazonses.com'], smtpResponse: expect.stringMatching(/^250 /) as unknown });
    expect(get(0, 'Delivery')?.delivery?.processingTimeMillis).toBeGreaterThan(0);
    expect(get(8, 'DeliveryDelay')?.deliveryDelay).toMatchObject({ delayType: 'TransientCommunicationFailure', delayedRecipients: [{ status: '4.4.1' }] });
    // ooto: the auto-reply bounce is later than the delivery.
    const ooto = byMessage.get(ids[4] ?? '') ?? [];
    expect(eventTime(ooto[2] as SesEventJson) > eventTime(ooto[1] as SesEventJson)).toBe(true);

    // HTTP headers of a notification.
    const post = rx.posts.find((p) => p.headers['x-amz-sns-message-type'] === 'Notification');
    const env = JSON.parse(post?.body ?? '{}') as SnsMessage & Record<string, unknown>;
    expect(post?.headers).toMatchObject({
      'content-type': 'text/plain; charset=UTF-8',
      'user-agent': 'Amazon Simple Notification Service Agent',
      'x-amz-sns-message-id': env.MessageId,
      'x-amz-sns-topic-arn': topicArn,
    });
    expect(post?.headers['x-amz-sns-subscription-arn']).toMatch(new RegExp(`^${topicArn}:`));
    // As SNS does for a topic without the SignatureVersion attribute, with SES's Subject.
    expect(env).toMatchObject({ Type: 'Notification', TopicArn: topicArn, SignatureVersion: '1', Subject: 'Amazon SES Email Event Notification' });
    expect(notifications.every((n) => n.Subject === 'Amazon SES Email Event Notification' && n.SignatureVersion === '1')).toBe(true);
    expect(env.UnsubscribeURL).toMatch(new RegExp(`^https://${sb.certHost}/\\?Action=Unsubscribe&SubscriptionArn=`));

    // Ledger: every notification delivered exactly once, matching what the receiver saw.
    const ledger = sb.ledger().filter((l) => l.type === 'Notification');
    expect(ledger).toHaveLength(notifications.length);
    expect(ledger.every((l) => l.finalStatus === 'delivered' && l.deliveries.length === 1 && l.deliveries[0]?.statusCode === 200)).toBe(true);
    const viaHttp = await httpJson('GET', `${sb.endpoint}/_sandbox/ledger`);
    expect((viaHttp.json as unknown[]).length).toBe(sb.ledger().length);
    expect(((await httpJson('GET', `${sb.endpoint}/_sandbox/messages`)).json as unknown[]).length).toBe(cases.length);
    expect((await httpJson('GET', `${sb.endpoint}/_sandbox/ca.pem`)).text).toBe(sb.caCertPem);
  });

  it('signs with SignatureVersion 1 unless the topic attribute SignatureVersion is 2 (CreateTopic or SetTopicAttributes)', async () => {
    const sb = await sandbox();
    const rx = await new Receiver(sb).start();
    const s = sns(sb);
    const v1 = (await s.send(new CreateTopicCommand({ Name: 'v1' }))).TopicArn ?? '';
    const v2 = (await s.send(new CreateTopicCommand({ Name: 'v2', Attributes: { SignatureVersion: '2' } }))).TopicArn ?? '';
    const later = (await s.send(new CreateTopicCommand({ Name: 'later' }))).TopicArn ?? '';
    expect((await s.send(new GetTopicAttributesCommand({ TopicArn: v1 }))).Attributes?.SignatureVersion).toBe('1');
    for (const t of [v1, v2, later]) {
      await s.send(new SubscribeCommand({ TopicArn: t, Protocol: 'http', Endpoint: `${rx.url}/${t.split(':').pop() ?? ''}` }));
      await sb.waitForSubscriptionConfirmed(t, 5000);
    }
    // Switched after its subscription was confirmed (with v1).
    await s.send(new SetTopicAttributesCommand({ TopicArn: later, AttributeName: 'SignatureVersion', AttributeValue: '2' }));
    expect((await s.send(new GetTopicAttributesCommand({ TopicArn: later }))).Attributes?.SignatureVersion).toBe('2');
    expect((await sdkError(() => s.send(new SetTopicAttributesCommand({ TopicArn: later, AttributeName: 'SignatureVersion', AttributeValue: '3' })))).name).toBe('InvalidParameterException');
    for (const t of [v1, v2, later]) await s.send(new PublishCommand({ TopicArn: t, Message: 'm' }));
    await sandboxSettled(sb);
    const versions = Object.fromEntries(['v1', 'v2', 'later'].map((p) => [p, rx.posts.filter((x) => x.path === `/${p}`).map((x) => (JSON.parse(x.body) as SnsMessage).SignatureVersion)]));
    // Confirmation and notification of each topic, both signed per the topic's attribute.
    expect(versions).toEqual({ v1: ['1', '1'], v2: ['2', '2'], later: ['1', '2'] });
    await Promise.all(rx.posts.map((p) => validate(p.body)));
  });

  it('one notification per event per recipient, one Send per message', async () => {
    const sb = await sandbox();
    const rx = await new Receiver(sb).start();
    const { topicArn } = await sb.createConfigurationSet('multi', { webhookUrl: `${rx.url}/sns` });
    await sb.waitForSubscriptionConfirmed(topicArn, 5000);
    const out = await ses(sb).send(
      new SendEmailCommand(
        simple([], {
          ConfigurationSetName: 'multi',
          Destination: { ToAddresses: ['success@simulator.amazonses.com', 'bounce@simulator.amazonses.com'], CcAddresses: ['ooto@simulator.amazonses.com'], BccAddresses: ['silent@sandbox.ses-lifecycle.test'] },
        }),
      ),
    );
    await sandboxSettled(sb);
    const events = eventsByMessage(rx.notifications()).get(out.MessageId ?? '') ?? [];
    const summary = events.map((e) => `${describeEvent(e)}:${(e.delivery?.recipients ?? e.bounce?.bouncedRecipients.map((r) => r.emailAddress) ?? ['*']).join(',')}`).sort();
    expect(summary).toEqual(
      [
        'Send:*',
        'Delivery:success@simulator.amazonses.com',
        'Bounce:Permanent/General:bounce@simulator.amazonses.com',
        'Delivery:ooto@simulator.amazonses.com',
        'Bounce:Transient/General:ooto@simulator.amazonses.com',
      ].sort(),
    );
    const send = events.find((e) => e.eventType === 'Send');
    expect(send?.mail.destination).toHaveLength(4);
    expect(send?.mail.headers.map((h) => h.name)).not.toContain('Bcc');
  });

  it('retries 5xx and timeouts with the same signed body, never retries 4xx', async () => {
    // The timeout only has to separate a hanging answer from a slow one: scaled by load.
    const sb = await sandbox({ sns: { retries: 3, retryDelayMs: 50, timeoutMs: Math.round(1_000 * loadFactor()) } });
    const rx = await new Receiver(sb, (post, n) => {
      if (post.headers['x-amz-sns-message-type'] !== 'Notification') return 200;
      if (post.path === '/flaky') return n <= 2 ? 500 : 200;
      if (post.path === '/slow') return n === 1 ? 'hang' : 200;
      if (post.path === '/down') return 503;
      return 400;
    }).start();
    for (const name of ['flaky', 'slow', 'down', 'reject']) {
      const { topicArn } = await sb.createConfigurationSet(name, { webhookUrl: `${rx.url}/${name}` });
      await sb.waitForSubscriptionConfirmed(topicArn, 5000);
      // Only Send events, to keep the counts small.
      await ses(sb).send(
        new UpdateConfigurationSetEventDestinationCommand({
          ConfigurationSetName: name,
          EventDestinationName: 'sns',
          EventDestination: { Enabled: true, MatchingEventTypes: ['SEND'], SnsDestination: { TopicArn: topicArn } },
        }),
      );
      await ses(sb).send(new SendEmailCommand(simple(['success@simulator.amazonses.com'], { ConfigurationSetName: name })));
    }
    await sandboxSettled(sb);
    const ledger = sb.ledger().filter((l) => l.type === 'Notification');
    const entry = (path: string) => ledger.find((l) => l.endpoint?.endsWith(path));

    expect(entry('/flaky')).toMatchObject({ finalStatus: 'delivered', eventType: 'Send' });
    expect(entry('/flaky')?.deliveries.map((d) => d.statusCode)).toEqual([500, 500, 200]);
    const flakyBodies = rx.posts.filter((p) => p.path === '/flaky' && p.headers['x-amz-sns-message-type'] === 'Notification').map((p) => p.body);
    expect(flakyBodies).toHaveLength(3);
    expect(new Set(flakyBodies).size).toBe(1);
    await validate(flakyBodies[2] ?? '');

    expect(entry('/slow')?.finalStatus).toBe('delivered');
    expect(entry('/slow')?.deliveries.map((d) => d.error ?? d.statusCode)).toEqual(['timeout', 200]);

    expect(entry('/down')?.finalStatus).toBe('failed');
    expect(entry('/down')?.deliveries).toHaveLength(4);
    const gaps = (entry('/down')?.deliveries ?? []).map((d) => Date.parse(d.at)).map((t, i, a) => (i === 0 ? 50 : t - (a[i - 1] ?? 0)));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(45);

    expect(entry('/reject')).toMatchObject({ finalStatus: 'failed' });
    expect(entry('/reject')?.deliveries.map((d) => d.statusCode)).toEqual([400]);
  });

  it('raw message delivery posts the bare event JSON', async () => {
    const sb = await sandbox();
    const rx = await new Receiver(sb).start();
    const { topicArn } = await sb.createConfigurationSet('raw', { webhookUrl: `${rx.url}/raw`, rawMessageDelivery: true });
    await sb.waitForSubscriptionConfirmed(topicArn, 5000);
    const out = await ses(sb).send(new SendEmailCommand(simple(['success@simulator.amazonses.com'], { ConfigurationSetName: 'raw' })));
    await sandboxSettled(sb);
    const posts = rx.posts.filter((p) => p.headers['x-amz-sns-message-type'] === 'Notification');
    expect(posts).toHaveLength(2);
    for (const p of posts) {
      const event = JSON.parse(p.body) as SesEventJson & { Signature?: string };
      expect(event.mail.messageId).toBe(out.MessageId);
      expect(event.Signature).toBeUndefined();
      expect(p.headers['x-amz-sns-rawdelivery']).toBe('true');
    }
  });

  it('chaos: duplicates reuse the MessageId; reorder shuffles publication but not timestamps', async () => {
    const sb = await sandbox({ chaos: { duplicateProbability: 1, reorder: true, seed: 7 }, signatureVersion: '1' });
    const rx = await new Receiver(sb).start();
    const { topicArn } = await sb.createConfigurationSet('chaos', { webhookUrl: `${rx.url}/sns` });
    await sb.waitForSubscriptionConfirmed(topicArn, 5000);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push((await ses(sb).send(new SendEmailCommand(simple(['ooto@simulator.amazonses.com'], { ConfigurationSetName: 'chaos' })))).MessageId ?? '');
    }
    await sandboxSettled(sb);
    const notes = rx.notifications();
    expect(notes).toHaveLength(6 * 3 * 2);
    const counts = new Map<string, number>();
    for (const n of notes) counts.set(n.MessageId, (counts.get(n.MessageId) ?? 0) + 1);
    expect([...counts.values()].every((v) => v === 2)).toBe(true);
    await Promise.all(rx.posts.map((p) => validate(p.body)));
    expect(notes.every((n) => n.SignatureVersion === '1')).toBe(true);
    expect(sb.ledger().filter((l) => l.duplicate)).toHaveLength(18);

    // Arrival order differs from timestamp order for at least one message; timestamps stay sane.
    let reordered = 0;
    for (const id of ids) {
      const arrival = notes.map((n) => JSON.parse(n.Message) as SesEventJson).filter((e) => e.mail.messageId === id);
      const firstSeen = [...new Map(arrival.map((e) => [describeEvent(e), e])).values()];
      if (firstSeen.map(describeEvent).join() !== 'Send,Delivery,Bounce:Transient/General') reordered++;
      const sorted = eventsByMessage(notes).get(id)?.map(describeEvent);
      expect(sorted).toEqual(['Send', 'Delivery', 'Bounce:Transient/General']);
    }
    expect(reordered).toBeGreaterThan(0);
  });

  it('nothing is published to unconfirmed subscriptions, and the ledger says so', async () => {
    const sb = await sandbox();
    // This receiver rejects everything, so the subscription is never confirmed.
    const rx = await new Receiver(sb, () => 404).start();
    await sb.createConfigurationSet('unconfirmed', { webhookUrl: `${rx.url}/sns` });
    await ses(sb).send(new SendEmailCommand(simple(['success@simulator.amazonses.com'], { ConfigurationSetName: 'unconfirmed' })));
    await sandboxSettled(sb);
    expect(rx.notifications()).toHaveLength(0);
    const ledger = sb.ledger();
    expect(ledger.find((l) => l.type === 'SubscriptionConfirmation')).toMatchObject({ finalStatus: 'failed' });
    const notes = ledger.filter((l) => l.type === 'Notification');
    expect(notes.map((l) => [l.eventType, l.finalStatus, l.failureReason])).toEqual([
      ['Send', 'failed', 'no confirmed subscription'],
      ['Delivery', 'failed', 'no confirmed subscription'],
    ]);
  });

  it('raw content, account suppression off, logging and the control endpoints', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger: SandboxLogger = pino({ level: 'debug' }, sink);
    const sb = await sandbox({ accountSuppression: false, logger });
    const rx = await new Receiver(sb).start();
    const { topicArn } = await sb.createConfigurationSet('rawset', { webhookUrl: `${rx.url}/sns` });
    await sb.waitForSubscriptionConfirmed(topicArn, 5000);
    const c = ses(sb);
    expect((await c.send(new GetAccountCommand({}))).SuppressionAttributes?.SuppressedReasons).toEqual([]);
    await c.send(new PutSuppressedDestinationCommand({ EmailAddress: 'listed@example.com', Reason: 'BOUNCE' }));

    const raw = [
      'From: "Sender" <sender@example.com>',
      'To: listed@example.com, "Bob" <bounce@simulator.amazonses.com>',
      'Subject: raw one',
      'X-Lifecycle-Id: lc-raw',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=UTF-8',
      '',
      'body',
    ].join('\r\n');
    const out = await c.send(new SendEmailCommand({ Content: { Raw: { Data: Buffer.from(raw) } }, ConfigurationSetName: 'rawset' }));
    await sandboxSettled(sb);
    const events = eventsByMessage(rx.notifications()).get(out.MessageId ?? '') ?? [];
    // Suppression is off: the listed address is delivered to.
    expect(events.map(describeEvent).sort()).toEqual(['Bounce:Permanent/General', 'Delivery', 'Send']);
    const send = events.find((e) => e.eventType === 'Send');
    expect(send?.mail.destination).toEqual(['listed@example.com', '"Bob" <bounce@simulator.amazonses.com>']);
    expect(send?.mail.headers).toContainEqual({ name: 'X-Lifecycle-Id', value: 'lc-raw' });
    expect(send?.mail.commonHeaders.subject).toBe('raw one');
    expect(sb.sentMessages()[0]).toMatchObject({ contentKind: 'raw', from: '"Sender" <sender@example.com>', subject: 'raw one' });

    expect(lines.some((l) => l.includes('ses message accepted') && l.includes(out.MessageId ?? '?'))).toBe(true);

    const info = await httpJson('GET', `${sb.endpoint}/_sandbox/info`);
    expect(info.json).toMatchObject({ endpoint: sb.endpoint, httpsOrigin: sb.httpsOrigin, certHost: sb.certHost, signingCertUrl: sb.signingCertUrl });
    expect((await httpJson('GET', `${sb.endpoint}/_sandbox/idle?timeoutMs=1000`)).json).toEqual({ idle: true });
    expect((await httpJson('POST', `${sb.endpoint}/_sandbox/send-rate`, { maxSendRate: 3 })).status).toBe(200);
    expect((await c.send(new GetAccountCommand({}))).SendQuota?.MaxSendRate).toBe(3);
    expect((await httpJson('POST', `${sb.endpoint}/_sandbox/send-rate`, { maxSendRate: -1 })).status).toBe(400);
  });

  it('close() cancels pending retries and hanging responses and leaves no handles behind', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
    const sb = await sandbox({ sns: { retryDelayMs: 60_000, timeoutMs: 60_000 } });
    const rx = await new Receiver(sb, (post) => (post.headers['x-amz-sns-message-type'] === 'Notification' ? 500 : 200)).start();
    const { topicArn } = await sb.createConfigurationSet('closing', { webhookUrl: `${rx.url}/sns` });
    await sb.waitForSubscriptionConfirmed(topicArn, 5000);
    const c = ses(sb);
    await c.send(new SendEmailCommand(simple(['success@simulator.amazonses.com'], { ConfigurationSetName: 'closing' })));
    sb.injectSendFaults([{ kind: 'accept-then-hang', hangMs: 60_000 }]);
    const hanging = c.send(new SendEmailCommand(simple(['a@example.com']))).then(
      () => 'answered',
      (err: Error) => err,
    );
    await expect(sb.waitForIdle(300)).rejects.toThrow(/not idle/);
    const idle = sb.waitForIdle(60_000);
    await sb.close();
    await expect(idle).rejects.toThrow(/closed/);
    expect(await hanging).toBeInstanceOf(Error);
    c.destroy();
    expect(sb.ledger().filter((l) => l.finalStatus === 'pending')).toHaveLength(0);
    await rx.close();
    receivers.splice(receivers.indexOf(rx), 1);
    await new Promise((r) => setTimeout(r, 50));
    const after = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
    expect(after).toBeLessThanOrEqual(before);
  });
});
