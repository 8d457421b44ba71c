/**
 * Shared machinery of the hostile-input suites (test/reliability/hostile*.test.ts and
 * fuzz*.test.ts): the local SES sandbox (its real SNS signing key, its CA, its HTTPS certificate
 * host), webhook apps built against the shared Temporal dev server, message builders that sign
 * (or forge) exactly what a case needs, "nothing signalled" checks through Temporal itself, TCP
 * canaries that count connections (SSRF probes), raw-socket HTTP, and the figures file the README
 * table is built from (test-artifacts/reliability/hostile.jsonl).
 *
 * No worker runs here: an event the webhook records shows up as a workflow (the message
 * lifecycle it signals, or `orphan-<sesMessageId>` started by signal-with-start), so the absence
 * of that workflow proves nothing was signalled.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildSignedSnsMessage, startSesSandbox, type SesSandbox, type SnsMessage, type SnsSignatureVersion, type UnsignedSnsMessage } from '../../src/sandbox';
import { buildWebhookApp, WebhookMetrics, type WebhookOptions } from '../../src/webhook';
import { sesEventJson, type EventKind } from '../helpers/ses-json';
import { getTestConnection, uniqueTaskQueue } from '../helpers/temporal';

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

const REPO_ROOT = path.join(__dirname, '..', '..');

/** Where every hostile-input suite appends its record (one JSON object per line). */
export const HOSTILE_FIGURES_FILE = path.join(REPO_ROOT, 'test-artifacts', 'reliability', 'hostile.jsonl');

/** One line of {@link HOSTILE_FIGURES_FILE}; the first five fields are what the README table shows. */
export interface HostileFigure {
  suite: string;
  /** Hostile inputs tried. */
  tried: number;
  /** Inputs that were not acted upon: refused (4xx, 5xx-without-effect, thrown error) or answered 2xx "ignored". */
  refused: number;
  /** Inputs after which something that must not exist existed (a signalled/started workflow, an SSRF connection). */
  signalled: number;
  /** 500s, unexpected exception types, unhandled rejections, crashed parsers. */
  crashes: number;
  /** Cases whose observed outcome differed from the expected one (product bugs until fixed). */
  failed: number;
  durationMs: number;
  at: string;
}

/** Tallies one suite's figures while it runs. */
export class FigureTally {
  tried = 0;
  refused = 0;
  signalled = 0;
  crashes = 0;
  failed = 0;
  private readonly started = Date.now();

  constructor(readonly suite: string) {}

  /** Appends the record to {@link HOSTILE_FIGURES_FILE}. */
  write(): HostileFigure {
    const record: HostileFigure = {
      suite: this.suite,
      tried: this.tried,
      refused: this.refused,
      signalled: this.signalled,
      crashes: this.crashes,
      failed: this.failed,
      durationMs: Date.now() - this.started,
      at: new Date().toISOString(),
    };
    mkdirSync(path.dirname(HOSTILE_FIGURES_FILE), { recursive: true });
    appendFileSync(HOSTILE_FIGURES_FILE, `${JSON.stringify(record)}\n`);
    return record;
  }
}

// ---------------------------------------------------------------------------------------------
// Environment: sandbox + Temporal client + webhook apps
// ---------------------------------------------------------------------------------------------

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A pattern matching exactly `host` (hostname:port). */
export const exactHost = (host: string): RegExp => new RegExp(`^${escapeRe(host)}$`);

/** What the hostile suites share. */
export interface HostileEnv {
  sandbox: SesSandbox;
  client: Client;
  /** Task queue nothing polls: workflows the webhook starts stay visible and inert. */
  taskQueue: string;
  /** The one allowlisted topic. */
  topicArn: string;
  /** Options of a webhook that trusts the sandbox (its CA and certificate host) and {@link topicArn}. */
  options(overrides?: Partial<WebhookOptions>): WebhookOptions;
  /** Builds a webhook app (closed by {@link close}). */
  app(overrides?: Partial<WebhookOptions>): Promise<FastifyInstance>;
  /** Path of the sandbox's signing certificate URL (`/SimpleNotificationService-<hex>.pem`). */
  certPath: string;
  /** Port of the sandbox's HTTPS server (which serves the signing certificate). */
  httpsPort: number;
  close(): Promise<void>;
}

