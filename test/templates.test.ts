/**
 * SES templates, Reject and the engagement events, end to end: `sendTracked({ template })` →
 * SESv2 `Content.Template` → the sandbox renders it (or publishes a Rendering Failure) → signed
 * SNS → webhook → Temporal. Also the sandbox's template API through the real SESv2 client
 * (persisted across restarts), its virus check (EICAR → Reject), and every one of SES's ten event
 * types reaching a lifecycle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CreateEmailTemplateCommand,
  DeleteEmailTemplateCommand,
  GetEmailTemplateCommand,
  ListEmailTemplatesCommand,
  SendEmailCommand,
  UpdateEmailTemplateCommand,
} from '@aws-sdk/client-sesv2';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { InvalidEmailInputError, validateSendInput } from '../src/client';
import { loadConfig } from '../src/config';
import { MAX_TEMPLATE_DATA_CHARS, type LifecycleResult } from '../src/definitions';
import { startSesSandbox } from '../src/sandbox';
import { EICAR } from '../src/sandbox/templates';
import { startStack, type RunningStack } from '../src/stack';
import { createSesClient } from '../src/worker';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';

const base = { from: 'app@example.com', to: ['a@example.com'] };

function fieldOf(input: unknown): string {
  try {
    validateSendInput(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidEmailInputError);
    return (err as InvalidEmailInputError).field;
  }
  throw new Error('input was accepted');
}

describe('sendTracked template validation', () => {
  it('accepts a template with JSON-object data instead of subject and body', () => {
    const v = validateSendInput({ ...base, template: { name: 'Order_confirmation-2', data: { name: 'Ada', order: { id: 7, items: ['a', null, true] } } } });
    expect(v.template?.name).toBe('Order_confirmation-2');
  });

  it('names the bad field', () => {
    expect(fieldOf({ ...base, template: { name: 'has space', data: {} } })).toBe('template.name');
    expect(fieldOf({ ...base, template: { name: '', data: {} } })).toBe('template.name');
    expect(fieldOf({ ...base, template: { name: 'x'.repeat(65), data: {} } })).toBe('template.name');
    expect(fieldOf({ ...base, template: { name: 't', data: [1, 2] } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't', data: 'name=Ada' } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't', data: null } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't' } })).toBe('template.data');
    // Values JSON would drop or change are refused, never silently lost.
    expect(fieldOf({ ...base, template: { name: 't', data: { a: undefined } } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't', data: { when: new Date() } } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't', data: { n: Number.NaN } } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't', data: { big: 'x'.repeat(MAX_TEMPLATE_DATA_CHARS) } } })).toBe('template.data');
    expect(fieldOf({ ...base, template: { name: 't', data: {}, extra: 1 } })).toBe('template.extra');
    // Exactly one kind of content.
    expect(fieldOf({ ...base, subject: 'Hi', template: { name: 't', data: {} } })).toBe('subject');
    expect(fieldOf({ ...base, text: 'Hi', template: { name: 't', data: {} } })).toBe('text');
    expect(fieldOf({ ...base, text: 'Hi' })).toBe('subject');
    expect(fieldOf({ ...base, subject: 'Hi' })).toBe('text');
  });
});

describe('sandbox template API (real SESv2 client)', () => {
  it('creates, gets, updates, lists and deletes templates, and keeps them across a restart', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sesl-templates-'));
    try {
      let sandbox = await startSesSandbox({ stateDir: dir });
      let ses = createSesClient({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
      try {
        await ses.send(new CreateEmailTemplateCommand({ TemplateName: 'welcome', TemplateContent: { Subject: 'Hello {{name}}', Text: 'Hi {{name}}' } }));
        await ses.send(new CreateEmailTemplateCommand({ TemplateName: 'second', TemplateContent: { Subject: 'S', Html: '<p>{{x}}</p>' } }));
        await expect(ses.send(new CreateEmailTemplateCommand({ TemplateName: 'welcome', TemplateContent: { Subject: 'again' } }))).rejects.toMatchObject({ name: 'AlreadyExistsException' });
        await expect(ses.send(new CreateEmailTemplateCommand({ TemplateName: 'bad name', TemplateContent: { Subject: 'x' } }))).rejects.toMatchObject({ name: 'BadRequestException' });
        const got = await ses.send(new GetEmailTemplateCommand({ TemplateName: 'welcome' }));
        expect(got.TemplateName).toBe('welcome');
        expect(got.TemplateContent).toEqual({ Subject: 'Hello {{name}}', Text: 'Hi {{name}}' });
        await ses.send(new UpdateEmailTemplateCommand({ TemplateName: 'welcome', TemplateContent: { Subject: 'Welcome {{name}}', Text: 'Hi {{name}}' } }));
        const page1 = await ses.send(new ListEmailTemplatesCommand({ PageSize: 1 }));
        expect(page1.TemplatesMetadata?.map((t) => t.TemplateName)).toEqual(['welcome']);
        expect(page1.TemplatesMetadata?.[0]?.CreatedTimestamp).toBeInstanceOf(Date);
        const page2 = await ses.send(new ListEmailTemplatesCommand({ PageSize: 1, NextToken: page1.NextToken }));
        expect(page2.TemplatesMetadata?.map((t) => t.TemplateName)).toEqual(['second']);
        expect(page2.NextToken).toBeUndefined();
        await ses.send(new DeleteEmailTemplateCommand({ TemplateName: 'second' }));
        await expect(ses.send(new GetEmailTemplateCommand({ TemplateName: 'second' }))).rejects.toMatchObject({ name: 'NotFoundException' });
        await expect(ses.send(new DeleteEmailTemplateCommand({ TemplateName: 'second' }))).rejects.toMatchObject({ name: 'NotFoundException' });
        // Sending a template that does not exist: NotFoundException, nothing accepted.
        await expect(
          ses.send(new SendEmailCommand({ FromEmailAddress: 'a@example.com', Destination: { ToAddresses: ['b@example.com'] }, Content: { Template: { TemplateName: 'nope', TemplateData: '{}' } } })),
        ).rejects.toMatchObject({ name: 'NotFoundException' });
        await expect(
          ses.send(new SendEmailCommand({ FromEmailAddress: 'a@example.com', Destination: { ToAddresses: ['b@example.com'] }, Content: { Template: { TemplateName: 'welcome', TemplateData: '[1]' } } })),
        ).rejects.toMatchObject({ name: 'BadRequestException' });
        const ok = await ses.send(
          new SendEmailCommand({ FromEmailAddress: 'a@example.com', Destination: { ToAddresses: ['b@example.com'] }, Content: { Template: { TemplateName: 'welcome', TemplateData: '{"name":"Ada"}' } } }),
        );
        expect(ok.MessageId).toBeTruthy();
        expect(sandbox.sentMessages().at(-1)).toMatchObject({ subject: 'Welcome Ada', contentKind: 'template' });
      } finally {
        ses.destroy();
        await sandbox.close();
      }
      sandbox = await startSesSandbox({ stateDir: dir });
      ses = createSesClient({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
      try {
        const got = await ses.send(new GetEmailTemplateCommand({ TemplateName: 'welcome' }));
        expect(got.TemplateContent?.Subject).toBe('Welcome {{name}}');
        const list = await ses.send(new ListEmailTemplatesCommand({}));
        expect(list.TemplatesMetadata?.map((t) => t.TemplateName)).toEqual(['welcome']);
      } finally {
        ses.destroy();
        await sandbox.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('templates, Reject and every SES event type, end to end', () => {
  let stack: RunningStack;
  const policy = { deliveryDeadline: '6s', complaintWindow: '1s', resendBackoff: '300ms' };

  beforeAll(async () => {
    quietRuntime();
    const config = loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: 'templates-e2e' });
    stack = await startStack({
      config,
      temporal: { address: getTestAddress(), namespace: getTestNamespace() },
      taskQueue: uniqueTaskQueue('templates'),
      webhookPort: 0,
      sandbox: { port: 0, httpsPort: 0, maxSendRate: 100, sns: { retryDelayMs: 200 } },
      workflowBundle: { codePath: inject('workflowBundlePath') },
      logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
    });
    const ses = createSesClient({ region: stack.sandbox!.region, endpoint: stack.sandbox!.endpoint, credentials: stack.sandbox!.credentials });
    await ses.send(new CreateEmailTemplateCommand({ TemplateName: 'order', TemplateContent: { Subject: 'Order {{order.id}} for {{name}}', Text: 'Hi {{name}}', Html: '<p>{{name}}</p>' } }));
    ses.destroy();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const one = (r: LifecycleResult) => r.recipients[0]!;

  it('a template with all its data is rendered and delivered; missing data is a Rendering Failure (failed, rule 10)', async () => {
    const okEmail = await stack.lc.sendTracked({ ...base, to: ['success+tpl@simulator.amazonses.com'], template: { name: 'order', data: { name: 'Ada', order: { id: 42 } } }, policy });
    const failEmail = await stack.lc.sendTracked({ ...base, to: ['success+tplfail@simulator.amazonses.com'], template: { name: 'order', data: { name: 'Ada' } }, policy });
    const [ok, fail] = await Promise.all([okEmail.result(), failEmail.result()]);
    expect(one(ok).status).toBe('delivered');
    expect(ok.status).toBe('delivered');
    const sentOk = stack.sandbox!.sentMessages().find((m) => m.destination.to[0] === 'success+tpl@simulator.amazonses.com');
    expect(sentOk).toMatchObject({ subject: 'Order 42 for Ada', contentKind: 'template' });

    expect(fail.status).toBe('failed');
    expect(one(fail)).toMatchObject({ status: 'failed', failureReason: "Attribute 'order.id' is not present in the rendering data." });
    expect(fail.eventCounts['Rendering Failure']).toBe(1);
    const rf = stack.sandbox!.ledger().find((e) => e.eventType === 'Rendering Failure');
    const ev = JSON.parse(rf!.message) as { eventType: string; failure: unknown; mail: Record<string, unknown> };
    // SES's Rendering Failure record: failure { errorMessage, templateName }, and no headers.
    expect(ev.eventType).toBe('Rendering Failure');
    expect(ev.failure).toEqual({ errorMessage: "Attribute 'order.id' is not present in the rendering data.", templateName: 'order' });
    expect(ev.mail).not.toHaveProperty('headers');
    expect(ev.mail).toHaveProperty('tags.lifecycle-id');
  });

  it('a template that does not exist fails the send with SES NotFoundException (never retried)', async () => {
    const email = await stack.lc.sendTracked({ ...base, to: ['success+tplmissing@simulator.amazonses.com'], template: { name: 'no_such_template', data: {} }, policy });
    const r = await email.result();
    expect(r.status).toBe('failed');
    expect(r.sendError?.type).toBe('SesNotFound');
    expect(r.sendError?.message).toContain('no_such_template');
  });

  it('content with a virus (EICAR) and reject@ are Rejects: the recipient ends rejected', async () => {
    const virus = await stack.lc.sendTracked({ ...base, to: ['success+virus@simulator.amazonses.com'], subject: 'x', text: `attached: ${EICAR}`, policy });
    const addr = await stack.lc.sendTracked({ ...base, to: ['reject+e2e@sandbox.ses-lifecycle.test'], subject: 'x', text: 'clean', policy });
    const [v, a] = await Promise.all([virus.result(), addr.result()]);
    for (const r of [v, a]) {
      expect(r.status).toBe('rejected');
      expect(one(r).status).toBe('rejected');
      expect(r.eventCounts.Reject).toBe(1);
    }
    const rejects = stack.sandbox!.ledger().filter((e) => e.eventType === 'Reject');
    expect(rejects.map((e) => (JSON.parse(e.message) as { reject: unknown }).reject)).toEqual([{ reason: 'Bad content' }, { reason: 'Bad content' }]);
  });

  it('every one of the ten SES event types reaches a lifecycle', async () => {
    const cases = [
      { to: 'success+ten@simulator.amazonses.com', status: 'delivered' },
      { to: 'bounce+ten@simulator.amazonses.com', status: 'bounced' },
      { to: 'complaint+ten@simulator.amazonses.com', status: 'complained' },
      { to: 'delay+ten@sandbox.ses-lifecycle.test', status: 'delivered' },
      { to: 'open+ten@sandbox.ses-lifecycle.test', status: 'delivered', opens: 1 },
      { to: 'click+ten@sandbox.ses-lifecycle.test', status: 'delivered', opens: 1, clicks: 1 },
      { to: 'unsubscribe+ten@sandbox.ses-lifecycle.test', status: 'delivered' },
      { to: 'reject+ten@sandbox.ses-lifecycle.test', status: 'rejected' },
    ];
    const emails = await Promise.all(cases.map((c) => stack.lc.sendTracked({ ...base, to: [c.to], subject: 'ten', text: 'hello', policy })));
    emails.push(await stack.lc.sendTracked({ ...base, to: ['success+tenrf@simulator.amazonses.com'], template: { name: 'order', data: {} }, policy }));
    const results = await Promise.all(emails.map((e) => e.result()));
    cases.forEach((c, i) => {
      expect(one(results[i]!)).toMatchObject({ status: c.status, ...(c.opens ? { opens: c.opens } : {}), ...(c.clicks ? { clicks: c.clicks } : {}) });
    });
    expect(one(results.at(-1)!).status).toBe('failed');
    const seen = new Set(results.flatMap((r) => Object.keys(r.eventCounts)));
    expect([...seen].sort()).toEqual(['Bounce', 'Click', 'Complaint', 'Delivery', 'DeliveryDelay', 'Open', 'Reject', 'Rendering Failure', 'Send', 'Subscription']);
  });
});
