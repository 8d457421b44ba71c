/**
 * SNS HTTP(S) delivery: posts messages to subscribers with SNS's retry policy and records every
 * attempt in the ledger.
 *
 * - 2xx → delivered. 5xx, connection error or timeout → retried `retries` times, `retryDelayMs`
 *   apart, with the very same body (same MessageId, Timestamp and signature). Any other status
 *   (4xx, and 1xx/3xx which SNS does not follow) → failed, never retried.
 * - SQS subscriptions (endpoint = queue ARN) go through {@link SqsSender} under the same policy:
 *   an SQS error or timeout is retried, a refusal (queue policy, no such queue) is final.
 * - Posts run concurrently, at most `maxInFlight` at a time; the rest wait in a FIFO queue.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { SqsSender } from './sqs-delivery';
import type { DeliveryAttempt, LedgerEntry, SandboxLogger } from './types';
import { TimerSet, type WorkTracker } from './util';

/** Resolved delivery policy. */
export interface DeliveryPolicy {
  retries: number;
  retryDelayMs: number;
  timeoutMs: number;
  maxInFlight: number;
}

/** One ledger entry plus what is needed to (re)post it. */
interface Job {
  entry: LedgerEntry;
  /** HTTP(S) subscriptions: the endpoint URL; SQS subscriptions: undefined (the endpoint is the queue ARN). */
  url: URL | undefined;
  body: string;
  headers: Record<string, string>;
}

const USER_AGENT = 'Amazon Simple Notification Service Agent';
const WORK_KIND = 'sns-delivery';

/** Delivers SNS messages to HTTP(S) subscribers and keeps the ledger. */
export class SnsDelivery {
  private readonly entries: LedgerEntry[] = [];
  private readonly queue: Job[] = [];
  private inFlight = 0;
  private readonly active = new Set<http.ClientRequest>();
  private readonly timers = new TimerSet();
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private closed = false;

