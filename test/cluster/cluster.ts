/**
 * The production topology on this machine, without Docker, for `npm run test:cluster`:
 *
 * - a throwaway PostgreSQL cluster in a temp dir (initdb/pg_ctl; as the `postgres` user when we
 *   are root, since PostgreSQL refuses to run as root), on a free port, password auth;
 * - the Temporal schemas created with temporal-sql-tool exactly as docker-compose.yml's
 *   `temporal-schema` job does (create, setup-schema -v 0.0, update-schema -d versioned);
 * - the real Temporal server (scripts/temporal-server.ts builds and caches it) started with the
 *   committed deploy/temporal/config/temporal.yaml and deploy/temporal/dynamicconfig/
 *   development-sql.yaml, the files docker-compose.yml mounts, with every port moved to a free one;
 * - a small round-robin HTTP load balancer standing in for the HTTPS load balancer SNS posts to
 *   in front of several webhook instances (a backend that refuses connections is skipped, as a
 *   load balancer's health checks would).
 *
 * Every process started here is recorded and killed by `killAllSync()` on exit, also when the
 * test process fails.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { freePorts } from '../../src/temporal-cli';
import { ensurePostgres, ensureTemporalServer, type TemporalServerBuild } from '../../scripts/temporal-server';
import { waitWithProgress } from '../helpers/wait';

const execFileAsync = promisify(execFile);
export const REPO_ROOT = path.join(__dirname, '..', '..');
/** The files docker-compose.yml mounts into the `temporal` service. */
export const SERVER_CONFIG_DIR = path.join(REPO_ROOT, 'deploy', 'temporal', 'config');
export const SERVER_CONFIG_ENV = 'temporal';
export const DYNAMIC_CONFIG_FILE = path.join(REPO_ROOT, 'deploy', 'temporal', 'dynamicconfig', 'development-sql.yaml');

/** The role and password of the throwaway PostgreSQL (startPostgres). */
export const PG_USER = 'temporal';
export const PG_PASSWORD = 'temporal';

const verbose = Boolean(process.env.TEMPORAL_TEST_VERBOSE);
const log = (m: string): void => {
  console.error(`[cluster] ${m}`);
};

// ---------------------------------------------------------------------------------------------
// Cleanup of everything we started, also on a crash of the test process
// ---------------------------------------------------------------------------------------------

const cleanups = new Map<string, () => void>();
let exitHookInstalled = false;
/** Registers a synchronous kill of something started (replaced when `key` is registered again). */
export function onExit(key: string, fn: () => void): void {
  cleanups.set(key, fn);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', killAllSync);
}
/** Synchronously kills every process this module started (used on process exit). */
export function killAllSync(): void {
  for (const fn of [...cleanups.values()].reverse()) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
  cleanups.clear();
}

/** Forgets a registered kill (the thing stopped normally). */
export function forgetOnExit(key: string): void {
  cleanups.delete(key);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

export interface Postgres {
  readonly port: number;
  readonly dataDir: string;
  /** pg_ctl stop -m immediate (no checkpoint: crash recovery on the next start) or -m fast. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  start(): Promise<void>;
  /** Stops it (fast) and removes its folder. */
  dispose(): Promise<void>;
}

/** Runs a PostgreSQL binary as the `postgres` user when we are root (it refuses root). */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() === 0) return ['runuser', ['-u', 'postgres', '--', bin, ...args]];
  return [bin, args];
}

