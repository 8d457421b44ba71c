/**
 * `ses-lifecycle init-aws`: creates or reuses, idempotently, everything SES needs to publish a
 * message's events to our webhook: the SNS topic, the SES configuration set, its SNS event
 * destination (every SES event type, DeliveryDelay included) and the HTTPS subscription of the
 * webhook to the topic. With `--ingest sqs`, instead of the webhook subscription: an SQS queue
 * with a dead-letter queue (redrive policy), the queue policy letting the topic SendMessage, and
 * the topic's SQS subscription (read by `ses-lifecycle ingest-sqs`). {@link planInitAws} only reads (the `--dry-run` plan);
 * {@link applyInitAws} reads the same state and writes only what is missing or different.
 *
 * Works against real AWS (default credentials chain) and against the local SES sandbox, which
 * implements these SESv2 and SNS operations over their real wire formats.
 */
import {
  CreateConfigurationSetCommand,
  CreateConfigurationSetEventDestinationCommand,
  EventType,
  GetConfigurationSetCommand,
  GetConfigurationSetEventDestinationsCommand,
  NotFoundException,
  SESv2Client,
  UpdateConfigurationSetEventDestinationCommand,
  type EventDestinationDefinition,
} from '@aws-sdk/client-sesv2';
import { CreateTopicCommand, paginateListSubscriptionsByTopic, paginateListTopics, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { ConfigError, loadConfig, type Config } from './config';
import { queuePolicyAllows, SANDBOX_CREDENTIALS } from './sandbox';

/** Every SES event type (SESv2 `EventType`), DeliveryDelay, RenderingFailure and Subscription included. */
export const ALL_EVENT_TYPES: readonly EventType[] = Object.freeze([...Object.values(EventType)].sort());

/** Name of the event destination init-aws creates in the configuration set. */
export const DEFAULT_EVENT_DESTINATION_NAME = 'ses-lifecycle-sns';

/** Default SNS topic name for a configuration set (the same one `ses-lifecycle dev` uses). */
export function defaultTopicName(configurationSetName: string): string {
  return `${configurationSetName}-events`;
}

/** Options of {@link planInitAws} and {@link applyInitAws}. */
export interface InitAwsOptions {
  ses: SESv2Client;
  sns: SNSClient;
  /** AWS region of both clients (shown in the report; placeholder ARNs use it). */
  region: string;
  configurationSetName: string;
  topicName: string;
  /** Public URL of the webhook's SNS route, e.g. `https://hooks.example.com/sns`. Required for `ingest: 'webhook'`. */
  webhookUrl: string;
  /**
   * How events reach us: `webhook` (default: the topic's HTTPS subscription of `webhookUrl`) or
   * `sqs` (a queue subscribed to the topic, read by `ses-lifecycle ingest-sqs`): the queue, its
   * dead-letter queue with a redrive policy, the queue policy letting the topic SendMessage
   * (`aws:SourceArn` condition), and the SNS subscription.
   */
  ingest?: 'webhook' | 'sqs';
  /** SQS client (for `ingest: 'sqs'`). */
  sqs?: SQSClient;
  /** Queue name for `ingest: 'sqs'`. Default `<topic name>`; the dead-letter queue is `<queue>-dlq`. */
  queueName?: string;
  /** Receives before a message moves to the dead-letter queue. Default {@link DEFAULT_MAX_RECEIVE_COUNT}. */
  maxReceiveCount?: number;
  /** Accept an `http:` webhook URL (the local sandbox only; real SNS deliveries must use https). */
  allowHttp?: boolean;
  /** Event types to publish. Default {@link ALL_EVENT_TYPES}. */
  eventTypes?: readonly EventType[];
  /** Default {@link DEFAULT_EVENT_DESTINATION_NAME}. */
  eventDestinationName?: string;
}

/** The resources init-aws manages. */
export type InitAwsResource = 'sns-topic' | 'configuration-set' | 'event-destination' | 'sns-subscription' | 'sqs-dead-letter-queue' | 'sqs-queue' | 'sqs-queue-policy';

/** Receives of one message before SQS moves it to the dead-letter queue (init-aws `--ingest sqs`). */
export const DEFAULT_MAX_RECEIVE_COUNT = 10;
/** Retention of the queue and its dead-letter queue: SQS's maximum, 14 days. */
const RETENTION_SECONDS = String(14 * 24 * 3600);
/** Visibility timeout of the queue: well above one batch (10 events, 8 s Temporal deadline each, run at once). */
const VISIBILITY_TIMEOUT_SECONDS = '60';

/** One step of the plan or of what was done. */
export interface InitAwsStep {
  action: 'create' | 'reuse' | 'update';
  resource: InitAwsResource;
  /** ARN or name of the resource (a placeholder ARN when a dry run plans to create the topic). */
  id: string;
  detail: string;
}

/** What {@link planInitAws} would do or {@link applyInitAws} did. */
export interface InitAwsResult {
  dryRun: boolean;
  region: string;
  /** The topic ARN (for a dry run that would create the topic: `arn:aws:sns:<region>:<account-id>:<name>`). */
  topicArn: string;
  configurationSetName: string;
  eventDestinationName: string;
  eventTypes: EventType[];
  webhookUrl: string;
  subscription: {
    /** Known once SNS has confirmed the subscription. */
    arn?: string;
    /** True while the webhook has not confirmed (or, in a dry run, would not yet have confirmed). */
    pendingConfirmation: boolean;
  };
  /** In order: topic, configuration set, event destination, (SQS: dead-letter queue, queue, queue policy,) subscription. */
  steps: InitAwsStep[];
  /** How events are ingested. */
  ingest: 'webhook' | 'sqs';
  /** For `ingest: 'sqs'`: the queue `ses-lifecycle ingest-sqs --queue-url` reads (placeholders in a dry run that would create it). */
  queue?: { url: string; arn: string; deadLetterQueueUrl: string; deadLetterQueueArn: string; maxReceiveCount: number };
  /** The environment the worker and webhook need for these resources. */
  env: { AWS_REGION: string; SES_CONFIGURATION_SET: string; SNS_ALLOWED_TOPIC_ARNS: string };
}

const TOPIC_NAME = /^[A-Za-z0-9_-]{1,256}$/;
const CONFIG_SET_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates options; returns the normalized event types and the subscription protocol. */
function validate(opts: InitAwsOptions): { eventTypes: EventType[]; protocol: 'http' | 'https' | 'sqs'; destinationName: string } {
  if (!CONFIG_SET_NAME.test(opts.configurationSetName)) {
    throw new Error(`invalid configuration set name "${opts.configurationSetName}": 1-64 letters, digits, _ or -`);
  }
  if (!TOPIC_NAME.test(opts.topicName)) throw new Error(`invalid SNS topic name "${opts.topicName}": 1-256 letters, digits, _ or -`);
  const destinationName = opts.eventDestinationName ?? DEFAULT_EVENT_DESTINATION_NAME;
  if (!CONFIG_SET_NAME.test(destinationName)) throw new Error(`invalid event destination name "${destinationName}"`);
  const known = new Set<string>(Object.values(EventType));
  const types = [...new Set(opts.eventTypes ?? ALL_EVENT_TYPES)];
  const unknown = types.filter((t) => !known.has(t));
  if (unknown.length > 0) throw new Error(`unknown SES event type(s): ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  if (types.length === 0) throw new Error('at least one SES event type is required');
  if (opts.ingest === 'sqs') {
    if (!opts.sqs) throw new Error('ingest sqs needs an SQS client (option sqs)');
    const q = opts.queueName ?? opts.topicName;
    if (!/^[A-Za-z0-9_-]{1,76}$/.test(q)) throw new Error(`invalid SQS queue name "${q}": 1-76 letters, digits, _ or - (the dead-letter queue adds -dlq)`);
    const n = opts.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`invalid maxReceiveCount ${n}: an integer from 1 to 1000`);
    return { eventTypes: types.sort(), protocol: 'sqs', destinationName };
  }
  if (opts.ingest !== undefined && opts.ingest !== 'webhook') throw new Error(`invalid ingest "${String(opts.ingest)}": webhook or sqs`);
  let url: URL;
  try {
    url = new URL(opts.webhookUrl);
  } catch {
    throw new Error(`invalid webhook URL "${opts.webhookUrl}": not an absolute URL`);
  }
  let protocol: 'http' | 'https';
  if (url.protocol === 'https:') protocol = 'https';
  else if (url.protocol === 'http:' && opts.allowHttp) protocol = 'http';
  else if (url.protocol === 'http:') throw new Error(`invalid webhook URL "${opts.webhookUrl}": SNS must reach the webhook over https (http is accepted only for the local sandbox)`);
  else throw new Error(`invalid webhook URL "${opts.webhookUrl}": must be https`);
  return { eventTypes: types.sort(), protocol, destinationName };
}

/** An error naming the AWS operation that failed. */
function operationError(operation: string, err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  const name = e.name && e.name !== 'Error' ? e.name : typeof code === 'string' ? code : '';
  return new Error(`${operation} failed: ${name ? `${name}: ` : ''}${e.message || 'no message'}`, { cause: err });
}

/** Runs one AWS call, naming the operation in the error. */
async function call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw operationError(operation, err);
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

async function run(opts: InitAwsOptions, write: boolean): Promise<InitAwsResult> {
  const { eventTypes, protocol, destinationName } = validate(opts);
  const { ses, sns, region, configurationSetName, topicName, webhookUrl } = opts;
  const steps: InitAwsStep[] = [];

  // 1. SNS topic. CreateTopic is idempotent, but list first so the report (and a dry run) can
  // tell "create" from "reuse" without writing.
  let topicArn: string | undefined;
  await call('ListTopics', async () => {
    for await (const page of paginateListTopics({ client: sns }, {})) {
      for (const t of page.Topics ?? []) {
        if (t.TopicArn && t.TopicArn.split(':').pop() === topicName) topicArn = t.TopicArn;
      }
      if (topicArn) break;
    }
  });
  const topicExisted = topicArn !== undefined;
  if (topicArn) {
    steps.push({ action: 'reuse', resource: 'sns-topic', id: topicArn, detail: `topic ${topicName} exists` });
  } else if (write) {
    const created = await call('CreateTopic', () => sns.send(new CreateTopicCommand({ Name: topicName })));
    if (!created.TopicArn) throw new Error('CreateTopic returned no TopicArn');
    topicArn = created.TopicArn;
    steps.push({ action: 'create', resource: 'sns-topic', id: topicArn, detail: `created topic ${topicName}` });
  } else {
    topicArn = `arn:aws:sns:${region}:<account-id>:${topicName}`;
    steps.push({ action: 'create', resource: 'sns-topic', id: topicArn, detail: `would create topic ${topicName}` });
  }

  // 2. Configuration set.
  let configSetExisted = true;
  try {
    await ses.send(new GetConfigurationSetCommand({ ConfigurationSetName: configurationSetName }));
  } catch (err) {
    if (!(err instanceof NotFoundException)) throw operationError('GetConfigurationSet', err);
    configSetExisted = false;
  }
  if (configSetExisted) {
    steps.push({ action: 'reuse', resource: 'configuration-set', id: configurationSetName, detail: 'configuration set exists' });
  } else {
    if (write) await call('CreateConfigurationSet', () => ses.send(new CreateConfigurationSetCommand({ ConfigurationSetName: configurationSetName })));
    steps.push({ action: 'create', resource: 'configuration-set', id: configurationSetName, detail: `${write ? 'created' : 'would create'} configuration set` });
  }

  // 3. Event destination: ours by name, else one that already publishes to our topic (e.g. the
  // one `ses-lifecycle dev` made), so events are never published twice.
  const wanted: EventDestinationDefinition = { Enabled: true, MatchingEventTypes: eventTypes, SnsDestination: { TopicArn: topicArn } };
  const existing = configSetExisted
    ? ((await call('GetConfigurationSetEventDestinations', () => ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: configurationSetName })))).EventDestinations ?? [])
    : [];
  const found = existing.find((d) => d.Name === destinationName) ?? (topicExisted ? existing.find((d) => d.SnsDestination?.TopicArn === topicArn) : undefined);
  const typesText = sameSet(eventTypes, ALL_EVENT_TYPES) ? `all ${ALL_EVENT_TYPES.length} event types` : `types ${eventTypes.join(',')}`;
  if (!found) {
    if (write) {
      await call('CreateConfigurationSetEventDestination', () =>
        ses.send(new CreateConfigurationSetEventDestinationCommand({ ConfigurationSetName: configurationSetName, EventDestinationName: destinationName, EventDestination: wanted })),
      );
    }
    steps.push({ action: 'create', resource: 'event-destination', id: `${configurationSetName}/${destinationName}`, detail: `${write ? 'created' : 'would create'}: SNS ${topicName}, ${typesText}` });
  } else {
    const name = found.Name ?? destinationName;
    const have = (found.MatchingEventTypes ?? []) as string[];
    const diffs: string[] = [];
    if (found.Enabled !== true) diffs.push('enable it');
    if (found.SnsDestination?.TopicArn !== topicArn) diffs.push(`topic ${found.SnsDestination?.TopicArn ?? '(none)'} -> ${topicArn}`);
    if (!sameSet(have, eventTypes)) {
      const add = eventTypes.filter((t) => !have.includes(t));
      const remove = have.filter((t) => !(eventTypes as string[]).includes(t));
      diffs.push(`types${add.length ? ` +${add.join(',')}` : ''}${remove.length ? ` -${remove.join(',')}` : ''}`);
    }
    if (diffs.length === 0) {
      steps.push({ action: 'reuse', resource: 'event-destination', id: `${configurationSetName}/${name}`, detail: `SNS ${topicName}, ${typesText}` });
    } else {
      if (write) {
        await call('UpdateConfigurationSetEventDestination', () =>
          ses.send(new UpdateConfigurationSetEventDestinationCommand({ ConfigurationSetName: configurationSetName, EventDestinationName: name, EventDestination: wanted })),
        );
      }
      steps.push({ action: 'update', resource: 'event-destination', id: `${configurationSetName}/${name}`, detail: `${write ? 'updated' : 'would update'}: ${diffs.join('; ')}` });
    }
  }

  // 4 (SQS). Dead-letter queue, queue with its redrive policy, queue policy for the topic.
  let queue: InitAwsResult['queue'];
  let endpoint = webhookUrl;
  if (protocol === 'sqs') {
    queue = await ensureQueues(opts, topicArn, write, steps);
    endpoint = queue.arn;
  }

  // 5. The subscription: list first, subscribe only when absent (or still pending,
  // which makes SNS send the confirmation request again).
  let subArn: string | undefined;
  let subFound = false;
  if (topicExisted) {
    await call('ListSubscriptionsByTopic', async () => {
      for await (const page of paginateListSubscriptionsByTopic({ client: sns }, { TopicArn: topicArn })) {
        const s = (page.Subscriptions ?? []).find((x) => x.Protocol === protocol && x.Endpoint === endpoint);
        if (s) {
          subFound = true;
          subArn = s.SubscriptionArn;
          break;
        }
      }
    });
  }
  const isPending = (arn: string | undefined): boolean => arn === undefined || !arn.startsWith('arn:');
  let pending: boolean;
  if (subFound && !isPending(subArn)) {
    pending = false;
    steps.push({ action: 'reuse', resource: 'sns-subscription', id: subArn ?? '', detail: `${endpoint} (confirmed)` });
  } else if (subFound) {
    pending = true;
    if (write) await call('Subscribe', () => sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: protocol, Endpoint: endpoint })));
    steps.push({
      action: 'reuse',
      resource: 'sns-subscription',
      id: endpoint,
      detail: `PendingConfirmation; ${write ? 'confirmation request sent again' : 'apply sends the confirmation request again'}`,
    });
  } else {
    if (write) {
      const r = await call('Subscribe', () => sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: protocol, Endpoint: endpoint })));
      subArn = r.SubscriptionArn;
    }
    pending = !write || isPending(subArn);
    steps.push({
      action: 'create',
      resource: 'sns-subscription',
      id: pending ? endpoint : (subArn ?? endpoint),
      detail: write ? `subscribed ${endpoint}${pending ? '; PendingConfirmation until the webhook confirms' : ''}` : `would subscribe ${endpoint} (${protocol})`,
    });
  }

  return {
    dryRun: !write,
    region,
    topicArn,
    configurationSetName,
    eventDestinationName: found?.Name ?? destinationName,
    eventTypes,
    webhookUrl: protocol === 'sqs' ? '' : webhookUrl,
    subscription: { ...(pending || !subArn ? {} : { arn: subArn }), pendingConfirmation: pending },
    steps,
    ingest: protocol === 'sqs' ? 'sqs' : 'webhook',
    ...(queue ? { queue } : {}),
    env: { AWS_REGION: region, SES_CONFIGURATION_SET: configurationSetName, SNS_ALLOWED_TOPIC_ARNS: topicArn },
  };
}

/** The queue policy statement init-aws adds: the topic may SendMessage to the queue, nobody else through it. */
export function snsToSqsStatement(queueArn: string, topicArn: string): Record<string, unknown> {
  return { Sid: 'ses-lifecycle-sns', Effect: 'Allow', Principal: { Service: 'sns.amazonaws.com' }, Action: 'sqs:SendMessage', Resource: queueArn, Condition: { ArnEquals: { 'aws:SourceArn': topicArn } } };
}

/** Looks a queue up by name: its URL and attributes, or undefined when it does not exist. */
async function findQueue(sqs: SQSClient, name: string): Promise<{ url: string; attributes: Record<string, string> } | undefined> {
  let url: string | undefined;
  try {
    url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (err) {
    if (err instanceof QueueDoesNotExist || (err instanceof Error && /NonExistentQueue|QueueDoesNotExist/.test(err.name))) return undefined;
    throw operationError('GetQueueUrl', err);
  }
  if (url === undefined) return undefined;
  const u = url;
  const a = await call('GetQueueAttributes', () => sqs.send(new GetQueueAttributesCommand({ QueueUrl: u, AttributeNames: ['All'] })));
  return { url, attributes: a.Attributes ?? {} };
}

async function ensureQueues(opts: InitAwsOptions, topicArn: string, write: boolean, steps: InitAwsStep[]): Promise<NonNullable<InitAwsResult['queue']>> {
  const sqs = opts.sqs as SQSClient;
  const name = opts.queueName ?? opts.topicName;
  const dlqName = `${name}-dlq`;
  const maxReceiveCount = opts.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
  const placeholder = (n: string) => ({ url: `https://sqs.${opts.region}.amazonaws.com/<account-id>/${n}`, arn: `arn:aws:sqs:${opts.region}:<account-id>:${n}` });
  const arnOf = async (url: string): Promise<string> => {
    const a = await call('GetQueueAttributes', () => sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })));
    const arn = a.Attributes?.QueueArn;
    if (!arn) throw new Error(`GetQueueAttributes returned no QueueArn for ${url}`);
    return arn;
  };
  const create = async (n: string, attributes: Record<string, string>): Promise<{ url: string; arn: string }> => {
    const r = await call('CreateQueue', () => sqs.send(new CreateQueueCommand({ QueueName: n, Attributes: attributes })));
    if (!r.QueueUrl) throw new Error('CreateQueue returned no QueueUrl');
    return { url: r.QueueUrl, arn: await arnOf(r.QueueUrl) };
  };

  // Dead-letter queue.
  let dlq: { url: string; arn: string };
  const foundDlq = await findQueue(sqs, dlqName);
  if (foundDlq) {
    dlq = { url: foundDlq.url, arn: foundDlq.attributes.QueueArn ?? (await arnOf(foundDlq.url)) };
    steps.push({ action: 'reuse', resource: 'sqs-dead-letter-queue', id: dlq.arn, detail: `queue ${dlqName} exists` });
  } else {
    dlq = write ? await create(dlqName, { MessageRetentionPeriod: RETENTION_SECONDS }) : placeholder(dlqName);
    steps.push({ action: 'create', resource: 'sqs-dead-letter-queue', id: dlq.arn, detail: `${write ? 'created' : 'would create'} queue ${dlqName} (14-day retention)` });
  }

  // Queue with its redrive policy.
  const redrive = JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount });
  let queue: { url: string; arn: string };
  const found = await findQueue(sqs, name);
  let policy: string | undefined;
  if (found) {
    queue = { url: found.url, arn: found.attributes.QueueArn ?? (await arnOf(found.url)) };
    policy = found.attributes.Policy;
    let have: { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown } = {};
    try {
      have = JSON.parse(found.attributes.RedrivePolicy ?? '{}') as typeof have;
    } catch {
      // unreadable: replaced below
    }
    if (have.deadLetterTargetArn === dlq.arn && Number(have.maxReceiveCount) === maxReceiveCount) {
      steps.push({ action: 'reuse', resource: 'sqs-queue', id: queue.arn, detail: `queue ${name} exists, redrive to ${dlqName} after ${maxReceiveCount} receives` });
    } else {
      if (write) await call('SetQueueAttributes', () => sqs.send(new SetQueueAttributesCommand({ QueueUrl: queue.url, Attributes: { RedrivePolicy: redrive } })));
      steps.push({ action: 'update', resource: 'sqs-queue', id: queue.arn, detail: `${write ? 'set' : 'would set'} redrive policy: ${dlqName} after ${maxReceiveCount} receives` });
    }
  } else {
    queue = write ? await create(name, { MessageRetentionPeriod: RETENTION_SECONDS, VisibilityTimeout: VISIBILITY_TIMEOUT_SECONDS, ReceiveMessageWaitTimeSeconds: '20', RedrivePolicy: redrive }) : placeholder(name);
    steps.push({ action: 'create', resource: 'sqs-queue', id: queue.arn, detail: `${write ? 'created' : 'would create'} queue ${name}: 14-day retention, visibility ${VISIBILITY_TIMEOUT_SECONDS} s, redrive to ${dlqName} after ${maxReceiveCount} receives` });
  }

  // Queue policy: the topic may SendMessage (aws:SourceArn); other statements are kept.
  if (found && queuePolicyAllows(policy, queue.arn, topicArn)) {
    steps.push({ action: 'reuse', resource: 'sqs-queue-policy', id: queue.arn, detail: `allows ${topicArn} to SendMessage` });
  } else {
    let statements: unknown[] = [];
    if (policy) {
      try {
        const p = JSON.parse(policy) as { Statement?: unknown };
        statements = (Array.isArray(p.Statement) ? p.Statement : p.Statement !== undefined ? [p.Statement] : []).filter((st) => (st as { Sid?: unknown }).Sid !== 'ses-lifecycle-sns');
      } catch {
        statements = [];
      }
    }
    const doc = JSON.stringify({ Version: '2012-10-17', Statement: [...statements, snsToSqsStatement(queue.arn, topicArn)] });
    if (write) await call('SetQueueAttributes', () => sqs.send(new SetQueueAttributesCommand({ QueueUrl: queue.url, Attributes: { Policy: doc } })));
    steps.push({ action: found && policy ? 'update' : 'create', resource: 'sqs-queue-policy', id: queue.arn, detail: `${write ? 'allowed' : 'would allow'} sns.amazonaws.com SendMessage where aws:SourceArn = ${topicArn}` });
  }
  return { url: queue.url, arn: queue.arn, deadLetterQueueUrl: dlq.url, deadLetterQueueArn: dlq.arn, maxReceiveCount };
}

