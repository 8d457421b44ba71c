/**
 * Pure parts of the webhook: URL checks (the SSRF guard), envelope parsing, the replay window,
 * option validation, and the canonical string to sign. No network, no Temporal.
 */
import { parse as legacyParse } from 'node:url';
import fc from 'fast-check';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStringToSign } from '../src/sandbox/sns-signing';
import { checkTimestamp, parseSnsBody } from '../src/webhook/envelope';
import { Registry } from 'prom-client';
import { RejectReason, WebhookMetrics } from '../src/webhook/metrics';
import { resolveWebhookOptions } from '../src/webhook/options';
import { EventRouter, visibilityLiteral } from '../src/webhook/router';
import { expectedSigningCertNames, fieldWithLineBreak, snsStringToSign, SnsVerificationError, SnsVerifier, type SnsEnvelope } from '../src/webhook/sns-verify';
import { checkSigningCertUrl, checkSubscribeUrl, DEFAULT_SNS_HOST_PATTERN, matchesWhole } from '../src/webhook/url-checks';
import type { SesEvent } from '../src/lifecycle';

const HOST = DEFAULT_SNS_HOST_PATTERN;
const GOOD_CERT = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem';
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';

describe('checkSigningCertUrl', () => {
  it('accepts the AWS form (commercial and China partitions)', () => {
    expect(checkSigningCertUrl(GOOD_CERT, HOST).ok).toBe(true);
    expect(checkSigningCertUrl('https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0123abcd.pem', HOST).ok).toBe(true);
    for (const region of ['eu-west-1', 'ap-southeast-4', 'us-gov-west-1', 'il-central-1', 'mx-central-1', 'ca-west-1']) {
      expect(checkSigningCertUrl(`https://sns.${region}.amazonaws.com/SimpleNotificationService-0123abcd.pem`, HOST).ok, region).toBe(true);
    }
  });

  it.each([
    ['http', 'http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['look-alike suffix', 'https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem'],
    ['look-alike prefix', 'https://evilsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['foreign host', 'https://evil.example/SimpleNotificationService-abc.pem'],
    ['userinfo then evil host', 'https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-abc.pem'],
    ['userinfo on good host', 'https://user:pw@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['explicit port', 'https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem'],
    ['explicit default port (non-canonical)', 'https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem'],
    ['IP literal', 'https://54.239.28.85/SimpleNotificationService-abc.pem'],
    ['IPv6 literal', 'https://[::1]/SimpleNotificationService-abc.pem'],
    ['query', `${GOOD_CERT}?x=1`],
    ['empty query', `${GOOD_CERT}?`],
    ['fragment', `${GOOD_CERT}#x`],
    ['not .pem', 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt'],
    ['other path', 'https://sns.us-east-1.amazonaws.com/somewhere/else.pem'],
    ['dot segments', 'https://sns.us-east-1.amazonaws.com/x/../SimpleNotificationService-abc.pem'],
    ['upper-case host', 'https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['backslash', 'https://sns.us-east-1.amazonaws.com\\@evil.example/SimpleNotificationService-abc.pem'],
    ['whitespace', 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem '],
    ['trailing dot host', 'https://sns.us-east-1.amazonaws.com./SimpleNotificationService-abc.pem'],
    ['the S3 bucket named sns', 'https://sns.s3.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['the S3 bucket named sns (external endpoint)', 'https://sns.s3-external-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['a non-region label', 'https://sns.evil.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['another service endpoint', 'https://sns.execute-api.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['region-shaped but two labels', 'https://sns.us-east-1.s3.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['China suffix on a commercial region', 'https://sns.us-east-1.amazonaws.com.cn/SimpleNotificationService-abc.pem'],
    ['China region without the China suffix', 'https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['not a string', 42],
  ])('rejects %s', (_name, url) => {
    expect(checkSigningCertUrl(url, HOST).ok).toBe(false);
  });

  it('rejects IP literals even under a permissive pattern, and enforces whole-host matches on unanchored patterns', () => {
    expect(checkSigningCertUrl('https://127.0.0.1/SimpleNotificationService-abc.pem', /.*/).ok).toBe(false);
    expect(checkSigningCertUrl('https://localhost.evil.example/SimpleNotificationService-abc.pem', /localhost/).ok).toBe(false);
    expect(matchesWhole(/localhost:\d+/g, 'localhost:443')).toBe(true);
    expect(matchesWhole(/localhost:\d+/g, 'localhost:443')).toBe(true); // no lastIndex state
    expect(matchesWhole(/localhost/, 'xlocalhost')).toBe(false);
  });

  it('whatever it accepts, a legacy url.parse reads the same https host and path', () => {
    const urls = fc.oneof(
      fc.webUrl({ withQueryParameters: true, withFragments: true, validSchemes: ['https', 'http'] }),
      fc
        .tuple(fc.constantFrom('https://', 'http://', 'https:/', 'https:\\\\'), fc.constantFrom('', 'a@', 'sns.us-east-1.amazonaws.com@'), fc.constantFrom('sns.us-east-1.amazonaws.com', 'sns.eu-west-1.amazonaws.com.cn', 'SNS.us-east-1.amazonaws.com', 'sns.us-east-1.amazonaws.com.'), fc.constantFrom('', ':443', ':8443'), fc.constantFrom('/SimpleNotificationService-ab12.pem', '/a/../SimpleNotificationService-ab12.pem', '/SimpleNotificationService-ab12.pem?x', '/%53impleNotificationService-ab12.pem'))
        .map((parts) => parts.join('')),
    );
    let accepted = 0;
    fc.assert(
      fc.property(urls, (url) => {
        const r = checkSigningCertUrl(url, HOST);
        if (!r.ok) return;
        accepted += 1;
        const legacy = legacyParse(url);
        expect(legacy.protocol).toBe('https:');
        expect(legacy.host).toBe(r.url.host);
        expect(legacy.path).toBe(r.url.pathname);
        expect(matchesWhole(HOST, legacy.host ?? '')).toBe(true);
      }),
      {
        numRuns: 1000,
        // Random generation rarely builds an acceptable URL: always exercise a few.
        examples: [
          ['https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab12.pem'],
          ['https://sns.cn-northwest-1.amazonaws.com.cn/SimpleNotificationService-ab12.pem'],
        ],
      },
    );
    expect(accepted).toBeGreaterThan(0); // the property was exercised on accepted URLs too
  });
});

describe('checkSubscribeUrl', () => {
  const good = `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TOPIC}&Token=2336412f37fb687f5d51e6e2425`;
  it('accepts the AWS form', () => {
    const r = checkSubscribeUrl(good, HOST, TOPIC);
    expect(r.ok).toBe(true);
  });
  it.each([
    ['another topic', good.replace('ses-events', 'other-topic')],
    ['another action', good.replace('ConfirmSubscription', 'Unsubscribe')],
    ['http', good.replace('https:', 'http:')],
    ['foreign host', good.replace('sns.us-east-1.amazonaws.com', 'evil.example')],
    ['look-alike host', good.replace('amazonaws.com', 'amazonaws.com.evil.example')],
    ['userinfo', good.replace('https://', 'https://sns.us-east-1.amazonaws.com@')],
    ['port', good.replace('amazonaws.com/', 'amazonaws.com:8443/')],
    ['IP literal', good.replace('sns.us-east-1.amazonaws.com', '169.254.169.254')],
    ['fragment', `${good}#x`],
    ['missing', undefined],
  ])('rejects %s', (_name, url) => {
    expect(checkSubscribeUrl(url, HOST, TOPIC).ok).toBe(false);
  });
});

describe('parseSnsBody', () => {
  const env = {
    Type: 'Notification',
    MessageId: 'm-1',
    TopicArn: TOPIC,
    Message: '{}',
    Timestamp: '2026-01-01T00:00:00.000Z',
    SignatureVersion: '2',
    Signature: 'c2ln',
    SigningCertURL: GOOD_CERT,
  };
  it('parses an envelope and keeps only the fields it knows', () => {
    const r = parseSnsBody(JSON.stringify({ ...env, SigningCertUrl: 'https://evil.example/x.pem', Subject: null, Extra: 1 }));
    expect(r).toEqual({ kind: 'envelope', envelope: env });
  });
  it('classifies malformed, unknown-type and raw bodies', () => {
    expect(parseSnsBody('{').kind).toBe('malformed');
    expect(parseSnsBody('[1]').kind).toBe('malformed');
    expect(parseSnsBody(JSON.stringify({ ...env, MessageId: 7 })).kind).toBe('malformed');
    expect(parseSnsBody(JSON.stringify({ ...env, Type: 'SubscriptionConfirmation' })).kind).toBe('malformed'); // no SubscribeURL/Token
    expect(parseSnsBody(JSON.stringify({ ...env, Type: 'Whatever' }))).toEqual({ kind: 'unknown-type', type: 'Whatever' });
    expect(parseSnsBody(JSON.stringify({ eventType: 'Send', mail: {} })).kind).toBe('raw');
  });
});

describe('checkTimestamp', () => {
  const now = Date.parse('2026-01-01T12:00:00.000Z');
  const h = 3_600_000;
  it('accepts retries within the window and small clock skew; rejects the rest', () => {
    expect(checkTimestamp('2026-01-01T11:00:00.000Z', now, 3 * h)).toBeUndefined(); // a 1 h-old SNS retry
    expect(checkTimestamp('2026-01-01T12:04:00.000Z', now, 3 * h)).toBeUndefined();
    expect(checkTimestamp('2026-01-01T08:59:59.000Z', now, 3 * h)).toMatch(/older/);
    expect(checkTimestamp('2026-01-01T12:06:00.000Z', now, 3 * h)).toMatch(/future/);
    expect(checkTimestamp('yesterday', now, 3 * h)).toMatch(/not a date/);
  });
});

describe('snsStringToSign and line breaks in signed fields', () => {
  const base: SnsEnvelope = {
    Type: 'UnsubscribeConfirmation',
    MessageId: 'm-2',
    TopicArn: TOPIC,
    Message: 'bye',
    Timestamp: '2026-01-01T00:00:00.000Z',
    SignatureVersion: '2',
    Signature: 'c2ln',
    SigningCertURL: GOOD_CERT,
    SubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription',
    Token: 'tok',
  };

  it("equals SNS's string to sign (as the sandbox signs it) for every message type", () => {
    expect(snsStringToSign(base)).toBe(buildStringToSign(base));
    expect(snsStringToSign({ ...base, Type: 'SubscriptionConfirmation' })).toBe(buildStringToSign({ ...base, Type: 'SubscriptionConfirmation' }));
    const n: SnsEnvelope = { ...base, Type: 'Notification', Subject: 'S' };
    const { SubscribeURL: _s, Token: _t, ...plain } = n;
    expect(snsStringToSign(n)).toBe(buildStringToSign(plain));
  });

  it('a MessageId that carries "\nSubject\n…" builds the same string as the genuine message: such fields are refused', () => {
    const genuine: SnsEnvelope = { ...base, Type: 'Notification', Subject: 'Amazon SES Email Event Notification' };
    delete genuine.SubscribeURL;
    delete genuine.Token;
    const { Subject, ...noSubject } = genuine;
    const forged: SnsEnvelope = { ...noSubject, MessageId: `${genuine.MessageId}\nSubject\n${Subject}` };
    expect(snsStringToSign(forged)).toBe(snsStringToSign(genuine)); // the malleability itself
    expect(fieldWithLineBreak(genuine)).toBeUndefined();
    expect(fieldWithLineBreak(forged)).toBe('MessageId');
    for (const key of ['Type', 'TopicArn', 'Timestamp', 'Subject', 'SubscribeURL', 'Token'] as const) {
      expect(fieldWithLineBreak({ ...base, [key]: 'a\nb' }), key).toBe(key);
      expect(fieldWithLineBreak({ ...base, [key]: 'a\rb' }), key).toBe(key);
    }
    expect(fieldWithLineBreak({ ...base, Message: 'line 1\nline 2' })).toBeUndefined(); // Message may
  });

  it('the verifier refuses a line break in a signed field for good, before any certificate fetch', async () => {
    const v = new SnsVerifier({ certHostPattern: HOST, certPathPattern: /^\/SimpleNotificationService-[0-9a-f]+\.pem$/, timeoutMs: 100 });
    const err = await v.verify({ ...base, MessageId: 'm\nSubject\nx' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnsVerificationError);
    expect(err).toMatchObject({ permanent: true, reason: 'malformed' });
  });

  it('expects sns.amazonaws.com, plus the region-specific signing names AWS uses', () => {
    expect(expectedSigningCertNames('sns.us-east-1.amazonaws.com')).toEqual(['sns.amazonaws.com', 'sns-signing.us-east-1.amazonaws.com']);
    expect(expectedSigningCertNames('sns.cn-north-1.amazonaws.com.cn')).toContain('sns-cn-north-1.amazonaws.com.cn');
    expect(expectedSigningCertNames('sns.us-gov-east-1.amazonaws.com')).toContain('sns-us-gov-west-1.amazonaws.com');
    expect(expectedSigningCertNames('localhost:4567')).toEqual(['sns.amazonaws.com']);
  });
});

describe('options and router helpers', () => {
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  const client = new Client({ connection });
  afterAll(async () => {
    await connection.close();
  });

  it('requires a topic allowlist unless allowAnyTopic is explicit, and a replay window of at least 2 h', () => {
    expect(() => resolveWebhookOptions({ temporal: { client }, allowedTopicArns: [] })).toThrow(/allowedTopicArns/);
    expect(resolveWebhookOptions({ temporal: { client }, allowedTopicArns: [], allowAnyTopic: true }).allowAnyTopic).toBe(true);
    expect(() => resolveWebhookOptions({ temporal: { client }, allowedTopicArns: ['not-an-arn'] })).toThrow(/TopicArn/);
    expect(() => resolveWebhookOptions({ temporal: { client }, allowedTopicArns: [TOPIC], replayWindowMs: 60_000 })).toThrow(/replayWindowMs/);
    expect(() => resolveWebhookOptions({ temporal: { client, namespace: 'other' }, allowedTopicArns: [TOPIC] })).toThrow(/namespace/);
    const r = resolveWebhookOptions({ temporal: { client }, allowedTopicArns: [TOPIC] });
    expect(r).toMatchObject({ path: '/sns', bodyLimit: 256 * 1024 + 16 * 1024, replayWindowMs: 3 * 3_600_000, rawMessageDelivery: false });
  });

  it('escapes visibility literals and keys deliveries by SNS MessageId, else by event identity', () => {
    expect(visibilityLiteral('a"b\\c')).toBe('"a\\"b\\\\c"');
    const e = { id: 'ev-1', sesMessageId: 's' } as SesEvent;
    expect(EventRouter.deliveryKey(e)).toBe('event:ev-1');
    expect(EventRouter.deliveryKey({ ...e, snsMessageId: 'n-1' })).toBe('sns:n-1');
  });
});

describe('WebhookMetrics', () => {
  it('counts outcomes in a snapshot and mirrors them into a prom-client registry', async () => {
    const registry = new Registry();
    const m = new WebhookMetrics({ registry });
    m.inc('received');
    m.inc('signalled');
    m.inc('orphaned');
    m.inc('duplicate');
    m.rejected(RejectReason.InvalidSignature);
    m.unavailable('temporal');
    expect(m.snapshot()).toMatchObject({ received: 1, recorded: 2, signalled: 1, orphaned: 1, duplicate: 1, rejected: { 'invalid-signature': 1 }, unavailable: { temporal: 1 } });
    const text = await registry.metrics();
    expect(text).toContain('ses_webhook_requests_total{outcome="recorded",reason=""} 2');
    expect(text).toContain('ses_webhook_requests_total{outcome="rejected",reason="invalid-signature"} 1');
  });
});
