/**
 * SNS → SQS delivery of the sandbox: what SNS does for a subscription with Protocol `sqs`
 * (Endpoint = queue ARN). The message goes to a real SQS API (`SandboxOptions.sqs.endpoint`, e.g.
 * moto's server) through `@aws-sdk/client-sqs` SendMessage. The body is the signed SNS envelope
 * JSON, or with `RawMessageDelivery=true` the Message itself, as SNS sends it.
 *
 * As SNS, the sandbox delivers only when the queue's policy lets `sns.amazonaws.com` SendMessage
 * for that topic (an Allow statement whose `aws:SourceArn` condition, if any, matches the topic):
 * a queue without that policy receives nothing, and the ledger says why.
 */
import { GetQueueAttributesCommand, GetQueueUrlCommand, QueueDoesNotExist, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

/** SQS side of the sandbox. */
export interface SandboxSqsOptions {
  /** SQS API endpoint for queue ARNs of the sandbox's region and account, e.g. `http://127.0.0.1:5000`. */
  endpoint: string;
  /** Credentials for that endpoint. Default: the sandbox's own. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** `arn:aws:sqs:<region>:<account>:<name>`. */
export const QUEUE_ARN = /^arn:aws(-cn|-us-gov)?:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(\.fifo)?)$/;

/** Result of one send, in the ledger's shape (a status for permanent answers, an error for retryable ones). */
export interface SqsSendResult {
  statusCode?: number;
  error?: string;
}

interface Statement {
  Effect?: unknown;
  Principal?: unknown;
  Action?: unknown;
  Resource?: unknown;
  Condition?: unknown;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(value);
}

function principalIsSns(p: unknown): boolean {
  if (p === '*') return true;
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  return list(o.Service).includes('sns.amazonaws.com') || list(o.AWS).includes('*');
}

function conditionAllows(cond: unknown, topicArn: string): boolean {
  if (cond === undefined) return true;
  if (typeof cond !== 'object' || cond === null) return false;
  for (const [op, body] of Object.entries(cond as Record<string, unknown>)) {
    if (typeof body !== 'object' || body === null) return false;
    for (const [key, values] of Object.entries(body as Record<string, unknown>)) {
      if (key.toLowerCase() !== 'aws:sourcearn') return false; // a condition the sandbox cannot evaluate: not allowed
      const vs = list(values).filter((v): v is string => typeof v === 'string');
      const ok = op === 'ArnEquals' || op === 'StringEquals' ? vs.includes(topicArn) : op === 'ArnLike' || op === 'StringLike' ? vs.some((v) => globMatch(v, topicArn)) : false;
      if (!ok) return false;
    }
  }
  return true;
}

/**
 * True when the queue policy (JSON) allows SNS topic `topicArn` to SendMessage to `queueArn`.
 * Deny statements and unknown condition keys are conservative: they never allow.
 */
export function queuePolicyAllows(policyJson: string | undefined, queueArn: string, topicArn: string): boolean {
  if (policyJson === undefined || policyJson === '') return false;
  let policy: { Statement?: unknown };
  try {
    policy = JSON.parse(policyJson) as { Statement?: unknown };
  } catch {
    return false;
  }
  const statements = list(policy.Statement) as Statement[];
  const matches = (s: Statement): boolean =>
    principalIsSns(s.Principal) &&
    list(s.Action).some((a) => typeof a === 'string' && ['sqs:sendmessage', 'sqs:*', '*'].includes(a.toLowerCase())) &&
    list(s.Resource).some((r) => typeof r === 'string' && globMatch(r, queueArn)) &&
    conditionAllows(s.Condition, topicArn);
  if (statements.some((s) => s.Effect === 'Deny' && matches(s))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s));
}

/** Sends SNS messages to SQS queues named by ARN. */
export class SqsSender {
  private readonly client: SQSClient;
  private readonly urls = new Map<string, string>();

  constructor(opts: SandboxSqsOptions & { region: string; defaultCredentials: { accessKeyId: string; secretAccessKey: string } }) {
    this.client = new SQSClient({ region: opts.region, endpoint: opts.endpoint, credentials: { ...(opts.credentials ?? opts.defaultCredentials) }, maxAttempts: 1 });
  }

  /** Sends `body` to the queue `queueArn` on behalf of `topicArn`. Never throws. */
  async send(queueArn: string, topicArn: string, body: string, timeoutMs: number): Promise<SqsSendResult> {
    const m = QUEUE_ARN.exec(queueArn);
    if (!m) return { statusCode: 400 };
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      let url = this.urls.get(queueArn);
      if (url === undefined) {
        url = (await this.client.send(new GetQueueUrlCommand({ QueueName: m[4], QueueOwnerAWSAccountId: m[3] }), { abortSignal: signal })).QueueUrl;
        if (url === undefined) return { error: 'GetQueueUrl returned no QueueUrl' };
        this.urls.set(queueArn, url);
      }
      const attrs = await this.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['Policy'] }), { abortSignal: signal });
      if (!queuePolicyAllows(attrs.Attributes?.Policy, queueArn, topicArn)) return { statusCode: 403, error: 'queue policy does not allow sns.amazonaws.com to SendMessage from this topic' };
      await this.client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }), { abortSignal: signal });
      return { statusCode: 200 };
    } catch (err) {
      if (err instanceof QueueDoesNotExist || (err instanceof Error && /NonExistentQueue|QueueDoesNotExist/.test(err.name))) {
        this.urls.delete(queueArn);
        return { statusCode: 404, error: 'queue does not exist' };
      }
      const e = err as { name?: string; code?: string; message?: string };
      return { error: signal.aborted ? 'timeout' : (e.code ?? e.name ?? e.message ?? 'error') };
    }
  }

  close(): void {
    this.client.destroy();
  }
}
