/**
 * `ses-lifecycle doctor`: checks the setup the config describes and says how to fix each
 * failure. Temporal CLI, ports, Temporal reachable, search attributes; then SES and SNS (aws
 * mode: real AWS; sandbox mode: the running local sandbox): account, sender identity,
 * configuration set, its SNS event destination, and a confirmed subscription of the topic.
 * Only reads; never creates anything.
 */
import {
  GetAccountCommand,
  GetConfigurationSetCommand,
  GetConfigurationSetEventDestinationsCommand,
  GetEmailIdentityCommand,
  ListEmailIdentitiesCommand,
  NotFoundException,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import { paginateListSubscriptionsByTopic, type SNSClient } from '@aws-sdk/client-sns';
import { Connection } from '@temporalio/client';
import type { Config } from './config';
import { dataDirOwner } from './data-dir-lock';
import { SEARCH_ATTRIBUTES } from './definitions';
import { assertPortFree, temporalConnectionOptions } from './stack';
import { resolveTemporalCli, TEMPORAL_CLI_FIX } from './temporal-cli';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One check: what was checked, what was found, and how to fix it when it is not ok. */
export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface DoctorOptions {
  config: Readonly<Config>;
  /** SES and SNS clients for the mode (sandbox: the local sandbox endpoint). */
  ses: () => SESv2Client;
  sns: () => SNSClient;
  /** Sender address (or domain) whose SES identity must be verified (aws mode). */
  from?: string;
  /** Public webhook URL the subscription must point at (optional). */
  webhookUrl?: string;
}

/**
 * Event types the lifecycle needs from the event destination. Opens and clicks are optional, and
 * so is SEND: any later event of the message proves an ambiguous send too (rule 8), and leaving
 * Send events out saves 4 history events and 1 billable action per email (BENCHMARKS.md, cost).
 */
export const REQUIRED_EVENT_TYPES = ['REJECT', 'BOUNCE', 'COMPLAINT', 'DELIVERY', 'RENDERING_FAILURE', 'DELIVERY_DELAY'] as const;

/** temporal.api.enums.v1.IndexedValueType numbers of our attribute types. */
const INDEXED_VALUE_TYPE: Record<string, number> = { Keyword: 2, KeywordList: 7 };

const message = (err: unknown): string => {
  const e = err as { name?: string; message?: string };
  const text = (e.message ?? String(err)).split('\n')[0]!;
  return e.name && e.name !== 'Error' && !text.startsWith(e.name) ? `${e.name}: ${text}` : text;
};

/** Runs every check, in order. Never throws: a failure is a check. */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorCheck[]> {
  const { config } = opts;
  const checks: DoctorCheck[] = [];
  const add = (c: DoctorCheck): DoctorCheck => (checks.push(c), c);
  const embedded = config.temporal.address === undefined;
  const owner = embedded ? dataDirOwner(config.dataDir) : undefined;

  // 1. Temporal CLI (the embedded dev server needs it).
  if (!embedded) {
    add({ name: 'Temporal CLI', status: 'skip', detail: 'TEMPORAL_ADDRESS is set: no embedded dev server, no CLI needed' });
  } else {
    try {
      const cli = await resolveTemporalCli({ allowSdkDownload: false });
      add({ name: 'Temporal CLI', status: 'ok', detail: `${cli.path} (${cli.source}${cli.version ? ` ${cli.version}` : ''})` });
    } catch (err) {
      const text = message(err);
      add({
        name: 'Temporal CLI',
        status: 'fail',
        detail: text.split(' Tried')[0]!,
        fix: text.startsWith('TEMPORAL_CLI_PATH') ? 'point TEMPORAL_CLI_PATH at the temporal binary, or unset it' : TEMPORAL_CLI_FIX.replace(/^Fix: /, ''),
      });
    }
  }

  // 2. Ports: free, or held by the running stack of this DATA_DIR.
  const ports: [string, number, string][] = embedded
    ? [
        ['TEMPORAL_PORT', config.temporal.devServer.port, '127.0.0.1'],
        ['TEMPORAL_UI_PORT', config.temporal.devServer.uiPort, '127.0.0.1'],
        ['WEBHOOK_PORT', config.webhook.port, config.webhook.host],
        ['WEBHOOK_METRICS_PORT', config.webhook.metricsPort, config.webhook.metricsHost],
        ...(config.mode === 'sandbox'
          ? ([
              ['SANDBOX_PORT', config.sandbox.port, '127.0.0.1'],
              ['SANDBOX_HTTPS_PORT', config.sandbox.httpsPort, '127.0.0.1'],
            ] as [string, number, string][])
          : []),
      ]
    : [
        ['WEBHOOK_PORT', config.webhook.port, config.webhook.host],
        ['WEBHOOK_METRICS_PORT', config.webhook.metricsPort, config.webhook.metricsHost],
        ['WORKER_METRICS_PORT', config.workerMetrics.port, config.workerMetrics.host],
      ];
  let temporalPortTaken = false;
  for (const [variable, port, host] of ports) {
    if (port === 0) continue;
    const name = `port ${variable}`;
    try {
      await assertPortFree(port, host, variable);
      add({ name, status: 'ok', detail: `${host}:${port} is free` });
    } catch {
      if (variable === 'TEMPORAL_PORT') temporalPortTaken = true;
      if (owner !== undefined) add({ name, status: 'ok', detail: `${host}:${port} in use by the running ses-lifecycle stack (pid ${owner}, DATA_DIR ${config.dataDir})` });
      else if (!embedded) add({ name, status: 'warn', detail: `${host}:${port} is taken (fine if it is your running ${variable === 'WORKER_METRICS_PORT' ? 'worker' : 'webhook'})`, fix: `set ${variable} to a free port` });
      else add({ name, status: 'fail', detail: `${host}:${port} is taken by another program`, fix: `set ${variable} to a free port, or stop what listens on ${port}` });
    }
  }
  const stackRunning = !embedded || owner !== undefined || temporalPortTaken;

  // 3. Temporal reachable, 4. search attributes registered.
  const address = config.temporal.address ?? `127.0.0.1:${config.temporal.devServer.port}`;
  if (!stackRunning) {
    add({ name: 'Temporal reachable', status: 'skip', detail: `no stack running on DATA_DIR ${config.dataDir}; \`ses-lifecycle dev\` starts the dev server` });
    add({ name: 'search attributes', status: 'skip', detail: 'the dev server registers them when it starts' });
  } else {
    let connection: Connection | undefined;
    try {
      const base = embedded ? { address } : temporalConnectionOptions(config, address);
      connection = await Connection.connect({ ...base, connectTimeout: '5s' });
      const c = connection;
      await c.withDeadline(Date.now() + 5_000, () => c.workflowService.describeNamespace({ namespace: config.temporal.namespace }));
      add({ name: 'Temporal reachable', status: 'ok', detail: `${address}, namespace ${config.temporal.namespace}` });
      try {
        const sa = await c.withDeadline(Date.now() + 5_000, () => c.operatorService.listSearchAttributes({ namespace: config.temporal.namespace }));
        const have = (sa.customAttributes ?? {}) as Record<string, number>;
        const missing = Object.keys(SEARCH_ATTRIBUTES).filter((n) => have[n] === undefined);
        const wrong = Object.entries(SEARCH_ATTRIBUTES).filter(([n, t]) => have[n] !== undefined && have[n] !== INDEXED_VALUE_TYPE[t]);
        if (missing.length === 0 && wrong.length === 0) add({ name: 'search attributes', status: 'ok', detail: Object.keys(SEARCH_ATTRIBUTES).join(', ') });
        else {
          add({
            name: 'search attributes',
            status: 'fail',
            detail: [missing.length ? `missing ${missing.join(', ')}` : '', wrong.length ? `wrong type ${wrong.map(([n, t]) => `${n} (want ${t})`).join(', ')}` : ''].filter(Boolean).join('; '),
            fix:
              `\`ses-lifecycle worker\` registers them when it starts, or run ` +
              (missing.length ? missing : wrong.map(([n]) => n)).map((n) => `\`temporal operator search-attribute create --namespace ${config.temporal.namespace} --name ${n} --type ${SEARCH_ATTRIBUTES[n]}\``).join(', ') +
              ' (Temporal Cloud: the Cloud UI or tcld)',
          });
        }
      } catch (err) {
        add({ name: 'search attributes', status: 'fail', detail: `cannot list them: ${message(err)}`, fix: 'the operator API needs an admin role; on Temporal Cloud check them in the Cloud UI' });
      }
    } catch (err) {
      add({
        name: 'Temporal reachable',
        status: 'fail',
        detail: `${address}: ${message(err)}`,
        fix: embedded ? 'start `ses-lifecycle dev`, or set TEMPORAL_ADDRESS to your cluster' : 'check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TLS / TEMPORAL_API_KEY',
      });
      add({ name: 'search attributes', status: 'skip', detail: 'Temporal not reachable' });
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }

  // 5. SES and SNS.
  if (config.mode === 'sandbox' && !(owner !== undefined || (await portTaken(config.sandbox.port)))) {
    add({ name: 'SES', status: 'skip', detail: `sandbox mode and no sandbox running at 127.0.0.1:${config.sandbox.port}; \`ses-lifecycle dev\` starts it (SES_LIFECYCLE_MODE=aws checks real AWS)` });
    return checks;
  }
  const ses = opts.ses();
  const sns = opts.sns();
  try {
    await sesChecks(opts, ses, sns, add);
  } finally {
    ses.destroy();
    sns.destroy();
  }
  return checks;
}

async function portTaken(port: number): Promise<boolean> {
  return assertPortFree(port, '127.0.0.1', 'SANDBOX_PORT').then(
    () => false,
    () => true,
  );
}

async function sesChecks(opts: DoctorOptions, ses: SESv2Client, sns: SNSClient, add: (c: DoctorCheck) => DoctorCheck): Promise<void> {
  const { config } = opts;
  const aws = config.mode === 'aws';
  const where = aws ? `SES ${config.aws.region}` : `sandbox 127.0.0.1:${config.sandbox.port}`;
  const credentialsFix = aws ? 'check AWS credentials (AWS_PROFILE / AWS_ACCESS_KEY_ID), AWS_REGION and the IAM policy in README "Real AWS walkthrough"' : 'is `ses-lifecycle dev` running with these ports?';

  // Account.
  try {
    const a = await ses.send(new GetAccountCommand({}));
    if (a.SendingEnabled === false) add({ name: 'SES account', status: 'fail', detail: `${where}: sending is disabled (EnforcementStatus ${a.EnforcementStatus ?? '?'})`, fix: 'see the SES console (Reputation metrics); re-enable with `aws sesv2 put-account-sending-attributes --sending-enabled`' });
    else if (a.ProductionAccessEnabled === false) add({ name: 'SES account', status: 'warn', detail: `${where}: in the SES sandbox (only verified recipients, 200/day)`, fix: 'request production access in the SES console' });
    else add({ name: 'SES account', status: 'ok', detail: `${where}: sending enabled${a.SendQuota?.MaxSendRate !== undefined ? `, max ${a.SendQuota.MaxSendRate}/s` : ''}` });
  } catch (err) {
    add({ name: 'SES account', status: 'fail', detail: `${where}: ${message(err)}`, fix: credentialsFix });
    return;
  }

  // Sender identity.
  if (!aws && opts.from === undefined) add({ name: 'SES identity', status: 'skip', detail: 'the local sandbox accepts every sender' });
  else await identityCheck(ses, opts.from, add);

  // Configuration set.
  const setName = config.aws.configurationSetName;
  const initAws = '`ses-lifecycle init-aws --webhook-url https://<your host>/sns` creates it (or set SES_CONFIGURATION_SET to an existing set)';
  try {
    const set = await ses.send(new GetConfigurationSetCommand({ ConfigurationSetName: setName }));
    if (set.SendingOptions?.SendingEnabled === false) add({ name: 'configuration set', status: 'fail', detail: `${setName}: sending disabled`, fix: `\`aws sesv2 put-configuration-set-sending-options --configuration-set-name ${setName} --sending-enabled\`` });
    else add({ name: 'configuration set', status: 'ok', detail: setName });
  } catch (err) {
    if (err instanceof NotFoundException || (err as Error).name === 'NotFoundException') add({ name: 'configuration set', status: 'fail', detail: `${setName} does not exist (SES_CONFIGURATION_SET)`, fix: initAws });
    else add({ name: 'configuration set', status: 'fail', detail: `${setName}: ${message(err)}`, fix: credentialsFix });
    add({ name: 'event destination', status: 'skip', detail: 'no configuration set' });
    add({ name: 'SNS subscription', status: 'skip', detail: 'no configuration set' });
    return;
  }

  // Event destination.
  let topicArn: string | undefined;
  try {
    const r = await ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: setName }));
    const sns = (r.EventDestinations ?? []).filter((d) => d.SnsDestination?.TopicArn && d.Enabled !== false);
    const covers = (d: (typeof sns)[number]) => REQUIRED_EVENT_TYPES.filter((t) => !(d.MatchingEventTypes ?? []).includes(t));
    const best = [...sns].sort((a, b) => covers(a).length - covers(b).length)[0];
    if (!best) {
      add({ name: 'event destination', status: 'fail', detail: `${setName} has no enabled SNS event destination`, fix: initAws.replace('creates it', 'adds one') });
    } else {
      topicArn = best.SnsDestination!.TopicArn!;
      const missing = covers(best);
      if (missing.length) add({ name: 'event destination', status: 'fail', detail: `${setName}/${best.Name ?? '?'} → ${topicArn} lacks event types ${missing.join(', ')}`, fix: initAws.replace('creates it', 'updates it to every event type') });
      else if (aws && !config.webhook.allowedTopicArns.includes(topicArn)) add({ name: 'event destination', status: 'fail', detail: `${setName}/${best.Name ?? '?'} publishes to ${topicArn}, which SNS_ALLOWED_TOPIC_ARNS does not list: the webhook refuses its notifications`, fix: `add ${topicArn} to SNS_ALLOWED_TOPIC_ARNS` });
      else add({ name: 'event destination', status: 'ok', detail: `${setName}/${best.Name ?? '?'} → ${topicArn}` });
    }
  } catch (err) {
    add({ name: 'event destination', status: 'fail', detail: `${setName}: ${message(err)}`, fix: credentialsFix });
  }

  // SNS subscription of the webhook.
  if (topicArn === undefined) {
    add({ name: 'SNS subscription', status: 'skip', detail: 'no SNS topic' });
    return;
  }
  try {
    const subs: { arn: string; endpoint: string; protocol: string }[] = [];
    for await (const page of paginateListSubscriptionsByTopic({ client: sns }, { TopicArn: topicArn })) {
      for (const s of page.Subscriptions ?? []) subs.push({ arn: s.SubscriptionArn ?? '', endpoint: s.Endpoint ?? '', protocol: s.Protocol ?? '' });
    }
    const web = subs.filter((s) => (s.protocol === 'https' || s.protocol === 'http') && (opts.webhookUrl === undefined || s.endpoint === opts.webhookUrl));
    const confirmed = web.filter((s) => s.arn.startsWith('arn:'));
    if (confirmed.length) add({ name: 'SNS subscription', status: 'ok', detail: `${confirmed.map((s) => s.endpoint).join(', ')} confirmed on ${topicArn}` });
    else if (web.length)
      add({
        name: 'SNS subscription',
        status: 'fail',
        detail: `${web.map((s) => s.endpoint).join(', ')} is PendingConfirmation on ${topicArn}`,
        fix: 'the webhook confirms it when SNS can reach it: make the URL reachable, then run `ses-lifecycle init-aws --webhook-url <that url>` again to resend the confirmation request',
      });
    else add({ name: 'SNS subscription', status: 'fail', detail: `no http(s) subscription${opts.webhookUrl ? ` for ${opts.webhookUrl}` : ''} on ${topicArn}`, fix: '`ses-lifecycle init-aws --webhook-url https://<your host>/sns` subscribes the webhook' });
  } catch (err) {
    add({ name: 'SNS subscription', status: 'fail', detail: `${topicArn}: ${message(err)}`, fix: credentialsFix });
  }
}

