/**
 * Fuzzing of the SNS/SES parsers and of the whole webhook with fast-check: arbitrary JSON and
 * strings, and mutations of real payloads (the SES fixtures in test/fixtures/ses, and SNS
 * envelopes really signed by the sandbox's key). Properties: no crash, no unhandled rejection,
 * always a defined result of a known kind, webhook status always in the allowed set and never
 * 500, and nothing recorded when a signed field was changed.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SnsMessage } from '../../src/sandbox';
import { parseSesEvent, parseSesEventText, SesEventParseError, type SesParseResult } from '../../src/ses-events';
import { DEFAULT_BODY_LIMIT } from '../../src/webhook';
import { parseSnsBody } from '../../src/webhook/envelope';
import { FigureTally, newSesId, sesJson, snsHeaders, startHostileEnv, unsignedNotification, type HostileEnv } from './hostile-helpers';
import { HANG_GUARD_MS } from '../helpers/wait';

// Fixed run counts take as long as the CPU needs; nothing here is timed.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

const FIXTURES_DIR = path.join(__dirname, '..', 'fixtures', 'ses');
const FIXTURES: Record<string, unknown>[] = readdirSync(FIXTURES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(FIXTURES_DIR, f), 'utf8')) as Record<string, unknown>);

let env: HostileEnv;
let app: FastifyInstance;
const rejections: unknown[] = [];
const onRejection = (reason: unknown): void => {
  rejections.push(reason);
};
/** `FUZZ_SEED=<n>` replays a run (fast-check prints the seed of a failure); random otherwise. */
const SEED = process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {};
const parsers = new FigureTally('fuzz-parsers');
const webhook = new FigureTally('fuzz-webhook');

/** Runs a property check, counting it as failed in `tally` when it throws. */
async function counted(tally: FigureTally, check: () => void | Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    tally.failed += 1;
    throw err;
  }
}

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  env = await startHostileEnv('fuzz');
  app = await env.app();
});

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  for (const t of [parsers, webhook]) console.log(`[hostile] ${t.suite}: ${JSON.stringify(t.write())}`);
  await env?.close();
});

// ---------------------------------------------------------------------------------------------
// Mutations of real payloads

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type PathKey = string | number;

const MUTATION_KINDS = ['delete', 'replace', 'retype', 'empty', 'huge-string', 'duplicate-array', 'proto-key', 'null', 'deep'] as const;

/** Placeholder a `deep` mutation leaves in the document; {@link toText} expands it. */
const DEEP = '\u0000fuzz-deep\u0000';
const deepDepth = (at: number): number => 6_000 + (at % 4_000);
interface Mutation {
  kind: (typeof MUTATION_KINDS)[number];
  /** Index into the payload's node paths (modulo their number). */
  at: number;
  value: Json;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom(...MUTATION_KINDS),
  at: fc.nat(),
  value: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
});
const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** Every path to a node of `value` (the root excluded). */
function nodePaths(value: Json, prefix: PathKey[] = [], out: PathKey[][] = []): PathKey[][] {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([...prefix, i]);
      nodePaths(v, [...prefix, i], out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push([...prefix, k]);
      nodePaths(v, [...prefix, k], out);
    }
  }
  return out;
}

function retype(v: Json): Json {
  if (typeof v === 'string') return v.length;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 0;
  if (v === null) return {};
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), x]));
  return Object.values(v);
}

/** Applies `mutations` to a deep copy of `root` (JSON round trip, so keys like `__proto__` stay own keys). */
function mutate(root: Json, mutations: Mutation[]): Json {
  let doc = JSON.parse(JSON.stringify(root)) as Json;
  for (const m of mutations) {
    const paths = nodePaths(doc);
    if (paths.length === 0) {
      doc = m.value;
      continue;
    }
    const p = paths[m.at % paths.length]!;
    const parent = p.slice(0, -1).reduce<Json>((node, k) => (node as Record<PathKey, Json>)[k]!, doc) as Record<PathKey, Json> | Json[];
    const key = p[p.length - 1]!;
    const current = (parent as Record<PathKey, Json>)[key]!;
    const set = (v: Json): void => {
      (parent as Record<PathKey, Json>)[key] = v;
    };
    switch (m.kind) {
      case 'delete':
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        break;
      case 'replace':
        set(m.value);
        break;
      case 'retype':
        set(retype(current));
        break;
      case 'empty':
        set(typeof current === 'string' ? '' : Array.isArray(current) ? [] : current !== null && typeof current === 'object' ? {} : '');
        break;
      case 'huge-string':
        set('x'.repeat(5_000));
        break;
      case 'duplicate-array':
        set(Array.isArray(current) ? Array.from({ length: 1_001 }, (_, i) => current[i % Math.max(1, current.length)] ?? 'x@example.com') : [current, current]);
        break;
      case 'proto-key':
        set(JSON.parse(`{"__proto__":${JSON.stringify(current)},"constructor":{"prototype":{"polluted":"yes"}}}`) as Json);
        break;
      case 'null':
        set(null);
        break;
      case 'deep':
        // Nesting of 6 000 to 10 000 arrays, written into the text by toText (JSON.stringify
        // here would overflow the stack itself).
        set(`${DEEP}${deepDepth(m.at)}`);
        break;
    }
  }
  return doc;
}

