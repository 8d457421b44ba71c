/**
 * `ses-lifecycle` command line: run the product (dev, demo, worker, webhook) and operate it
 * (send, status, list, suppression). Errors are one clear line and a non-zero exit.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import {
  DeleteSuppressedDestinationCommand,
  GetSuppressedDestinationCommand,
  ListSuppressedDestinationsCommand,
  PutSuppressedDestinationCommand,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import { NativeConnection } from '@temporalio/worker';
import { LifecycleClient, TAG_CHARS } from './client';
import { loadConfig, type Config } from './config';
import { durationMs, orphanWorkflowId, SA, statusQuery, WORKFLOW_ID_PREFIX, WORKFLOW_TYPE, type LifecycleStatus } from './definitions';
import { RecipientStatus } from './lifecycle';
import { runDemo } from './demo';
import { SANDBOX_CREDENTIALS } from './sandbox';
import { assertPortFree, signerTrustFromConfig, startStack, temporalConnectionOptions } from './stack';
import { signerTrustOptions, startWebhookServer } from './webhook';
import { createInsightsWorker, createLifecycleWorker, createSesClient } from './worker';
import { ensureSearchAttributes } from './search-attributes';
import { runInitAwsCli, type InitAwsCliOptions } from './init-aws';
import { ingestSqsCliOptions, startSqsIngest, SqsIngestMetrics, type IngestSqsCliOptions } from './sqs-ingest';
import { startMetricsListener } from './webhook';
import { Registry as PromRegistry } from 'prom-client';
import { createVisibilityMetrics, workerMetrics } from './metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import Fastify from 'fastify';
import { formatDoctor, runDoctor } from './doctor';
import { formatStats, gatherStats } from './stats';
import { formatRepair, repairLifecycles } from './repair';
import { hasLifecycleOutcome, statusReport, table, type SuppressionSource } from './status-report';
import { visibilityLiteral } from './webhook/router';
import { createLogger } from './logger';
import type { Registry } from 'prom-client';

/** A tiny /metrics server for a standalone worker process. */
async function serveMetrics(registry: Registry, host: string, port: number): Promise<{ close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  await app.listen({ host, port });
  return { close: () => app.close() };
}

/** Address of Temporal for client commands: the configured cluster, else the embedded dev server's port. */
function temporalAddress(config: Readonly<Config>): string {
  return config.temporal.address ?? `127.0.0.1:${config.temporal.devServer.port}`;
}

async function connectClient(config: Readonly<Config>): Promise<{ client: Client; connection: Connection }> {
  const address = temporalAddress(config);
  try {
    const connection = await Connection.connect(config.temporal.address ? temporalConnectionOptions(config, address) : { address });
    return { connection, client: new Client({ connection, namespace: config.temporal.namespace }) };
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${address} (${(err as Error).message}); is \`ses-lifecycle dev\` running, or TEMPORAL_ADDRESS set?`, { cause: err });
  }
}

function sesClientFor(config: Readonly<Config>): SESv2Client {
  if (config.mode === 'sandbox') {
    return createSesClient({ region: config.aws.region, endpoint: `http://127.0.0.1:${config.sandbox.port}`, credentials: { ...SANDBOX_CREDENTIALS } });
  }
  return createSesClient({ region: config.aws.region, ...(config.aws.sesEndpoint ? { endpoint: config.aws.sesEndpoint } : {}) });
}

function snsClientFor(config: Readonly<Config>): SNSClient {
  if (config.mode === 'sandbox') return new SNSClient({ region: config.aws.region, endpoint: `http://127.0.0.1:${config.sandbox.port}`, credentials: { ...SANDBOX_CREDENTIALS } });
  return new SNSClient({ region: config.aws.region });
}

