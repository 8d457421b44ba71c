/**
 * Genuine AWS-signed SNS messages (AWS's own SDK test fixtures, `test/fixtures/sns-genuine/`)
 * verified through the webhook over real HTTP: their certificates are served from a local HTTPS
 * server (the SigningCertURL is not signed, so only its host is rewritten, to an IP literal the
 * certificate host pattern names), chained to Amazon Root CA 1 through the vendored intermediates,
 * at the messages' own time (the webhook's injectable clock). Every one-byte change of a signed
 * field or of the signature is refused. Also: IP literals in certificate URLs only when the host
 * pattern names that address.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMAZON_ROOT_CA_PEMS } from '../src/webhook/amazon-roots';
import { checkSigningCertUrl, checkSubscribeUrl, startWebhookServer, WebhookMetrics, type WebhookServer } from '../src/webhook';
import { issue, startPemServer, type PemServer } from './helpers/pki';
import { getTestConnection } from './helpers/temporal';

const FIXTURES = path.join(__dirname, 'fixtures', 'sns-genuine');
type Envelope = Record<string, string>;

interface Fixture {
  name: string;
  env: Envelope;
}

function loadFixtures(): Fixture[] {
  const out: Fixture[] = [];
  for (const dir of ['aws-sdk-java-v2', 'aws-php-sns-message-validator']) {
    for (const f of readdirSync(path.join(FIXTURES, dir)).filter((n) => n.endsWith('.json')).sort()) {
      out.push({ name: `${dir}/${f}`, env: JSON.parse(readFileSync(path.join(FIXTURES, dir, f), 'utf8')) as Envelope });
    }
  }
  return out;
}

const fixtures = loadFixtures();
const pem = (p: string): string => readFileSync(path.join(FIXTURES, p), 'utf8');
const INTERMEDIATES = [pem('intermediates/amazon-rsa-2048-m01.pem'), pem('intermediates/amazon-server-ca-1b.pem')];
const LEAVES: Record<string, string> = {
  '/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem': pem('aws-sdk-java-v2/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem'),
  '/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem': pem('aws-php-sns-message-validator/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem'),
};

/** Signed fields of each message type (SNS's string to sign, Signature aside). */
function signedFields(env: Envelope): string[] {
  return env.Type === 'Notification'
    ? ['Message', 'MessageId', ...(env.Subject !== undefined ? ['Subject'] : []), 'Timestamp', 'TopicArn', 'Type']
    : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
}

/** `s` with the character at `i` replaced by another printable one (one byte changed). */
function changeAt(s: string, i: number): string {
  const c = s.charCodeAt(i);
  const repl = c === 0x61 ? 'b' : c >= 0x30 && c <= 0x39 ? String.fromCharCode(0x30 + ((c - 0x30 + 1) % 10)) : 'a';
  return s.slice(0, i) + repl + s.slice(i + 1);
}

describe('the vendored fixtures are what they claim', () => {
  it('nine messages; each leaf chains to Amazon Root CA 1 through a vendored intermediate', () => {
    expect(fixtures).toHaveLength(9);
    const root = new X509Certificate(AMAZON_ROOT_CA_PEMS[0]!);
    expect(root.subject).toContain('CN=Amazon Root CA 1');
    const [m01, b1] = INTERMEDIATES.map((p) => new X509Certificate(p)) as [X509Certificate, X509Certificate];
    expect(m01.verify(root.publicKey) && b1.verify(root.publicKey)).toBe(true);
    const java = new X509Certificate(LEAVES['/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem']!);
    const php = new X509Certificate(LEAVES['/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem']!);
    expect(java.verify(m01.publicKey)).toBe(true);
    expect(php.verify(b1.publicKey)).toBe(true);
    expect(java.subjectAltName).toBe('DNS:sns.amazonaws.com');
    expect(php.subjectAltName).toBe('DNS:sns.amazonaws.com');
  });
});

describe('IP literals in certificate and subscribe URLs', () => {
  const url = (host: string): string => `https://${host}/SimpleNotificationService-ab12.pem`;
  it('are accepted only when the host pattern names that very address', () => {
    expect(checkSigningCertUrl(url('127.0.0.1:8443'), /^127\.0\.0\.1:8443$/).ok).toBe(true);
    expect(checkSigningCertUrl(url('[::1]:8443'), /^\[::1\]:8443$/).ok).toBe(true);
    expect(checkSubscribeUrl('https://127.0.0.1:8443/?Action=ConfirmSubscription', /^127\.0\.0\.1:8443$/, 'arn:aws:sns:us-east-1:123456789012:t').ok).toBe(true);
    // A pattern that admits any address admits none; other addresses or ports stay refused.
    expect(checkSigningCertUrl(url('127.0.0.1:8443'), /^[\d.]+:8443$/).ok).toBe(false);
    expect(checkSigningCertUrl(url('127.0.0.1:8443'), /.*/).ok).toBe(false);
    expect(checkSigningCertUrl(url('[::1]:8443'), /^\[[0-9a-f:]+\]:8443$/).ok).toBe(false);
    expect(checkSigningCertUrl(url('127.0.0.2:8443'), /^127\.0\.0\.1:8443$/).ok).toBe(false);
    expect(checkSigningCertUrl(url('127.0.0.1:9443'), /^127\.0\.0\.1:8443$/).ok).toBe(false);
    expect(checkSigningCertUrl(url('169.254.169.254'), /^sns\.us-east-1\.amazonaws\.com$/).ok).toBe(false);
  });
});

