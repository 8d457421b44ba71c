/**
 * The SNS side of the sandbox: topics, HTTP(S) subscriptions with the real confirmation
 * handshake, and publishing signed messages (see `sns-delivery.ts` for the HTTP part).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SnsApiError } from './errors';
import { buildSignedSnsMessage, type SnsMessage, type SnsSignatureVersion, type UnsignedSnsMessage } from './sns-signing';
import type { SnsDelivery } from './sns-delivery';
import { QUEUE_ARN } from './sqs-delivery';
import type { LedgerEntry, SandboxEventType, SandboxLogger } from './types';

/** An SNS topic. */
export interface Topic {
  arn: string;
  name: string;
  displayName: string;
  createdAt: number;
  subscriptions: Map<string, Subscription>;
  deletedSubscriptions: number;
  /** How messages of this topic are signed: topic attribute `SignatureVersion` (SNS default `1`). */
  signatureVersion: SnsSignatureVersion;
}

/** An HTTP(S) subscription, or an SQS one (endpoint = queue ARN, confirmed at once as SNS does for the same account). */
export interface Subscription {
  arn: string;
  topicArn: string;
  protocol: 'http' | 'https' | 'sqs';
  endpoint: string;
  confirmed: boolean;
  rawMessageDelivery: boolean;
  /** Tokens that confirm this subscription (each confirmation message carries a new one). */
  tokens: Set<string>;
}

/** What the sandbox knows about a published message, for the ledger. */
export interface PublishMeta {
  eventType: SandboxEventType | null;
  sesMessageId: string | null;
  recipients: string[];
}

/** Configuration of {@link SnsService}. */
export interface SnsServiceConfig {
  region: string;
  accountId: string;
  /**
   * `httpsOrigin` (`https://localhost:PORT`, base of SubscribeURL and UnsubscribeURL) and the
   * SigningCertURL. Read at use: the sandbox fills them in once its HTTPS port is known.
   */
  urls: { readonly httpsOrigin: string; readonly signingCertUrl: string };
  signingKeyPem: string;
  /** SignatureVersion of topics created without that attribute (SNS: `1`). */
  signatureVersion: SnsSignatureVersion;
  /** Chaos: probability of an extra delivery of the same message. */
  duplicateProbability: number;
  rand: () => number;
  logger: SandboxLogger | undefined;
  /** Whether `sqs` subscriptions can be delivered (the sandbox has an SQS endpoint). */
  sqsEnabled: boolean;
}

const TOPIC_NAME = /^[A-Za-z0-9_-]{1,256}$/;

/** Topics, subscriptions and publishing. All methods throw {@link SnsApiError} on bad input. */
export class SnsService {
  private readonly topics = new Map<string, Topic>();
  /** Tokens from UnsubscribeConfirmation messages: confirming one re-creates the subscription. */
  private readonly resubscribeTokens = new Map<string, Omit<Subscription, 'arn' | 'confirmed' | 'tokens'>>();
  private confirmWaiters: { topicArn: string; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];

  constructor(
    private readonly config: SnsServiceConfig,
    private readonly delivery: SnsDelivery,
  ) {}

  /**
   * Creates a topic, or returns the existing one of that name (CreateTopic is idempotent).
   * `attributes` may set `DisplayName` and `SignatureVersion` (`1` or `2`).
   */
  createTopic(name: string, displayName = '', attributes: Record<string, string> = {}): Topic {
    if (!TOPIC_NAME.test(name)) {
      throw new SnsApiError('InvalidParameter', 400, 'Invalid parameter: Topic Name');
    }
    const version = attributes.SignatureVersion !== undefined ? parseSignatureVersion(attributes.SignatureVersion) : undefined;
    const arn = `arn:aws:sns:${this.config.region}:${this.config.accountId}:${name}`;
    let topic = this.topics.get(arn);
    if (!topic) {
      topic = { arn, name, displayName, createdAt: Date.now(), subscriptions: new Map(), deletedSubscriptions: 0, signatureVersion: version ?? this.config.signatureVersion };
      this.topics.set(arn, topic);
    }
    return topic;
  }