export async function startPostgres(root: string): Promise<Postgres> {
  const pgBin = await ensurePostgres({ log });
  const dataDir = path.join(root, 'pgdata');
  const asRoot = process.getuid?.() === 0;
  mkdirSync(root, { recursive: true });
  const pwFile = path.join(root, 'pgpass');
  writeFileSync(pwFile, `${PG_PASSWORD}\n`, { mode: 0o600 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(root, uid, gid);
    chownSync(pwFile, uid, gid);
  }
  const [port] = await freePorts(1);
  const run = async (bin: string, args: string[]): Promise<string> => {
    const [cmd, argv] = pgCommand(path.join(pgBin, bin), args);
    const { stdout, stderr } = await execFileAsync(cmd, argv, { cwd: root, timeout: 600_000, maxBuffer: 8 * 1024 * 1024 });
    return stdout + stderr;
  };
  await run('initdb', ['-D', dataDir, '-U', PG_USER, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync']);
  // Temporal opens up to ~30 connections per server process; PostgreSQL's default is 100.
  const options = [`-p ${port}`, `-k ${root}`, '-c listen_addresses=127.0.0.1', '-c max_connections=200', '-c fsync=off', '-c full_page_writes=off'].join(' ');
  const logFile = path.join(root, 'postgres.log');
  const pidOf = (): number | undefined => {
    try {
      return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  };
  const pg: Postgres = {
    port: port!,
    dataDir,
    async start() {
      // -w: pg_ctl waits until the server accepts connections (it polls; no fixed sleep).
      await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '300', 'start']);
      onExit('postgres', () => {
        const pid = pidOf();
        if (pid) process.kill(pid, 'SIGQUIT'); // immediate shutdown of the postmaster and its children
      });
    },
    async stop(mode = 'fast') {
      if (!existsSync(path.join(dataDir, 'postmaster.pid'))) return;
      await run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '120', 'stop']);
      cleanups.delete('postgres');
    },
    async dispose() {
      await pg.stop('fast').catch((err: unknown) => log(`postgres stop: ${String(err)}`));
      rmSync(root, { recursive: true, force: true });
    },
  };
  await pg.start();
  log(`PostgreSQL (${path.basename(path.dirname(pgBin))}) on 127.0.0.1:${port}, data ${dataDir}`);
  return pg;
}

// ---------------------------------------------------------------------------------------------
// Temporal schemas (as docker-compose.yml's temporal-schema job)
// ---------------------------------------------------------------------------------------------

export async function createTemporalSchemas(build: TemporalServerBuild, pgPort: number): Promise<void> {
  const tool = (db: string, ...args: string[]): Promise<unknown> =>
    execFileAsync(build.sqlToolBin, ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(pgPort), '-u', PG_USER, '--pw', PG_PASSWORD, '--db', db, ...args], { timeout: 600_000 });
  for (const [db, dir] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ] as const) {
    await tool(db, 'create');
    await tool(db, 'setup-schema', '-v', '0.0');
    await tool(db, 'update-schema', '-d', path.join(build.schemaDir, dir, 'versioned'));
  }
}

// ---------------------------------------------------------------------------------------------
// The Temporal server
// ---------------------------------------------------------------------------------------------

export interface TemporalServer {
  readonly address: string;
  readonly pid: number;
  /** SIGKILL (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful) and wait; SIGKILL after 30 s. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and database; resolves when the frontend answers. */
  start(): Promise<void>;
  /** The last lines of its log, for failure messages. */
  logTail(lines?: number): string;
}

/** Resolves once the frontend answers GetSystemInfo and the history shards serve DescribeNamespace-free calls. */
async function waitForFrontend(address: string, child: () => ChildProcess | undefined, logTail: () => string): Promise<void> {
  let attempts = 0;
  let ok = false;
  let lastError = '';
  await waitWithProgress(`the Temporal server at ${address} to answer`, {
    done: async () => {
      const c = child();
      if (!c || c.exitCode !== null || c.signalCode !== null) throw new Error(`Temporal server exited before it answered:\n${logTail()}`);
      attempts += 1;
      try {
        const conn = await Connection.connect({ address, connectTimeout: 2_000 });
        try {
          await conn.workflowService.getSystemInfo({});
          // The cluster's own system namespace lives in the persistence: proves the DB is reachable.
          await conn.workflowService.describeNamespace({ namespace: 'temporal-system' });
          ok = true;
        } finally {
          await conn.close();
        }
      } catch (err) {
        lastError = (err as Error).message;
      }
      return ok;
    },
    // The server process keeps logging (and we keep trying) while it starts; a dead process throws above.
    progress: () => attempts,
    stallMs: 60_000,
    intervalMs: 500,
    describe: () => `${lastError}\n${logTail()}`,
  });
}

