/**
 * Integrators trust their own SNS signer: a stack (and the CLI `webhook` command) started with a
 * signer CA and certificate host pattern verifies messages signed by a certificate that CA issued,
 * served from an IP-literal host the pattern names, beside the sandbox's own signer; without the
 * option the same message is refused, and so is a certificate from any other CA.
 */
import { spawn } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';
import { signerTrustFromConfig, startStack, type RunningStack } from '../src/stack';
import { freePorts } from '../src/temporal-cli';
import { snsStringToSign, type SnsEnvelope } from '../src/webhook';
import { issue, startPemServer, type KeyAndCert, type PemServer } from './helpers/pki';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';

const TOPIC = 'arn:aws:sns:us-east-1:111122223333:integrator-events';
const CERT_PATH = '/SimpleNotificationService-0123456789abcdef.pem';
const OTHER_PATH = '/SimpleNotificationService-fedcba9876543210.pem';

let ca: KeyAndCert;
let leaf: KeyAndCert;
let pems: PemServer;
let hostPattern: string;
const dir = mkdtempSync(path.join(tmpdir(), 'sesl-signer-'));
const caPath = path.join(dir, 'signer-ca.pem');

beforeAll(async () => {
  ca = issue({ cn: 'Integrator SNS signer CA', ca: true });
  leaf = issue({ cn: 'sns.amazonaws.com', issuer: ca, dnsNames: ['sns.amazonaws.com'] });
  const stranger = issue({ cn: 'Some other CA', ca: true });
  const strangerLeaf = issue({ cn: 'sns.amazonaws.com', issuer: stranger, dnsNames: ['sns.amazonaws.com'] });
  // The certificate server's TLS certificate is issued by the same CA (trusted for the fetch too).
  pems = await startPemServer(ca);
  pems.set(CERT_PATH, leaf.certPem);
  pems.set(OTHER_PATH, strangerLeaf.certPem);
  hostPattern = `^127\\.0\\.0\\.1:${pems.port}$`;
  writeFileSync(caPath, ca.certPem);
});
afterAll(async () => {
  await pems?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A notification carrying an SES Bounce for a message no lifecycle sent, signed with `key`. */
function signedBounce(key: KeyAndCert, certPath: string, version: '1' | '2'): SnsEnvelope {
  const event = JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'ses', 'event-bounce-permanent.json'), 'utf8')) as { mail: { messageId: string } };
  event.mail.messageId = `0100-integrator-${randomUUID()}-000000`;
  const env: SnsEnvelope = {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: TOPIC,
    Subject: 'Amazon SES Email Event Notification',
    Message: JSON.stringify(event),
    Timestamp: new Date().toISOString(),
    SignatureVersion: version,
    Signature: '',
    SigningCertURL: `https://127.0.0.1:${pems.port}${certPath}`,
  };
  const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
  signer.update(snsStringToSign(env), 'utf8');
  return { ...env, Signature: signer.sign(key.keyPem, 'base64') };
}

async function post(url: string, env: SnsEnvelope): Promise<{ status: number; body: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': env.Type, 'x-amz-sns-topic-arn': env.TopicArn },
    body: JSON.stringify(env),
  });
  return { status: res.status, body: await res.text() };
}

describe('configuration', () => {
  it('needs both variables, and a readable PEM file, naming the variable', () => {
    expect(() => loadConfig({ SNS_SIGNER_CA_PATH: caPath })).toThrow(expect.objectContaining({ variable: 'SNS_SIGNER_CERT_HOST_PATTERN' }) as Error);
    expect(() => loadConfig({ SNS_SIGNER_CERT_HOST_PATTERN: '^x$' })).toThrow(expect.objectContaining({ variable: 'SNS_SIGNER_CA_PATH' }) as Error);
    expect(() => loadConfig({ SNS_SIGNER_CA_PATH: caPath, SNS_SIGNER_CERT_HOST_PATTERN: '([' })).toThrow(expect.objectContaining({ variable: 'SNS_SIGNER_CERT_HOST_PATTERN' }) as Error);
    const missing = loadConfig({ SNS_SIGNER_CA_PATH: path.join(dir, 'nope.pem'), SNS_SIGNER_CERT_HOST_PATTERN: '^x$' });
    expect(() => signerTrustFromConfig(missing)).toThrow(ConfigError);
    const ok = signerTrustFromConfig(loadConfig({ SNS_SIGNER_CA_PATH: caPath, SNS_SIGNER_CERT_HOST_PATTERN: hostPattern }));
    expect(ok?.caPem).toContain('BEGIN CERTIFICATE');
    expect(ok?.certHostPattern.source).toBe(hostPattern);
  });
});

