/**
 * Hostile input against the `sendTracked()` client API: every case must throw
 * InvalidEmailInputError naming the bad field, and nothing may be started in Temporal.
 *
 * A real LifecycleClient on the shared Temporal dev server, on a task queue nobody polls. Each
 * case sends with its own idempotency key, so "nothing started" is exact: the lifecycle id that
 * key maps to has no workflow. At the end a visibility count of the whole task queue (with a
 * positive control, so the count is not vacuous) covers the cases without a usable key.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidEmailInputError, LifecycleClient, lifecycleIdFor, MAX_BODY_CHARS, validateSendInput, type SendTrackedInput } from '../../src/client';
import { getTestConnection, uniqueTaskQueue } from '../helpers/temporal';
import { FigureTally, workflowExists } from './hostile-helpers';

let lc: LifecycleClient;
const taskQueue = uniqueTaskQueue('hostile-client');
const tally = new FigureTally('client');

beforeAll(async () => {
  const { client } = await getTestConnection();
  lc = new LifecycleClient(client, { taskQueue });
});

afterAll(() => {
  const figure = tally.write();
  console.log(`[hostile] client: ${JSON.stringify(figure)}`);
});

const VALID: SendTrackedInput = { from: 'app@example.com', to: ['a@example.com'], subject: 'Hi', text: 'Hello' };

interface ClientCase {
  name: string;
  /** The input (anything: the API is called from untyped code too). */
  input: () => unknown;
  /** `InvalidEmailInputError.field` expected. */
  field: string;
  /** Idempotency key to send with (default: a fresh valid key, checked afterwards). */
  idempotencyKey?: () => string;
}