describe('genuine AWS-signed SNS messages through the webhook (real HTTP, injectable clock)', () => {
  let pems: PemServer;
  let server: WebhookServer;
  const metrics = new WebhookMetrics();
  let clock = 0;

  beforeAll(async () => {
    const tlsCa = issue({ cn: 'genuine-fixtures TLS CA', ca: true });
    pems = await startPemServer(tlsCa);
    for (const [p, body] of Object.entries(LEAVES)) pems.set(p, body);
    const host = new RegExp(`^127\\.0\\.0\\.1:${pems.port}$`);
    server = await startWebhookServer({
      temporal: { client: (await getTestConnection()).client },
      allowedTopicArns: [...new Set(fixtures.map((f) => f.env.TopicArn!))],
      certHostPattern: host,
      // SubscribeURLs point at AWS; refusing them here (after verification) keeps the test offline.
      subscribeHostPattern: host,
      // The local HTTPS server's CA, for the fetch only; signing certificates must chain to Amazon.
      extraCaPem: tlsCa.certPem,
      trustedCaPems: [...AMAZON_ROOT_CA_PEMS],
      certIntermediatePems: INTERMEDIATES,
      now: () => clock,
      metrics,
      logger: false,
      host: '127.0.0.1',
      port: 0,
    });
  });
  afterAll(async () => {
    await server?.close();
    await pems?.close();
  });

  const local = (env: Envelope): Envelope => ({ ...env, SigningCertURL: env.SigningCertURL!.replace(/^https:\/\/[^/]+/, `https://127.0.0.1:${pems.port}`) });
  const post = async (env: Envelope, atMs: number): Promise<{ status: number; body: string }> => {
    clock = atMs;
    const res = await fetch(`${server.url}/sns`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': env.Type!, 'x-amz-sns-topic-arn': env.TopicArn! },
      body: JSON.stringify(env),
    });
    return { status: res.status, body: await res.text() };
  };
  const timeOf = (env: Envelope): number => Date.parse(env.Timestamp!) + 60_000;

  it.each(fixtures.map((f) => [f.name, f] as const))('%s: every one-byte change is refused, the genuine message verifies', async (_name, { env }) => {
    const at = timeOf(env);
    const genuine = local(env);
    // Tampered copies first, so no dedupe of the genuine MessageId can answer for them.
    let tampers = 0;
    for (const field of signedFields(env)) {
      const v = genuine[field]!;
      for (const i of new Set([0, Math.floor(v.length / 2), v.length - 1])) {
        const r = await post({ ...genuine, [field]: changeAt(v, i) }, at);
        expect(r.status, `${field}[${i}] changed`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${field}[${i}] changed`).toBeLessThan(500);
        if (field === 'Message' || field === 'MessageId' || field === 'Subject' || field === 'Token') expect(r.body).toContain('invalid signature');
        tampers += 1;
      }
    }
    const sig = Buffer.from(genuine.Signature!, 'base64');
    for (const i of [0, 128, sig.length - 1]) {
      const flipped = Buffer.from(sig);
      flipped[i] = (flipped[i] ?? 0) ^ 0x01;
      const r = await post({ ...genuine, Signature: flipped.toString('base64') }, at);
      expect(r.status).toBe(403);
      expect(r.body).toContain('invalid signature');
      tampers += 1;
    }
    // Subject removed, or added where there was none: refused too.
    const { Subject: _s, ...noSubject } = genuine;
    if (env.Type === 'Notification') {
      const r = await post(env.Subject !== undefined ? noSubject : { ...genuine, Subject: 'x' }, at);
      expect(r.status).toBe(403);
      tampers += 1;
    }
    expect(tampers).toBeGreaterThanOrEqual(15);

    // Outside the replay window (the real clock of today, or hours after the message): refused.
    expect((await post(genuine, Date.parse(env.Timestamp!) + 4 * 3_600_000)).body).toContain('timestamp outside the replay window');
    // At its own time: verified. Notifications ("Hello world", not SES) are acknowledged as
    // ignored, unsubscribe notices as such; a SubscriptionConfirmation verifies and then stops at
    // its SubscribeURL (AWS's host, not allowed in this offline test).
    const r = await post(genuine, at);
    if (env.Type === 'Notification') expect(JSON.parse(r.body)).toEqual({ status: 'ignored' });
    else if (env.Type === 'UnsubscribeConfirmation') expect(JSON.parse(r.body)).toEqual({ status: 'unsubscribed' });
    else {
      expect(r.status).toBe(403);
      expect(r.body).toContain('SubscribeURL not allowed');
    }
  });

  it('the certificate validity follows the injected clock: after the certificate expired, refused', async () => {
    // The Java fixtures' certificate is valid until 2026-10-14. A message claiming a later time
    // (its Timestamp changed, so the replay window at the injected clock passes) is refused on the
    // certificate's validity before its signature is even checked.
    const env = local(fixtures.find((f) => f.name.endsWith('test-notification-with-subject.json'))!.env);
    const later = Date.parse('2026-11-01T00:00:00Z');
    const r = await post({ ...env, Timestamp: new Date(later).toISOString() }, later + 60_000);
    expect(r.status).toBe(403);
    expect(r.body).toContain('signing certificate not trusted');
    // And at its own time the same certificate is fine.
    expect(JSON.parse((await post(env, timeOf(env))).body)).toEqual({ status: 'ignored' });
  });
});