describe('startStack with and without the integrator signer', () => {
  const stacks: RunningStack[] = [];
  afterAll(async () => {
    for (const s of stacks) await s.stop();
  });
  const start = async (env: Record<string, string>, extra: Partial<Parameters<typeof startStack>[0]> = {}): Promise<RunningStack> => {
    quietRuntime();
    const stack = await startStack({
      ...extra,
      config: loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: `signer-${stacks.length}`, SNS_ALLOWED_TOPIC_ARNS: TOPIC, ...env }),
      temporal: { address: getTestAddress(), namespace: getTestNamespace() },
      taskQueue: uniqueTaskQueue('signer'),
      webhookPort: 0,
      webhookMetricsPort: 0,
      sandbox: { port: 0, httpsPort: 0 },
      workflowBundle: { codePath: inject('workflowBundlePath') },
      withoutWorker: true,
      logger: pino({ level: 'silent' }),
    });
    stacks.push(stack);
    return stack;
  };

  it('with SNS_SIGNER_CA_PATH + SNS_SIGNER_CERT_HOST_PATTERN: the integrator-signed event is recorded (v1 and v2); another CA is refused', async () => {
    // startStack resolving means the sandbox's own SubscriptionConfirmation verified too.
    const stack = await start({ SNS_SIGNER_CA_PATH: caPath, SNS_SIGNER_CERT_HOST_PATTERN: hostPattern });
    const url = `${stack.webhookUrl}`;
    for (const v of ['1', '2'] as const) {
      const r = await post(url, signedBounce(leaf, CERT_PATH, v));
      expect(r.status, r.body).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ status: 'recorded' });
    }
    const other = await post(url, signedBounce(leaf, OTHER_PATH, '2'));
    expect(other.status).toBe(403);
    expect(other.body).toContain('signing certificate not trusted');
    expect(pems.hits(CERT_PATH)).toBe(1); // fetched once, then cached
  });

  it('the same option as a startStack argument (signerTrust)', async () => {
    const stack = await start({}, { signerTrust: { caPem: ca.certPem, certHostPattern: new RegExp(hostPattern) } });
    const r = await post(stack.webhookUrl, signedBounce(leaf, CERT_PATH, '1'));
    expect(JSON.parse(r.body)).toEqual({ status: 'recorded' });
  });

  it('without it: the same message is refused (its certificate URL is not allowed)', async () => {
    const stack = await start({});
    const r = await post(stack.webhookUrl, signedBounce(leaf, CERT_PATH, '2'));
    expect(r.status).toBe(403);
    expect(r.body).toContain('signing certificate URL not allowed');
  });
});

describe('the CLI webhook command with the integrator signer', () => {
  it('verifies the integrator-signed event and refuses it without the variables', async () => {
    const bin = path.join(__dirname, '..', 'bin', 'ses-lifecycle.js');
    const run = async (extra: Record<string, string>, check: (url: string) => Promise<void>): Promise<void> => {
      const [port] = await freePorts(1);
      const child = spawn(process.execPath, [bin, 'webhook'], {
        env: { ...process.env, TEMPORAL_ADDRESS: getTestAddress(), TEMPORAL_NAMESPACE: getTestNamespace(), WEBHOOK_PORT: String(port), WEBHOOK_METRICS_PORT: '0', SNS_ALLOWED_TOPIC_ARNS: TOPIC, LOG_LEVEL: 'warn', ...extra },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await new Promise<void>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('webhook listening at')) resolve();
          });
          child.stderr.on('data', (d: Buffer) => (out += d.toString()));
          child.once('exit', (code) => reject(new Error(`webhook exited (${code}): ${out}`)));
        });
        await check(`http://127.0.0.1:${port}/sns`);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      }
    };
    await run({ SNS_SIGNER_CA_PATH: caPath, SNS_SIGNER_CERT_HOST_PATTERN: hostPattern }, async (url) => {
      const r = await post(url, signedBounce(leaf, CERT_PATH, '2'));
      expect(JSON.parse(r.body)).toEqual({ status: 'recorded' });
    });
    await run({}, async (url) => {
      const r = await post(url, signedBounce(leaf, CERT_PATH, '2'));
      expect(r.status).toBe(403);
    });
  }, 120_000);
});
