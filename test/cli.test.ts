/**
 * The CLI as a user runs it: `ses-lifecycle dev` in a child process (embedded Temporal dev
 * server with persistence, sandbox, webhook, worker), then `send`, `status`, `list`,
 * `suppression`, `init-aws`, standalone `worker` and `webhook` processes against it, errors, and
 * a clean SIGTERM shutdown with no orphan processes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CALLBACK_HEADERS, verifyCallbackSignature } from '../src/callbacks';
import { freePorts } from '../src/temporal-cli';

const run = promisify(execFile);
const bin = path.join(__dirname, '..', 'bin', 'ses-lifecycle.js');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-cli-'));
let env: NodeJS.ProcessEnv;
let dev: ChildProcess | undefined;
let output = '';

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env, timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

/** Runs one CLI command with extra environment variables on top of the dev stack's. */
async function cliWith(extra: NodeJS.ProcessEnv, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const saved = env;
  env = { ...env, ...extra };
  try {
    return await cli(...args);
  } finally {
    env = saved;
  }
}

/** A long-running CLI command (`worker`, `webhook`) started with extra environment, once it printed `ready`. */
async function startCommand(args: string[], extra: NodeJS.ProcessEnv, ready: string): Promise<{ out: () => string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(ready)) resolve();
      });
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${out}`)));
      setTimeout(() => reject(new Error(`${args.join(' ')} did not print "${ready}" in 60 s: ${out}`)), 60_000).unref();
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { out: () => out, stop };
}

/** One GET on its own connection (`Connection: close`), so no pooled socket stays open. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** Opens a socket, sends one keep-alive GET /healthz, resolves with the socket once answered. */
function keepAliveRequest(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port }, () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'));
    socket.once('data', () => resolve(socket));
    socket.on('error', reject);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const [temporal, ui, webhook, sandbox, sandboxHttps] = await freePorts(5);
  env = {
    ...process.env,
    TEMPORAL_CLI_PATH: inject('temporalCliPath'),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    TEMPORAL_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    WEBHOOK_PORT: String(webhook),
    SANDBOX_PORT: String(sandbox),
    SANDBOX_HTTPS_PORT: String(sandboxHttps),
  };
  dev = spawn(process.execPath, [bin, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  dev.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  dev.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const started = Date.now();
  while (!output.includes('Stop: Ctrl-C')) {
    if (dev.exitCode !== null) throw new Error(`dev exited early:\n${output}`);
    if (Date.now() - started > 90_000) throw new Error(`dev did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 120_000);

