/**
 * The CLI as a user runs it: `ses-lifecycle dev` in a child process (embedded Temporal dev
 * server with persistence, sandbox, webhook, worker), then `send`, `status`, `list`,
 * `suppression`, errors, and a clean SIGTERM shutdown with no orphan processes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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

  it('suppression add, list and remove', async () => {
    expect((await cli('suppression', 'add', 'blocked@example.com', '--reason', 'COMPLAINT')).code).toBe(0);
    const list = JSON.parse((await cli('suppression', 'list', '--json')).stdout) as { email: string; reason: string }[];
    expect(list).toContainEqual(expect.objectContaining({ email: 'blocked@example.com', reason: 'COMPLAINT' }));
    expect((await cli('suppression', 'remove', 'blocked@example.com')).code).toBe(0);
    const after = JSON.parse((await cli('suppression', 'list', '--json')).stdout) as { email: string }[];
    expect(after.map((s) => s.email)).not.toContain('blocked@example.com');
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

  it('SIGTERM stops everything, the dev server included', async () => {
    const exited = new Promise<number | null>((resolve) => dev!.once('exit', (code) => resolve(code)));
    dev!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('stopped.');
    expect(pidAlive(dev!.pid!)).toBe(false);
    const { stdout } = await run('ps', ['-eo', 'pid,args']);
    const orphans = stdout.split('\n').filter((l) => l.includes(dataDir) && l.includes('temporal'));
    expect(orphans).toEqual([]);
  });
});