/** Callback destination rules from the config, as `LifecycleClient` takes them (the worker's are the same). */
function callbackClientOptions(config: Readonly<Config>): { defaultCallbackUrl?: string; callbackAllowedHosts: readonly string[]; callbackRequireHttps: boolean } {
  return {
    ...(config.callbacks.defaultUrl !== undefined ? { defaultCallbackUrl: config.callbacks.defaultUrl } : {}),
    callbackAllowedHosts: config.callbacks.allowedHosts,
    callbackRequireHttps: config.mode === 'aws',
  };
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The package version (package.json above this module, from the sources or from dist/). */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ses-lifecycle' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

/** True for a `<status>:<address>` entry of EmailRecipients (addresses never start with a status and a colon). */
function isRecipientState(v: string): boolean {
  return /^[a-z]+:/.test(v) && LIST_STATUSES.includes(v.slice(0, v.indexOf(':')));
}

/** Values `list --status` accepts: every message-level status (the `EmailStatus` search attribute). */
export const LIST_STATUSES: readonly string[] = ['sending', ...Object.values(RecipientStatus)];
/** Values `list --kind` accepts. */
export const LIST_KINDS: readonly string[] = ['message', 'orphan'];

/** Refuses a value outside `allowed`, listing the allowed ones. */
export function oneOf(flag: string, value: string, allowed: readonly string[]): string {
  if (!allowed.includes(value)) throw new Error(`invalid ${flag} "${value}": use one of ${allowed.join(', ')}`);
  return value;
}

/** `--tag name=value` options → a record; names and values follow SES's EmailTag charset. */
export function parseTags(values: readonly string[] | undefined): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    const [name, value] = i < 0 ? [v, ''] : [v.slice(0, i), v.slice(i + 1)];
    if (!TAG_CHARS.test(name) || !TAG_CHARS.test(value) || name.length > 256 || value.length > 256) {
      throw new Error(`invalid --tag "${v}": expected name=value, both 1-256 of ASCII letters, digits, _ - . @`);
    }
    out[name] = value;
  }
  return out;
}

/** `--limit`: a positive integer. */
export function parseLimit(v: string, flag = '--limit'): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1) throw new Error(`invalid ${flag} "${v}": use a positive whole number, e.g. 20`);
  return Number(v);
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
/** `--since`: a duration back from `now` (`90s`, `15m`, `1h`, `7d`) or an ISO time (`2026-11-24`, `2026-11-24T18:00:00Z`). */
export function parseSince(v: string, now = Date.now()): Date {
  const value = v.trim();
  if (/^\d+(?:\.\d+)?(?:ms|s|m|h|d)$/.test(value)) return new Date(now - durationMs(value));
  const t = ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) throw new Error(`invalid --since "${v}": use a duration back from now (30m, 1h, 7d) or an ISO time (2026-11-24, 2026-11-24T18:00:00Z)`);
  return new Date(t);
}

/**
 * The AWS SDK prints an 8-line NodeVersionSupportWarning on Node < 22 for every command. This
 * package supports Node 20 (see README), so the CLI silences exactly that warning through the
 * SDK's own switch, unless the user set it.
 */
function silenceAwsNodeVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** Renders a per-recipient status table with the reason of each status (see status-report.ts). */
export function statusTable(s: LifecycleStatus): string {
  return statusReport(s);
}

export { table };

/** `--timeout`: a duration (`90s`, `2m`) or a number of seconds. */
export function parseTimeout(v: string): number {
  const value = v.trim();
  if (/^\d+(?:\.\d+)?$/.test(value) && Number(value) > 0) return Math.round(Number(value) * 1000);
  if (/^\d+(?:\.\d+)?(?:ms|s|m|h)$/.test(value) && durationMs(value) > 0) return durationMs(value);
  throw new Error(`invalid --timeout "${v}": use seconds or a duration, e.g. 120, 90s, 5m`);
}

/** Whole seconds or the duration as given, for messages. */
function showDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Waits until `done` holds for the lifecycle's status, or it closes, or `timeoutMs` passes.
 * Polls the status query (quickly at first, then every second) and wakes at once when the
 * workflow closes (its result arrives by long poll).
 *
 * @throws one line naming the lifecycle, the last status seen and the timeout.
 */
export async function waitForStatus(
  connection: Connection,
  handle: WorkflowHandle,
  done: (s: LifecycleStatus) => boolean,
  opts: { timeoutMs: number; what: string; final?: boolean },
): Promise<LifecycleStatus> {
  // The result long poll is cancelled when we return, so the process exits at once.
  const abort = new AbortController();
  try {
    return await waitUntil(connection, abort.signal, handle, done, opts);
  } finally {
    abort.abort();
  }
}

