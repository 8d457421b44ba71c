/**
 * `ses-lifecycle demo --exit` as a newcomer runs it (the README's promise): the embedded stack,
 * one tracked send per simulator case, the outcome table, exit code 0.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, inject, it } from 'vitest';
import { DEMO_CASES } from '../src/demo';
import { freePorts } from '../src/temporal-cli';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-demo-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it('demo --exit prints the outcome table with every expected outcome and exits 0', async () => {
  const [temporal, ui, webhook, sandbox, sandboxHttps] = await freePorts(5);
  const env = {
    ...process.env,
    TEMPORAL_CLI_PATH: inject('temporalCliPath'),
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    WEBHOOK_PORT: String(webhook),
    SANDBOX_PORT: String(sandbox),
    SANDBOX_HTTPS_PORT: String(sandboxHttps),
  };
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(__dirname, '..', 'bin', 'ses-lifecycle.js'), 'demo', '--exit'], { env, timeout: 110_000 });
  expect(stdout).toContain('All lifecycles reached their expected outcome.');
  for (const c of DEMO_CASES) {
    const [local, domain] = c.address.split('@') as [string, string];
    const label = c.template ? `[a-z0-9]+-${c.template.key}` : '[a-z0-9]+';
    expect(stdout).toMatch(new RegExp(`${local}\\+demo-${label}@${domain.replace(/\./g, '\\.')}\\s+${c.expect}\\s`));
  }
  expect(stdout).toContain(`http://127.0.0.1:${ui}/namespaces/default/workflows/msg-demo-`);
  // stdout is a pipe here, as in a log: progress comes as separate lines, never `\r` rewrites.
  expect(stdout).not.toContain('\r');
  const progress = stdout.split('\n').filter((l) => /^\[\s*\d+s\] /.test(l));
  expect(progress.length).toBeGreaterThan(0);
  expect(new Set(progress.map((l) => l.replace(/^\[\s*\d+s\] /, ''))).size).toBe(progress.length);
  expect(progress.every((l) => l.length < 300)).toBe(true);
  expect(stdout).toContain('serves these links again');
}, 120_000);
