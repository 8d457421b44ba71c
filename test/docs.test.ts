/** The README documents exactly the configuration the product reads. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { buildProgram, LIST_STATUSES } from '../src/cli';
import { ConfigError, ENV_SCHEMA, loadConfig } from '../src/config';
import { DEMO_CASES } from '../src/demo';
import { SANDBOX_DOMAIN } from '../src/sandbox';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe('configuration', () => {
  it('README lists every environment variable the config module reads', () => {
    for (const name of Object.keys(ENV_SCHEMA)) expect(readme, name).toContain(`\`${name}\``);
  });

  it('fails at start with the variable named', () => {
    const bad: [Record<string, string>, string][] = [
      [{ WEBHOOK_PORT: '70000' }, 'WEBHOOK_PORT'],
      [{ SES_LIFECYCLE_MODE: 'prod' }, 'SES_LIFECYCLE_MODE'],
      [{ SES_LIFECYCLE_MODE: 'aws' }, 'SNS_ALLOWED_TOPIC_ARNS'],
      [{ SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sqs:us-east-1:123456789012:q' }, 'SNS_ALLOWED_TOPIC_ARNS'],
      [{ CALLBACK_URL: 'https://app.example/cb' }, 'CALLBACK_SECRET'],
      [{ TEMPORAL_TLS_CERT_PATH: '/x.pem' }, 'TEMPORAL_TLS_KEY_PATH'],
      [{ AWS_REGION: 'mars' }, 'AWS_REGION'],
    ];
    for (const [env, variable] of bad) {
      let err: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        err = e;
      }
      expect(err, variable).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as Error).message).toContain(variable);
    }
  });

  it('accepts a real-AWS configuration and freezes it', () => {
    const c = loadConfig({ SES_LIFECYCLE_MODE: 'aws', SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:eu-west-1:123456789012:ses-events', AWS_REGION: 'eu-west-1', TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k' });
    expect(c.webhook.allowedTopicArns).toEqual(['arn:aws:sns:eu-west-1:123456789012:ses-events']);
    expect(c.temporal).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', apiKey: 'k' });
    expect(Object.isFrozen(c.webhook)).toBe(true);
  });
});

describe('README', () => {
  const codeBlocks = (lang: string) => [...readme.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

  it('states the supported Node versions as package.json does', () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(readme).toContain(`engines: ${pkg.engines.node}`);
  });

  it('has no escaped backticks (they render literally)', () => {
    expect(readme).not.toContain('\\`');
  });

  it('imports from the package only what its entry exports, with types', () => {
    const imported = new Set<string>();
    for (const block of codeBlocks('ts')) {
      for (const m of block.matchAll(/import\s*\{([^}]*)\}\s*from\s*'ses-lifecycle'/g)) {
        for (const name of m[1]!.split(',')) imported.add(name.trim().replace(/^type\s+/, ''));
      }
    }
    expect([...imported]).toEqual(expect.arrayContaining(['LifecycleClient', 'SendTrackedInput', 'verifyCallbackSignature', 'buildWebhookApp', 'createLifecycleWorker', 'createSesClient']));
    const program = ts.createProgram([path.join(__dirname, '..', 'src', 'index.ts')], { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, strict: true, skipLibCheck: true, noEmit: true, types: ['node'] });
    const checker = program.getTypeChecker();
    const entry = checker.getSymbolAtLocation(program.getSourceFile(path.join(__dirname, '..', 'src', 'index.ts'))!)!;
    const exported = new Set(checker.getExportsOfModule(entry).map((s) => s.name));
    expect([...imported].filter((n) => !exported.has(n))).toEqual([]);
  });

  it('the CLI summary names every option of send, list, status, stats and doctor, and every list --status value', () => {
    const cliSection = readme.slice(readme.indexOf('## CLI'), readme.indexOf('## Webhook'));
    const program = buildProgram();
    for (const name of ['send', 'list', 'status', 'stats', 'doctor']) {
      expect(cliSection, name).toContain(`- \`${name}`);
      const command = program.commands.find((c) => c.name() === name)!;
      for (const option of command.options) expect(cliSection, `${name} ${option.long}`).toContain(option.long!);
    }
    for (const status of LIST_STATUSES) expect(cliSection, status).toContain(`\`${status}\``);
    expect(cliSection).toContain('--version');
  });

  it('the CLI summary names the settings the worker and webhook commands take from the config', () => {
    const cliSection = readme.slice(readme.indexOf('## CLI'), readme.indexOf('## Webhook'));
    for (const v of ['WORKER_METRICS_HOST', 'WORKER_METRICS_PORT', 'CALLBACK_ALLOWED_HOSTS', 'WEBHOOK_METRICS_HOST', 'WEBHOOK_METRICS_PORT', 'WEBHOOK_METRICS_TOKEN', 'WEBHOOK_KEEP_ALIVE_TIMEOUT', 'WEBHOOK_MAX_CONNECTIONS']) {
      expect(cliSection, v).toContain(`\`${v}\``);
      expect(ENV_SCHEMA, v).toHaveProperty(v);
    }
  });

  it('the configuration table is one table, exactly the config schema', () => {
    const table = readme.slice(readme.indexOf('<!-- config-table -->'), readme.indexOf('<!-- /config-table -->')).trim().split('\n').slice(1);
    expect(table.every((l) => l.startsWith('|'))).toBe(true);
    expect(table.slice(2).map((l) => /^\| `([A-Z0-9_]+)`/.exec(l)?.[1])).toEqual(Object.keys(ENV_SCHEMA));
  });

  it('documents every sandbox address and shows where `policy` goes', () => {
    for (const c of DEMO_CASES) expect(readme, c.address).toContain(c.address.split('@')[1] === SANDBOX_DOMAIN ? `\`${c.address}\`` : c.address.split('@')[0]!);
    const client = readme.slice(readme.indexOf('## Client API'), readme.indexOf('## CLI'));
    expect(client).toMatch(/lc\.sendTracked\(input/);
    expect(client).toMatch(/const input: SendTrackedInput = \{[\s\S]*policy: \{ deliveryDeadline: '24h' \}/);
  });
});
