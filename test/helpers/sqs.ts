/**
 * A real SQS for tests: moto's server (scripts/moto.ts; installed by `npm run sqs:install`, or
 * here on first use), plus queue helpers over the real `@aws-sdk/client-sqs`.
 *
 * Where moto cannot be installed (no python3, no PyPI), {@link motoOrWarn} prints a WARNING and
 * returns undefined, and the SQS tests skip, like the other optional tiers.
 */
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { ensureMoto, startMoto, type MotoInstall, type MotoServer } from '../../scripts/moto';

/** moto installed (or installable), else undefined after a WARNING. */
export async function motoOrWarn(): Promise<MotoInstall | undefined> {
  try {
    return await ensureMoto({ log: (m) => console.error(`[sqs tests] ${m}`) });
  } catch (err) {
    console.error(`WARNING: moto (a real SQS) is not available, the SQS tests skip: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

export { startMoto, type MotoServer };

/** An SQS client for moto (any credentials work there; the sandbox's are used for clarity). */
export function sqsClient(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }, region = 'us-east-1'): SQSClient {
  return new SQSClient({ region, endpoint, credentials });
}

/** A queue with a dead-letter queue (redrive after `maxReceiveCount` receives) and a policy allowing `topicArn`. */
export interface TestQueue {
  url: string;
  arn: string;
  dlqUrl: string;
  dlqArn: string;
}

/** The queue policy that lets `topicArn` SendMessage to `queueArn` (what init-aws sets). */
export function topicPolicy(queueArn: string, topicArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'sns', Effect: 'Allow', Principal: { Service: 'sns.amazonaws.com' }, Action: 'sqs:SendMessage', Resource: queueArn, Condition: { ArnEquals: { 'aws:SourceArn': topicArn } } }],
  });
}

export async function createTestQueue(sqs: SQSClient, name: string, o: { topicArn?: string; visibilityTimeout?: number; maxReceiveCount?: number } = {}): Promise<TestQueue> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(o.visibilityTimeout ?? 2),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: o.maxReceiveCount ?? 5 }),
      },
    }),
  );
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  if (o.topicArn !== undefined) await sqs.send(new SetQueueAttributesCommand({ QueueUrl: q.QueueUrl, Attributes: { Policy: topicPolicy(arn, o.topicArn) } }));
  return { url: q.QueueUrl!, arn, dlqUrl: dlq.QueueUrl!, dlqArn };
}

/** Messages in the queue: visible + in flight + delayed. */
export async function queueDepth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number; total: number }> {
  const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }))).Attributes ?? {};
  const visible = Number(a.ApproximateNumberOfMessages ?? 0);
  const inFlight = Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
  return { visible, inFlight, total: visible + inFlight + Number(a.ApproximateNumberOfMessagesDelayed ?? 0) };
}
