/**
 * A real SQS for the SQS ingestion tests and bench: moto's server mode (PyPI `moto`, maintained by
 * the moto project; it implements the SQS API, JSON and Query protocols), every package pinned in
 * scripts/moto-requirements.txt and installed into the project-local, git-ignored `.sqs/pip`:
 *
 *   python3 -m pip install --target .sqs/pip -r scripts/moto-requirements.txt
 *
 * {@link ensureMoto} installs once (a stamp file records which requirements were installed);
 * {@link startMoto} runs `python3 -m moto.server` on a free loopback port and stops it again.
 * `npm run sqs:install` (scripts/install-moto.ts) is the CI entry.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { findProjectRoot, freePorts } from '../src/temporal-cli';

const execFileAsync = promisify(execFile);

/** The pinned moto version (also in scripts/moto-requirements.txt). */
export const MOTO_VERSION = '5.2.5';

/** Where moto is installed and how it was found. */
export interface MotoInstall {
  python: string;
  /** The `--target` folder (PYTHONPATH of the server). */
  target: string;
  /** True when this call ran pip. */
  installed: boolean;
}

function requirementsFile(root: string): string {
  return path.join(root, 'scripts', 'moto-requirements.txt');
}

/**
 * Installs moto into `<root>/.sqs/pip` unless the same requirements are installed there already.
 *
 * @throws Error naming the failed step (no python3, pip failure) with pip's last output lines.
 */
export async function ensureMoto(opts: { root?: string; log?: (msg: string) => void } = {}): Promise<MotoInstall> {
  const root = opts.root ?? findProjectRoot();
  const python = process.env.MOTO_PYTHON ?? 'python3';
  const target = path.join(root, '.sqs', 'pip');
  const reqs = readFileSync(requirementsFile(root), 'utf8');
  const stamp = path.join(target, '.ses-lifecycle-requirements.sha256');
  const digest = createHash('sha256').update(reqs).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) return { python, target, installed: false };
  mkdirSync(target, { recursive: true });
  opts.log?.(`installing moto ${MOTO_VERSION} (pinned, scripts/moto-requirements.txt) into ${target} ...`);
  try {
    await execFileAsync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--upgrade', '--target', target, '-r', requirementsFile(root)], {
      timeout: 10 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    const tail = (e.stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`pip install of moto ${MOTO_VERSION} into ${target} failed: ${tail || e.message || String(err)}`, { cause: err });
  }
  writeFileSync(stamp, `${digest}\n`);
  return { python, target, installed: true };
}

/** A running moto server. */
export interface MotoServer {
  /** `http://127.0.0.1:PORT`: the `endpoint` of an `SQSClient`. */
  endpoint: string;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `python -m moto.server` on a free loopback port and resolves once it answers.
 *
 * @throws Error when it does not answer within `startTimeoutMs` (default 60 s), with its output.
 */
export async function startMoto(install: MotoInstall, opts: { startTimeoutMs?: number } = {}): Promise<MotoServer> {
  const [port] = await freePorts(1);
  const child: ChildProcess = spawn(install.python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, PYTHONPATH: install.target, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (d: Buffer) => {
    output = (output + d.toString('utf8')).slice(-4000);
  });
  let exited = false;
  // Never outlive this process (a crashed test run must not leave moto behind).
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    process.removeListener('exit', killOnExit);
    resolve();
  }));
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exitedP;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) throw new Error(`moto server exited during start-up: ${output.trim().slice(-1000)}`);
    try {
      const r = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await r.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`moto server did not answer at ${endpoint} within ${opts.startTimeoutMs ?? 60_000} ms: ${output.trim().slice(-1000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { endpoint, pid: child.pid ?? -1, stop };
}