/** JSON text of a (mutated) document, with `deep` placeholders expanded into nested arrays. */
function toText(doc: Json): string {
  return JSON.stringify(doc).replace(/"\\u0000fuzz-deep\\u0000(\d+)"/g, (_m, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));
}

const fixtureArb = fc.constantFrom(...FIXTURES.map((f) => f as Json));
/** A fixture with a fresh SES message id, so webhook runs never collide. */
const freshFixtureArb = fc.tuple(fixtureArb, fc.uuid()).map(([f, id]) => {
  const copy = JSON.parse(JSON.stringify(f)) as Json;
  const mail = (copy as { mail?: { messageId?: string } }).mail;
  if (mail) mail.messageId = `fuzz-${id}`;
  return copy;
});

// ---------------------------------------------------------------------------------------------
// Checks

const polluted = (): boolean => (({}) as Record<string, unknown>).polluted !== undefined;

/** Runs a parser, classifying the outcome: a known result, a typed refusal, or a crash. */
function classifySes(run: () => SesParseResult): 'event' | 'not-ses' | 'refused' | 'crash' {
  try {
    const r = run();
    if (r.kind === 'event') {
      const e = r.event;
      const sane =
        typeof e.id === 'string' &&
        /^ev-[0-9a-f]{32}$/.test(e.id) &&
        typeof e.type === 'string' &&
        typeof e.sesMessageId === 'string' &&
        e.sesMessageId.length > 0 &&
        typeof e.timestamp === 'string' &&
        e.timestamp.length > 0 &&
        Array.isArray(e.recipients) &&
        e.recipients.length <= 1000 &&
        e.recipients.every((x) => typeof x === 'string') &&
        (e.lifecycleId === undefined || typeof e.lifecycleId === 'string');
      return sane ? 'event' : 'crash';
    }
    return r.kind === 'not-ses' && typeof r.reason === 'string' ? 'not-ses' : 'crash';
  } catch (err) {
    return err instanceof SesEventParseError && typeof err.path === 'string' ? 'refused' : 'crash';
  }
}

function tallyParser(outcome: string): void {
  parsers.tried += 1;
  if (outcome === 'crash') parsers.crashes += 1;
  else if (outcome !== 'event' && outcome !== 'envelope') parsers.refused += 1;
}

const SNS_KINDS = ['envelope', 'unknown-type', 'raw', 'malformed'];

function classifySns(text: string): string {
  try {
    const r = parseSnsBody(text);
    if (!SNS_KINDS.includes(r.kind)) return 'crash';
    if (r.kind === 'envelope') {
      const e = r.envelope as unknown as Record<string, unknown>;
      const strings = ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL'].every((k) => typeof e[k] === 'string');
      return strings ? 'envelope' : 'crash';
    }
    return r.kind;
  } catch {
    return 'crash';
  }
}

const SIGNED_KEYS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type', 'Signature', 'SignatureVersion'] as const;

interface Reply {
  status: number;
  body: { error?: string; status?: string };
}

async function post(body: string, type: string): Promise<Reply> {
  const res = await app.inject({ method: 'POST', url: '/sns', headers: snsHeaders(type), payload: body });
  let parsed: Reply['body'];
  try {
    parsed = res.json<Reply['body']>();
  } catch {
    parsed = {};
  }
  return { status: res.statusCode, body: parsed };
}

function tallyWebhook(r: Reply, signalled: boolean): void {
  webhook.tried += 1;
  if (r.status >= 400 || r.body.status === 'ignored' || r.body.status === 'duplicate') webhook.refused += 1;
  if (r.status === 500) webhook.crashes += 1;
  if (signalled) webhook.signalled += 1;
}

/** Statuses the webhook may answer to fuzzed input (503 only for an unavailable certificate). */
function allowed(r: Reply): boolean {
  if (r.status === 200) return r.body.status === 'recorded' || r.body.status === 'ignored' || r.body.status === 'duplicate';
  if ([400, 403, 413].includes(r.status)) return typeof r.body.error === 'string' && r.body.error.length < 100;
  if (r.status === 503) return r.body.error === 'signing certificate unavailable';
  return false;
}