/**
 * Reads the current state and returns what {@link applyInitAws} would do. Makes no writes.
 *
 * @throws for invalid options (naming the option) or a failed read (naming the operation).
 */
export function planInitAws(opts: InitAwsOptions): Promise<InitAwsResult> {
  return run(opts, false);
}

/**
 * Creates what is missing and updates what differs; reuses the rest. Safe to run again.
 *
 * @throws for invalid options or a failed AWS call (the message names the operation).
 */
export function applyInitAws(opts: InitAwsOptions): Promise<InitAwsResult> {
  return run(opts, true);
}

/** Renders a result as the human-readable report `init-aws` prints. */
export function formatInitAwsReport(r: InitAwsResult): string {
  const header = ['action', 'resource', 'id', 'detail'];
  const rows = r.steps.map((s) => [s.action, s.resource, s.id, s.detail]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd();
  const out = [
    `init-aws ${r.dryRun ? 'plan (dry run: nothing was changed)' : 'done'} - region ${r.region}, configuration set ${r.configurationSetName}`,
    line(header),
    ...rows.map(line),
    '',
    'Set these for the worker and the webhook:',
    `  AWS_REGION=${r.env.AWS_REGION}`,
    `  SES_CONFIGURATION_SET=${r.env.SES_CONFIGURATION_SET}`,
    `  SNS_ALLOWED_TOPIC_ARNS=${r.env.SNS_ALLOWED_TOPIC_ARNS}`,
  ];
  if (r.queue) {
    out.push(
      '',
      'Then run the SQS consumer (beside or instead of the webhook):',
      `  ses-lifecycle ingest-sqs --queue-url ${r.queue.url}`,
      `Messages that fail ${r.queue.maxReceiveCount} times move to ${r.queue.deadLetterQueueArn}.`,
    );
  } else if (r.subscription.pendingConfirmation && !r.dryRun) {
    out.push(
      '',
      `The subscription of ${r.webhookUrl} is pending confirmation. Run the webhook (ses-lifecycle webhook) with`,
      'SNS_ALLOWED_TOPIC_ARNS set as above and reachable at that URL: it confirms the SubscriptionConfirmation',
      'automatically. Then run init-aws again: it reports "(confirmed)", or asks SNS to send the confirmation again.',
    );
  }
  return out.join('\n');
}

/** Options of the `init-aws` command. */
export interface InitAwsCliOptions {
  /** Required unless `ingest` is `sqs`. */
  webhookUrl?: string;
  ingest?: string;
  queueName?: string;
  /** SQS API endpoint (sandbox mode: the local SQS; aws mode: default AWS). */
  sqsEndpoint?: string;
  topicName?: string;
  configurationSet?: string;
  dryRun?: boolean;
  json?: boolean;
}

const PLACEHOLDER_TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:init-aws-placeholder';

/**
 * Loads the config for `init-aws`. In aws mode the webhook requires SNS_ALLOWED_TOPIC_ARNS, but
 * init-aws is what creates that topic: it runs without it (and warns when it is set without the
 * topic). Every other variable is validated as usual.
 *
 * @throws {ConfigError} naming the first invalid variable.
 */
export function loadInitAwsConfig(env: Record<string, string | undefined>): { config: Readonly<Config>; allowedTopicArns: readonly string[] } {
  try {
    const config = loadConfig(env);
    return { config, allowedTopicArns: config.webhook.allowedTopicArns };
  } catch (err) {
    if (!(err instanceof ConfigError) || err.variable !== 'SNS_ALLOWED_TOPIC_ARNS' || (env.SNS_ALLOWED_TOPIC_ARNS ?? '') !== '') throw err;
    return { config: loadConfig({ ...env, SNS_ALLOWED_TOPIC_ARNS: PLACEHOLDER_TOPIC_ARN }), allowedTopicArns: [] };
  }
}

/**
 * The `init-aws` command: SES and SNS clients from the config (sandbox mode: the local sandbox
 * at `SANDBOX_PORT`, signed with its default `SANDBOX_CREDENTIALS`; aws mode: the default AWS
 * credentials chain), then the plan (`--dry-run`) or the changes, printed as a table or JSON.
 *
 * @throws on invalid configuration or options, or a failed AWS call.
 */
export async function runInitAwsCli(o: InitAwsCliOptions, env: Record<string, string | undefined> = process.env, print: (s: string) => void = (s) => console.log(s)): Promise<InitAwsResult> {
  const { config, allowedTopicArns } = loadInitAwsConfig(env);
  const sandbox = config.mode === 'sandbox';
  const region = config.aws.region;
  const local = sandbox ? { endpoint: `http://127.0.0.1:${config.sandbox.port}`, credentials: { ...SANDBOX_CREDENTIALS } } : undefined;
  const ses = new SESv2Client({ region, ...(local ?? (config.aws.sesEndpoint ? { endpoint: config.aws.sesEndpoint } : {})) });
  const sns = new SNSClient({ region, ...(local ?? {}) });
  const ingest = o.ingest ?? 'webhook';
  if (ingest !== 'webhook' && ingest !== 'sqs') throw new Error(`invalid --ingest ${ingest}: webhook or sqs`);
  if (ingest === 'webhook' && o.webhookUrl === undefined) throw new Error('--webhook-url is required (or use --ingest sqs)');
  if (ingest === 'sqs' && sandbox && o.sqsEndpoint === undefined) throw new Error('--sqs-endpoint is required in sandbox mode (the local SQS the sandbox delivers to)');
  const sqs = ingest === 'sqs' ? new SQSClient({ region, ...(sandbox ? { credentials: { ...SANDBOX_CREDENTIALS } } : {}), ...(o.sqsEndpoint !== undefined ? { endpoint: o.sqsEndpoint } : {}) }) : undefined;
  const configurationSetName = o.configurationSet ?? config.aws.configurationSetName;
  try {
    const opts: InitAwsOptions = {
      ses,
      sns,
      region,
      configurationSetName,
      topicName: o.topicName ?? defaultTopicName(configurationSetName),
      webhookUrl: o.webhookUrl ?? '',
      allowHttp: sandbox,
      ingest,
      ...(sqs ? { sqs } : {}),
      ...(o.queueName !== undefined ? { queueName: o.queueName } : {}),
    };
    let result: InitAwsResult;
    try {
      result = o.dryRun ? await planInitAws(opts) : await applyInitAws(opts);
    } catch (err) {
      if (sandbox && /ECONNREFUSED/.test(String((err as Error).message) + String(((err as Error).cause as Error | undefined)?.message))) {
        throw new Error(`cannot reach the local SES sandbox at ${local?.endpoint ?? ''} (is \`ses-lifecycle dev\` running? For real AWS set SES_LIFECYCLE_MODE=aws)`, { cause: err });
      }
      throw err;
    }
    if (o.json) {
      print(JSON.stringify(result, null, 2));
    } else {
      print(formatInitAwsReport(result));
      if (allowedTopicArns.length > 0 && !allowedTopicArns.includes(result.topicArn) && !result.dryRun) {
        print(`\nwarning: SNS_ALLOWED_TOPIC_ARNS is set but does not include ${result.topicArn}: the webhook would refuse its notifications.`);
      }
    }
    return result;
  } finally {
    ses.destroy();
    sns.destroy();
    sqs?.destroy();
  }
}