async function waitUntil(
  connection: Connection,
  signal: AbortSignal,
  handle: WorkflowHandle,
  done: (s: LifecycleStatus) => boolean,
  opts: { timeoutMs: number; what: string; final?: boolean },
): Promise<LifecycleStatus> {
  const deadline = Date.now() + opts.timeoutMs;
  let closed = false;
  let wake: (() => void) | undefined;
  const result = connection.withAbortSignal(signal, () => handle.result()).then(
    (r) => r as LifecycleStatus,
    () => undefined,
  );
  void result.then(() => {
    closed = true;
    wake?.();
  });
  let last: LifecycleStatus | undefined;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    if (closed) {
      const r = await result;
      return r ?? (await handle.query(statusQuery));
    }
    if (!opts.final) {
      last = await handle.query(statusQuery);
      if (done(last)) return last;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const seen = last ?? (await handle.query(statusQuery).catch(() => undefined));
      throw new Error(
        `timed out after ${showDuration(opts.timeoutMs)} waiting for ${opts.what} of ${handle.workflowId}` +
          `${seen ? `; last status ${seen.status} (${seen.phase})` : ''}; raise --timeout, or run \`ses-lifecycle status ${handle.workflowId}\` later`,
      );
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(delay, left));
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    wake = undefined;
  }
}

/** SES message ids as a visibility query can match them (the webhook's rule). */
const QUERYABLE_SES_ID = /^[A-Za-z0-9._@+=:-]{1,256}$/;

/**
 * The workflow id for `status <id>`: a lifecycle id as given; else an SES message id, looked up
 * by the `SesMessageIds` search attribute (a running message lifecycle first, then any message
 * lifecycle, then any orphan), falling back to the orphan id the webhook gives that message.
 */
export async function resolveLifecycleId(client: Client, id: string): Promise<{ workflowId: string; bySesId: boolean }> {
  if (id.startsWith(WORKFLOW_ID_PREFIX.message) || id.startsWith(WORKFLOW_ID_PREFIX.orphan)) return { workflowId: id, bySesId: false };
  if (QUERYABLE_SES_ID.test(id)) {
    let message: string | undefined;
    let orphan: string | undefined;
    let seen = 0;
    for await (const wf of client.workflow.list({ query: `${SA.sesMessageIds.name} = ${visibilityLiteral(id)}`, pageSize: 20 })) {
      if (wf.workflowId.startsWith(WORKFLOW_ID_PREFIX.message)) {
        if (wf.status.name === 'RUNNING') return { workflowId: wf.workflowId, bySesId: true };
        message ??= wf.workflowId;
      } else if (wf.workflowId.startsWith(WORKFLOW_ID_PREFIX.orphan)) orphan ??= wf.workflowId;
      if (++seen >= 20) break;
    }
    if (message ?? orphan) return { workflowId: (message ?? orphan)!, bySesId: true };
  }
  return { workflowId: orphanWorkflowId(id), bySesId: true };
}

/** Where each suppressed recipient is on the account suppression list (best effort, 5 s). */
async function suppressionSources(config: Readonly<Config>, s: LifecycleStatus): Promise<Map<string, SuppressionSource>> {
  const out = new Map<string, SuppressionSource>();
  const suppressed = s.recipients.filter((r) => r.status === 'suppressed').map((r) => r.email);
  if (suppressed.length === 0) return out;
  const ses = sesClientFor(config);
  try {
    await Promise.all(
      suppressed.slice(0, 50).map(async (email) => {
        const r = await ses.send(new GetSuppressedDestinationCommand({ EmailAddress: email }), { abortSignal: AbortSignal.timeout(5_000) }).catch(() => undefined);
        const d = r?.SuppressedDestination;
        if (d?.Reason) out.set(email, { reason: d.Reason, ...(d.LastUpdateTime ? { since: d.LastUpdateTime.toISOString() } : {}) });
      }),
    );
  } finally {
    ses.destroy();
  }
  return out;
}

