/**
 * "Beyond one machine": docker-compose.yml, the Dockerfile and .dockerignore.
 *
 * There is no Docker engine here (nor in CI), so nothing is built or started in containers.
 * Instead:
 *   - the compose files are read as Compose reads them (test/helpers/compose.ts: YAML, anchors,
 *     interpolation, merge of the override file) and validated against the published Compose
 *     Specification JSON schema (test/compose-spec/, vendored), then the model is checked against
 *     the app: services, health checks, env names ⊆ ENV_SCHEMA, mounted files exist, ports, and
 *     the search-attribute job ⊆ SEARCH_ATTRIBUTES, exactly;
 *   - where the docker CLI and its compose plugin happen to be installed (CI does not build it),
 *     `docker compose config --format json` is run too and must agree with that model;
 *   - the scripts compose runs (the search-attribute job, the worker's and the webhook's health
 *     checks) are run here for real against the test Temporal dev server, a real worker and a
 *     real webhook: the same processes, without Docker;
 *   - the Dockerfile's recipe is checked statically (always runs).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import type { Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigError, ENV_SCHEMA, loadConfig } from '../src/config';
import { SEARCH_ATTRIBUTES } from '../src/definitions';
import { startWebhookServer, type WebhookServer } from '../src/webhook';
import { createLifecycleWorker } from '../src/worker';
import { loadCompose, schemaErrors, type ComposeModel, type ComposeService } from './helpers/compose';
import { getTestConnection, uniqueTaskQueue } from './helpers/temporal';

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

/** Services that run once and exit (no health check: `service_completed_successfully` gates them). */
const ONE_SHOT = new Set(['temporal-schema', 'temporal-setup']);
/** Our own services, built from the Dockerfile. */
const OURS = ['worker', 'webhook'] as const;
/** Read by the AWS SDK's default credentials chain, not by src/config.ts: passed through from the host. */
const AWS_SDK_CREDENTIAL_VARIABLES = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);

/** `docker compose config` resolves `$$` to `$$` still (re-loadable YAML); a container sees `$`. */
const unescape = (s: string): string => s.replace(/\$\$/g, '$');

function detectCompose(): { ok: true } | { ok: false; reason: string } {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'pipe', timeout: 20_000 });
    return { ok: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const reason = e.code === 'ENOENT' ? 'the docker CLI is not installed' : `docker compose is not available (${(e.stderr?.toString() ?? e.message).trim().split('\n')[0] ?? ''})`;
    return { ok: false, reason };
  }
}

const compose = detectCompose();
if (!compose.ok) console.warn(`[compose.test] not cross-checking with \`docker compose config\`: ${compose.reason} (the schema and model checks run anyway).`);

/**
 * The compose model as `docker compose config` would render it, with a clean environment and
 * `extraEnv`: schema-validated (throws naming the file and the errors, or a missing required
 * variable).
 */
function composeConfig(extraEnv: Record<string, string> = {}, overrides: string[] = []): ComposeModel {
  return loadCompose([COMPOSE_FILE, ...overrides.map((f) => path.join(ROOT, f))], { env: extraEnv, projectDir: ROOT });
}