// ---------------------------------------------------------------------------------------------

describe('fuzz: parsers (pure)', () => {
  it('parseSnsBody: arbitrary strings and JSON never throw and always classify', async () => {
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.dictionary(fc.constantFrom('Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL', 'Subject', 'SubscribeURL', 'Token', '__proto__'), fc.jsonValue({ maxDepth: 2 })).map((v) => JSON.stringify(v)),
    );
    await counted(parsers, () =>
      fc.assert(
        fc.property(input, (text) => {
          const outcome = classifySns(text);
          tallyParser(outcome);
          expect(outcome).not.toBe('crash');
        }),
        { numRuns: 800, ...SEED },
      ),
    );
    expect(polluted()).toBe(false);
  });

  it('parseSnsBody: mutated real signed envelopes never throw and always classify', async () => {
    const base = () => env.sandbox.signMessage(unsignedNotification(env.topicArn, sesJson('Delivery', newSesId())));
    const envelopes = [base(), env.sandbox.signMessage({ ...unsignedNotification(env.topicArn, '{}'), Subject: 'S' }, '1')];
    await counted(parsers, () =>
      fc.assert(
        fc.property(fc.constantFrom(...envelopes), mutationsArb, (envelope, ms) => {
          const outcome = classifySns(toText(mutate(envelope as unknown as Json, ms)));
          tallyParser(outcome);
          expect(outcome).not.toBe('crash');
        }),
        { numRuns: 600, ...SEED },
      ),
    );
  });

  it('parseSesEvent: arbitrary JSON values give a result or SesEventParseError', async () => {
    const sesShaped = fc.record(
      {
        eventType: fc.oneof(fc.constantFrom('Send', 'Reject', 'Bounce', 'Complaint', 'Delivery', 'Open', 'Click', 'Rendering Failure', 'DeliveryDelay', 'Subscription', 'Teleport'), fc.jsonValue({ maxDepth: 1 })),
        notificationType: fc.jsonValue({ maxDepth: 1 }),
        mail: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ messageId: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })), timestamp: fc.string(), tags: fc.jsonValue({ maxDepth: 3 }), headers: fc.jsonValue({ maxDepth: 3 }), destination: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] })),
        bounce: fc.jsonValue({ maxDepth: 3 }),
        complaint: fc.jsonValue({ maxDepth: 3 }),
        delivery: fc.jsonValue({ maxDepth: 3 }),
        deliveryDelay: fc.jsonValue({ maxDepth: 3 }),
        open: fc.jsonValue({ maxDepth: 2 }),
        click: fc.jsonValue({ maxDepth: 2 }),
        subscription: fc.jsonValue({ maxDepth: 3 }),
        reject: fc.jsonValue({ maxDepth: 2 }),
        failure: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: [] },
    );
    await counted(parsers, () =>
      fc.assert(
        fc.property(fc.oneof(fc.jsonValue({ maxDepth: 5 }), sesShaped), fc.option(fc.string({ maxLength: 40 }), { nil: undefined }), (value, snsMessageId) => {
          const outcome = classifySes(() => parseSesEvent(value, snsMessageId !== undefined ? { snsMessageId } : {}));
          tallyParser(outcome);
          expect(outcome).not.toBe('crash');
        }),
        { numRuns: 1000, ...SEED },
      ),
    );
    expect(polluted()).toBe(false);
  });

  it('parseSesEvent: mutated real SES payloads (fixtures) give a result or SesEventParseError', async () => {
    let events = 0;
    await counted(parsers, () =>
      fc.assert(
        fc.property(fixtureArb, mutationsArb, (fixture, ms) => {
          const outcome = classifySes(() => parseSesEvent(JSON.parse(toText(mutate(fixture, ms)))));
          tallyParser(outcome);
          if (outcome === 'event') events += 1;
          expect(outcome).not.toBe('crash');
        }),
        { numRuns: 1000, ...SEED },
      ),
    );
    expect(events).toBeGreaterThan(0); // the mutations also produce valid events, not only refusals
    expect(polluted()).toBe(false);
  });

  it('parseSesEventText: truncated, byte-flipped and arbitrary texts give a result or SesEventParseError', async () => {
    const texts = fc.oneof(
      fc.tuple(fixtureArb, fc.nat()).map(([f, n]) => {
        const t = JSON.stringify(f);
        return t.slice(0, n % (t.length + 1));
      }),
      fc.tuple(fixtureArb, fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })).map(([f, n, s]) => {
        const t = JSON.stringify(f);
        const i = n % t.length;
        return t.slice(0, i) + s + t.slice(i + 1);
      }),
      fc.string({ unit: 'binary', maxLength: 200 }),
    );
    await counted(parsers, () =>
      fc.assert(
        fc.property(texts, fc.option(fc.uuid(), { nil: undefined }), (text, snsMessageId) => {
          const outcome = classifySes(() => parseSesEventText(text, snsMessageId !== undefined ? { snsMessageId } : {}));
          tallyParser(outcome);
          expect(outcome).not.toBe('crash');
        }),
        { numRuns: 600, ...SEED },
      ),
    );
  });
});