/**
 * Free ports below 32768: the server records its membership and RPC ports in PostgreSQL columns
 * of type smallint (cluster_membership), so ports from the ephemeral range (32768+, what the OS
 * hands out for port 0) make it fail at start ("value ... is out of range for type smallint").
 */
export async function freeLowPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  const servers: net.Server[] = [];
  try {
    for (let tries = 0; ports.length < count; tries++) {
      if (tries > 2000) throw new Error('no free ports below 32768');
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (ports.includes(port)) continue;
      const srv = net.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(true));
      });
      if (ok) {
        servers.push(srv);
        ports.push(port);
      }
    }
    return ports;
  } finally {
    await Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }
}

export async function startTemporalServer(build: TemporalServerBuild, pgPort: number, root: string): Promise<TemporalServer> {
  mkdirSync(root, { recursive: true });
  const names = ['FRONTEND_GRPC_PORT', 'FRONTEND_HTTP_PORT', 'FRONTEND_MEMBERSHIP_PORT', 'MATCHING_GRPC_PORT', 'MATCHING_MEMBERSHIP_PORT', 'HISTORY_GRPC_PORT', 'HISTORY_MEMBERSHIP_PORT', 'WORKER_GRPC_PORT', 'WORKER_MEMBERSHIP_PORT'];
  const ports = await freeLowPorts(names.length);
  const portEnv = Object.fromEntries(names.map((n, i) => [n, String(ports[i])]));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: verbose ? 'info' : 'warn',
    DB: 'postgres12',
    POSTGRES_SEEDS: '127.0.0.1',
    DB_PORT: String(pgPort),
    POSTGRES_USER: PG_USER,
    POSTGRES_PWD: PG_PASSWORD,
    NUM_HISTORY_SHARDS: '4',
    BIND_ON_IP: '127.0.0.1',
    DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG_FILE,
    // Go's pprof endpoint on localhost, for profiling the server (`npm run bench -- --temporal cluster`).
    ...(process.env.TEMPORAL_PPROF_PORT ? { TEMPORAL_PPROF_PORT: process.env.TEMPORAL_PPROF_PORT } : {}),
    // Its Prometheus metrics (service and persistence latency histograms), for the bench.
    ...(process.env.PROMETHEUS_ENDPOINT ? { PROMETHEUS_ENDPOINT: process.env.PROMETHEUS_ENDPOINT } : {}),
    ...portEnv,
  };
  const address = `127.0.0.1:${portEnv.FRONTEND_GRPC_PORT}`;
  const logFile = path.join(root, 'temporal-server.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const logTail = (n = 30): string => {
    try {
      return readFileSync(logFile, 'utf8').trim().split('\n').slice(-n).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const start = async (): Promise<void> => {
    const out = openSync(logFile, 'a');
    try {
      // The same command line as docker-compose.yml's `temporal` service, with --root at the repo.
      child = spawn(build.serverBin, ['--root', REPO_ROOT, '--config', path.relative(REPO_ROOT, SERVER_CONFIG_DIR), '--env', SERVER_CONFIG_ENV, '--allow-no-auth', 'start'], {
        env,
        cwd: root,
        stdio: ['ignore', out, out],
      });
    } finally {
      closeSync(out);
    }
    const c = child;
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    onExit('temporal', () => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
    await waitForFrontend(address, () => child, logTail);
  };
  const waitExit = async (): Promise<void> => {
    await exited;
    cleanups.delete('temporal');
  };
  await start();
  log(`Temporal server ${build.version} (pid ${child?.pid}) on ${address}, 4 history shards, PostgreSQL persistence + visibility`);
  return {
    address,
    get pid() {
      return child?.pid ?? -1;
    },
    async kill() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await waitExit();
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      c.kill('SIGTERM');
      await waitExit();
      clearTimeout(timer);
    },
    start,
    logTail,
  };
}

// ---------------------------------------------------------------------------------------------
// A round-robin load balancer in front of the webhook instances
// ---------------------------------------------------------------------------------------------

export interface LoadBalancer {
  readonly url: string;
  /** Requests answered by each backend (by port). */
  readonly answered: Map<number, number>;
  /** Connection attempts to a backend that failed (refused/reset) before any answer. */
  readonly failovers: number;
  close(): Promise<void>;
}

/**
 * Forwards each request to the next backend; when the connection to it fails before the
 * request was sent (refused: the instance is down), tries the next one, like a load balancer
 * whose health check took a dead target out. A request that was in flight on an instance that
 * dies gets a 502: SNS retries it, and the retry goes to a live instance.
 */
export async function startLoadBalancer(backends: number[]): Promise<LoadBalancer> {
  let next = 0;
  const answered = new Map<number, number>(backends.map((p) => [p, 0]));
  const state = { failovers: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const tryBackend = (left: number): void => {
        const port = backends[next++ % backends.length]!;
        let sent = false;
        const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
          sent = true;
          answered.set(port, (answered.get(port) ?? 0) + 1);
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', (err: NodeJS.ErrnoException) => {
          if (!sent && err.code === 'ECONNREFUSED' && left > 1) {
            state.failovers += 1;
            tryBackend(left - 1);
            return;
          }
          if (!res.headersSent) res.writeHead(502).end();
          else res.destroy();
        });
        up.end(body);
      };
      tryBackend(backends.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    answered,
    get failovers() {
      return state.failovers;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The whole cluster
// ---------------------------------------------------------------------------------------------

export interface Cluster {
  readonly build: TemporalServerBuild;
  readonly postgres: Postgres;
  readonly temporal: TemporalServer;
  readonly root: string;
  /** Figures of the start-up, for the report. */
  readonly timings: Record<string, number>;
  stop(): Promise<void>;
}

/** PostgreSQL + schemas + the Temporal server, in a fresh temp dir. */
export async function startCluster(): Promise<Cluster> {
  const timings: Record<string, number> = {};
  let t = Date.now();
  const build = await ensureTemporalServer({ log });
  timings.buildMs = Date.now() - t;
  const root = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-cluster-'));
  chmodSync(root, 0o755); // the postgres user must reach its data folder inside
  // Registered first, so on a crash it runs last: after PostgreSQL and the server are killed.
  onExit('cluster-dir', () => rmSync(root, { recursive: true, force: true }));
  let postgres: Postgres | undefined;
  let temporal: TemporalServer | undefined;
  try {
    t = Date.now();
    postgres = await startPostgres(path.join(root, 'pg'));
    timings.postgresMs = Date.now() - t;
    t = Date.now();
    await createTemporalSchemas(build, postgres.port);
    timings.schemaMs = Date.now() - t;
    t = Date.now();
    temporal = await startTemporalServer(build, postgres.port, path.join(root, 'temporal'));
    timings.temporalMs = Date.now() - t;
  } catch (err) {
    await temporal?.stop().catch(() => undefined);
    await postgres?.dispose().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const pg = postgres;
  const tp = temporal;
  return {
    build,
    postgres: pg,
    temporal: tp,
    root,
    timings,
    async stop() {
      await tp.stop().catch((err: unknown) => log(`temporal stop: ${String(err)}`));
      await pg.dispose();
      rmSync(root, { recursive: true, force: true });
      forgetOnExit('cluster-dir');
    },
  };
}