/** Starts the sandbox and connects to the shared Temporal dev server of the test run. */
export async function startHostileEnv(name: string): Promise<HostileEnv> {
  const sandbox = await startSesSandbox({ eventDelayMs: 5 });
  const { client } = await getTestConnection();
  const taskQueue = uniqueTaskQueue(`hostile-${name}`);
  const topicArn = `arn:aws:sns:${sandbox.region}:${sandbox.accountId}:hostile-${name}-events`;
  const apps: FastifyInstance[] = [];
  const options = (overrides: Partial<WebhookOptions> = {}): WebhookOptions => ({
    temporal: { client, taskQueue },
    allowedTopicArns: [topicArn],
    certHostPattern: exactHost(sandbox.certHost),
    subscribeHostPattern: exactHost(sandbox.certHost),
    extraCaPem: sandbox.caCertPem,
    logger: process.env.WEBHOOK_TEST_VERBOSE ? { level: 'info' } : false,
    orphanIdleTimeout: '2m',
    metrics: new WebhookMetrics(),
    ...overrides,
  });
  const probe = sandbox.signMessage({ Type: 'Notification', MessageId: 'probe', TopicArn: topicArn, Message: '{}', Timestamp: new Date().toISOString() });
  const certUrl = new URL(probe.SigningCertURL);
  return {
    sandbox,
    client,
    taskQueue,
    topicArn,
    options,
    async app(overrides = {}) {
      const app = await buildWebhookApp(options(overrides));
      apps.push(app);
      return app;
    },
    certPath: certUrl.pathname,
    httpsPort: Number(certUrl.port),
    async close() {
      await Promise.allSettled(apps.map((a) => a.close()));
      await sandbox.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/** A fresh SES message id in SES's shape. */
export const newSesId = (): string => `0100019a${randomUUID().replace(/-/g, '').slice(0, 8)}-${randomUUID()}-000000`;
/** A lifecycle id that no workflow has (a victim an attacker might try to signal). */
export const victimLifecycleId = (): string => `msg-hostile-victim-${randomUUID()}`;
/** The workflow the webhook starts for an event whose lifecycle it cannot find. */
export const orphanId = (sesMessageId: string): string => `orphan-${sesMessageId}`;

/** SES event JSON (event publishing shape) for one message. */
export function sesJson(type: EventKind, sesMessageId: string, o: { lifecycleId?: string; to?: string[] } = {}): Record<string, unknown> {
  return sesEventJson(type, {
    messageId: sesMessageId,
    recipients: o.to ?? ['someone@example.com'],
    at: new Date().toISOString(),
    ...(o.lifecycleId !== undefined ? { lifecycleId: o.lifecycleId } : {}),
  });
}

/** Unsigned Notification fields for `message` on `topicArn`. */
export function unsignedNotification(topicArn: string, message: unknown, o: { timestamp?: string; messageId?: string; subject?: string } = {}): UnsignedSnsMessage {
  return {
    Type: 'Notification',
    MessageId: o.messageId ?? randomUUID(),
    TopicArn: topicArn,
    Message: typeof message === 'string' ? message : JSON.stringify(message),
    Timestamp: o.timestamp ?? new Date().toISOString(),
    ...(o.subject !== undefined ? { Subject: o.subject } : {}),
  };
}

/** Unsigned confirmation fields. */
export function unsignedConfirmation(topicArn: string, type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation', subscribeUrl: string): UnsignedSnsMessage {
  return {
    Type: type,
    MessageId: randomUUID(),
    TopicArn: topicArn,
    Message: `You have chosen to subscribe to the topic ${topicArn}.`,
    Timestamp: new Date().toISOString(),
    Token: randomUUID().replace(/-/g, ''),
    SubscribeURL: subscribeUrl,
  };
}

let otherKey: string | undefined;
/** An RSA key that is NOT the sandbox's SNS signing key (generated once per process). */
export function otherPrivateKeyPem(): string {
  otherKey ??= generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  return otherKey;
}

/** Signs `msg` with another key (or another algorithm) but keeps the sandbox's certificate URL. */
export function signWith(msg: UnsignedSnsMessage, keyPem: string, algorithmVersion: SnsSignatureVersion, signingCertUrl: string): SnsMessage {
  return buildSignedSnsMessage(msg, { privateKeyPem: keyPem, version: algorithmVersion, signingCertUrl });
}

/** Flips one bit of a base64 signature at byte `index` (negative: from the end). */
export function flipSignatureBit(signature: string, index: number): string {
  const bytes = Buffer.from(signature, 'base64');
  const i = index < 0 ? bytes.length + index : index;
  bytes[i] = (bytes[i] ?? 0) ^ 0x01;
  return bytes.toString('base64');
}

/** The headers SNS sends with a body of this type. */
export function snsHeaders(type: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': type, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/** True when a workflow with this id exists (any run, any status). */
export async function workflowExists(client: Client, workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Number of signals in a workflow's history (latest run). */
export async function signalsReceived(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes != null).length;
}

/** True when `Object.prototype` carries none of the keys a pollution attempt would add. */
export function prototypeIsClean(): boolean {
  const probe = {} as Record<string, unknown>;
  return probe.polluted === undefined && probe.isAdmin === undefined && probe['lifecycle-id'] === undefined && Object.keys(Object.prototype).length === 0;
}

/** A TCP server that counts connections and never answers (an SSRF canary / a tarpit). */
export { startCanary, type Canary } from '../helpers/canary';

/** What a raw-socket exchange observed. */
export interface RawExchange {
  /** Status code of the first response line, if any arrived. */
  status: number | undefined;
  /** Everything the server sent. */
  response: string;
  /** Milliseconds from connect until the server closed the socket (undefined: still open at the deadline). */
  closedAfterMs: number | undefined;
}

/**
 * Opens a TCP connection, writes `head`, then each of `drip` chunks `dripEveryMs` apart (while the
 * socket is open), and waits until the server closes it or `deadlineMs` passes (then it is
 * destroyed by us and `closedAfterMs` is undefined).
 */
export function rawExchange(port: number, head: string | Buffer, o: { drip?: (string | Buffer)[]; dripEveryMs?: number; deadlineMs: number }): Promise<RawExchange> {
  return new Promise<RawExchange>((resolve) => {
    const started = Date.now();
    let response = '';
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.write(head);
      const drip = [...(o.drip ?? [])];
      if (drip.length > 0) {
        timer = setInterval(() => {
          const next = drip.shift();
          if (next === undefined || socket.destroyed) {
            clearInterval(timer);
            return;
          }
          socket.write(next);
        }, o.dripEveryMs ?? 1_000);
      }
    });
    const finish = (closedAfterMs: number | undefined): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      clearTimeout(deadline);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(response);
      resolve({ status: m ? Number(m[1]) : undefined, response, closedAfterMs });
      socket.destroy();
    };
    const deadline = setTimeout(() => finish(undefined), o.deadlineMs);
    socket.on('data', (d: Buffer) => {
      response += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(Date.now() - started));
  });
}