  constructor(
    private readonly policy: DeliveryPolicy,
    private readonly work: WorkTracker,
    private readonly logger: SandboxLogger | undefined,
    caCertPem: string,
    /** SQS subscriptions (Protocol `sqs`) are delivered through it; none when the sandbox has no SQS endpoint. */
    private readonly sqs?: SqsSender,
  ) {
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: policy.maxInFlight });
    // Subscribers on https may use a public CA or the sandbox's own one.
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: policy.maxInFlight, ca: [...tls.rootCertificates, caCertPem] });
  }

  /** Copies of every ledger entry, oldest first. */
  ledger(): LedgerEntry[] {
    return structuredClone(this.entries);
  }

  /**
   * Records a message that could not be sent to any subscription (e.g. no confirmed one) as a
   * failed ledger entry, so nothing disappears silently.
   */
  recordUndeliverable(entry: Omit<LedgerEntry, 'deliveries' | 'finalStatus' | 'failureReason'>, reason: string): void {
    this.entries.push({ ...entry, deliveries: [], finalStatus: 'failed', failureReason: reason });
    this.logger?.warn({ snsMessageId: entry.snsMessageId, topicArn: entry.topicArn, eventType: entry.eventType, reason }, 'sns message not delivered');
  }

  /**
   * Adds a ledger entry and queues its delivery to `endpoint`.
   *
   * @param body the exact HTTP body (envelope JSON, or the bare Message for raw delivery).
   */
  enqueue(entry: Omit<LedgerEntry, 'deliveries' | 'finalStatus' | 'failureReason'>, body: string): void {
    const full: LedgerEntry = { ...entry, deliveries: [], finalStatus: 'pending' };
    this.entries.push(full);
    if (this.closed || entry.endpoint === null) {
      full.finalStatus = 'failed';
      full.failureReason = this.closed ? 'sandbox closed' : 'no endpoint';
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'text/plain; charset=UTF-8',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': USER_AGENT,
      'x-amz-sns-message-type': entry.type,
      'x-amz-sns-message-id': entry.snsMessageId,
      'x-amz-sns-topic-arn': entry.topicArn,
    };
    if (entry.type !== 'SubscriptionConfirmation' && entry.subscriptionArn !== null) {
      headers['x-amz-sns-subscription-arn'] = entry.subscriptionArn;
    }
    if (entry.rawMessageDelivery) headers['x-amz-sns-rawdelivery'] = 'true';
    const toSqs = entry.endpoint.startsWith('arn:');
    if (toSqs && !this.sqs) {
      full.finalStatus = 'failed';
      full.failureReason = 'no SQS endpoint configured (SandboxOptions.sqs)';
      return;
    }
    this.work.begin(WORK_KIND);
    this.queue.push({ entry: full, url: toSqs ? undefined : new URL(entry.endpoint), body, headers });
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.policy.maxInFlight && this.queue.length > 0) {
      const job = this.queue.shift() as Job;
      this.inFlight++;
      void this.attempt(job).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async attempt(job: Job): Promise<void> {
    const started = Date.now();
    const result = job.url === undefined ? await (this.sqs as SqsSender).send(job.entry.endpoint ?? '', job.entry.topicArn, job.body, this.policy.timeoutMs) : await this.post(job, job.url);
    const attempt: DeliveryAttempt = { at: new Date(started).toISOString(), durationMs: Date.now() - started, ...result };
    job.entry.deliveries.push(attempt);
    const status = result.statusCode;
    const log = { snsMessageId: job.entry.snsMessageId, type: job.entry.type, eventType: job.entry.eventType, endpoint: job.entry.endpoint, attempt: job.entry.deliveries.length, ...result };
    if (status !== undefined && status >= 200 && status < 300) {
      this.finish(job, 'delivered');
      this.logger?.debug(log, 'sns message delivered');
      return;
    }
    const retryable = status === undefined || status >= 500;
    if (this.closed) {
      this.finish(job, 'failed', 'sandbox closed');
    } else if (!retryable) {
      this.finish(job, 'failed', `HTTP ${status} (not retried)`);
      this.logger?.warn(log, 'sns message rejected by subscriber');
    } else if (job.entry.deliveries.length > this.policy.retries) {
      this.finish(job, 'failed', `gave up after ${job.entry.deliveries.length} attempts`);
      this.logger?.warn(log, 'sns message delivery failed');
    } else {
      this.logger?.debug(log, 'sns message delivery will be retried');
      this.timers.schedule(this.policy.retryDelayMs, () => {
        if (this.closed) return;
        this.queue.push(job);
        this.pump();
      });
    }
  }

  private finish(job: Job, status: 'delivered' | 'failed', reason?: string): void {
    if (job.entry.finalStatus !== 'pending') return;
    job.entry.finalStatus = status;
    if (reason !== undefined) job.entry.failureReason = reason;
    this.work.end(WORK_KIND);
  }

  private post(job: Job, url: URL): Promise<{ statusCode?: number; error?: string }> {
    return new Promise((resolve) => {
      const isHttps = url.protocol === 'https:';
      const request = (isHttps ? https : http).request(url, {
        method: 'POST',
        headers: job.headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
      });
      this.active.add(request);
      let settled = false;
      const done = (r: { statusCode?: number; error?: string }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.active.delete(request);
        resolve(r);
      };
      const timer = setTimeout(() => {
        done({ error: 'timeout' });
        request.destroy();
      }, this.policy.timeoutMs);
      request.on('response', (res) => {
        // Drain (and ignore) the body so the connection can be reused.
        res.resume();
        res.on('error', () => undefined);
        done({ statusCode: res.statusCode ?? 0 });
      });
      request.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }));
      request.end(job.body);
    });
  }

  /** Cancels retries, aborts in-flight posts and marks pending entries failed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.close();
    for (const r of this.active) r.destroy(new Error('sandbox closed'));
    this.active.clear();
    for (const e of this.entries) {
      if (e.finalStatus === 'pending') {
        e.finalStatus = 'failed';
        e.failureReason = 'sandbox closed';
        this.work.end(WORK_KIND);
      }
    }
    this.queue.length = 0;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.sqs?.close();
  }
}