async function identityCheck(ses: SESv2Client, from: string | undefined, add: (c: DoctorCheck) => DoctorCheck): Promise<void> {
  const verifyFix = (id: string) => `verify it: \`aws sesv2 create-email-identity --email-identity ${id}\`, then click the link SES mails (address) or publish the DKIM records (domain)`;
  if (from === undefined) {
    try {
      const r = await ses.send(new ListEmailIdentitiesCommand({ PageSize: 100 }));
      const ok = (r.EmailIdentities ?? []).filter((i) => i.SendingEnabled !== false && i.VerificationStatus === 'SUCCESS').map((i) => i.IdentityName ?? '');
      if (ok.length) add({ name: 'SES identity', status: 'ok', detail: `verified: ${ok.slice(0, 5).join(', ')}${ok.length > 5 ? ` (+${ok.length - 5})` : ''}; pass --from <address> to check your sender` });
      else add({ name: 'SES identity', status: 'fail', detail: 'no verified identity: SES refuses every send', fix: verifyFix('<your address or domain>') });
    } catch (err) {
      add({ name: 'SES identity', status: 'fail', detail: message(err), fix: 'check AWS credentials and the ses:ListEmailIdentities permission' });
    }
    return;
  }
  const domain = from.includes('@') ? from.split('@').pop()! : from;
  for (const id of from.includes('@') ? [from, domain] : [domain]) {
    try {
      const r = await ses.send(new GetEmailIdentityCommand({ EmailIdentity: id }));
      if (r.VerifiedForSendingStatus) {
        add({ name: 'SES identity', status: 'ok', detail: `${id} verified for sending` });
        return;
      }
      add({ name: 'SES identity', status: 'fail', detail: `${id} is not verified (${r.VerificationStatus ?? 'PENDING'})`, fix: verifyFix(id) });
      return;
    } catch (err) {
      if (!(err instanceof NotFoundException || (err as Error).name === 'NotFoundException')) {
        add({ name: 'SES identity', status: 'fail', detail: `${id}: ${message(err)}`, fix: 'check AWS credentials and the ses:GetEmailIdentity permission' });
        return;
      }
    }
  }
  add({ name: 'SES identity', status: 'fail', detail: `neither ${from} nor ${domain} is an SES identity`, fix: verifyFix(domain) });
}

/** The text report: one line per check, a `fix:` line under each one that is not ok. */
export function formatDoctor(checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const label: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${label[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) lines.push(`      ${' '.repeat(width)}  fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => c.status === 'fail').length;
  lines.push('', failed ? `${failed} check${failed > 1 ? 's' : ''} failed` : 'all checks passed');
  return lines.join('\n');
}