function waitForShutdown(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

/** Builds the CLI program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command('ses-lifecycle')
    .description('Durable per-message lifecycle tracking for email sent through Amazon SES, on Temporal.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('dev')
    .description('run everything locally: Temporal dev server + Web UI, SES sandbox, webhook, worker')
    .action(async () => {
      const config = loadConfig();
      const stack = await startStack({ config });
      const lines = [
        '',
        `ses-lifecycle is running (${config.mode} mode)`,
        `  Temporal gRPC      ${stack.temporalAddress}  (namespace ${stack.namespace})`,
        stack.uiUrl ? `  Temporal Web UI    ${stack.uiUrl}` : '',
        stack.temporalMetricsUrl ? `  Temporal metrics   ${stack.temporalMetricsUrl}` : '',
        `  Webhook (SNS)      ${stack.webhookUrl}`,
        stack.webhook.metricsUrl ? `  Metrics            ${stack.webhook.metricsUrl}/metrics` : '',
        stack.sandbox ? `  SES sandbox API    ${stack.sandbox.endpoint}  (SESv2 endpoint; ledger at /_sandbox/ledger)` : '',
        stack.topicArn ? `  SNS topic          ${stack.topicArn}` : '',
        `  Data               ${config.dataDir}/`,
        '',
        '  Try:  npx ses-lifecycle send --from app@example.com --to success@simulator.amazonses.com --subject Hi --text Hello --wait',
        '  Stop: Ctrl-C',
        '',
      ];
      console.log(lines.filter((l, i) => l !== '' || i === 0 || i === lines.length - 1 || lines[i - 1] !== '').join('\n'));
      const sig = await waitForShutdown();
      console.log(`\n${sig}: stopping…`);
      await stack.stop();
      console.log('stopped.');
    });

  program
    .command('demo')
    .description('run the local stack and send to every SES mailbox simulator address; print the outcomes')
    .option('--exit', 'exit when every lifecycle has settled')
    .action(async (opts: { exit?: boolean }) => {
      const config = loadConfig();
      const ok = await runDemo(config, { exit: opts.exit === true, out: (s) => process.stdout.write(s) });
      if (!ok) process.exitCode = 1;
    });

  program
    .command('send')
    .description('send one tracked email; prints the lifecycle id')
    .requiredOption('--from <address>', 'sender')
    .requiredOption('--to <address>', 'recipient (repeatable)', collect)
    .option('--cc <address>', 'cc recipient (repeatable)', collect)
    .option('--bcc <address>', 'bcc recipient (repeatable)', collect)
    .requiredOption('--subject <text>', 'subject')
    .option('--text <body>', 'text body')
    .option('--html <body>', 'html body')
    .option('--tag <name=value>', 'EmailTag (repeatable)', collect)
    .option('--idempotency-key <key>', 'never send twice for the same key')
    .option('--configuration-set <name>', 'SES configuration set (default from SES_CONFIGURATION_SET)')
    .option('--wait', 'wait for the outcome (every recipient delivered, bounced, complained, suppressed, rejected, failed or unconfirmed) and print it')
    .option('--wait-final', 'wait for the lifecycle to close (after the complaint window) and print the final state')
    .option('--timeout <duration>', 'give up waiting after this long (seconds or 90s, 5m, 1h); exit 1', '120s')
    .action(async (o: { from: string; to: string[]; cc?: string[]; bcc?: string[]; subject: string; text?: string; html?: string; tag?: string[]; idempotencyKey?: string; configurationSet?: string; wait?: boolean; waitFinal?: boolean; timeout: string }) => {
      const tags = parseTags(o.tag);
      const timeoutMs = parseTimeout(o.timeout);
      const config = loadConfig();
      const { client, connection } = await connectClient(config);
      try {
        const lc = new LifecycleClient(client, { taskQueue: config.temporal.taskQueue, ...callbackClientOptions(config) });
        const email = await lc.sendTracked(
          {
            from: o.from,
            to: o.to,
            ...(o.cc ? { cc: o.cc } : {}),
            ...(o.bcc ? { bcc: o.bcc } : {}),
            subject: o.subject,
            ...(o.text !== undefined ? { text: o.text } : {}),
            ...(o.html !== undefined ? { html: o.html } : {}),
            ...(tags ? { tags } : {}),
            ...(o.configurationSet ? { configurationSetName: o.configurationSet } : {}),
          },
          o.idempotencyKey !== undefined ? { idempotencyKey: o.idempotencyKey } : {},
        );
        console.log(email.id);
        if (o.wait || o.waitFinal) {
          const handle = client.workflow.getHandle(email.id);
          const s = o.waitFinal
            ? await waitForStatus(connection, handle, () => false, { timeoutMs, what: 'the lifecycle to close', final: true })
            : await waitForStatus(connection, handle, hasLifecycleOutcome, { timeoutMs, what: 'an outcome' });
          console.log(statusReport(s, { suppression: await suppressionSources(config, s) }));
        }
      } finally {
        await connection.close();
      }
    });

  program
    .command('status <id>')
    .description('per-recipient state of one lifecycle and why: <id> is a lifecycle id (msg-…, orphan-…) or an SES message id')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const config = loadConfig();
      const { client, connection } = await connectClient(config);
      try {
        const { workflowId, bySesId } = await resolveLifecycleId(client, id);
        let s: LifecycleStatus;
        try {
          s = await client.workflow.getHandle(workflowId).query(statusQuery);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError || (err as Error).name === 'WorkflowNotFoundError') {
            throw new Error(bySesId ? `no lifecycle sent or received SES message ${id} (looked for SesMessageIds = ${id} and ${workflowId})` : `no lifecycle ${id}`, { cause: err });
          }
          throw err;
        }
        console.log(o.json ? JSON.stringify(s, null, 2) : statusReport(s, { suppression: await suppressionSources(config, s), ...(bySesId ? { foundBy: id } : {}) }));
      } finally {
        await connection.close();
      }
    });

  program
    .command('stats')
    .description("per-recipient bounce and complaint rates of the lifecycles started in a window, against SES's review and pause thresholds")
    .option('--since <when>', 'window start: a duration back from now (24h, 7d) or an ISO time', '24h')
    .option('--tag <name=value>', 'only lifecycles with this tag (repeatable)', collect)
    .option('--max <n>', 'count at most this many lifecycles, newest first (each is one read)', '1000')
    .option('--json', 'print JSON')
    .action(async (o: { since: string; tag?: string[]; max: string; json?: boolean }) => {
      const since = parseSince(o.since);
      const tags = parseTags(o.tag);
      const max = parseLimit(o.max, '--max');
      const config = loadConfig();
      const { client, connection } = await connectClient(config);
      try {
        const report = await gatherStats(client, { since, max, ...(tags ? { tags } : {}) });
        console.log(o.json ? JSON.stringify(report, null, 2) : formatStats(report, o.since));
      } finally {
        await connection.close();
      }
    });

  program
    .command('repair')
    .description('repair open lifecycles without an outcome from SES message insights (GetMessageInsights, rate-limited): record what SNS never delivered')
    .option('--since <when>', 'lifecycles started since: a duration back from now (24h, 7d) or an ISO time', '24h')
    .option('--max <n>', 'repair at most this many lifecycles, newest first', '1000')
    .option('--json', 'print JSON')
    .action(async (o: { since: string; max: string; json?: boolean }) => {
      const since = parseSince(o.since);
      const max = parseLimit(o.max, '--max');
      const config = loadConfig();
      const { client, connection } = await connectClient(config);
      try {
        const report = await repairLifecycles(client, { since, max });
        console.log(o.json ? JSON.stringify(report, null, 2) : formatRepair(report));
        if (report.failed.length > 0) process.exitCode = 1;
      } finally {
        await connection.close();
      }
    });

  program
    .command('doctor')
    .description('check the setup (Temporal CLI, ports, Temporal, search attributes; SES identity, configuration set, event destination, SNS subscription) and say how to fix each failure')
    .option('--from <address>', 'sender address or domain whose SES identity must be verified (aws mode)')
    .option('--webhook-url <url>', 'the subscription must point at this URL')
    .option('--json', 'print JSON')
    .action(async (o: { from?: string; webhookUrl?: string; json?: boolean }) => {
      const config = loadConfig();
      const checks = await runDoctor({
        config,
        ses: () => sesClientFor(config),
        sns: () => snsClientFor(config),
        ...(o.from !== undefined ? { from: o.from } : {}),
        ...(o.webhookUrl !== undefined ? { webhookUrl: o.webhookUrl } : {}),
      });
      console.log(o.json ? JSON.stringify(checks, null, 2) : formatDoctor(checks));
      if (checks.some((c) => c.status === 'fail')) process.exitCode = 1;
    });

  program
    .command('list')
    .description('list lifecycles (Temporal visibility, our search attributes)')
    .option('--status <status>', `EmailStatus: ${LIST_STATUSES.join(', ')}`)
    .option('--recipient <address>', 'recipient address')
    .option('--tag <name=value>', 'user tag (repeatable)', collect)
    .option('--since <when>', 'started at or after: a duration back from now (1h, 7d) or an ISO time')
    .option('--kind <kind>', `${LIST_KINDS.join(' or ')}`)
    .option('--limit <n>', 'max rows', '50')
    .option('--json', 'print JSON (recipients as an array)')
    .action(async (o: { status?: string; recipient?: string; tag?: string[]; since?: string; kind?: string; limit: string; json?: boolean }) => {
      // Every filter is checked before anything connects: a typo is an error, never an empty table.
      const status = o.status === undefined ? undefined : oneOf('--status', o.status, LIST_STATUSES);
      const kind = o.kind === undefined ? undefined : oneOf('--kind', o.kind, LIST_KINDS);
      const tags = parseTags(o.tag);
      const since = o.since === undefined ? undefined : parseSince(o.since);
      const limit = parseLimit(o.limit);
      const q = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
      const recipient = o.recipient?.toLowerCase();
      // With both, the recipient's own state decides (`<status>:<address>` in EmailRecipients), so
      // bob's delivered email is found whatever its other recipients did; lifecycles started
      // before per-recipient states fall back to the message status.
      const clauses = [
        status && recipient
          ? `(EmailRecipients = ${q(`${status}:${recipient}`)} OR (EmailStatus = ${q(status)} AND EmailRecipients = ${q(recipient)}))`
          : status
            ? `EmailStatus = ${q(status)}`
            : '',
        recipient && !status ? `EmailRecipients = ${q(recipient)}` : '',
        ...Object.entries(tags ?? {}).map(([k, v]) => `EmailTags = ${q(`${k}=${v}`)}`),
        since ? `StartTime >= ${q(since.toISOString())}` : '',
        kind ? `LifecycleKind = ${q(kind)}` : `WorkflowType IN (${q(WORKFLOW_TYPE.message)}, ${q(WORKFLOW_TYPE.orphan)})`,
      ].filter(Boolean);
      const config = loadConfig();
      const { client, connection } = await connectClient(config);
      try {
        const rows: { id: string; status: string; recipients: string[]; recipientStates: string[]; started: string; closed: boolean }[] = [];
        for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
          const sa = wf.searchAttributes as Record<string, unknown[] | undefined>;
          const strings = (v: unknown[] | undefined) => (v ?? []).filter((x): x is string => typeof x === 'string');
          rows.push({
            id: wf.workflowId,
            status: strings(sa.EmailStatus)[0] ?? '',
            recipients: strings(sa.EmailRecipients).filter((r) => !isRecipientState(r)),
            recipientStates: strings(sa.EmailRecipients).filter(isRecipientState),
            started: wf.startTime.toISOString(),
            closed: wf.status.name !== 'RUNNING',
          });
          if (rows.length >= limit) break;
        }
        console.log(o.json ? JSON.stringify(rows, null, 2) : table(['lifecycle', 'status', 'recipients', 'started', 'open'], rows.map((r) => [r.id, r.status, r.recipients.join(','), r.started, r.closed ? 'no' : 'yes'])));
      } finally {
        await connection.close();
      }
    });

  const suppression = program.command('suppression').description('the SES account suppression list');
  suppression
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const ses = sesClientFor(loadConfig());
      const out: { email: string; reason: string; since: string }[] = [];
      let token: string | undefined;
      do {
        const page = await ses.send(new ListSuppressedDestinationsCommand({ ...(token ? { NextToken: token } : {}) }));
        for (const s of page.SuppressedDestinationSummaries ?? []) out.push({ email: s.EmailAddress ?? '', reason: s.Reason ?? '', since: s.LastUpdateTime?.toISOString() ?? '' });
        token = page.NextToken;
      } while (token);
      console.log(o.json ? JSON.stringify(out, null, 2) : table(['address', 'reason', 'since'], out.map((s) => [s.email, s.reason, s.since])));
    });
  suppression
    .command('add <address>')
    .option('--reason <reason>', 'BOUNCE or COMPLAINT', 'BOUNCE')
    .action(async (address: string, o: { reason: string }) => {
      if (o.reason !== 'BOUNCE' && o.reason !== 'COMPLAINT') throw new Error('invalid --reason: BOUNCE or COMPLAINT');
      await sesClientFor(loadConfig()).send(new PutSuppressedDestinationCommand({ EmailAddress: address, Reason: o.reason }));
      console.log(`suppressed ${address} (${o.reason})`);
    });
  suppression.command('remove <address>').action(async (address: string) => {
    await sesClientFor(loadConfig()).send(new DeleteSuppressedDestinationCommand({ EmailAddress: address }));
    console.log(`removed ${address}`);
  });

  program
    .command('worker')
    .description('run a worker against TEMPORAL_ADDRESS (scale out by running more)')
    .action(async () => {
      const config = loadConfig();
      const address = temporalAddress(config);
      const connection = await NativeConnection.connect(config.temporal.address ? temporalConnectionOptions(config, address) : { address });
      const { client, connection: c2 } = await connectClient(config);
      // Registering search attributes needs the operator API; Temporal Cloud manages them in its
      // own UI/tcld, so a refusal is a warning here, not a reason to refuse to start.
      await ensureSearchAttributes(client, config.temporal.namespace)
        .catch((err: unknown) => console.warn(`warning: ${(err as Error).message}`))
        .finally(() => c2.close());
      const ses = sesClientFor(config);
      const insightsWorker = await createInsightsWorker({ connection, namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue, ses });
      const worker = await createLifecycleWorker({
        connection,
        namespace: config.temporal.namespace,
        taskQueue: config.temporal.taskQueue,
        ses,
        configurationSetName: config.aws.configurationSetName,
        paceToSendRate: config.aws.paceToSendRate,
        ...(config.callbacks.secret !== undefined ? { callbackSecret: config.callbacks.secret } : {}),
        callbacks: { allowedHosts: config.callbacks.allowedHosts, requireHttps: config.mode === 'aws' },
      });
      const metricsServer = config.workerMetrics.port > 0 ? await serveMetrics(workerMetrics.registry, config.workerMetrics.host, config.workerMetrics.port) : undefined;
      console.log(`worker running on task queue ${config.temporal.taskQueue} at ${address}${metricsServer ? ` (metrics http://${config.workerMetrics.host}:${config.workerMetrics.port}/metrics)` : ''}`);
      // The SDK drains and stops the workers on SIGINT/SIGTERM by itself.
      await Promise.all([worker.run(), insightsWorker.run()]);
      await metricsServer?.close();
      await connection.close();
    });

  program
    .command('webhook')
    .description('run the SNS webhook against TEMPORAL_ADDRESS (stateless; scale out freely)')
    .action(async () => {
      const config = loadConfig();
      await assertPortFree(config.webhook.port, config.webhook.host, 'WEBHOOK_PORT');
      await assertPortFree(config.webhook.metricsPort, config.webhook.metricsHost, 'WEBHOOK_METRICS_PORT');
      const { client, connection } = await connectClient(config);
      const server = await startWebhookServer({
        host: config.webhook.host,
        port: config.webhook.port,
        metricsListen: { host: config.webhook.metricsHost, port: config.webhook.metricsPort },
        ...(config.webhook.metricsToken !== undefined ? { metricsBearerToken: config.webhook.metricsToken } : {}),
        keepAliveTimeoutMs: durationMs(config.webhook.keepAliveTimeout),
        maxConnections: config.webhook.maxConnections,
        path: config.webhook.path,
        temporal: { client, taskQueue: config.temporal.taskQueue },
        allowedTopicArns: [...config.webhook.allowedTopicArns],
        rawMessageDelivery: config.webhook.rawMessageDelivery,
        serverTiming: config.webhook.serverTiming,
        replayWindowMs: durationMs(config.webhook.replayWindow),
        logger: createLogger(config),
        metricsRegistries: [createVisibilityMetrics(client)],
        // SNS_SIGNER_CA_PATH + SNS_SIGNER_CERT_HOST_PATTERN: your own signer, trusted beside SNS.
        ...signerTrustOptions({}, signerTrustFromConfig(config)),
      });
      console.log(`webhook listening at ${server.url}${config.webhook.path}${server.metricsUrl ? ` (metrics ${server.metricsUrl}/metrics)` : ''}`);
      await waitForShutdown();
      await server.close();
      await connection.close();
    });

  program
    .command('ingest-sqs')
    .description('consume SES events from an SQS queue subscribed to the SES event topic (beside or instead of the webhook); deletes a message once Temporal recorded it')
    .requiredOption('--queue-url <url>', 'the SQS queue URL (init-aws --ingest sqs prints it)')
    .option('--sqs-endpoint <url>', 'SQS API endpoint (default: AWS for the queue URL\'s region; a local SQS in sandbox mode)')
    .option('--no-raw', 'refuse raw SES JSON (RawMessageDelivery): accept signed SNS envelopes only')
    .option('--pollers <n>', 'receive loops at once (each long-polls 20 s for up to 10 messages)', '2')
    .option('--visibility-timeout <seconds>', 'visibility timeout of the queue (default: read from the queue)')
    .option('--metrics-port <port>', 'serve Prometheus /metrics on WEBHOOK_METRICS_HOST:<port> (default: not served)')
    .action(async (o: IngestSqsCliOptions & { metricsPort?: string }) => {
      const config = loadConfig();
      const { client, connection } = await connectClient(config);
      const registry = new PromRegistry();
      const metricsListener = o.metricsPort !== undefined ? await startMetricsListener({ registries: [registry], host: config.webhook.metricsHost, port: Number(o.metricsPort) }) : undefined;
      const ingest = await startSqsIngest({
        ...(await ingestSqsCliOptions(config, o)),
        temporal: { client, taskQueue: config.temporal.taskQueue },
        logger: createLogger(config),
        metrics: new SqsIngestMetrics({ registry }),
      });
      console.log(`ingesting SES events from ${o.queueUrl}${metricsListener ? ` (metrics ${metricsListener.url}/metrics)` : ''}`);
      await waitForShutdown();
      await ingest.stop();
      await metricsListener?.close();
      await connection.close();
    });

  program
    .command('init-aws')
    .description('create or reuse the SNS topic, SES configuration set, event destination (all event types) and the webhook subscription; idempotent')
    .option('--webhook-url <url>', 'public https URL of the webhook SNS route, e.g. https://hooks.example.com/sns (http only in sandbox mode); required unless --ingest sqs')
    .option('--ingest <how>', 'webhook (HTTPS subscription) or sqs (queue + dead-letter queue + queue policy + SQS subscription, for ingest-sqs)', 'webhook')
    .option('--queue-name <name>', 'SQS queue name with --ingest sqs (default: the topic name; dead-letter queue <name>-dlq)')
    .option('--sqs-endpoint <url>', 'SQS API endpoint with --ingest sqs (default AWS; required in sandbox mode: the local SQS)')
    .option('--topic-name <name>', 'SNS topic name (default <configuration set>-events)')
    .option('--configuration-set <name>', 'SES configuration set (default SES_CONFIGURATION_SET)')
    .option('--dry-run', 'print the plan; change nothing')
    .option('--json', 'print JSON')
    .action(async (o: InitAwsCliOptions) => {
      await runInitAwsCli(o);
    });

  return program;
}

/** Runs the CLI. */
export async function main(argv = process.argv): Promise<void> {
  silenceAwsNodeVersionWarning();
  await buildProgram().parseAsync(argv);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`ses-lifecycle: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
