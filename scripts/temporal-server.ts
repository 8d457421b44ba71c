/**
 * The real Temporal server and its SQL tool for `npm run test:cluster`, built from the Go module
 * proxy once and cached outside the repository:
 *
 *   GOBIN=<cache>/bin go install go.temporal.io/server/cmd/server@v1.29.1 go.temporal.io/server/cmd/tools/sql@v1.29.1
 *
 * Cache: `$SES_LIFECYCLE_CACHE_DIR` or `${XDG_CACHE_HOME:-$HOME/.cache}/ses-lifecycle`, folder
 * `temporal-server-<version>/` with `bin/temporal-server`, `bin/temporal-sql-tool` and the
 * module's `schema/postgresql/v12/` (so a cleaned Go module cache does not break a cached build).
 * A build goes to a temporary folder that is renamed into place only when complete, so an
 * interrupted build is never reused. About 5 minutes the first time on 2 cores (`nice -n 10`);
 * a second call returns at once.
 *
 * Also makes sure PostgreSQL (the Debian package `postgresql`) is installed: apt-get when it is
 * missing and we are root, otherwise an error saying what to install.
 *
 *   npx tsx scripts/temporal-server.ts     # build / locate; prints the paths as JSON
 *
 * TEMPORAL_SERVER_BUILD_TIMEOUT_MS stops a build that takes longer (exit 1, nothing cached).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, cpSync, writeFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The pinned server version (docker-compose.yml's TEMPORAL_VERSION default is the same). */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const MODULE = 'go.temporal.io/server';

export interface TemporalServerBuild {
  version: string;
  dir: string;
  serverBin: string;
  sqlToolBin: string;
  /** `<dir>/schema/postgresql/v12` with `temporal/` and `visibility/`. */
  schemaDir: string;
  /** True when this call built it (false: reused from the cache). */
  built: boolean;
  buildMs: number;
}

export function cacheRoot(): string {
  if (process.env.SES_LIFECYCLE_CACHE_DIR) return path.resolve(process.env.SES_LIFECYCLE_CACHE_DIR);
  // XDG: an empty or relative XDG_CACHE_HOME is ignored (go install needs an absolute GOBIN).
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'ses-lifecycle');
}

function layout(dir: string): Omit<TemporalServerBuild, 'built' | 'buildMs'> {
  return {
    version: TEMPORAL_SERVER_VERSION,
    dir,
    serverBin: path.join(dir, 'bin', 'temporal-server'),
    sqlToolBin: path.join(dir, 'bin', 'temporal-sql-tool'),
    schemaDir: path.join(dir, 'schema', 'postgresql', 'v12'),
  };
}

function complete(dir: string): boolean {
  const l = layout(dir);
  return existsSync(path.join(dir, 'COMPLETE')) && existsSync(l.serverBin) && existsSync(l.sqlToolBin) && existsSync(path.join(l.schemaDir, 'temporal', 'versioned'));
}

/** Runs a command, streaming its output with a prefix; rejects on a non-zero exit. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: (line: string) => void, timeoutMs?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout stops the whole build (go and its compilers).
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let timedOut = false;
    const timer =
      timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              child.kill('SIGKILL');
            }
          }, timeoutMs)
        : undefined;
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        log(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut) reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms (stopped):\n${tail.slice(-5).join('\n')}`));
      else if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${tail.join('\n')}`));
    });
  });
}

/**
 * Returns the cached build, building it first when absent.
 *
 * @throws when there is no Go toolchain, or the build fails (with its last output lines).
 */