  /** SetTopicAttributes: `SignatureVersion` (`1` or `2`) and `DisplayName`. */
  setTopicAttribute(arn: string, name: string, value: string): void {
    const topic = this.getTopic(arn);
    if (name === 'SignatureVersion') topic.signatureVersion = parseSignatureVersion(value);
    else if (name === 'DisplayName') topic.displayName = value;
    else throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: AttributeName ${name} is not supported by the sandbox`);
  }

  /** @throws {SnsApiError} NotFound when the topic does not exist. */
  getTopic(arn: string): Topic {
    const t = this.topics.get(arn);
    if (!t) throw new SnsApiError('NotFound', 404, 'Topic does not exist');
    return t;
  }

  /** Does a topic with this ARN exist? */
  hasTopic(arn: string): boolean {
    return this.topics.has(arn);
  }

  /** Every topic, in creation order. */
  listTopics(): Topic[] {
    return [...this.topics.values()];
  }

  /** Deletes a topic and its subscriptions. Deleting an unknown topic succeeds (as in SNS). */
  deleteTopic(arn: string): void {
    this.topics.delete(arn);
  }

  /**
   * Subscribes an http(s) endpoint and posts a signed SubscriptionConfirmation to it. An
   * existing subscription of the same endpoint is returned (a pending one gets a new
   * confirmation message).
   */
  subscribe(topicArn: string, protocol: string, endpoint: string, attributes: Record<string, string> = {}): Subscription {
    const topic = this.getTopic(topicArn);
    if (protocol === 'sqs') return this.subscribeSqs(topic, endpoint, attributes);
    if (protocol !== 'http' && protocol !== 'https') {
      throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: Protocol ${protocol} is not supported by the sandbox (only http, https and sqs)`);
    }
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new SnsApiError('InvalidParameter', 400, 'Invalid parameter: Endpoint must be an absolute URL');
    }
    if (url.protocol !== `${protocol}:`) {
      throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: Endpoint must match the protocol ${protocol}`);
    }
    const raw = parseBoolAttribute(attributes.RawMessageDelivery, 'RawMessageDelivery');
    for (const existing of topic.subscriptions.values()) {
      if (existing.protocol === protocol && existing.endpoint === endpoint) {
        if (raw !== undefined) existing.rawMessageDelivery = raw;
        if (!existing.confirmed) this.sendSubscriptionConfirmation(existing);
        return existing;
      }
    }
    const sub: Subscription = {
      arn: `${topicArn}:${randomUUID()}`,
      topicArn,
      protocol,
      endpoint,
      confirmed: false,
      rawMessageDelivery: raw ?? false,
      tokens: new Set(),
    };
    topic.subscriptions.set(sub.arn, sub);
    this.config.logger?.info({ topicArn, subscriptionArn: sub.arn, endpoint }, 'sns subscription created, confirmation pending');
    this.sendSubscriptionConfirmation(sub);
    return sub;
  }

  /**
   * Subscribes an SQS queue (Endpoint = queue ARN). Confirmed at once, as SNS does for a queue of
   * the topic's own account; SNS sends no confirmation message to SQS then.
   */
  private subscribeSqs(topic: Topic, endpoint: string, attributes: Record<string, string>): Subscription {
    if (!this.config.sqsEnabled) {
      throw new SnsApiError('InvalidParameter', 400, 'Invalid parameter: Protocol sqs needs the sandbox option sqs.endpoint (the SQS API to deliver to)');
    }
    const m = QUEUE_ARN.exec(endpoint);
    if (!m) throw new SnsApiError('InvalidParameter', 400, 'Invalid parameter: SQS endpoint ARN');
    if (m[2] !== this.config.region || m[3] !== this.config.accountId) {
      throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: the sandbox delivers only to queues of region ${this.config.region}, account ${this.config.accountId}`);
    }
    const raw = parseBoolAttribute(attributes.RawMessageDelivery, 'RawMessageDelivery');
    for (const existing of topic.subscriptions.values()) {
      if (existing.protocol === 'sqs' && existing.endpoint === endpoint) {
        if (raw !== undefined) existing.rawMessageDelivery = raw;
        return existing;
      }
    }
    const sub: Subscription = { arn: `${topic.arn}:${randomUUID()}`, topicArn: topic.arn, protocol: 'sqs', endpoint, confirmed: true, rawMessageDelivery: raw ?? false, tokens: new Set() };
    topic.subscriptions.set(sub.arn, sub);
    this.config.logger?.info({ topicArn: topic.arn, subscriptionArn: sub.arn, endpoint }, 'sns sqs subscription created (confirmed)');
    this.resolveConfirmWaiters();
    return sub;
  }

  /**
   * Confirms the subscription that `token` belongs to (or re-creates one that an
   * UnsubscribeConfirmation token belongs to).
   *
   * @throws {SnsApiError} InvalidParameter for an unknown token.
   */
  confirmSubscription(topicArn: string, token: string): Subscription {
    const topic = this.getTopic(topicArn);
    for (const sub of topic.subscriptions.values()) {
      if (sub.tokens.has(token)) {
        if (!sub.confirmed) {
          sub.confirmed = true;
          this.config.logger?.info({ topicArn, subscriptionArn: sub.arn }, 'sns subscription confirmed');
          this.resolveConfirmWaiters();
        }
        return sub;
      }
    }
    const resub = this.resubscribeTokens.get(token);
    if (resub && resub.topicArn === topicArn) {
      this.resubscribeTokens.delete(token);
      const sub: Subscription = { ...resub, arn: `${topicArn}:${randomUUID()}`, confirmed: true, tokens: new Set([token]) };
      topic.subscriptions.set(sub.arn, sub);
      this.resolveConfirmWaiters();
      return sub;
    }
    throw new SnsApiError('InvalidParameter', 400, 'Invalid token');
  }

  /** Finds a subscription by ARN. @throws {SnsApiError} NotFound. */
  getSubscription(subscriptionArn: string): Subscription {
    for (const t of this.topics.values()) {
      const s = t.subscriptions.get(subscriptionArn);
      if (s) return s;
    }
    throw new SnsApiError('NotFound', 404, 'Subscription does not exist');
  }

  /** Deletes a subscription and posts a signed UnsubscribeConfirmation to its endpoint. */
  unsubscribe(subscriptionArn: string): void {
    const sub = this.getSubscription(subscriptionArn);
    const topic = this.getTopic(sub.topicArn);
    topic.subscriptions.delete(sub.arn);
    topic.deletedSubscriptions++;
    const token = newToken();
    this.resubscribeTokens.set(token, { topicArn: sub.topicArn, protocol: sub.protocol, endpoint: sub.endpoint, rawMessageDelivery: sub.rawMessageDelivery });
    this.config.logger?.info({ topicArn: sub.topicArn, subscriptionArn }, 'sns subscription deleted');
    if (sub.protocol === 'sqs') return;
    this.sendControl(sub, 'UnsubscribeConfirmation', token,
      `You have chosen to deactivate subscription ${sub.arn}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.`);
  }

  /** Sets a subscription attribute (only RawMessageDelivery is meaningful here). */
  setSubscriptionAttribute(subscriptionArn: string, name: string, value: string): void {
    const sub = this.getSubscription(subscriptionArn);
    if (name === 'RawMessageDelivery') {
      sub.rawMessageDelivery = parseBoolAttribute(value, name) ?? false;
      return;
    }
    if (name === 'DeliveryPolicy' || name === 'FilterPolicy' || name === 'FilterPolicyScope' || name === 'RedrivePolicy') {
      throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: AttributeName ${name} is not supported by the sandbox`);
    }
    throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: AttributeName ${name}`);
  }

  /**
   * Publishes `message` to every confirmed subscription of the topic, signed. Returns the SNS
   * MessageId (the same for every subscription, as in SNS). A topic without a confirmed
   * subscription yields a failed ledger entry (`no confirmed subscription`).
   */
  publish(topicArn: string, message: string, meta: PublishMeta, subject?: string): string {
    const topic = this.topics.get(topicArn);
    const snsMessageId = randomUUID();
    const publishedAt = new Date().toISOString();
    const base = {
      snsMessageId,
      type: 'Notification' as const,
      topicArn,
      eventType: meta.eventType,
      sesMessageId: meta.sesMessageId,
      recipients: meta.recipients,
      duplicate: false,
      publishedAt,
      message,
    };
    if (!topic) {
      this.delivery.recordUndeliverable({ ...base, subscriptionArn: null, endpoint: null, rawMessageDelivery: false }, 'topic does not exist');
      return snsMessageId;
    }
    const targets = [...topic.subscriptions.values()].filter((s) => s.confirmed);
    if (targets.length === 0) {
      this.delivery.recordUndeliverable({ ...base, subscriptionArn: null, endpoint: null, rawMessageDelivery: false }, 'no confirmed subscription');
      return snsMessageId;
    }
    for (const sub of targets) {
      const unsigned: UnsignedSnsMessage = {
        Type: 'Notification',
        MessageId: snsMessageId,
        TopicArn: topicArn,
        ...(subject !== undefined ? { Subject: subject } : {}),
        Message: message,
        Timestamp: publishedAt,
        UnsubscribeURL: this.unsubscribeUrl(sub.arn),
      };
      const body = sub.rawMessageDelivery ? message : JSON.stringify(this.sign(unsigned, topic.signatureVersion));
      const entry = { ...base, subscriptionArn: sub.arn, endpoint: sub.endpoint, rawMessageDelivery: sub.rawMessageDelivery };
      this.delivery.enqueue(entry, body);
      if (this.config.duplicateProbability > 0 && this.config.rand() < this.config.duplicateProbability) {
        this.delivery.enqueue({ ...entry, duplicate: true }, body);
      }
    }
    return snsMessageId;
  }

  /** Signs with the sandbox's signing key. */
  sign(msg: UnsignedSnsMessage, version: SnsSignatureVersion = this.config.signatureVersion): SnsMessage {
    return buildSignedSnsMessage(msg, { privateKeyPem: this.config.signingKeyPem, version, signingCertUrl: this.config.urls.signingCertUrl });
  }

  /** Resolves when the topic has ≥ 1 subscription and all are confirmed. */
  waitForConfirmed(topicArn: string, timeoutMs: number): Promise<void> {
    if (this.allConfirmed(topicArn)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        topicArn,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.confirmWaiters = this.confirmWaiters.filter((w) => w !== waiter);
          reject(new Error(`subscription to ${topicArn} not confirmed within ${timeoutMs} ms (is the webhook confirming SubscriptionConfirmation messages?)`));
        }, timeoutMs),
      };
      this.confirmWaiters.push(waiter);
    });
  }

  /** Rejects pending waiters. */
  close(): void {
    const ws = this.confirmWaiters;
    this.confirmWaiters = [];
    for (const w of ws) {
      clearTimeout(w.timer);
      w.reject(new Error('sandbox closed'));
    }
  }

  private allConfirmed(topicArn: string): boolean {
    const t = this.topics.get(topicArn);
    if (!t || t.subscriptions.size === 0) return false;
    return [...t.subscriptions.values()].every((s) => s.confirmed);
  }

  private resolveConfirmWaiters(): void {
    const keep: typeof this.confirmWaiters = [];
    for (const w of this.confirmWaiters) {
      if (this.allConfirmed(w.topicArn)) {
        clearTimeout(w.timer);
        w.resolve();
      } else {
        keep.push(w);
      }
    }
    this.confirmWaiters = keep;
  }

  private sendSubscriptionConfirmation(sub: Subscription): void {
    const token = newToken();
    sub.tokens.add(token);
    this.sendControl(sub, 'SubscriptionConfirmation', token,
      `You have chosen to subscribe to the topic ${sub.topicArn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`);
  }

  private sendControl(sub: Subscription, type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation', token: string, message: string): void {
    const snsMessageId = randomUUID();
    const timestamp = new Date().toISOString();
    const version = this.topics.get(sub.topicArn)?.signatureVersion ?? this.config.signatureVersion;
    const signed = this.sign({
      Type: type,
      MessageId: snsMessageId,
      Token: token,
      TopicArn: sub.topicArn,
      Message: message,
      SubscribeURL: `${this.config.urls.httpsOrigin}/?Action=ConfirmSubscription&TopicArn=${sub.topicArn}&Token=${token}`,
      Timestamp: timestamp,
    }, version);
    const entry: Omit<LedgerEntry, 'deliveries' | 'finalStatus' | 'failureReason'> = {
      snsMessageId,
      type,
      topicArn: sub.topicArn,
      subscriptionArn: sub.arn,
      endpoint: sub.endpoint,
      eventType: null,
      sesMessageId: null,
      recipients: [],
      duplicate: false,
      // Control messages always carry the envelope, even with raw message delivery.
      rawMessageDelivery: false,
      publishedAt: timestamp,
      message,
    };
    this.delivery.enqueue(entry, JSON.stringify(signed));
  }

  private unsubscribeUrl(subscriptionArn: string): string {
    return `${this.config.urls.httpsOrigin}/?Action=Unsubscribe&SubscriptionArn=${subscriptionArn}`;
  }
}

function newToken(): string {
  return randomBytes(128).toString('hex');
}

function parseSignatureVersion(value: string): SnsSignatureVersion {
  if (value === '1' || value === '2') return value;
  throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: Attributes Reason: SignatureVersion: Invalid value [${value}]. Must be 1 or 2.`);
}

function parseBoolAttribute(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: Attributes Reason: ${name}: Invalid value [${value}]. Must be true or false.`);
}