/** Runs `docker compose config --format json` with a clean environment and an empty env file. */
async function dockerComposeConfig(extraEnv: Record<string, string> = {}, overrides: string[] = []): Promise<ComposeModel> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'compose-test-'));
  const envFile = path.join(dir, 'empty.env');
  writeFileSync(envFile, '');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...extraEnv };
  if (process.env.DOCKER_CONFIG) env.DOCKER_CONFIG = process.env.DOCKER_CONFIG;
  const { stdout } = await execFileAsync('docker', ['compose', '-f', COMPOSE_FILE, ...overrides.flatMap((f) => ['-f', path.join(ROOT, f)]), '--env-file', envFile, 'config', '--format', 'json'], { env, cwd: ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as ComposeModel;
}

describe('docker-compose.yml (Compose Specification schema + model checks)', () => {
  let model: ComposeModel;
  beforeAll(() => {
    model = composeConfig();
  });
  const svc = (name: string): ComposeService => {
    const s = model.services[name];
    if (!s) throw new Error(`service ${name} missing`);
    return s;
  };
  const shellScript = (name: string): string => {
    const s = svc(name);
    expect(s.entrypoint).toEqual(['/bin/sh', '-c']);
    return unescape(s.command?.[0] ?? '');
  };
  const nodeScript = (name: string): string => {
    const t = svc(name).healthcheck?.test ?? [];
    expect(t.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    return unescape(t[3] ?? '');
  };

  it('follows the published Compose Specification schema (both files); the schema rejects a typo, a wrong type and a stray top-level key', () => {
    const text = readFileSync(COMPOSE_FILE, 'utf8');
    expect(schemaErrors(text)).toEqual([]);
    expect(schemaErrors(readFileSync(path.join(ROOT, 'deploy/compose.temporal-cloud.yml'), 'utf8'), { TEMPORAL_ADDRESS: 'a:7233', TEMPORAL_NAMESPACE: 'n' })).toEqual([]);
    // The worker's `healthcheck:` misspelt: Compose refuses the file ("additional property").
    const typo = text.replace(/^( {2}worker:\n(?: {4}.*\n|\n)*?) {4}healthcheck:/m, '$1    healtcheck:');
    expect(typo).not.toBe(text);
    expect(schemaErrors(typo)).toContainEqual('services.worker: must NOT have additional properties (healtcheck)');
    expect(() => loadCompose([COMPOSE_FILE], {})).not.toThrow();
    // A mapping where a list of ports belongs, and an unknown top-level section.
    expect(schemaErrors(text.replace('    ports:\n      - "${WEBHOOK_HOST_PORT:-3000}:3000"', '    ports:\n      webhook: 3000')).some((e) => e.startsWith('services.webhook.ports: must be array'))).toBe(true);
    expect(schemaErrors(`${text}\nservice:\n  x: {}\n`)).toContainEqual('(root): must NOT have additional properties (service)');
  });

  it('every file or folder a service mounts from the repository exists', () => {
    const mounts = Object.entries(model.services).flatMap(([name, s]) =>
      (s.volumes ?? []).map((v) => [name, typeof v === 'string' ? v.split(':')[0]! : String((v as { source?: string }).source ?? '')] as const),
    );
    const binds = mounts.filter(([, src]) => src.startsWith('./') || src.startsWith('/'));
    expect(binds.map(([n]) => n)).toEqual(['temporal', 'temporal']);
    for (const [name, src] of binds) expect(existsSync(path.resolve(ROOT, src)), `${name}: ${src}`).toBe(true);
    const dynamic = svc('temporal').environment?.DYNAMIC_CONFIG_FILE_PATH ?? '';
    expect(existsSync(path.join(ROOT, 'deploy/temporal/dynamicconfig', path.basename(dynamic))), dynamic).toBe(true);
  });

  it('ports agree with the addresses the services use', () => {
    expect(svc('temporal').ports).toEqual([{ target: 7233, published: '7233' }]);
    expect(svc('temporal-ui').ports).toEqual([{ target: 8080, published: '8080' }]);
    for (const name of OURS) expect(svc(name).environment?.TEMPORAL_ADDRESS).toBe(`temporal:${svc('temporal').ports?.[0]?.target}`);
    expect(String(svc('webhook').ports?.[0]?.target)).toBe(svc('webhook').environment?.WEBHOOK_PORT);
    expect(composeConfig({ WEBHOOK_HOST_PORT: '3900', TEMPORAL_HOST_PORT: '17233' }).services.webhook?.ports).toEqual([{ target: 3000, published: '3900' }]);
  });

  it.skipIf(!compose.ok)(compose.ok ? 'agrees with `docker compose config` (the plugin is installed here)' : `agrees with \`docker compose config\` (skipped: ${compose.reason})`, async () => {
    const theirs = await dockerComposeConfig();
    expect(Object.keys(theirs.services).sort()).toEqual(Object.keys(model.services).sort());
    for (const [name, s] of Object.entries(theirs.services)) {
      const ours = svc(name);
      expect(ours.image, name).toBe(s.image);
      expect(ours.environment ?? {}, name).toEqual(s.environment ?? {});
      expect(ours.command ?? null, name).toEqual(s.command ?? null);
      expect(ours.entrypoint ?? null, name).toEqual(s.entrypoint ?? null);
      expect(ours.healthcheck?.test, name).toEqual(s.healthcheck?.test);
      expect(Object.fromEntries(Object.entries(ours.depends_on ?? {}).map(([k, v]) => [k, v.condition])), name).toEqual(Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition])));
      expect((ours.ports ?? []).map((p) => [p.target, p.published]), name).toEqual((s.ports ?? []).map((p) => [p.target, p.published]));
    }
  }, 90_000);

  it('has the Temporal cluster on PostgreSQL, its UI, the setup jobs, our worker and webhook', () => {
    expect(model.name).toBe('ses-lifecycle');
    expect(Object.keys(model.services).sort()).toEqual(['postgresql', 'temporal', 'temporal-schema', 'temporal-setup', 'temporal-ui', 'webhook', 'worker']);
    expect(svc('temporal').image).toMatch(/^temporalio\/server:/);
    expect(svc('temporal').environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(svc('temporal-ui').image).toMatch(/^temporalio\/ui:/);
    expect(svc('temporal-ui').environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('pins every image version', () => {
    for (const [name, s] of Object.entries(model.services)) {
      expect(s.image, name).toMatch(/:[0-9][\w.-]*$|^ses-lifecycle:local$/);
    }
  });

  it('gives every long-running service a health check; the one-shot jobs gate their dependants instead', () => {
    for (const [name, s] of Object.entries(model.services)) {
      if (ONE_SHOT.has(name)) {
        expect(s.healthcheck, name).toBeUndefined();
        expect(s.restart, name).toMatch(/^on-failure/);
        continue;
      }
      expect(s.healthcheck?.disable, name).not.toBe(true);
      expect(s.healthcheck?.test?.length ?? 0, `${name} has no healthcheck`).toBeGreaterThan(1);
    }
    const dep = (a: string, b: string): string | undefined => svc(a).depends_on?.[b]?.condition;
    expect(dep('temporal-schema', 'postgresql')).toBe('service_healthy');
    expect(dep('temporal', 'temporal-schema')).toBe('service_completed_successfully');
    expect(dep('temporal-setup', 'temporal')).toBe('service_healthy');
    expect(dep('temporal-ui', 'temporal')).toBe('service_healthy');
    for (const name of OURS) {
      expect(dep(name, 'temporal'), name).toBe('service_healthy');
      expect(dep(name, 'temporal-setup'), name).toBe('service_completed_successfully');
    }
  });

  it('builds our services from the Dockerfile and runs the worker and webhook commands', () => {
    for (const name of OURS) {
      const s = svc(name);
      expect(s.build?.context, name).toBe(ROOT);
      expect(s.command, name).toEqual([name]);
    }
    expect(svc('webhook').ports?.map((p) => p.target)).toEqual([3000]);
    expect(svc('worker').ports ?? []).toEqual([]); // scalable: --scale worker=N
  });

  it("configures our services only with variables the app reads (ENV_SCHEMA), plus the AWS SDK's credentials", () => {
    const known = new Set(Object.keys(ENV_SCHEMA));
    for (const name of OURS) {
      const env = svc(name).environment ?? {};
      const unknown = Object.keys(env).filter((k) => !known.has(k) && !AWS_SDK_CREDENTIAL_VARIABLES.has(k));
      expect(unknown, `${name}: variables src/config.ts does not read`).toEqual([]);
      expect(env).toMatchObject({ SES_LIFECYCLE_MODE: 'aws', TEMPORAL_ADDRESS: 'temporal:7233', WEBHOOK_HOST: '0.0.0.0', WEBHOOK_PORT: '3000', AWS_REGION: 'us-east-1' });
      // Credentials are passed through, never written into the file.
      for (const k of AWS_SDK_CREDENTIAL_VARIABLES) expect(env[k], k).toBeNull();
    }
  });

  it("compose's values are valid config; without SNS_ALLOWED_TOPIC_ARNS the app refuses to start, naming it", () => {
    const asEnv = (s: ComposeService): Record<string, string> => Object.fromEntries(Object.entries(s.environment ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
    expect(() => loadConfig(asEnv(svc('worker')))).toThrow(ConfigError);
    expect(() => loadConfig(asEnv(svc('worker')))).toThrow(/SNS_ALLOWED_TOPIC_ARNS/);

    const arn = 'arn:aws:sns:eu-west-1:123456789012:ses-lifecycle-events';
    const withHostEnv = composeConfig({ SNS_ALLOWED_TOPIC_ARNS: arn, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' });
    for (const name of OURS) {
      const s = withHostEnv.services[name];
      expect(s?.environment?.AWS_ACCESS_KEY_ID).toBe('AKIAEXAMPLE');
      const config = loadConfig(asEnv(s ?? {}));
      expect(config.mode).toBe('aws');
      expect(config.temporal.address).toBe('temporal:7233');
      expect(config.aws.region).toBe('eu-west-1');
      expect(config.webhook).toMatchObject({ host: '0.0.0.0', port: 3000, path: '/sns', allowedTopicArns: [arn] });
    }
  });

  it('the Temporal Cloud override points only our services at Cloud, still with variables the app reads', () => {
    const cloud = composeConfig(
      { TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'key', SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:t' },
      ['deploy/compose.temporal-cloud.yml'],
    );
    const known = new Set(Object.keys(ENV_SCHEMA));
    for (const name of OURS) {
      const s = cloud.services[name] ?? {};
      expect(s.depends_on ?? {}, name).toEqual({});
      expect(Object.keys(s.environment ?? {}).filter((k) => !known.has(k) && !AWS_SDK_CREDENTIAL_VARIABLES.has(k))).toEqual([]);
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
      const config = loadConfig(env);
      expect(config.temporal).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', namespace: 'ns.acct', apiKey: 'key', tls: true });
    }
    // Without the Cloud variables compose refuses to render, naming one (its order varies).
    expect(() => composeConfig({}, ['deploy/compose.temporal-cloud.yml'])).toThrow(/required variable TEMPORAL_(ADDRESS|NAMESPACE)/);
  });

  it('the search-attribute job registers exactly SEARCH_ATTRIBUTES', () => {
    const script = shellScript('temporal-setup');
    const created = [...script.matchAll(/search-attribute create .*--name (\S+) --type (\S+)/g)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(created)).toEqual(SEARCH_ATTRIBUTES);
    expect(created).toHaveLength(Object.keys(SEARCH_ATTRIBUTES).length);
    expect(svc('temporal-setup').image).toMatch(/^temporalio\/admin-tools:/);
  });

  describe('the scripts compose runs, run here against real processes', () => {
    let address: string;
    let connection: Connection;

    beforeAll(async () => {
      address = inject('temporalAddress');
      connection = (await getTestConnection()).connection;
    });

    it('the search-attribute job creates the namespace and registers the attributes, idempotently', async () => {
      const cli = inject('temporalCliPath');
      const namespace = `compose-${Date.now().toString(36)}`;
      const env = { PATH: `${path.dirname(cli)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? os.tmpdir(), TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace };
      const script = shellScript('temporal-setup');
      const first = await execFileAsync('sh', ['-c', script], { env, timeout: 120_000 });
      expect(first.stdout).toContain(`namespace ${namespace} ready`);
      const second = await execFileAsync('sh', ['-c', script], { env, timeout: 120_000 });
      expect(second.stdout).toContain(`namespace ${namespace} ready`);

      const listed = await connection.operatorService.listSearchAttributes({ namespace });
      const custom = Object.keys(listed.customAttributes ?? {});
      expect(custom).toEqual(expect.arrayContaining(Object.keys(SEARCH_ATTRIBUTES)));
    }, 150_000);

    it("the worker's health check passes only while this host's worker polls the task queue", async () => {
      const script = nodeScript('worker');
      const taskQueue = uniqueTaskQueue('compose-health');
      const check = () =>
        execFileAsync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue }, timeout: 30_000 }).then(
          () => 0,
          (err: { code?: number }) => err.code ?? -1,
        );
      expect(await check()).toBe(1);

      const native = await NativeConnection.connect({ address });
      const ses = new SESv2Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      let worker: Worker | undefined;
      let running: Promise<void> | undefined;
      try {
        worker = await createLifecycleWorker({ connection: native, namespace: 'default', taskQueue, ses, workflowBundle: { codePath: inject('workflowBundlePath') } });
        running = worker.run();
        const deadline = Date.now() + 20_000;
        let code = await check();
        while (code !== 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          code = await check();
        }
        expect(code).toBe(0);
        expect(await execFileAsync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:9', TEMPORAL_TASK_QUEUE: taskQueue }, timeout: 30_000 }).then(() => 0, () => 1)).toBe(1);
      } finally {
        worker?.shutdown();
        await running;
        await native.close();
        ses.destroy();
      }
    }, 90_000);

    it("the webhook's health check (compose and the Dockerfile's) hits /healthz of a real webhook", async () => {
      const { client } = await getTestConnection();
      let server: WebhookServer | undefined;
      try {
        server = await startWebhookServer({ host: '127.0.0.1', port: 0, temporal: { client }, allowedTopicArns: ['arn:aws:sns:us-east-1:123456789012:t'], logger: false });
        const port = new URL(server.url).port;
        const run = (script: string, p: string) =>
          execFileAsync(process.execPath, ['-e', script], { env: { ...process.env, WEBHOOK_PORT: p }, timeout: 20_000 }).then(
            () => 0,
            () => 1,
          );
        const fromCompose = nodeScript('webhook');
        expect(await run(fromCompose, port)).toBe(0);
        expect(await run(dockerfileHealthcheckScript(), port)).toBe(0);
        await server.close();
        server = undefined;
        expect(await run(fromCompose, port)).toBe(1);
      } finally {
        await server?.close();
      }
    }, 60_000);
  });
});

/** The `node -e` script of the Dockerfile's HEALTHCHECK (JSON exec form). */
function dockerfileHealthcheckScript(): string {
  const m = /^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const cmd = JSON.parse(m?.[1] ?? '[]') as string[];
  expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
  return cmd[2] ?? '';
}

describe('Dockerfile and .dockerignore (static checks; no engine needed)', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const runtime = stages[stages.length - 1] ?? '';
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; bin: Record<string, string> };

  it('builds on node:20-bookworm-slim and runs the CLI as a non-root user', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(stages.every((s) => s.startsWith('${NODE_IMAGE}'))).toBe(true);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "bin\/ses-lifecycle.js"\]$/m);
    expect(pkg.bin['ses-lifecycle']).toBe('bin/ses-lifecycle.js');
    expect(runtime).toMatch(/^HEALTHCHECK /m);
    expect(dockerfileHealthcheckScript()).toContain('/healthz');
  });

  it('compiles in a build stage and installs only production dependencies at run time', () => {
    expect(stages[0]).toMatch(/^RUN npm ci\b(?!.*--omit=dev)/m);
    expect(stages[0]).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    // In a container the worker's /metrics must be reachable from outside it (127.0.0.1 elsewhere).
    expect(runtime).toMatch(/^\s*WORKER_METRICS_HOST=0\.0\.0\.0\b/m);
    // The package's `prepare` build needs devDependencies: no stage may run it.
    for (const stage of stages) for (const ci of stage.match(/^RUN npm ci\b.*$/gm) ?? []) expect(ci).toContain('--ignore-scripts');
    // The image has no src/, so the bin runs the compiled CLI: tsx is a development tool only.
    expect(runtime).not.toMatch(/^COPY src\b/m);
    expect(Object.keys(pkg.dependencies)).not.toContain('tsx');
    // Everything tsconfig.build.json compiles is copied into the build stage.
    const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    for (const dir of build.include) expect(stages[0], dir).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
  });

  it('keeps local state and secrets out of the build context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['node_modules', 'dist', '.git', '.data', '.temporal', '.env']) expect(ignored, p).toContain(p);
    for (const p of ['src', 'bin', 'workflows', 'activities', 'package.json', 'package-lock.json']) expect(ignored, p).not.toContain(p);
  });
});


describe('one source of deployment truth: compose mounts the server config test:cluster runs (static; no engine needed)', () => {
  const composeText = readFileSync(COMPOSE_FILE, 'utf8');

  it('the temporal service mounts deploy/temporal/config and deploy/temporal/dynamicconfig and starts with them', async () => {
    const { SERVER_CONFIG_DIR, SERVER_CONFIG_ENV, DYNAMIC_CONFIG_FILE } = await import('./cluster/cluster');
    const { TEMPORAL_SERVER_VERSION } = await import('../scripts/temporal-server');
    const rel = (p: string): string => `./${path.relative(ROOT, p)}`;
    expect(composeText).toContain(`- ${rel(SERVER_CONFIG_DIR)}:/etc/temporal/config/ses-lifecycle:ro`);
    expect(composeText).toContain(`- ${rel(path.dirname(DYNAMIC_CONFIG_FILE))}:/etc/temporal/config/dynamicconfig:ro`);
    expect(composeText).toContain(`DYNAMIC_CONFIG_FILE_PATH: /etc/temporal/config/dynamicconfig/${path.basename(DYNAMIC_CONFIG_FILE)}`);
    expect(composeText).toContain(`entrypoint: ["temporal-server", "--root", "/etc/temporal", "--config", "config/ses-lifecycle", "--env", "${SERVER_CONFIG_ENV}", "--allow-no-auth", "start"]`);
    // The same server version as the one test:cluster builds, and the schema tool of that version.
    expect(composeText).toContain(`image: temporalio/server:\${TEMPORAL_VERSION:-${TEMPORAL_SERVER_VERSION}}`);
    expect(composeText.match(/temporalio\/admin-tools:\$\{TEMPORAL_ADMINTOOLS_VERSION:-([\d.]+)\}/g)?.every((m) => m.endsWith(`${TEMPORAL_SERVER_VERSION}}`))).toBe(true);
    const serverConfig = readFileSync(path.join(SERVER_CONFIG_DIR, `${SERVER_CONFIG_ENV}.yaml`), 'utf8');
    // The server renders the file as a template only with this marker in its first 1 KB.
    expect(serverConfig.slice(0, 1024)).toMatch(/^# enable-template$/m);
    expect(serverConfig).toMatch(/visibilityStore: postgres-visibility/);
  });
});