export async function ensureTemporalServer(opts: { log?: (line: string) => void; timeoutMs?: number } = {}): Promise<TemporalServerBuild> {
  const log = opts.log ?? ((l: string) => console.error(`[temporal-server] ${l}`));
  const dir = path.join(cacheRoot(), `temporal-server-${TEMPORAL_SERVER_VERSION}`);
  if (complete(dir)) return { ...layout(dir), built: false, buildMs: 0 };

  const go = await execFileAsync('go', ['version']).catch(() => undefined);
  if (!go) throw new Error('test:cluster needs a Go toolchain (`go`) to build the Temporal server from the Go module proxy');
  const started = Date.now();
  mkdirSync(cacheRoot(), { recursive: true });
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'bin'), { recursive: true });
  log(`building Temporal server ${TEMPORAL_SERVER_VERSION} with ${go.stdout.trim()} into ${dir} (several minutes the first time) ...`);
  const env = { ...process.env, GOBIN: path.join(tmp, 'bin') };
  const niceAvailable = existsSync('/usr/bin/nice') || existsSync('/bin/nice');
  const goArgs = ['install', `${MODULE}/cmd/server@v${TEMPORAL_SERVER_VERSION}`, `${MODULE}/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`];
  let lines = 0;
  try {
    await run(
      niceAvailable ? 'nice' : 'go',
      niceAvailable ? ['-n', '10', 'go', ...goArgs] : goArgs,
      env,
      (l) => {
        // `go: downloading ...` lines are hundreds: show every 50th.
        if (!l.startsWith('go: downloading') || ++lines % 50 === 1) log(l);
      },
      opts.timeoutMs,
    );
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  renameSync(path.join(tmp, 'bin', 'server'), path.join(tmp, 'bin', 'temporal-server'));
  renameSync(path.join(tmp, 'bin', 'sql'), path.join(tmp, 'bin', 'temporal-sql-tool'));
  // The schema files of the same module version (go env GOMODCACHE / go mod download).
  const { stdout } = await execFileAsync('go', ['mod', 'download', '-json', `${MODULE}@v${TEMPORAL_SERVER_VERSION}`], { env, maxBuffer: 4 * 1024 * 1024 });
  const moduleDir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (!moduleDir || !existsSync(path.join(moduleDir, 'schema', 'postgresql', 'v12'))) throw new Error(`module ${MODULE}@v${TEMPORAL_SERVER_VERSION} has no schema/postgresql/v12 (Dir ${moduleDir})`);
  cpSync(path.join(moduleDir, 'schema', 'postgresql', 'v12'), path.join(tmp, 'schema', 'postgresql', 'v12'), { recursive: true });
  const buildMs = Date.now() - started;
  writeFileSync(path.join(tmp, 'COMPLETE'), `${JSON.stringify({ version: TEMPORAL_SERVER_VERSION, go: go.stdout.trim(), buildMs, at: new Date().toISOString() })}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  log(`built in ${Math.round(buildMs / 1000)} s`);
  return { ...layout(dir), built: true, buildMs };
}

/** Where the PostgreSQL server binaries are (`initdb`, `postgres`, `pg_ctl`), or undefined. */
export function findPostgresBin(): string | undefined {
  if (process.env.PG_BIN && existsSync(path.join(process.env.PG_BIN, 'pg_ctl'))) return process.env.PG_BIN;
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(path.join(debian, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return path.join(debian, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, 'pg_ctl')) && existsSync(path.join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

/**
 * Returns the PostgreSQL bin folder, installing the Debian package `postgresql` (apt-get) when
 * it is missing and we are root.
 *
 * @throws when PostgreSQL is missing and cannot be installed.
 */
export async function ensurePostgres(opts: { log?: (line: string) => void } = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => console.error(`[postgresql] ${l}`));
  const found = findPostgresBin();
  if (found) return found;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    throw new Error('test:cluster needs PostgreSQL (initdb, pg_ctl): install the package `postgresql` (Debian/Ubuntu) or set PG_BIN');
  }
  log('installing the Debian package postgresql (apt-get) ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], env, log);
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'postgresql'], env, log);
  const bin = findPostgresBin();
  if (!bin) throw new Error('apt-get installed postgresql but no pg_ctl was found under /usr/lib/postgresql');
  return bin;
}

if (require.main === module) {
  (async () => {
    const pg = await ensurePostgres();
    // TEMPORAL_SERVER_BUILD_TIMEOUT_MS bounds a build (CI: a slow Go proxy skips the cluster tier).
    const timeout = Number(process.env.TEMPORAL_SERVER_BUILD_TIMEOUT_MS ?? 0);
    const build = await ensureTemporalServer(timeout > 0 ? { timeoutMs: timeout } : {});
    console.log(JSON.stringify({ ...build, postgresBin: pg }, null, 2));
  })().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
