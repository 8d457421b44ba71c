/**
 * `init-aws` against the real local SES sandbox, with the real SESv2 and SNS SDK clients over
 * HTTP: creation, idempotent re-runs, updates of the event destination, dry runs that write
 * nothing, and the SNS subscription handshake with a real HTTP receiver. Also the CLI command
 * itself, as a child process.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  EventType,
  GetConfigurationSetEventDestinationsCommand,
  ListConfigurationSetsCommand,
  SESv2Client,
} from '@aws-sdk/client-sesv2';
import { ConfirmSubscriptionCommand, ListSubscriptionsByTopicCommand, ListTopicsCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config';
import { ALL_EVENT_TYPES, applyInitAws, formatInitAwsReport, loadInitAwsConfig, planInitAws, runInitAwsCli, type InitAwsOptions, type InitAwsResult } from '../src/init-aws';
import { startSesSandbox, type SesSandbox } from '../src/sandbox';

const execFileAsync = promisify(execFile);

/** A tiny SNS endpoint: answers 200 and records every message body. */
interface Receiver {
  url: string;
  bodies: Record<string, string>[];
  waitFor(pred: (b: Record<string, string>) => boolean, timeoutMs?: number): Promise<Record<string, string>>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const bodies: Record<string, string>[] = [];
  let notify: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => {
      try {
        bodies.push(JSON.parse(data) as Record<string, string>);
      } catch {
        bodies.push({ raw: data });
      }
      res.writeHead(200).end();
      notify?.();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/sns`,
    bodies,
    async waitFor(pred, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = bodies.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`receiver: no matching message within ${timeoutMs} ms (got ${bodies.length})`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 100);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

let sandbox: SesSandbox;
let ses: SESv2Client;
let sns: SNSClient;
let receiver: Receiver;

beforeEach(async () => {
  sandbox = await startSesSandbox({ sns: { retries: 0, retryDelayMs: 10, timeoutMs: 2_000 } });
  ses = new SESv2Client({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
  sns = new SNSClient({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
  receiver = await startReceiver();
});

afterEach(async () => {
  ses.destroy();
  sns.destroy();
  await sandbox.close();
  await receiver.close();
});

function options(over: Partial<InitAwsOptions> = {}): InitAwsOptions {
  return { ses, sns, region: sandbox.region, configurationSetName: 'app', topicName: 'app-events', webhookUrl: receiver.url, allowHttp: true, ...over };
}

const actions = (r: InitAwsResult): string[] => r.steps.map((s) => `${s.action} ${s.resource}`);
const topicArn = (): string => `arn:aws:sns:${sandbox.region}:${sandbox.accountId}:app-events`;

async function destinations(name = 'app') {
  return (await ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: name }))).EventDestinations ?? [];
}

async function subscriptions(arn = topicArn()) {
  return (await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: arn }))).Subscriptions ?? [];
}

describe('init-aws against the SES sandbox', () => {
  it('first run creates everything; the webhook gets the confirmation; once confirmed, a second run reuses everything', async () => {
    const first = await applyInitAws(options());
    expect(actions(first)).toEqual(['create sns-topic', 'create configuration-set', 'create event-destination', 'create sns-subscription']);
    expect(first.dryRun).toBe(false);
    expect(first.topicArn).toBe(topicArn());
    expect(first.env).toEqual({ AWS_REGION: 'us-east-1', SES_CONFIGURATION_SET: 'app', SNS_ALLOWED_TOPIC_ARNS: topicArn() });
    expect(first.subscription).toEqual({ pendingConfirmation: true });

    // What the sandbox now holds, read back through the SDKs.
    const [dest] = await destinations();
    expect(dest?.Name).toBe('ses-lifecycle-sns');
    expect(dest?.Enabled).toBe(true);
    expect(dest?.SnsDestination?.TopicArn).toBe(topicArn());
    expect([...(dest?.MatchingEventTypes ?? [])].sort()).toEqual([...Object.values(EventType)].sort());
    expect(dest?.MatchingEventTypes).toEqual(expect.arrayContaining(['DELIVERY_DELAY', 'RENDERING_FAILURE', 'SUBSCRIPTION', 'OPEN', 'CLICK']));
    const subs = await subscriptions();
    expect(subs).toHaveLength(1);
    expect(subs[0]).toMatchObject({ Protocol: 'http', Endpoint: receiver.url, SubscriptionArn: 'PendingConfirmation' });

    // SNS's handshake: the webhook URL receives a signed SubscriptionConfirmation; confirm it.
    const confirmation = await receiver.waitFor((b) => b.Type === 'SubscriptionConfirmation');
    expect(confirmation.TopicArn).toBe(topicArn());
    const confirmed = await sns.send(new ConfirmSubscriptionCommand({ TopicArn: topicArn(), Token: confirmation.Token }));
    expect(confirmed.SubscriptionArn).toMatch(/^arn:aws:sns:/);

    const second = await applyInitAws(options());
    expect(actions(second)).toEqual(['reuse sns-topic', 'reuse configuration-set', 'reuse event-destination', 'reuse sns-subscription']);
    expect(second.subscription).toEqual({ arn: confirmed.SubscriptionArn, pendingConfirmation: false });
    expect(second.steps[3]?.detail).toContain('(confirmed)');
    expect(await destinations()).toHaveLength(1);
    expect(await subscriptions()).toHaveLength(1);

    // The plan after that is all reuse too, and the report names the variables to set.
    const plan = await planInitAws(options());
    expect(actions(plan)).toEqual(actions(second));
    const report = formatInitAwsReport(plan);
    expect(report).toContain(`SNS_ALLOWED_TOPIC_ARNS=${topicArn()}`);
    expect(report).toContain('dry run');
  });

  it('changing the event types is an update (planned without writing, then applied)', async () => {
    await applyInitAws(options());
    const fewer = [EventType.BOUNCE, EventType.COMPLAINT, EventType.DELIVERY];

    const plan = await planInitAws(options({ eventTypes: fewer }));
    expect(actions(plan)).toEqual(['reuse sns-topic', 'reuse configuration-set', 'update event-destination', 'reuse sns-subscription']);
    expect(plan.steps[2]?.detail).toMatch(/would update: types -/);
    expect((await destinations())[0]?.MatchingEventTypes).toHaveLength(ALL_EVENT_TYPES.length); // unchanged

    const applied = await applyInitAws(options({ eventTypes: fewer }));
    expect(actions(applied)).toEqual(actions(plan));
    expect([...((await destinations())[0]?.MatchingEventTypes ?? [])].sort()).toEqual([...fewer].sort());

    const back = await applyInitAws(options());
    expect(back.steps[2]).toMatchObject({ action: 'update', resource: 'event-destination' });
    expect(back.steps[2]?.detail).toContain('+');
    expect((await applyInitAws(options())).steps[2]?.action).toBe('reuse');
    expect(await destinations()).toHaveLength(1);
  });

  it('a dry run on a fresh sandbox plans four creations and writes nothing', async () => {
    const plan = await planInitAws(options());
    expect(plan.dryRun).toBe(true);
    expect(actions(plan)).toEqual(['create sns-topic', 'create configuration-set', 'create event-destination', 'create sns-subscription']);
    expect(plan.topicArn).toBe('arn:aws:sns:us-east-1:<account-id>:app-events');
    expect(plan.steps.every((s) => s.detail.startsWith('would '))).toBe(true);

    expect((await sns.send(new ListTopicsCommand({}))).Topics ?? []).toEqual([]);
    expect((await ses.send(new ListConfigurationSetsCommand({}))).ConfigurationSets ?? []).toEqual([]);
    await sandbox.waitForIdle(5_000);
    expect(sandbox.ledger()).toEqual([]);
    expect(receiver.bodies).toEqual([]);
  });

  it('a webhook that is not up yet leaves the subscription pending; a re-run asks SNS to send the confirmation again', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/sns`;
    const first = await applyInitAws(options({ webhookUrl: url }));
    expect(first.steps[3]).toMatchObject({ action: 'create', resource: 'sns-subscription' });
    expect(first.subscription.pendingConfirmation).toBe(true);
    expect(formatInitAwsReport(first)).toContain('pending confirmation');

    const second = await applyInitAws(options({ webhookUrl: url }));
    expect(actions(second)).toEqual(['reuse sns-topic', 'reuse configuration-set', 'reuse event-destination', 'reuse sns-subscription']);
    expect(second.steps[3]?.detail).toContain('PendingConfirmation');
    expect(second.subscription.pendingConfirmation).toBe(true);

    await sandbox.waitForIdle(10_000);
    const confirmations = sandbox.ledger().filter((e) => e.type === 'SubscriptionConfirmation' && e.endpoint === url);
    expect(confirmations).toHaveLength(2);
    expect(confirmations.every((e) => e.finalStatus === 'failed')).toBe(true);
    expect(await subscriptions()).toHaveLength(1);
  });

  it('adopts an existing destination that already publishes to the topic (as `ses-lifecycle dev` makes it): no duplicate events', async () => {
    await sandbox.createConfigurationSet('app', { webhookUrl: receiver.url, topicName: 'app-events' });
    const r = await applyInitAws(options());
    expect(actions(r)).toEqual(['reuse sns-topic', 'reuse configuration-set', 'reuse event-destination', 'reuse sns-subscription']);
    expect(r.eventDestinationName).toBe('sns');
    expect(await destinations()).toHaveLength(1);
  });

  it('refuses bad options before any AWS call', async () => {
    await expect(applyInitAws(options({ allowHttp: false }))).rejects.toThrow(/over https/);
    await expect(applyInitAws(options({ webhookUrl: 'ftp://example.com/sns' }))).rejects.toThrow(/must be https/);
    await expect(applyInitAws(options({ webhookUrl: 'not a url' }))).rejects.toThrow(/not an absolute URL/);
    await expect(applyInitAws(options({ eventTypes: ['SEND', 'NOPE' as EventType] }))).rejects.toThrow(/unknown SES event type\(s\): NOPE/);
    await expect(applyInitAws(options({ configurationSetName: 'bad name' }))).rejects.toThrow(/invalid configuration set name/);
    await expect(applyInitAws(options({ topicName: 'bad.name' }))).rejects.toThrow(/invalid SNS topic name/);
    await sandbox.waitForIdle(5_000);
    expect((await sns.send(new ListTopicsCommand({}))).Topics ?? []).toEqual([]);
  });

  it('names the failing operation when AWS refuses', async () => {
    // A configuration set whose destination points at a topic init-aws is not managing is fine,
    // but an unreachable endpoint must fail with the operation named.
    const dead = new SESv2Client({ region: 'us-east-1', endpoint: `http://127.0.0.1:${await closedPort()}`, credentials: sandbox.credentials, maxAttempts: 1 });
    const deadSns = new SNSClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${await closedPort()}`, credentials: sandbox.credentials, maxAttempts: 1 });
    try {
      await expect(planInitAws(options({ ses: dead, sns: deadSns }))).rejects.toThrow(/^ListTopics failed: .*ECONNREFUSED/);
    } finally {
      dead.destroy();
      deadSns.destroy();
    }
  });
});

describe('init-aws configuration', () => {
  it('runs in aws mode without SNS_ALLOWED_TOPIC_ARNS (it is what creates that topic), validating everything else', () => {
    const r = loadInitAwsConfig({ SES_LIFECYCLE_MODE: 'aws', AWS_REGION: 'eu-west-1' });
    expect(r.config.mode).toBe('aws');
    expect(r.config.aws.region).toBe('eu-west-1');
    expect(r.allowedTopicArns).toEqual([]);
    expect(() => loadInitAwsConfig({ SES_LIFECYCLE_MODE: 'aws', AWS_REGION: 'nowhere' })).toThrow(ConfigError);
    expect(() => loadInitAwsConfig({ SES_LIFECYCLE_MODE: 'aws', SNS_ALLOWED_TOPIC_ARNS: 'not-an-arn' })).toThrow(/SNS_ALLOWED_TOPIC_ARNS/);
    const set = loadInitAwsConfig({ SES_LIFECYCLE_MODE: 'aws', SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:x' });
    expect(set.allowedTopicArns).toEqual(['arn:aws:sns:us-east-1:123456789012:x']);
  });

  it('in aws mode the webhook URL must be https', async () => {
    await expect(runInitAwsCli({ webhookUrl: 'http://hooks.example.com/sns' }, { SES_LIFECYCLE_MODE: 'aws' }, () => undefined)).rejects.toThrow(/over https/);
  });

  it('runInitAwsCli in sandbox mode talks to the sandbox at SANDBOX_PORT and prints the plan, then the changes', async () => {
    const port = new URL(sandbox.endpoint).port;
    const out: string[] = [];
    const env = { SANDBOX_PORT: port, SES_CONFIGURATION_SET: 'cli-set' };
    const planned = await runInitAwsCli({ webhookUrl: receiver.url, dryRun: true }, env, (s) => out.push(s));
    expect(planned.steps.map((s) => s.action)).toEqual(['create', 'create', 'create', 'create']);
    expect(out.join('\n')).toContain('dry run');
    expect((await ses.send(new ListConfigurationSetsCommand({}))).ConfigurationSets ?? []).toEqual([]);

    const applied = await runInitAwsCli({ webhookUrl: receiver.url, json: true }, env, (s) => out.push(s));
    const printed = JSON.parse(out[out.length - 1] ?? '') as InitAwsResult;
    expect(printed).toEqual(applied);
    expect(applied.topicArn).toBe(`arn:aws:sns:us-east-1:${sandbox.accountId}:cli-set-events`);
    expect((await ses.send(new ListConfigurationSetsCommand({}))).ConfigurationSets).toEqual(['cli-set']);
  });

  it('a clear error when the sandbox is not running', async () => {
    const env = { SANDBOX_PORT: String(await closedPort()) };
    await expect(runInitAwsCli({ webhookUrl: receiver.url }, env, () => undefined)).rejects.toThrow(/cannot reach the local SES sandbox .*ses-lifecycle dev/);
  });
});

describe('ses-lifecycle init-aws (the CLI process)', () => {
  const bin = path.join(__dirname, '..', 'bin', 'ses-lifecycle.js');
  it('creates, then reuses, printing the steps and the SNS_ALLOWED_TOPIC_ARNS line', async () => {
    const port = new URL(sandbox.endpoint).port;
    const env = { ...process.env, SES_LIFECYCLE_MODE: 'sandbox', SANDBOX_PORT: port, SES_CONFIGURATION_SET: 'ses-lifecycle', AWS_REGION: 'us-east-1' };
    const run = (...args: string[]) => execFileAsync(process.execPath, [bin, 'init-aws', '--webhook-url', receiver.url, ...args], { env, timeout: 60_000 });

    const first = await run('--json');
    const r = JSON.parse(first.stdout) as InitAwsResult;
    expect(actions(r)).toEqual(['create sns-topic', 'create configuration-set', 'create event-destination', 'create sns-subscription']);

    const second = await run();
    expect(second.stdout).toMatch(/reuse\s+sns-topic/);
    expect(second.stdout).toMatch(/reuse\s+event-destination/);
    expect(second.stdout).toContain(`SNS_ALLOWED_TOPIC_ARNS=arn:aws:sns:us-east-1:${sandbox.accountId}:ses-lifecycle-events`);

    const help = await execFileAsync(process.execPath, [bin, 'init-aws', '--help'], { env });
    expect(help.stdout).toContain('--webhook-url');
    expect(help.stdout).toContain('--dry-run');

    const bad = await execFileAsync(process.execPath, [bin, 'init-aws', '--webhook-url', 'ftp://x/sns'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad.code).not.toBe(0);
    // One clear line (Node may print its own warnings around it), no stack trace.
    expect(bad.stderr).toMatch(/^ses-lifecycle: invalid webhook URL "ftp:\/\/x\/sns": must be https$/m);
    expect(bad.stderr).not.toMatch(/^\s+at /m);
  }, 90_000);
});