const n = (count: number, prefix = 'r'): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}@example.com`);
const withTo = (...to: unknown[]): unknown => ({ ...VALID, to });

const BAD_ADDRESSES: [string, string][] = [
  ['empty', ''],
  ['no @', 'plainaddress'],
  ['no local part', '@example.com'],
  ['no domain', 'a@'],
  ['two @', 'a@@example.com'],
  ['space in local part', 'a b@example.com'],
  ['space in domain', 'a@exa mple.com'],
  ['angle brackets', '<a@example.com>'],
  ['CRLF + Bcc header injection', 'a@example.com\r\nBcc: victim@example.com'],
  ['LF injection', 'a@example.com\nBcc: victim@example.com'],
  ['comma list', 'a@example.com,b@example.com'],
  ['semicolon list', 'a@example.com;b@example.com'],
  ['dotless domain', 'a@localhost'],
  ['domain label starting with -', 'a@-example.com'],
  ['domain label ending with -', 'a@example-.com'],
  ['underscore in domain', 'a@exam_ple.com'],
  ['IP-literal domain', 'a@[127.0.0.1]'],
  ['quoted local part', '"quoted"@example.com'],
  ['NUL in local part', 'a\u0000b@example.com'],
  ['non-ASCII domain', 'a@ex\u00e4mple.com'],
  ['65-character local part', `${'a'.repeat(65)}@example.com`],
  ['longer than 320 characters', `a@${Array.from({ length: 6 }, () => 'd'.repeat(60)).join('.')}.com`],
  ['trailing space', 'a@example.com '],
  ['leading space', ' a@example.com'],
  ['parentheses (comment)', 'a(comment)@example.com'],
  ['backslash', 'a\\b@example.com'],
  ['a number', 42 as unknown as string],
  ['an object', { address: 'a@example.com' } as unknown as string],
];

const CASES: ClientCase[] = [
  // --- addresses --------------------------------------------------------------------------------
  ...BAD_ADDRESSES.map(([what, address]): ClientCase => ({ name: `to: ${what}`, input: () => withTo(address), field: 'to[0]' })),
  { name: 'to: bad address after a good one', input: () => withTo('ok@example.com', 'bad address'), field: 'to[1]' },
  { name: 'to: a string instead of a list', input: () => ({ ...VALID, to: 'a@example.com' }), field: 'to' },
  { name: 'to: empty list', input: () => ({ ...VALID, to: [] }), field: 'to' },
  { name: 'to: missing', input: () => ({ from: VALID.from, subject: VALID.subject, text: VALID.text }), field: 'to' },
  { name: 'cc: CRLF injection', input: () => ({ ...VALID, cc: ['c@example.com', 'c2@example.com\r\nBcc: victim@example.com'] }), field: 'cc[1]' },
  { name: 'bcc: invalid address', input: () => ({ ...VALID, bcc: ['not-an-address'] }), field: 'bcc[0]' },
  { name: 'replyTo: CRLF injection', input: () => ({ ...VALID, replyTo: ['r@example.com\r\nX-Evil: 1'] }), field: 'replyTo[0]' },
  { name: 'recipients: 51 in To', input: () => ({ ...VALID, to: n(51) }), field: 'to' },
  { name: 'recipients: 20 To + 20 Cc + 11 Bcc', input: () => ({ ...VALID, to: n(20, 't'), cc: n(20, 'c'), bcc: n(11, 'b') }), field: 'to' },
  { name: 'recipients: 10 000 in To', input: () => ({ ...VALID, to: n(10_000) }), field: 'to' },
  { name: 'replyTo: 51 addresses', input: () => ({ ...VALID, replyTo: n(51) }), field: 'replyTo' },

  // --- from --------------------------------------------------------------------------------------
  { name: 'from: CRLF + Bcc injection after the display name', input: () => ({ ...VALID, from: 'Shop <shop@example.com>\r\nBcc: victim@example.com' }), field: 'from' },
  { name: 'from: LF injection', input: () => ({ ...VALID, from: 'shop@example.com\nBcc: victim@example.com' }), field: 'from' },
  { name: 'from: lone CR', input: () => ({ ...VALID, from: 'Shop\r <shop@example.com>' }), field: 'from' },
  { name: 'from: CRLF inside a quoted display name', input: () => ({ ...VALID, from: '"Shop\r\nBcc: victim@example.com" <shop@example.com>' }), field: 'from' },
  { name: 'from: not an address', input: () => ({ ...VALID, from: 'not an address' }), field: 'from' },
  { name: 'from: display name with an invalid address', input: () => ({ ...VALID, from: 'Shop <not-an-address>' }), field: 'from' },
  { name: 'from: longer than 640 characters', input: () => ({ ...VALID, from: `${'S'.repeat(650)} <shop@example.com>` }), field: 'from' },
  { name: 'from: missing', input: () => ({ to: VALID.to, subject: VALID.subject, text: VALID.text }), field: 'from' },

  // --- subject -----------------------------------------------------------------------------------
  { name: 'subject: CRLF + Bcc injection', input: () => ({ ...VALID, subject: 'Hi\r\nBcc: victim@example.com' }), field: 'subject' },
  { name: 'subject: LF + header injection', input: () => ({ ...VALID, subject: 'Hi\nX-Injected: 1' }), field: 'subject' },
  { name: 'subject: lone CR', input: () => ({ ...VALID, subject: 'Hi\rthere' }), field: 'subject' },
  { name: 'subject: CRLF CRLF body injection', input: () => ({ ...VALID, subject: 'Hi\r\n\r\n<script>evil()</script>' }), field: 'subject' },
  { name: 'subject: empty', input: () => ({ ...VALID, subject: '' }), field: 'subject' },
  { name: 'subject: 999 characters', input: () => ({ ...VALID, subject: 's'.repeat(999) }), field: 'subject' },
  { name: 'subject: a number', input: () => ({ ...VALID, subject: 42 }), field: 'subject' },

  // --- custom headers ----------------------------------------------------------------------------
  { name: 'headers: CRLF + Bcc injection in a value', input: () => ({ ...VALID, headers: { 'X-Campaign': 'spring\r\nBcc: victim@example.com' } }), field: 'headers.X-Campaign' },
  { name: 'headers: LF in a value', input: () => ({ ...VALID, headers: { 'X-Campaign': 'spring\nX-Evil: 1' } }), field: 'headers.X-Campaign' },
  { name: 'headers: CRLF in a name', input: () => ({ ...VALID, headers: { 'X-A\r\nBcc': 'victim@example.com' } }), field: 'headers.X-A\r\nBcc' },
  { name: 'headers: space in a name', input: () => ({ ...VALID, headers: { 'X Bad': 'v' } }), field: 'headers.X Bad' },
  { name: 'headers: colon in a name', input: () => ({ ...VALID, headers: { 'X-A:B': 'v' } }), field: 'headers.X-A:B' },
  { name: 'headers: reserved Bcc', input: () => ({ ...VALID, headers: { Bcc: 'victim@example.com' } }), field: 'headers' },
  { name: 'headers: reserved X-Lifecycle-Id (re-route events)', input: () => ({ ...VALID, headers: { 'X-Lifecycle-Id': 'msg-someone-else' } }), field: 'headers' },
  { name: 'headers: reserved Content-Type', input: () => ({ ...VALID, headers: { 'Content-Type': 'text/html' } }), field: 'headers' },
  { name: 'headers: reserved FROM (upper case)', input: () => ({ ...VALID, headers: { FROM: 'ceo@example.com' } }), field: 'headers' },
  { name: 'headers: value longer than 998 characters', input: () => ({ ...VALID, headers: { 'X-Long': 'v'.repeat(999) } }), field: 'headers.X-Long' },
  // SESv2 MessageHeader: value printable ASCII ([ -~]*), at most 870 characters; name at most 126.
  // Input SES can never accept must be refused before a lifecycle starts.
  { name: 'headers: NUL in a value (SES accepts printable ASCII only)', input: () => ({ ...VALID, headers: { 'X-A': 'a\u0000b' } }), field: 'headers.X-A' },
  { name: 'headers: non-ASCII value (SES accepts printable ASCII only)', input: () => ({ ...VALID, headers: { 'X-A': 'caf\u00e9' } }), field: 'headers.X-A' },
  { name: 'headers: value of 871 characters (SES maximum 870)', input: () => ({ ...VALID, headers: { 'X-Long': 'v'.repeat(871) } }), field: 'headers.X-Long' },
  { name: 'headers: name of 127 characters (SES maximum 126)', input: () => ({ ...VALID, headers: { [`X-${'n'.repeat(125)}`]: 'v' } }), field: `headers.X-${'n'.repeat(125)}` },
  { name: 'headers: a list instead of a record', input: () => ({ ...VALID, headers: ['X-A: b'] }), field: 'headers' },

  // --- content -----------------------------------------------------------------------------------
  { name: 'content: text over 10 MiB', input: () => ({ ...VALID, text: 'x'.repeat(MAX_BODY_CHARS + 1) }), field: 'text' },
  { name: 'content: html over 10 MiB', input: () => ({ ...VALID, text: undefined, html: '<p>'.padEnd(MAX_BODY_CHARS + 1, 'x') }), field: 'html' },
  { name: 'content: neither text nor html', input: () => ({ from: VALID.from, to: VALID.to, subject: VALID.subject }), field: 'text' },
  { name: 'content: text is a Buffer', input: () => ({ ...VALID, text: Buffer.from('hello') }), field: 'text' },

  // --- tags --------------------------------------------------------------------------------------
  { name: 'tags: space in a name', input: () => ({ ...VALID, tags: { 'camp aign': 'spring' } }), field: 'tags.camp aign' },
  { name: 'tags: space in a value', input: () => ({ ...VALID, tags: { campaign: 'spring sale' } }), field: 'tags.campaign' },
  { name: 'tags: CRLF in a value', input: () => ({ ...VALID, tags: { campaign: 'a\r\nb' } }), field: 'tags.campaign' },
  { name: 'tags: non-ASCII name', input: () => ({ ...VALID, tags: { 'c\u00e4mpaign': 'x' } }), field: 'tags.c\u00e4mpaign' },
  { name: 'tags: empty value', input: () => ({ ...VALID, tags: { campaign: '' } }), field: 'tags.campaign' },
  { name: 'tags: value of 257 characters', input: () => ({ ...VALID, tags: { campaign: 'x'.repeat(257) } }), field: 'tags.campaign' },
  { name: 'tags: name of 257 characters', input: () => ({ ...VALID, tags: { ['n'.repeat(257)]: 'x' } }), field: `tags.${'n'.repeat(257)}` },
  { name: 'tags: reserved ses: prefix', input: () => ({ ...VALID, tags: { 'ses:configuration-set': 'other' } }), field: 'tags.ses:configuration-set' },
  { name: 'tags: reserved lifecycle-id (re-route events)', input: () => ({ ...VALID, tags: { 'lifecycle-id': 'msg-someone-else' } }), field: 'tags.lifecycle-id' },
  { name: 'tags: reserved lifecycle-attempt', input: () => ({ ...VALID, tags: { 'lifecycle-attempt': '9' } }), field: 'tags.lifecycle-attempt' },
  { name: 'tags: 49 tags (maximum 48)', input: () => ({ ...VALID, tags: Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`t${i}`, 'v'])) }), field: 'tags' },
  { name: 'tags: a number as a value', input: () => ({ ...VALID, tags: { campaign: 5 } }), field: 'tags.campaign' },
  { name: 'tags: a string instead of a record', input: () => ({ ...VALID, tags: 'campaign=spring' }), field: 'tags' },

  // --- unknown fields and other options ----------------------------------------------------------
  { name: 'unknown field: attachments', input: () => ({ ...VALID, attachments: [{ filename: 'x.exe' }] }), field: 'attachments' },
  { name: 'unknown field: Bcc (wrong case)', input: () => ({ ...VALID, Bcc: ['victim@example.com'] }), field: 'Bcc' },
  { name: 'unknown field: __proto__ (own key from JSON)', input: () => JSON.parse(`${JSON.stringify(VALID).slice(0, -1)},"__proto__":{"isAdmin":true}}`) as unknown, field: '__proto__' },
  { name: 'unknown field: constructor', input: () => ({ ...VALID, constructor: { prototype: { polluted: true } } }), field: 'constructor' },
  { name: 'unknown field inside policy', input: () => ({ ...VALID, policy: { retryForever: true } }), field: 'policy.retryForever' },
  { name: 'configurationSetName: shell-ish characters', input: () => ({ ...VALID, configurationSetName: 'set; rm -rf /' }), field: 'configurationSetName' },
  { name: 'callbackUrl: file:', input: () => ({ ...VALID, callbackUrl: 'file:///etc/passwd' }), field: 'callbackUrl' },
  { name: 'callbackUrl: gopher:', input: () => ({ ...VALID, callbackUrl: 'gopher://127.0.0.1:6379/_FLUSHALL' }), field: 'callbackUrl' },
  { name: 'callbackUrl: javascript:', input: () => ({ ...VALID, callbackUrl: 'javascript:alert(1)' }), field: 'callbackUrl' },
  { name: 'callbackUrl: userinfo (fetch would throw on every attempt)', input: () => ({ ...VALID, callbackUrl: 'https://user:secret@app.example/cb' }), field: 'callbackUrl' },
  { name: 'callbackUrl: cloud metadata address', input: () => ({ ...VALID, callbackUrl: 'http://169.254.169.254/latest/meta-data/iam/' }), field: 'callbackUrl' },
  { name: 'callbackUrl: loopback', input: () => ({ ...VALID, callbackUrl: 'http://127.0.0.1:6379/' }), field: 'callbackUrl' },
  { name: 'callbackUrl: IPv6 loopback', input: () => ({ ...VALID, callbackUrl: 'http://[::1]:8080/' }), field: 'callbackUrl' },
  { name: 'callbackUrl: private network', input: () => ({ ...VALID, callbackUrl: 'http://10.0.0.1/admin' }), field: 'callbackUrl' },
  { name: 'callbackUrl: localhost', input: () => ({ ...VALID, callbackUrl: 'http://localhost:8233/' }), field: 'callbackUrl' },
  { name: 'policy: maxSendAttempts 0', input: () => ({ ...VALID, policy: { maxSendAttempts: 0 } }), field: 'policy.maxSendAttempts' },
  { name: 'policy: maxSendAttempts 1e9', input: () => ({ ...VALID, policy: { maxSendAttempts: 1e9 } }), field: 'policy.maxSendAttempts' },
  { name: 'policy: deliveryDeadline "forever"', input: () => ({ ...VALID, policy: { deliveryDeadline: 'forever' } }), field: 'policy.deliveryDeadline' },
  { name: 'policy: complaintWindow negative', input: () => ({ ...VALID, policy: { complaintWindow: -1 } }), field: 'policy.complaintWindow' },
  { name: 'policy: maxHistoryEvents 1e9', input: () => ({ ...VALID, policy: { maxHistoryEvents: 1e9 } }), field: 'policy.maxHistoryEvents' },
  { name: 'input: null', input: () => null, field: '(input)' },
  { name: 'input: a string', input: () => 'send an email please', field: '(input)' },
  { name: 'idempotencyKey: empty', input: () => VALID, field: 'idempotencyKey', idempotencyKey: () => '' },
  { name: 'idempotencyKey: 1001 characters', input: () => VALID, field: 'idempotencyKey', idempotencyKey: () => 'k'.repeat(1001) },
];

describe('hostile sendTracked() input: InvalidEmailInputError naming the field, nothing started', () => {
  it('has distinct cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const key = c.idempotencyKey?.() ?? `hostile-client-${randomUUID()}`;
      tally.tried += 1;
      let thrown: unknown;
      try {
        await lc.sendTracked(c.input() as SendTrackedInput, { idempotencyKey: key });
      } catch (err) {
        thrown = err;
      }
      const started = key.length > 0 && key.length <= 1000 ? await workflowExists(lc.temporal, lifecycleIdFor(key)) : false;
      if (thrown instanceof InvalidEmailInputError) tally.refused += 1;
      else if (thrown !== undefined) tally.crashes += 1;
      if (started) {
        tally.signalled += 1;
        await lc.temporal.workflow.getHandle(lifecycleIdFor(key)).terminate('hostile client test: must not have started');
      }
      const ok = thrown instanceof InvalidEmailInputError && thrown.field === c.field && !started;
      if (!ok) tally.failed += 1;

      expect(thrown, 'throws InvalidEmailInputError').toBeInstanceOf(InvalidEmailInputError);
      expect((thrown as InvalidEmailInputError).field).toBe(c.field);
      expect((thrown as InvalidEmailInputError).message.length).toBeLessThan(400);
      expect(started, 'a lifecycle was started').toBe(false);
    });
  }

  it('nothing at all was started on the task queue (visibility count, with a positive control)', async () => {
    const control = await lc.sendTracked(VALID, { idempotencyKey: `hostile-client-control-${randomUUID()}` });
    try {
      const deadline = Date.now() + 10_000;
      let ids: string[] = [];
      for (;;) {
        ids = [];
        for await (const wf of lc.temporal.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) ids.push(wf.workflowId);
        if (ids.includes(control.id) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(ids).toEqual([control.id]);
    } finally {
      await lc.temporal.workflow.getHandle(control.id).terminate('hostile client test: control done');
    }
  });
});

describe('what a refusal says', () => {
  it('a bad tag or header name says what is allowed (not "Invalid key in record")', () => {
    const message = (input: unknown) => {
      try {
        validateSendInput(input);
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    expect(message({ ...VALID, tags: { 'camp aign': 'x' } })).toBe('invalid tags.camp aign: invalid name: SES tag names allow only ASCII letters, digits, _ - . @');
    expect(message({ ...VALID, headers: { 'X Bad': 'v' } })).toBe('invalid headers.X Bad: invalid name: header names allow only RFC 5322 token characters (no spaces, colons or CR/LF), at most 126');
  });
});