describe('fuzz: the whole webhook (app.inject, real signatures, real Temporal)', () => {
  it('mutated signed envelopes (not re-signed): allowed status, never 500, nothing recorded when a signed field changed', async () => {
    await counted(webhook, () =>
      fc.assert(
        fc.asyncProperty(fc.uuid(), mutationsArb, fc.boolean(), async (id, ms, headerFromBody) => {
          const sesId = `fuzz-env-${id}`;
          const signed: SnsMessage = env.sandbox.signMessage(unsignedNotification(env.topicArn, sesJson('Delivery', sesId), { messageId: `fuzz-${id}` }));
          const mutated = mutate(signed as unknown as Json, ms);
          const obj = (mutated !== null && typeof mutated === 'object' && !Array.isArray(mutated) ? mutated : {}) as Record<string, Json>;
          const changed = SIGNED_KEYS.some((k) => JSON.stringify(obj[k] ?? null) !== JSON.stringify((signed as unknown as Record<string, Json>)[k] ?? null));
          const type = headerFromBody && typeof obj.Type === 'string' && /^[\x20-\x7e]{0,64}$/.test(obj.Type) ? obj.Type : 'Notification';
          const r = await post(toText(mutated), type);
          const recorded = r.status === 200 && r.body.status === 'recorded';
          tallyWebhook(r, changed && recorded);
          expect(allowed(r), `status ${r.status} ${JSON.stringify(r.body)}`).toBe(true);
          if (changed) expect(recorded, 'recorded although a signed field changed').toBe(false);
        }),
        { numRuns: 300, ...SEED },
      ),
    );
    expect(rejections).toEqual([]);
    expect(polluted()).toBe(false);
  });

  it('mutated SES events, validly signed: the webhook agrees with the parser (event → 200 recorded, not SES → 200 ignored, invalid → 400)', async () => {
    await counted(webhook, () =>
      fc.assert(
        fc.asyncProperty(freshFixtureArb, fc.option(mutationsArb, { nil: undefined }), async (fixture, ms) => {
          const message = ms ? mutate(fixture, ms) : fixture;
          const text = toText(message);
          const body = JSON.stringify(env.sandbox.signMessage(unsignedNotification(env.topicArn, text, { messageId: `fuzz-${randomUUID()}` })));
          const r = await post(body, 'Notification');
          tallyWebhook(r, false);
          expect(allowed(r), `status ${r.status} ${JSON.stringify(r.body)}`).toBe(true);
          const expected = classifySes(() => parseSesEventText(text));
          expect(expected, 'the parser itself crashed on this Message').not.toBe('crash');
          // An event type this version does not know, for a message no lifecycle sent, is counted
          // and answered `ignored` (rule 7); every other event is recorded.
          const unknownType = expected === 'event' && (() => {
            const p = parseSesEventText(text);
            return p.kind === 'event' && p.event.type.startsWith('Unknown:');
          })();
          const want = Buffer.byteLength(body) > DEFAULT_BODY_LIMIT
            ? { status: 413, body: { error: 'payload too large' } }
            : expected === 'event' ? { status: 200, body: { status: unknownType ? 'ignored' : 'recorded' } } : expected === 'not-ses' ? { status: 200, body: { status: 'ignored' } } : { status: 400, body: { error: 'invalid SES event' } };
          expect(r).toEqual(want);
        }),
        { numRuns: 300, ...SEED },
      ),
    );
    expect(rejections).toEqual([]);
    expect(polluted()).toBe(false);
  });

  it('arbitrary bodies and message-type headers: allowed status, never 500', async () => {
    const header = fc.oneof(fc.constantFrom('Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'), fc.string({ unit: 'grapheme-ascii', maxLength: 70 }));
    const body = fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), freshFixtureArb.map((f) => JSON.stringify(f)));
    await counted(webhook, () =>
      fc.assert(
        fc.asyncProperty(body, header, async (b, h) => {
          const r = await post(b, h);
          tallyWebhook(r, false);
          expect(allowed(r), `status ${r.status} ${JSON.stringify(r.body)}`).toBe(true);
          expect(r.status).not.toBe(200); // nothing here is signed
        }),
        { numRuns: 400, ...SEED },
      ),
    );
    expect(rejections).toEqual([]);
  });
});