afterAll(() => {
  if (dev && dev.exitCode === null) dev.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('ses-lifecycle CLI', () => {
  it('dev prints every URL', () => {
    expect(output).toContain(`Temporal Web UI    http://127.0.0.1:${env.TEMPORAL_UI_PORT}`);
    expect(output).toContain(`Webhook (SNS)      http://127.0.0.1:${env.WEBHOOK_PORT}/sns`);
    expect(output).toContain(`SES sandbox API    http://127.0.0.1:${env.SANDBOX_PORT}`);
    expect(existsSync(path.join(dataDir, 'temporal.sqlite'))).toBe(true);
  });

  it('dev prints the webhook metrics URL; it answers /metrics on loopback, and the SNS port does not', async () => {
    const m = /^ {2}Metrics {12}(http:\/\/127\.0\.0\.1:\d+)\/metrics$/m.exec(output);
    expect(m, output).not.toBeNull();
    const res = await get(`${m![1]}/metrics`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('ses_webhook_requests_total');
    expect(res.body).toContain('ses_lifecycles');
    expect((await get(`http://127.0.0.1:${env.WEBHOOK_PORT}/metrics`)).status).toBe(404);
  });

  it('webhook honours WEBHOOK_METRICS_PORT, WEBHOOK_METRICS_TOKEN, WEBHOOK_KEEP_ALIVE_TIMEOUT and WEBHOOK_MAX_CONNECTIONS', async () => {
    const [port = 0, metricsPort = 0] = await freePorts(2);
    const token = 'cli-metrics-token-0123456789';
    const webhook = await startCommand(
      ['webhook'],
      {
        TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_PORT}`,
        SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:cli-webhook',
        WEBHOOK_PORT: String(port),
        WEBHOOK_METRICS_PORT: String(metricsPort),
        WEBHOOK_METRICS_TOKEN: token,
        WEBHOOK_KEEP_ALIVE_TIMEOUT: '2s',
        WEBHOOK_MAX_CONNECTIONS: '2',
      },
      'webhook listening',
    );
    const sockets: net.Socket[] = [];
    try {
      expect(webhook.out()).toContain(`webhook listening at http://127.0.0.1:${port}/sns (metrics http://127.0.0.1:${metricsPort}/metrics)`);
      expect(webhook.out()).not.toContain(token);
      // The metrics listener on WEBHOOK_METRICS_PORT wants the token; with a token, the SNS port serves it too.
      const bearer = { authorization: `Bearer ${token}` };
      expect((await get(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(401);
      const metrics = await get(`http://127.0.0.1:${metricsPort}/metrics`, bearer);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('ses_webhook_requests_total');
      expect((await get(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
      expect((await get(`http://127.0.0.1:${port}/metrics`, bearer)).status).toBe(200);
      // An idle keep-alive connection is closed after WEBHOOK_KEEP_ALIVE_TIMEOUT (2 s, not 10 s).
      const idle = await keepAliveRequest(port);
      const answered = Date.now();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        idle.on('close', () => resolve(Date.now() - answered));
        setTimeout(() => reject(new Error('keep-alive connection still open after 6 s')), 6_000).unref();
      });
      expect(closedAfter).toBeGreaterThanOrEqual(1_500);
      expect(closedAfter).toBeLessThan(5_000);
      // WEBHOOK_MAX_CONNECTIONS=2: with two open, a third is closed on arrival, unanswered.
      sockets.push(await keepAliveRequest(port), await keepAliveRequest(port));
      const third = net.createConnection({ host: '127.0.0.1', port });
      sockets.push(third);
      third.on('error', () => undefined);
      const outcome = await new Promise<string>((resolve) => {
        third.on('connect', () => third.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
        third.on('data', () => resolve('answered'));
        third.on('close', () => resolve('closed'));
        setTimeout(() => resolve('open'), 1_500).unref();
      });
      expect(outcome).toBe('closed');
      expect(sockets[0]!.destroyed).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
      await webhook.stop();
    }
  });

  it('a taken WEBHOOK_METRICS_PORT is named in the webhook error', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const [port] = await freePorts(1);
      const r = await cliWith(
        { TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_PORT}`, SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:cli-webhook', WEBHOOK_PORT: String(port), WEBHOOK_METRICS_PORT: String((taken.address() as net.AddressInfo).port) },
        'webhook',
      );
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ses-lifecycle: port \d+ \(WEBHOOK_METRICS_PORT\) is not available on 127\.0\.0\.1/)]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('send and worker honour CALLBACK_ALLOWED_HOSTS: a loopback CALLBACK_URL is accepted at send and POSTed, signed, by the worker', async () => {
    const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const secret = 'cli-callback-secret-0123456789';
    const callbackEnv = {
      TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_PORT}`,
      TEMPORAL_TASK_QUEUE: `cli-callbacks-${Date.now()}`,
      WORKER_METRICS_PORT: '0',
      CALLBACK_URL: `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/cb`,
      CALLBACK_SECRET: secret,
      CALLBACK_ALLOWED_HOSTS: '127.0.0.1',
    };
    const worker = await startCommand(['worker'], callbackEnv, 'worker running');
    try {
      const sent = await cliWith(callbackEnv, 'send', '--from', 'app@example.com', '--to', 'success+callback@simulator.amazonses.com', '--subject', 'cb', '--text', 'x');
      expect(sent, sent.stderr).toMatchObject({ code: 0, stderr: '' });
      const id = sent.stdout.trim();
      const delivered = () => received.find((r) => (JSON.parse(r.body) as { status: string }).status === 'delivered');
      for (let i = 0; i < 100 && !delivered(); i++) await new Promise((r) => setTimeout(r, 200));
      const cb = delivered();
      expect(cb, `callbacks: ${JSON.stringify(received.map((r) => r.body))}\n${worker.out()}`).toBeDefined();
      expect(JSON.parse(cb!.body)).toMatchObject({ lifecycleId: id, status: 'delivered', recipients: [{ email: 'success+callback@simulator.amazonses.com', status: 'delivered' }] });
      expect(cb!.headers[CALLBACK_HEADERS.eventId]).toMatch(new RegExp(`^${id}:\\d+$`));
      expect(verifyCallbackSignature(secret, cb!.headers, cb!.body)).toBe(true);
    } finally {
      await worker.stop();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('init-aws in sandbox mode signs its SNS calls with the sandbox credentials', async () => {
    const r = await cli('init-aws', '--webhook-url', `http://127.0.0.1:${env.WEBHOOK_PORT}/sns`, '--dry-run', '--json');
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { dryRun: boolean; topicArn: string; steps: { action: string; resource: string }[] };
    expect(plan.dryRun).toBe(true);
    expect(plan.topicArn).toMatch(/^arn:aws:sns:us-east-1:\d{12}:ses-lifecycle-events$/);
    // The dev stack made all of it: every step is a reuse (read through the signed SNS API).
    expect(plan.steps.map((s) => s.action)).toEqual(['reuse', 'reuse', 'reuse', 'reuse']);
  });

  it('send --wait, status --json and list --json work against the running stack', async () => {
    const sent = await cli('send', '--from', 'app@example.com', '--to', 'complaint+cli@simulator.amazonses.com', '--subject', 'Hi', '--text', 'Hello', '--tag', 'campaign=cli', '--idempotency-key', 'cli-test-1');
    expect(sent.stderr).toBe('');
    expect(sent.stdout.trim()).toBe('msg-cli-test-1');
    const id = sent.stdout.trim();
    let status: { status: string } | undefined;
    for (let i = 0; i < 50 && status?.status !== 'complained'; i++) {
      const s = await cli('status', id, '--json');
      if (s.code === 0) status = JSON.parse(s.stdout) as { status: string };
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status?.status).toBe('complained');
    const table = await cli('status', id);
    expect(table.stdout).toMatch(/complaint\+cli@simulator\.amazonses\.com\s+complained/);
    let rows: { id: string }[] = [];
    for (let i = 0; i < 30 && rows.length === 0; i++) {
      rows = JSON.parse((await cli('list', '--tag', 'campaign=cli', '--json')).stdout) as { id: string }[];
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 300));
    }
    expect(rows.map((r) => r.id)).toContain(id);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(await cli('--version')).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('list validates every filter: one line naming what is allowed, non-zero exit', async () => {
    const cases: [string[], RegExp][] = [
      [['--status', 'bouncedd'], /^ses-lifecycle: invalid --status "bouncedd": use one of sending, pending, sent, delayed, delivered, bounced, complained, suppressed, rejected, failed, unconfirmed$/],
      [['--kind', 'foo'], /^ses-lifecycle: invalid --kind "foo": use one of message, orphan$/],
      [['--limit', 'abc'], /^ses-lifecycle: invalid --limit "abc": use a positive whole number/],
      [['--limit', '0'], /^ses-lifecycle: invalid --limit "0"/],
      [['--since', 'yesterday'], /^ses-lifecycle: invalid --since "yesterday": use a duration back from now \(30m, 1h, 7d\) or an ISO time/],
      [['--tag', 'camp aign=x'], /^ses-lifecycle: invalid --tag "camp aign=x": expected name=value, both 1-256 of ASCII letters, digits, _ - \. @$/],
      [['--tag', 'campaign'], /^ses-lifecycle: invalid --tag "campaign"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('list', ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toEqual([expect.stringMatching(message)]);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    const send = await cli('send', '--from', 'app@example.com', '--to', 'a@example.com', '--subject', 'x', '--text', 'y', '--tag', 'camp aign=x');
    expect(send.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ses-lifecycle: invalid --tag "camp aign=x": expected name=value/)]);
  });

  it('list --since takes durations and ISO times; --json gives recipients as an array', async () => {
    const sent = await cli('send', '--from', 'app@example.com', '--to', 'success+since@simulator.amazonses.com', '--cc', 'ooto+since@simulator.amazonses.com', '--subject', 'since', '--text', 'x', '--tag', 'campaign=since');
    expect(sent.code, sent.stderr).toBe(0);
    const id = sent.stdout.trim();
    const listed = async (...args: string[]) => JSON.parse((await cli('list', '--tag', 'campaign=since', '--json', ...args)).stdout) as { id: string; recipients: string[] }[];
    let rows: { id: string; recipients: string[] }[] = [];
    for (let i = 0; i < 30 && rows.length === 0; i++) {
      rows = await listed('--since', '1h');
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 300));
    }
    expect(rows).toEqual([expect.objectContaining({ id, recipients: ['success+since@simulator.amazonses.com', 'ooto+since@simulator.amazonses.com'] })]);
    expect((await listed('--since', new Date(Date.now() - 3_600_000).toISOString())).map((r) => r.id)).toEqual([id]);
    expect((await listed('--since', '2020-01-01')).map((r) => r.id)).toEqual([id]);
    expect(await listed('--since', new Date(Date.now() + 3_600_000).toISOString())).toEqual([]);
    expect((await listed('--limit', '1')).length).toBe(1);
  });

  it('reusing an idempotency key for different content is refused, naming the key', async () => {
    const again = await cli('send', '--from', 'app@example.com', '--to', 'complaint+cli@simulator.amazonses.com', '--subject', 'Hi', '--text', 'Hello', '--tag', 'campaign=cli', '--idempotency-key', 'cli-test-1');
    expect(again).toMatchObject({ code: 0, stdout: 'msg-cli-test-1\n', stderr: '' });
    const changed = await cli('send', '--from', 'app@example.com', '--to', 'complaint+cli@simulator.amazonses.com', '--subject', 'Hi again', '--text', 'Hello', '--tag', 'campaign=cli', '--idempotency-key', 'cli-test-1');
    expect(changed.code).not.toBe(0);
    expect(changed.stderr.trim().split('\n')).toEqual([
      'ses-lifecycle: idempotency key "cli-test-1" was already used for different content (lifecycle msg-cli-test-1); use a new key for a different email',
    ]);
  });

  it('a second stack on the same DATA_DIR refuses with one line naming the folder', async () => {
    const [temporal, ui, webhook, sandbox, sandboxHttps] = await freePorts(5);
    const ports = { TEMPORAL_PORT: String(temporal), TEMPORAL_UI_PORT: String(ui), WEBHOOK_PORT: String(webhook), SANDBOX_PORT: String(sandbox), SANDBOX_HTTPS_PORT: String(sandboxHttps) };
    const r = await run(process.execPath, [bin, 'dev'], { env: { ...env, ...ports }, timeout: 60_000 }).catch((e: { stderr: string; code: number }) => e);
    expect((r as { code: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr.trim().split('\n')).toEqual([
      `ses-lifecycle: DATA_DIR ${dataDir} is in use by another ses-lifecycle stack (pid ${dev!.pid}); stop that one, or set DATA_DIR to another folder`,
    ]);
  });

  it('the standalone worker serves /metrics on 127.0.0.1 by default', async () => {
    const [metricsPort] = await freePorts(1);
    const worker = spawn(process.execPath, [bin, 'worker'], {
      env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_PORT}`, TEMPORAL_TASK_QUEUE: `cli-worker-${Date.now()}`, WORKER_METRICS_PORT: String(metricsPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        worker.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('worker running')) resolve();
        });
        worker.stderr.on('data', (d: Buffer) => (out += d.toString()));
        worker.once('exit', (code) => reject(new Error(`worker exited (${code}): ${out}`)));
      });
      expect(out).toContain(`(metrics http://127.0.0.1:${metricsPort}/metrics)`);
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(res.status).toBe(200);
      // Not reachable on this host's other addresses.
      const external = Object.values(os.networkInterfaces())
        .flat()
        .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
      if (external) {
        const refused = await new Promise<string>((resolve) => {
          const s = net.connect({ host: external, port: metricsPort! }, () => {
            s.destroy();
            resolve('connected');
          });
          s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        });
        expect(refused).toBe('ECONNREFUSED');
      }
    } finally {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
  });

  it('suppression add, list and remove', async () => {
    expect((await cli('suppression', 'add', 'blocked@example.com', '--reason', 'COMPLAINT')).code).toBe(0);
    // The sandbox keeps its suppression list in DATA_DIR (a restart keeps it).
    expect(readFileSync(path.join(dataDir, 'sandbox-state.json'), 'utf8')).toContain('blocked@example.com');
    const list = JSON.parse((await cli('suppression', 'list', '--json')).stdout) as { email: string; reason: string }[];
    expect(list).toContainEqual(expect.objectContaining({ email: 'blocked@example.com', reason: 'COMPLAINT' }));
    expect((await cli('suppression', 'remove', 'blocked@example.com')).code).toBe(0);
    const after = JSON.parse((await cli('suppression', 'list', '--json')).stdout) as { email: string }[];
    expect(after.map((s) => s.email)).not.toContain('blocked@example.com');
    expect(readFileSync(path.join(dataDir, 'sandbox-state.json'), 'utf8')).not.toContain('blocked@example.com');
  });

  it('errors are one clear line and a non-zero exit', async () => {
    const bad = await cli('send', '--from', 'app@example.com', '--to', 'not-an-address', '--subject', 'x', '--text', 'y');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('invalid to[0]');
    const badEnv = await run(process.execPath, [bin, 'list'], { env: { ...env, WEBHOOK_PORT: 'abc' } }).catch((e: { stderr: string; code: number }) => e);
    expect((badEnv as { code: number }).code).toBe(1);
    expect((badEnv as { stderr: string }).stderr).toContain('WEBHOOK_PORT');
    const help = await cli('list', '--help');
    expect(help.stdout).toContain('--status');
  });

  it('a taken port is named in the error', async () => {
    const r = await run(process.execPath, [bin, 'dev'], { env: { ...env, DATA_DIR: path.join(dataDir, 'second') }, timeout: 60_000 }).catch((e: { stderr: string; code: number }) => e);
    expect((r as { code: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toMatch(/port \d+ \(TEMPORAL_PORT\) is not available/);
  });

  it('send --wait returns the outcome (delivered) within seconds; --timeout gives up with one line and exit 1', async () => {
    const started = Date.now();
    const sent = await cli('send', '--from', 'app@example.com', '--to', 'success+wait@simulator.amazonses.com', '--subject', 'wait', '--text', 'x', '--wait');
    const elapsed = Date.now() - started;
    expect(sent, sent.stderr).toMatchObject({ code: 0, stderr: '' });
    const [id, header] = sent.stdout.split('\n');
    expect(id).toMatch(/^msg-/);
    expect(header).toMatch(new RegExp(`^${id}  delivered  \\((awaiting-outcome|complaint-window)\\)$`));
    expect(sent.stdout).toMatch(/success\+wait@simulator\.amazonses\.com\s+delivered\s+delivered 20\d\d-/);
    // The lifecycle stays open for 48 h of complaints; --wait does not wait for that.
    expect(elapsed).toBeLessThan(20_000);

    // No events ever (silent@): --wait times out after --timeout, naming the last status.
    const silent = await cli('send', '--from', 'app@example.com', '--to', 'silent+wait@sandbox.ses-lifecycle.test', '--subject', 'wait', '--text', 'x', '--wait', '--timeout', '2s');
    expect(silent.code).toBe(1);
    expect(silent.stdout).toMatch(/^msg-\S+\n$/);
    expect(silent.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^ses-lifecycle: timed out after 2s waiting for an outcome of msg-\S+; last status sent \(awaiting-outcome\); raise --timeout, or run `ses-lifecycle status msg-\S+` later$/),
    ]);
    // --wait-final waits for the close (the complaint window): a short timeout gives up.
    const final = await cli('send', '--from', 'app@example.com', '--to', 'success+final@simulator.amazonses.com', '--subject', 'wait', '--text', 'x', '--wait-final', '--timeout', '3');
    expect(final.code).toBe(1);
    expect(final.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ses-lifecycle: timed out after 3s waiting for the lifecycle to close of msg-\S+; last status delivered \(complaint-window\)/)]);
    const bad = await cli('send', '--from', 'app@example.com', '--to', 'success@simulator.amazonses.com', '--subject', 'x', '--text', 'y', '--wait', '--timeout', 'soon');
    expect(bad).toMatchObject({ code: 1, stdout: '', stderr: 'ses-lifecycle: invalid --timeout "soon": use seconds or a duration, e.g. 120, 90s, 5m\n' });
  });

  it('status shows why in plain text: bounce with diagnostic code and suppression follow-up, SES error, suppression list, auto-replies; by SES message id too', async () => {
    const sent = await cli('send', '--from', 'app@example.com', '--to', 'bounce+why@simulator.amazonses.com', '--cc', 'ooto+why@simulator.amazonses.com', '--subject', 'why', '--text', 'x', '--wait');
    expect(sent, sent.stderr).toMatchObject({ code: 0, stderr: '' });
    const id = sent.stdout.split('\n')[0]!;
    expect(sent.stdout).toMatch(/bounce\+why@simulator\.amazonses\.com\s+bounced\s+hard bounce Permanent\/General: smtp; 550 5\.1\.1 user unknown/);
    // The suppression follow-up and the auto-reply come right after the outcome.
    let text = '';
    for (let i = 0; i < 50 && !(text.includes('suppressed: bounce+why@') && text.includes('auto-replies 1')); i++) {
      text = (await cli('status', id)).stdout;
      if (!text.includes('suppressed: bounce+why@')) await new Promise((r) => setTimeout(r, 200));
    }
    expect(text).toMatch(new RegExp(`^${id}  bounced  \\(complaint-window\\)\n`));
    expect(text).toMatch(/bounce\+why@simulator\.amazonses\.com\s+bounced\s+hard bounce Permanent\/General: smtp; 550 5\.1\.1 user unknown/);
    expect(text).toMatch(/ooto\+why@simulator\.amazonses\.com\s+delivered\s+delivered 20\S+; auto-replies 1/);
    expect(text).toMatch(/^follow-ups:\n {2}20\S+ {2}suppressed: bounce\+why@simulator\.amazonses\.com \(BOUNCE\)$/m);
    expect(text).toContain('engagement: opens 0, clicks 0');
    const sesId = /^ {2}SES message ids: (\S+)$/m.exec(text)?.[1];
    expect(sesId).toBeDefined();

    // By SES message id: the same lifecycle, found through the SesMessageIds search attribute.
    const bySes = await cli('status', sesId!);
    expect(bySes.code, bySes.stderr).toBe(0);
    expect(bySes.stdout).toMatch(new RegExp(`^${id}  bounced .*\n {2}found by SES message id ${sesId}\n`));
    expect(JSON.parse((await cli('status', sesId!, '--json')).stdout)).toMatchObject({ lifecycleId: id });
    expect(await cli('status', '0100-no-such-message')).toMatchObject({
      code: 1,
      stderr: 'ses-lifecycle: no lifecycle sent or received SES message 0100-no-such-message (looked for SesMessageIds = 0100-no-such-message and orphan-0100-no-such-message)\n',
    });
    expect(await cli('status', 'msg-no-such-lifecycle')).toMatchObject({ code: 1, stderr: 'ses-lifecycle: no lifecycle msg-no-such-lifecycle\n' });

    // Sent again: skipped before sending, and the reason names the suppression list entry.
    const again = await cli('send', '--from', 'app@example.com', '--to', 'bounce+why@simulator.amazonses.com', '--subject', 'why', '--text', 'x', '--wait');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/bounce\+why@simulator\.amazonses\.com\s+suppressed\s+skipped before sending: on the account suppression list \(reason BOUNCE, since 20\S+\)/);

    // SES refuses the send (unknown configuration set): the SES error is the reason.
    const failed = await cli('send', '--from', 'app@example.com', '--to', 'success+why@simulator.amazonses.com', '--subject', 'why', '--text', 'x', '--configuration-set', 'no-such-set', '--wait');
    expect(failed.code, failed.stderr).toBe(0);
    expect(failed.stdout).toMatch(/success\+why@simulator\.amazonses\.com\s+failed\s+SES refused the send: SesNotFound: .*Configuration set <no-such-set> does not exist/);
    expect(failed.stdout).toMatch(/^ {2}send error: SesNotFound: /m);
  });

  it('stats prints per-recipient bounce and complaint rates against the SES thresholds, bounded by --max', async () => {
    const tag = `stats${Date.now()}`;
    const ids: string[] = [];
    for (const to of ['success+stats@simulator.amazonses.com', 'bounce+stats@simulator.amazonses.com', 'complaint+stats@simulator.amazonses.com']) {
      const r = await cli('send', '--from', 'app@example.com', '--to', to, '--subject', 'stats', '--text', 'x', '--tag', `campaign=${tag}`);
      expect(r.code, r.stderr).toBe(0);
      ids.push(r.stdout.trim());
    }
    // The complaint comes after the delivery: wait for it.
    for (let i = 0; i < 50; i++) {
      const s = JSON.parse((await cli('status', ids[2]!, '--json')).stdout) as { status: string };
      if (s.status === 'complained') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    type Report = { lifecyclesInWindow: number; lifecyclesCounted: number; recipients: { sent: number; delivered: number; hardBounced: number; complained: number }; bounceRate: { rate: number; level: string }; complaintRate: { rate: number; level: string } };
    let report: Report | undefined;
    for (let i = 0; i < 30 && report?.lifecyclesCounted !== 3; i++) {
      report = JSON.parse((await cli('stats', '--since', '1h', '--tag', `campaign=${tag}`, '--json')).stdout) as Report;
      if (report.lifecyclesCounted !== 3) await new Promise((r) => setTimeout(r, 300));
    }
    expect(report).toMatchObject({ lifecyclesInWindow: 3, lifecyclesCounted: 3, recipients: { sent: 3, delivered: 1, hardBounced: 1, complained: 1 }, bounceRate: { level: 'pause' }, complaintRate: { level: 'pause' } });
    expect(report!.bounceRate.rate).toBeCloseTo(1 / 3);
    const text = await cli('stats', '--since', '1h', '--tag', `campaign=${tag}`);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^bounce \(hard\)\s+33\.33%\s+1\/3\s+>= 5\.00%\s+>= 10\.00%\s+PAUSE: SES may pause sending$/m);
    expect(text.stdout).toMatch(/^complaint\s+33\.33%\s+1\/3\s+>= 0\.10%\s+>= 0\.50%\s+PAUSE: SES may pause sending$/m);
    const bounded = await cli('stats', '--since', '1h', '--tag', `campaign=${tag}`, '--max', '1');
    expect(bounded.stdout).toMatch(/: 3; counted 1\n {2}only the newest 1 lifecycles were counted \(bounded work\); raise --max to count more\n/);
    expect(bounded.stdout).toContain('recipients sent: 1 (');
    // A window with nothing in it: 0%, ok.
    const empty = await cli('stats', '--since', new Date(Date.now() + 3_600_000).toISOString(), '--json');
    expect(JSON.parse(empty.stdout)).toMatchObject({ lifecyclesCounted: 0, bounceRate: { rate: 0, level: 'ok' }, complaintRate: { rate: 0, level: 'ok' } });
    expect((await cli('stats', '--since', 'yesterday')).stderr).toMatch(/^ses-lifecycle: invalid --since "yesterday"/);
    expect((await cli('stats', '--max', '0')).stderr).toMatch(/^ses-lifecycle: invalid --max "0"/);
  });

  it('doctor passes on the running stack, and names each failure with its fix (exit 1)', async () => {
    const ok = await cli('doctor');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    for (const line of [
      /^ok {4}Temporal CLI\s+\S+temporal \(env /m,
      new RegExp(`^ok {4}port TEMPORAL_PORT\\s+127\\.0\\.0\\.1:${env.TEMPORAL_PORT} in use by the running ses-lifecycle stack \\(pid ${dev!.pid}`, 'm'),
      /^ok {4}Temporal reachable\s+127\.0\.0\.1:\d+, namespace default$/m,
      /^ok {4}search attributes\s+EmailStatus, EmailRecipients, SesMessageIds, EmailTags, LifecycleKind$/m,
      /^ok {4}configuration set\s+ses-lifecycle$/m,
      /^ok {4}event destination\s+ses-lifecycle\/\S+ → arn:aws:sns:/m,
      new RegExp(`^ok {4}SNS subscription\\s+http://127\\.0\\.0\\.1:${env.WEBHOOK_PORT}/sns confirmed on arn:aws:sns:`, 'm'),
      /^all checks passed$/m,
    ]) {
      expect(ok.stdout).toMatch(line);
    }

    // A configuration set that does not exist: FAIL, and the fix names init-aws.
    const noSet = await cliWith({ SES_CONFIGURATION_SET: 'no-such-set' }, 'doctor');
    expect(noSet.code).toBe(1);
    expect(noSet.stdout).toMatch(/^FAIL {2}configuration set\s+no-such-set does not exist \(SES_CONFIGURATION_SET\)\n\s+fix: `ses-lifecycle init-aws --webhook-url https:\/\/<your host>\/sns` creates it/m);
    expect(noSet.stdout).toMatch(/^1 check failed$/m);

    // No stack on this DATA_DIR, a bad TEMPORAL_CLI_PATH and a port taken by another program.
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const [temporal, ui, sandbox, sandboxHttps] = await freePorts(4);
      const r = await cliWith(
        {
          DATA_DIR: path.join(dataDir, 'doctor'),
          TEMPORAL_CLI_PATH: path.join(dataDir, 'no-temporal'),
          TEMPORAL_PORT: String(temporal),
          TEMPORAL_UI_PORT: String(ui),
          WEBHOOK_PORT: String((taken.address() as net.AddressInfo).port),
          SANDBOX_PORT: String(sandbox),
          SANDBOX_HTTPS_PORT: String(sandboxHttps),
        },
        'doctor',
      );
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^FAIL {2}Temporal CLI\s+TEMPORAL_CLI_PATH is set to ".*no-temporal", but .*\n\s+fix: point TEMPORAL_CLI_PATH at the temporal binary, or unset it$/m);
      expect(r.stdout).toMatch(/^FAIL {2}port WEBHOOK_PORT\s+127\.0\.0\.1:\d+ is taken by another program\n\s+fix: set WEBHOOK_PORT to a free port, or stop what listens on \d+$/m);
      expect(r.stdout).toMatch(/^ok {4}port TEMPORAL_PORT\s+127\.0\.0\.1:\d+ is free$/m);
      expect(r.stdout).toMatch(/^skip {2}Temporal reachable\s+no stack running on DATA_DIR .*`ses-lifecycle dev` starts the dev server$/m);
      expect(r.stdout).toMatch(/^skip {2}SES\s+sandbox mode and no sandbox running/m);
      expect(r.stdout).toMatch(/^2 checks failed$/m);
      const json = JSON.parse((await cliWith({ DATA_DIR: path.join(dataDir, 'doctor'), TEMPORAL_CLI_PATH: path.join(dataDir, 'no-temporal'), TEMPORAL_PORT: String(temporal), TEMPORAL_UI_PORT: String(ui), WEBHOOK_PORT: String((taken.address() as net.AddressInfo).port), SANDBOX_PORT: String(sandbox), SANDBOX_HTTPS_PORT: String(sandboxHttps) }, 'doctor', '--json')).stdout) as { name: string; status: string; fix?: string }[];
      expect(json.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['Temporal CLI', 'port WEBHOOK_PORT']);
      expect(json.filter((c) => c.status === 'fail').every((c) => (c.fix ?? '').length > 0)).toBe(true);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('doctor in aws mode checks the identity, the topic against SNS_ALLOWED_TOPIC_ARNS and the subscription (here against the sandbox)', async () => {
    const [webhookPort] = await freePorts(1);
    const topic = 'arn:aws:sns:us-east-1:123456789012:ses-lifecycle-events';
    const aws = {
      SES_LIFECYCLE_MODE: 'aws',
      TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_PORT}`,
      SES_ENDPOINT: `http://127.0.0.1:${env.SANDBOX_PORT}`,
      // The AWS SDK's own per-service endpoint variable; the sandbox checks SNS signatures.
      AWS_ENDPOINT_URL_SNS: `http://127.0.0.1:${env.SANDBOX_PORT}`,
      AWS_ACCESS_KEY_ID: 'AKIASESSANDBOX000000',
      AWS_SECRET_ACCESS_KEY: 'ses-sandbox-secret-access-key',
      WEBHOOK_PORT: String(webhookPort),
      WORKER_METRICS_PORT: '0',
    };
    const wrongTopic = await cliWith({ ...aws, SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:another-topic' }, 'doctor', '--from', 'app@example.com');
    expect(wrongTopic.code).toBe(1);
    expect(wrongTopic.stdout).toMatch(/^skip {2}Temporal CLI\s+TEMPORAL_ADDRESS is set/m);
    expect(wrongTopic.stdout).toMatch(/^ok {4}SES identity\s+app@example\.com verified for sending$/m);
    expect(wrongTopic.stdout).toMatch(new RegExp(`^FAIL  event destination\\s+ses-lifecycle/\\S+ publishes to ${topic}, which SNS_ALLOWED_TOPIC_ARNS does not list: the webhook refuses its notifications\\n\\s+fix: add ${topic} to SNS_ALLOWED_TOPIC_ARNS$`, 'm'));
    const good = await cliWith({ ...aws, SNS_ALLOWED_TOPIC_ARNS: topic }, 'doctor', '--from', 'app@example.com', '--webhook-url', `http://127.0.0.1:${env.WEBHOOK_PORT}/sns`);
    expect(good.code, good.stdout).toBe(0);
    expect(good.stdout).toMatch(new RegExp(`^ok {4}SNS subscription\\s+http://127\\.0\\.0\\.1:${env.WEBHOOK_PORT}/sns confirmed on ${topic}$`, 'm'));
    const otherUrl = await cliWith({ ...aws, SNS_ALLOWED_TOPIC_ARNS: topic }, 'doctor', '--webhook-url', 'https://hooks.example.com/sns');
    expect(otherUrl.code).toBe(1);
    expect(otherUrl.stdout).toMatch(/^FAIL {2}SNS subscription\s+no http\(s\) subscription for https:\/\/hooks\.example\.com\/sns on arn:\S+\n\s+fix: `ses-lifecycle init-aws --webhook-url https:\/\/<your host>\/sns` subscribes the webhook$/m);
  });

  it('SIGTERM stops everything, the dev server included', async () => {
    const exited = new Promise<number | null>((resolve) => dev!.once('exit', (code) => resolve(code)));
    dev!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('stopped.');
    expect(existsSync(path.join(dataDir, 'stack.lock'))).toBe(false);
    expect(pidAlive(dev!.pid!)).toBe(false);
    const { stdout } = await run('ps', ['-eo', 'pid,args']);
    const orphans = stdout.split('\n').filter((l) => l.includes(dataDir) && l.includes('temporal'));
    expect(orphans).toEqual([]);
  });
});
