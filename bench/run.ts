/**
 * `npm run bench` — throughput, latency, cost per email and scale of ses-lifecycle, side by side
 * with a bare Temporal workflow on the same dev server, in one run on this machine.
 *
 *   npm run bench                 full run (3 rounds, 20 000 open lifecycles)
 *   npm run bench -- --quick      development run (1 round, 2 000 open lifecycles, < 2 min)
 *   npm run bench -- --write-md   also write BENCHMARKS.md
 *   npm run bench -- --temporal cluster
 *                                 the same measurements against the real Temporal server on a
 *                                 throwaway PostgreSQL, started as `npm run test:cluster` starts it
 *                                 (test/cluster/cluster.ts), the bare-Temporal baseline on it too
 *   npm run bench -- --no-peer    without the homegrown peer (bench/peer.ts: Fastify + SNS verify +
 *                                 one PostgreSQL UPSERT per event) on a throwaway PostgreSQL
 *
 * Other flags: --rounds N, --scale N, --concurrency N, --cache N (worker maxCachedWorkflows),
 * --scale-rate N (events/s for the scale latency probe), --keep-data, --server-profile (cluster
 * only: Go pprof CPU profiles of the Temporal server per measurement, bench/server-profile.ts).
 *
 * What runs: the embedded stack from src/stack.ts (dev server with SQLite file persistence in a
 * throwaway DATA_DIR, the SES sandbox with a configuration set and a confirmed SNS subscription,
 * the webhook) in this process, and two workers in child processes (bench/worker-proc.ts): the
 * product's lifecycle worker and the baseline worker (bench/workflows.ts), so their memory and
 * CPU can be read apart. See BENCHMARKS.md for the method.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, createVerify, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as TemporalClient, Connection, type Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import pino from 'pino';
import { loadConfig } from '../src/config';
import { ensureNamespace, ensureSearchAttributes } from '../src/search-attributes';
import { forgetOnExit, PG_PASSWORD, PG_USER, startCluster, startPostgres, type Cluster, type Postgres } from '../test/cluster/cluster';
import { startPeer, type Peer } from './peer';
import { LIFECYCLE_TAG, statusQuery, WORKFLOW_TYPE } from '../src/definitions';
import type { SesSandbox } from '../src/sandbox';
import { startStack, type RunningStack } from '../src/stack';
import { freePorts, resolveTemporalCli } from '../src/temporal-cli';
import { ServerLatency } from './server-metrics';
import { ServerProfiler, serverProfileTable } from './server-profile';
import { snsStringToSign, type SnsEnvelope } from '../src/webhook';
import { WORKFLOWS_PATH } from '../src/worker';
import { procCpuSeconds, procRss, startWebhookChild, startWorkerChild, type WebhookChild, type WorkerChild } from './children';
import { median, paced, parseServerTiming, percentile, pool, Poster, round } from './load';
import { cpuTable, costTable, resultsTable, scaleTable, timingsTable } from './report';
import { sandboxVerifier, signedEvent, type SentLifecycle } from './sns';
import { COST_RULE, eventTypeName, historyCost } from './history-cost';
import type { BaselineRound, BenchResults, CostPath, CostSample, CpuShare, EventsRound, LatencyBreakdown, PacedResult, ScalePoint, SendsRound, StageStats } from './types';

// ------------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const str = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const num = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
};
const QUICK = flag('quick');
const TEMPORAL = str('temporal', 'dev');
if (TEMPORAL !== 'dev' && TEMPORAL !== 'cluster') throw new Error('--temporal is dev (the embedded dev server, default) or cluster (Temporal server on PostgreSQL)');
/** Go pprof CPU profiles of the Temporal server per measurement (the cluster's server exposes pprof; the dev server CLI does not). */
const SERVER_PROFILE = flag('server-profile');
if (SERVER_PROFILE && TEMPORAL !== 'cluster') throw new Error('--server-profile needs --temporal cluster (the dev server CLI has no pprof endpoint)');
const P = {
  rounds: num('rounds', QUICK ? 1 : 3),
  /** Workflows per baseline round / lifecycles per sends round / events per events round. */
  n: num('n', QUICK ? 200 : 500),
  concurrency: num('concurrency', 100),
  pacedSec: num('paced-sec', QUICK ? 1.5 : 5),
  e2eSamples: num('e2e', QUICK ? 20 : 50),
  scaleRecipient: str('scale-recipient', 'silent') === 'success' ? ('success' as const) : ('silent' as const),
  /** Where the throwaway DATA_DIR goes: /tmp (disk) for full runs; tmpfs for --quick, to fit in 2 minutes. */
  dataRoot: str('data-root', QUICK && existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()),
  costRepeats: num('cost-repeats', 3),
  scaleOpen: num('scale', QUICK ? 2_000 : 20_000),
  scaleLow: 100,
  scaleRate: num('scale-rate', 50),
  scaleChunk: QUICK ? 500 : 2_500,
  cache: num('cache', 1_000),
  verifySec: num('verify-sec', QUICK ? 1 : 2),
  eventDelayMs: num('event-delay', 1_000),
  /** A measurement during which other processes used more cores than this is repeated. */
  maxOthers: num('max-others', 0.35),
  /** Attempts per measurement when other processes disturb it (--quick: 1, to stay under 2 minutes). */
  maxTries: num('max-tries', 1),
};
const BASELINE_TQ = 'bench-baseline';
const RUNNING_LIFECYCLES = `WorkflowType = "${WORKFLOW_TYPE.message}" AND ExecutionStatus = "Running"`;
const DELIVERED = `WorkflowType = "${WORKFLOW_TYPE.message}" AND ExecutionStatus = "Running" AND EmailStatus = "delivered"`;
const FROM = 'bench@example.com';
const USD_PER_MILLION_ACTIONS = 50;
const MB = 1024 * 1024;
const RUN = randomUUID().slice(0, 8);
const ROOT = path.join(__dirname, '..');

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

// ------------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------------

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Waits until `count()` reaches `target`. A few stragglers are tolerated: when at least 98% arrived
 * and nothing moved for `stallMs`, it returns what it has (a lifecycle whose send failed
 * ambiguously waits minutes for a Send event before resending, by design). Resolves with the
 * count and the time (performance.now()) at which the count last grew.
 */
async function waitForCount(what: string, count: () => number | Promise<number>, target: number, timeoutMs: number, intervalMs = 50, stallMs = 15_000): Promise<{ count: number; lastProgressAt: number }> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let lastProgressAt = performance.now();
  for (;;) {
    const c = await count();
    if (c !== last) {
      last = c;
      lastProgressAt = performance.now();
    }
    if (c >= target) return { count: c, lastProgressAt };
    if (c >= 0.98 * target && performance.now() - lastProgressAt > stallMs) {
      log(`   (${what}: ${target - c} of ${target} still pending after ${stallMs / 1000} s without progress; going on without them)`);
      stragglers += target - c;
      return { count: c, lastProgressAt };
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${c} of ${target})`);
    await sleep(intervalMs);
  }
}

/** Lifecycles the harness went on without (see waitForCount). */
let stragglers = 0;

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return '';
  }
}

function machine(cliVersion: string | undefined): Record<string, unknown> {
  const cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim();
  return {
    nproc: sh('nproc', []),
    cpuModel,
    freeG: sh('free', ['-g']),
    totalMemGiB: round(os.totalmem() / 1024 ** 3, 1),
    node: process.version,
    temporalCli: cliVersion,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAvgAtStart: os.loadavg().map((x) => round(x, 2)),
    uptimeAtStart: sh('uptime', []),
  };
}

/** CPU seconds per process, for utilization over a phase. */
interface CpuSnap {
  wall: number;
  bench: number;
  worker: number;
  baselineWorker: number;
  devServer: number;
  /** All CPUs busy (from /proc/stat), seconds. */
  system: number;
}

/** Busy CPU seconds of the whole machine (all processes, all cores) from /proc/stat. */
function systemBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - idle) / 100;
}

interface Ctx {
  stack: RunningStack;
  sandbox: SesSandbox;
  topicArn: string;
  client: Client;
  lcWorker: WorkerChild;
  baseWorker: WorkerChild;
  poster: Poster;
  /** The webhook as its own process (`ses-lifecycle webhook`), for latency away from this process. */
  standalone: { pid: number; poster: Poster };
  results: BenchResults;
  /** Lifecycles that got a Delivery from us: open, waiting in their complaint window. */
  delivered: SentLifecycle[];
  /** First workflow id of each baseline round attempt (for the cost comparison). */
  baselineIds: string[];
  /** The Temporal server's processes: the dev server, or the cluster's server and PostgreSQL. */
  server: ServerProcs;
  /** Go pprof slices of the cluster's server (`--server-profile`). */
  profiler?: ServerProfiler;
  /** The cluster server's frontend latency histograms. */
  serverLatency?: ServerLatency;
}

/** CPU seconds and RSS of the Temporal server side (with its database, on the cluster). */
interface ServerProcs {
  cpuSeconds(): number;
  rss(): number;
}

/**
 * Proportional set size (shared pages split between the processes that map them), bytes: the
 * PostgreSQL processes share shared_buffers, which RSS would count once per backend.
 */
function procPss(pid: number): number {
  try {
    const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1];
    return kb === undefined ? (procRss(pid) ?? 0) : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** The PostgreSQL postmaster and its backends (children), from the data dir's postmaster.pid. */
function postgresPids(dataDir: string): number[] {
  let master: number;
  try {
    master = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return [];
  }
  const pids = [master];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === master) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function cpuSnap(ctx: Ctx): CpuSnap {
  const u = process.cpuUsage();
  return {
    wall: performance.now(),
    // This process (load generator, sandbox, in-process webhook) plus the standalone webhook.
    bench: (u.user + u.system) / 1e6 + (procCpuSeconds(ctx.standalone.pid) ?? 0),
    worker: procCpuSeconds(ctx.lcWorker.pid) ?? 0,
    baselineWorker: procCpuSeconds(ctx.baseWorker.pid) ?? 0,
    devServer: ctx.server.cpuSeconds(),
    system: systemBusySeconds(),
  };
}

function cpuShare(a: CpuSnap, b: CpuSnap): CpuShare {
  const wallSec = (b.wall - a.wall) / 1000;
  const r = (x: number) => round(x / wallSec, 2);
  const ours = b.bench - a.bench + (b.worker - a.worker) + (b.baselineWorker - a.baselineWorker) + (b.devServer - a.devServer);
  return {
    at: [round(performance.timeOrigin + a.wall), round(performance.timeOrigin + b.wall)],
    bench: r(b.bench - a.bench),
    worker: r(b.worker - a.worker),
    baselineWorker: r(b.baselineWorker - a.baselineWorker),
    devServer: r(b.devServer - a.devServer),
    others: r(Math.max(0, b.system - a.system - ours)),
    wallSec: round(wallSec, 2),
  };
}

function addCpu(ctx: Ctx, name: string, shares: CpuShare[], items?: number): void {
  if (shares.length === 0) return;
  const m = (k: Exclude<keyof CpuShare, 'msPerItem' | 'at'>) => round(median(shares.map((s) => s[k])), 2);
  const share: CpuShare = { bench: m('bench'), worker: m('worker'), baselineWorker: m('baselineWorker'), devServer: m('devServer'), others: m('others'), wallSec: m('wallSec') };
  if (items !== undefined && items > 0) {
    // CPU milliseconds per item (per workflow started, per event), from the median round.
    const per = (cores: number) => round((cores * share.wallSec * 1000) / items, 2);
    share.msPerItem = { bench: per(share.bench), worker: per(share.worker), baselineWorker: per(share.baselineWorker), devServer: per(share.devServer), items };
  }
  ctx.results.cpu[name] = share;
  if (ctx.profiler && items !== undefined && items > 0) for (const s of shares) if (s.at) ctx.profiler.mark(name, s.at[0], s.at[1], items);
}

/**
 * Runs one measurement; when other processes on the machine used more than P.maxOthers cores
 * during it, settles and runs it again (up to P.maxTries), keeping the least disturbed attempt.
 */
async function measured<T extends { cpu: CpuShare }>(ctx: Ctx, label: string, fn: (attempt: number) => Promise<T>): Promise<T> {
  let best: T | undefined;
  for (let attempt = 1; attempt <= P.maxTries; attempt++) {
    const r = await fn(attempt);
    if (!best || r.cpu.others < best.cpu.others) best = r;
    if (r.cpu.others <= P.maxOthers) return r;
    ctx.results.contention.push({ label, attempt, otherCores: r.cpu.others });
    log(`   ${label}: other processes on the machine used ${r.cpu.others} cores meanwhile; ${attempt < P.maxTries ? 'measuring again' : 'keeping the least disturbed attempt'}`);
    if (attempt < P.maxTries) await settle(ctx);
  }
  return best!;
}

async function countRunning(client: Client, query: string): Promise<number> {
  const r = await client.workflow.count(query);
  return r.count;
}

/**
 * Waits until the machine is quiet after a burst: no workflow activation in flight in either worker,
 * our processes together below 0.15 cores and everything else below P.maxOthers cores, for 600 ms
 * (the server keeps working through timers, transfer and visibility tasks after the last RPC).
 */
async function settle(ctx: Ctx, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Waiting for other people's processes is bounded (and skipped with --quick): the measurement
  // records their CPU and is repeated when they disturbed it.
  const othersWaitMs = QUICK ? 0 : 20_000;
  let quiet = 0;
  let oursQuietSince: number | undefined;
  let prev = cpuSnap(ctx);
  let last: CpuShare | undefined;
  while (Date.now() < deadline) {
    await sleep(200);
    const [a, b] = await Promise.all([ctx.lcWorker.stats(), ctx.baseWorker.stats()]);
    const now = cpuSnap(ctx);
    const c = cpuShare(prev, now);
    last = c;
    prev = now;
    const oursQuiet = a.numInFlightWorkflowActivations === 0 && b.numInFlightWorkflowActivations === 0 && c.bench + c.worker + c.baselineWorker + c.devServer < 0.15;
    if (!oursQuiet) {
      quiet = 0;
      oursQuietSince = undefined;
      continue;
    }
    oursQuietSince ??= Date.now();
    const othersOk = c.others <= P.maxOthers || Date.now() - oursQuietSince >= othersWaitMs;
    if (othersOk) {
      if (++quiet >= 3) return;
    } else {
      quiet = 0;
    }
  }
  log(`   (not quiet after ${timeoutMs / 1000} s: ours ${last ? round(last.bench + last.worker + last.baselineWorker + last.devServer, 2) : '?'} cores, others ${last?.others ?? '?'} cores; continuing)`);
}

function labelled(local: string, domain: string, label: string): string {
  return `${local}+${label}@${domain}`;
}

/** Maps lifecycle id → accepted message for the given ids (one sentMessages() snapshot). */
function acceptedFor(sandbox: SesSandbox, ids: ReadonlySet<string>): Map<string, SentLifecycle> {
  const out = new Map<string, SentLifecycle>();
  for (const m of sandbox.sentMessages()) {
    const id = m.tags.find((t) => t.name === LIFECYCLE_TAG)?.value;
    if (id !== undefined && ids.has(id)) out.set(id, { lifecycleId: id, sesMessageId: m.sesMessageId, recipient: m.destination.to[0] ?? '' });
  }
  return out;
}

/**
 * Starts `n` lifecycles through sendTracked() (long deadline: they stay open) and waits until the
 * sandbox accepted every SendEmail. Returns them with their SES message ids.
 */
async function createLifecycles(ctx: Ctx, n: number, recipient: (i: number) => string, timeoutMs = 300_000): Promise<SentLifecycle[]> {
  const ids: string[] = [];
  await pool(n, P.concurrency, async (i) => {
    const email = await ctx.stack.lc.sendTracked({ from: FROM, to: [recipient(i)], subject: `bench ${i}`, text: 'benchmark' });
    ids.push(email.id);
  });
  const want = new Set(ids);
  let found = new Map<string, SentLifecycle>();
  await waitForCount(
    `${n} SendEmail accepted`,
    () => {
      found = acceptedFor(ctx.sandbox, want);
      return found.size;
    },
    n,
    timeoutMs,
    200,
  );
  return [...found.values()];
}

function pacedSummary(rate: number, r: Awaited<ReturnType<typeof paced>>): PacedResult {
  return {
    offeredRate: round(rate, 1),
    n: r.latencies.length + r.errors,
    p50: round(percentile(r.latencies, 50), 2),
    p90: round(percentile(r.latencies, 90), 2),
    p99: round(percentile(r.latencies, 99), 2),
    max: round(Math.max(...r.latencies), 2),
    errors: r.errors,
    achievedRate: round(r.achievedRate, 1),
    maxSendLagMs: round(r.maxSendLagMs, 1),
  };
}

async function postOk(ctx: Ctx, body: string, headers: Record<string, string>, timings?: Record<string, number>[], i?: number, poster = ctx.poster): Promise<void> {
  const r = await poster.post(body, headers);
  if (r.status !== 200) throw new Error(`webhook answered ${r.status}: ${r.text.slice(0, 200)}`);
  if (timings && i !== undefined) timings[i] = parseServerTiming(r.serverTiming);
}

function stageStats(xs: number[]): StageStats {
  return { n: xs.length, p50: round(percentile(xs, 50), 2), p90: round(percentile(xs, 90), 2), p99: round(percentile(xs, 99), 2), max: round(Math.max(...xs), 2) };
}

/**
 * Where the time of paced posts went: each answer's Server-Timing (the webhook's stages), the
 * client's latency minus the handler (`outside`: HTTP, socket queueing, this process's event
 * loop), the event-loop delay, and the slowest 1% of posts taken apart.
 */
/** Records this process's event-loop delay and garbage collections until `stop()`. */
function processPauses(): { stop: () => { loop: ReturnType<typeof monitorEventLoopDelay>; gcs: PerformanceEntry[] } } {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  const gcs: PerformanceEntry[] = [];
  const obs = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  loop.enable();
  return {
    stop: () => {
      loop.disable();
      obs.disconnect();
      return { loop, gcs };
    },
  };
}

function latencyBreakdown(r: Awaited<ReturnType<typeof paced>>, timings: Record<string, number>[], pauses: { loop: ReturnType<typeof monitorEventLoopDelay>; gcs: PerformanceEntry[] }): LatencyBreakdown {
  const { loop, gcs } = pauses;
  const rows = r.byIndex.flatMap((latency, i) => {
    const t = timings[i];
    if (latency === undefined || t?.handler === undefined) return [];
    const row: Record<string, number> & { latency: number; at: number } = { ...t, latency, at: r.scheduledMs[i]! / 1000, outside: Math.max(0, latency - t.handler) };
    return [row];
  });
  const stages: Record<string, StageStats> = {};
  for (const stage of ['handler', 'verify', 'lookup', 'describe', 'signal', 'outside'] as const) {
    const xs = rows.flatMap((x) => (x[stage] !== undefined ? [x[stage]] : []));
    if (xs.length > 0) stages[stage] = stageStats(xs);
  }
  const slow = [...rows].sort((a, b) => b.latency - a.latency).slice(0, Math.max(3, Math.ceil(rows.length / 100)));
  /** GC ms inside a post's [scheduled, answered] interval. */
  const gcInside = (x: (typeof rows)[number]): number => {
    const from = r.t0 + x.at * 1000;
    const to = from + x.latency;
    return gcs.reduce((a, g) => a + Math.max(0, Math.min(to, g.startTime + g.duration) - Math.max(from, g.startTime)), 0);
  };
  const mean = (f: (x: (typeof rows)[number]) => number | undefined) => round(slow.reduce((a, x) => a + (f(x) ?? 0), 0) / Math.max(1, slow.length), 2);
  const isMajor = (g: PerformanceEntry): boolean => (g as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
  return {
    stages,
    slowest: {
      n: slow.length,
      latency: mean((x) => x.latency),
      handler: mean((x) => x.handler),
      outside: mean((x) => x.outside),
      verify: mean((x) => x.verify),
      describe: mean((x) => x.describe),
      signal: mean((x) => x.signal),
      windows: new Set(slow.map((x) => Math.floor(x.at * 4))).size,
      scheduledSec: slow.map((x) => round(x.at, 2)).sort((a, b) => a - b),
      withGc: slow.filter((x) => gcInside(x) > 0).length,
      gcMs: mean(gcInside),
    },
    gc: { count: gcs.length, major: gcs.filter(isMajor).length, maxMs: round(Math.max(0, ...gcs.map((g) => g.duration)), 2), totalMs: round(gcs.reduce((a, g) => a + g.duration, 0), 1) },
    eventLoop: { p50: round(loop.percentile(50) / 1e6, 2), p99: round(loop.percentile(99) / 1e6, 2), max: round(loop.max / 1e6, 2) },
  };
}

function breakdownLines(b: LatencyBreakdown): string[] {
  const st = Object.entries(b.stages).map(([k, v]) => `${k} ${v.p50}/${v.p99}`).join(', ');
  const s = b.slowest;
  const server = Object.entries(b.server ?? {}).map(([op, v]) => `${op} ${v.p50}/${v.p99} (n ${v.n})`);
  return [
    ...(server.length ? [`   Temporal frontend p50/p99 ms: ${server.join(', ')}`] : []),
    `   stages p50/p99 ms: ${st}; event loop p50/p99/max ${b.eventLoop.p50}/${b.eventLoop.p99}/${b.eventLoop.max} ms; GC ${b.gc.count} (${b.gc.major} major, longest ${b.gc.maxMs} ms, ${b.gc.totalMs} ms in all)`,
    `   slowest ${s.n} posts (mean ms): latency ${s.latency} = outside ${s.outside} + handler ${s.handler} (verify ${s.verify}, describe ${s.describe}, signal ${s.signal}); in ${s.windows} windows of 250 ms at ${s.scheduledSec.join(', ')} s; ${s.withGc} overlapped a GC (mean ${s.gcMs} ms of GC inside)`,
  ];
}

// ------------------------------------------------------------------------------------------------
// Where the time goes: phase durations read from workflow histories (server timestamps)
// ------------------------------------------------------------------------------------------------

const TIMING_SAMPLES = 40;

interface HistoryEventLike {
  eventTime?: { seconds?: unknown; nanos?: number | null } | null;
}

function eventMs(ev: HistoryEventLike): number {
  const t = ev.eventTime;
  if (!t) return NaN;
  const sec = t.seconds;
  const seconds =
    typeof sec === 'number' ? sec : typeof sec === 'string' ? Number(sec) : sec !== null && typeof sec === 'object' && 'toNumber' in sec ? (sec as { toNumber(): number }).toNumber() : 0;
  return seconds * 1000 + (t.nanos ?? 0) / 1e6;
}

async function typedHistory(client: Client, id: string): Promise<{ type: string; ms: number; ev: object }[]> {
  const h = await client.workflow.getHandle(id).fetchHistory();
  return (h.events ?? []).map((ev) => ({ type: eventTypeName(ev), ms: eventMs(ev as HistoryEventLike), ev }));
}

function medians(rows: Record<string, number>[]): Record<string, number> {
  const keys = Object.keys(rows[0] ?? {});
  return Object.fromEntries(keys.map((k) => [k, round(median(rows.map((r) => r[k]!).filter((x) => Number.isFinite(x))), 1)]));
}

/** Start → first workflow task → activity → completed, medians in ms over the sample. */
async function startTimings(client: Client, ids: string[]): Promise<Record<string, number>> {
  const rows: Record<string, number>[] = [];
  for (const id of ids) {
    const evs = await typedHistory(client, id);
    const at = (type: string, nth = 0) => evs.filter((e) => e.type === type)[nth]?.ms ?? NaN;
    const started = at('WorkflowExecutionStarted');
    rows.push({
      'start → WFT1 started (queue)': at('WorkflowTaskStarted') - started,
      'WFT1 started → completed (worker)': at('WorkflowTaskCompleted') - at('WorkflowTaskStarted'),
      'activity scheduled → started (queue)': at('ActivityTaskStarted') - at('ActivityTaskScheduled'),
      'activity started → completed (activity)': at('ActivityTaskCompleted') - at('ActivityTaskStarted'),
      'start → activity completed (total)': at('ActivityTaskCompleted') - started,
      'activity completed → WFT2 completed': at('WorkflowTaskCompleted', 1) - at('ActivityTaskCompleted'),
    });
  }
  return medians(rows);
}

/** Signal received → the workflow task that processed it started / completed, medians in ms. */
async function signalTimings(client: Client, ids: string[]): Promise<Record<string, number>> {
  const rows: Record<string, number>[] = [];
  for (const id of ids) {
    const evs = await typedHistory(client, id);
    const i = evs.findIndex((e) => e.type === 'WorkflowExecutionSignaled');
    if (i < 0) continue;
    const after = evs.slice(i);
    const started = after.find((e) => e.type === 'WorkflowTaskStarted')?.ms ?? NaN;
    const completed = after.find((e) => e.type === 'WorkflowTaskCompleted')?.ms ?? NaN;
    rows.push({
      'signal → WFT started (queue)': started - evs[i]!.ms,
      'WFT started → completed (worker)': completed - started,
      'signal → WFT completed (total)': completed - evs[i]!.ms,
    });
  }
  return medians(rows);
}

// ------------------------------------------------------------------------------------------------
// 7. Webhook alone: signature verification with the certificate cached
// ------------------------------------------------------------------------------------------------

async function benchVerify(ctx: Ctx): Promise<void> {
  log('7. signature verification (SnsVerifier, cert cached)');
  const { sandbox, topicArn } = ctx;
  const verifier = sandboxVerifier(sandbox);
  const lc: SentLifecycle = { lifecycleId: 'msg-verify', sesMessageId: '0100-verify', recipient: 'a@example.com' };
  const envs = (v: '1' | '2'): SnsEnvelope[] =>
    Array.from({ length: 200 }, () => {
      const m: SnsEnvelope = { ...signedEvent(sandbox, topicArn, 'Delivery', lc, v).message };
      return m;
    });
  const loop = async (list: SnsEnvelope[]): Promise<number> => {
    await verifier.verify(list[0]!); // the first one fetches the certificate
    let n = 0;
    const t0 = performance.now();
    const until = t0 + P.verifySec * 1000;
    while (performance.now() < until) {
      await verifier.verify(list[n % list.length]!);
      n++;
    }
    return (n * 1000) / (performance.now() - t0);
  };
  const v2 = envs('2');
  const v1 = envs('1');
  const r2: number[] = [];
  const r1: number[] = [];
  for (let r = 0; r < P.rounds; r++) {
    r2.push(await loop(v2));
    r1.push(await loop(v1));
  }
  // Reference: the bare RSA verification the library performs, with the certificate's public key
  // already parsed (as SnsVerifier keeps it), so only the RSA operation is measured.
  const certPem = await new Promise<string>((resolve, reject) => {
    void import('node:https').then((https) =>
      https
        .get(sandbox.signingCertUrl, { ca: sandbox.caCertPem }, (res) => {
          let s = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (s += c));
          res.on('end', () => resolve(s));
        })
        .on('error', reject),
    );
  });
  const publicKey = createPublicKey(certPem);
  // The string SNS signs (with Subject, which SES notifications carry).
  const stringToSign = snsStringToSign;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < P.verifySec * 1000) {
    const m = v2[n % v2.length]!;
    const v = createVerify('RSA-SHA256');
    v.update(stringToSign(m), 'utf8');
    if (!v.verify(publicKey, m.Signature, 'base64')) throw new Error('reference verification failed');
    n++;
  }
  const raw = (n * 1000) / (performance.now() - t0);
  ctx.results.verify = { v2PerSec: round(median(r2), 0), v1PerSec: round(median(r1), 0), rawCryptoPerSec: round(raw, 0), rounds: { v2: r2.map((x) => round(x, 0)), v1: r1.map((x) => round(x, 0)) } };
  log(`   v2 ${round(median(r2), 0)}/s, v1 ${round(median(r1), 0)}/s, raw crypto ${round(raw, 0)}/s`);
}

// ------------------------------------------------------------------------------------------------
// 1. Baseline
// ------------------------------------------------------------------------------------------------

/**
 * A measurement run as interleaved rounds: `round(r)` measures one round, `finish()` aggregates
 * (and runs what follows the rounds). Rounds of the baseline, sends and events alternate, so
 * each sees the server in the same state (open workflows, database size) on average.
 */
interface Phase {
  title: string;
  round(r: number): Promise<void>;
  finish(): void | Promise<void>;
}

function baselinePhase(ctx: Ctx): Phase {
  const title = `1. baseline: ${P.rounds} × ${P.n} bare workflows, concurrency ${P.concurrency}`;
  const { client } = ctx;
  const payload = 'x'.repeat(600); // about the size of one normalized SES event
  const running = `TaskQueue = "${BASELINE_TQ}" AND ExecutionStatus = "Running"`;
  const rounds: BaselineRound[] = [];
  const startCpu: CpuShare[] = [];
  const signalCpu: CpuShare[] = [];
  return {
    title,
    round: async (r: number) => {
      const one = async (attempt: number) => {
        const ids = Array.from({ length: P.n }, (_, i) => `bench-${RUN}-r${r}a${attempt}-${i}`);
        ctx.baselineIds.push(ids[0]!);
        await settle(ctx);
        const act0 = (await ctx.baseWorker.stats()).activities;
        const c0 = cpuSnap(ctx);
        const t0 = performance.now();
        const startCallsMs = await pool(P.n, P.concurrency, (i) => client.workflow.start('benchBaseline', { workflowId: ids[i]!, taskQueue: BASELINE_TQ }));
        await waitUntil('baseline activities', async () => (await ctx.baseWorker.stats()).activities - act0 >= P.n, 120_000, 20);
        const startedAndActivityMs = performance.now() - t0;
        const cpu = cpuShare(c0, cpuSnap(ctx));
        await settle(ctx);
        const c1 = cpuSnap(ctx);
        const t1 = performance.now();
        const signalCallsMs = await pool(P.n, P.concurrency, (i) => client.workflow.getHandle(ids[i]!).signal('benchSignal', payload));
        await waitUntil('baseline completions', async () => (await countRunning(client, running)) === 0, 120_000, 50);
        const signalToAllCompletedMs = performance.now() - t1;
        const sigCpu = cpuShare(c1, cpuSnap(ctx));
        const round_: BaselineRound = { n: P.n, startCallsMs: round(startCallsMs), startedAndActivityMs: round(startedAndActivityMs), signalCallsMs: round(signalCallsMs), signalToAllCompletedMs: round(signalToAllCompletedMs) };
        // A round counts as disturbed if either half was.
        return { round: round_, ids, sigCpu, startCpu: cpu, cpu: { ...cpu, others: Math.max(cpu.others, sigCpu.others) } };
      };
      const res = await measured(ctx, `baseline round ${r + 1}`, one);
      rounds.push(res.round);
      startCpu.push(res.startCpu);
      signalCpu.push(res.sigCpu);
      const x = res.round;
      log(
        `   round ${r + 1}: starts+activity ${round((P.n * 1000) / x.startedAndActivityMs)}/s, signals ${round((P.n * 1000) / x.signalCallsMs)}/s accepted, ` +
          `${round((P.n * 1000) / x.signalToAllCompletedMs)}/s processed (others ${res.cpu.others} cores)`,
      );
      if (r === 0) {
        const sample = res.ids.slice(0, TIMING_SAMPLES);
        ctx.results.timings.baselineStart = await startTimings(client, sample);
        ctx.results.timings.baselineSignal = await signalTimings(client, sample);
      }
    },
    finish: () => {
      const per = (f: (x: BaselineRound) => number) => round(median(rounds.map((x) => (x.n * 1000) / f(x))), 1);
      ctx.results.baseline = {
        rounds,
        startsPerSec: per((x) => x.startedAndActivityMs),
        clientStartsPerSec: per((x) => x.startCallsMs),
        signalsPerSec: per((x) => x.signalCallsMs),
        signalToCompletePerSec: per((x) => x.signalToAllCompletedMs),
        cyclesPerSec: per((x) => x.startedAndActivityMs + x.signalToAllCompletedMs),
      };
      addCpu(ctx, 'baseline: start → activity', startCpu, P.n);
      addCpu(ctx, 'baseline: signal → completed', signalCpu, P.n);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// 2. Sends
// ------------------------------------------------------------------------------------------------

function sendsPhase(ctx: Ctx): Phase {
  const title = `2. sends: ${P.rounds} × ${P.n} sendTracked() to silent sandbox recipients, concurrency ${P.concurrency}`;
  const rounds: SendsRound[] = [];
  const cpu: CpuShare[] = [];
  return {
    title,
    round: async (r: number) => {
      const res = await measured(ctx, `sends round ${r + 1}`, async (attempt) => {
        await settle(ctx);
        const before = ctx.sandbox.sentMessages().length;
        const ids: string[] = [];
        const c0 = cpuSnap(ctx);
        const t0 = performance.now();
        const callsMs = await pool(P.n, P.concurrency, async (i) => {
          const email = await ctx.stack.lc.sendTracked({ from: FROM, to: [labelled('silent', 'sandbox.ses-lifecycle.test', `s${RUN}r${r}a${attempt}i${i}`)], subject: `bench send ${i}`, text: 'benchmark' });
          ids.push(email.id);
        });
        const got = await waitForCount('all SendEmail accepted', () => ctx.sandbox.sentMessages().length - before, P.n, 300_000, 50);
        const allSentMs = got.lastProgressAt - t0;
        return { round: { n: got.count, sendTrackedCallsMs: round(callsMs), allSentMs: round(allSentMs) }, ids, cpu: cpuShare(c0, cpuSnap(ctx)) };
      });
      rounds.push(res.round);
      cpu.push(res.cpu);
      log(`   round ${r + 1}: ${round((P.n * 1000) / res.round.allSentMs)} sent/s (sendTracked calls ${round((P.n * 1000) / res.round.sendTrackedCallsMs)}/s; others ${res.cpu.others} cores)`);
      if (r === 0) ctx.results.timings.sendsStart = await startTimings(ctx.client, res.ids.slice(0, TIMING_SAMPLES));
    },
    finish: () => {
      ctx.results.sends = {
        rounds,
        sentPerSec: round(median(rounds.map((x) => (x.n * 1000) / x.allSentMs)), 1),
        callsPerSec: round(median(rounds.map((x) => (x.n * 1000) / x.sendTrackedCallsMs)), 1),
      };
      addCpu(ctx, 'sends: start → SendEmail accepted', cpu, P.n);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// 3. Events (saturated, then paced at 50% / 90%) and 4. end-to-end latency
// ------------------------------------------------------------------------------------------------

async function freshSilent(ctx: Ctx, n: number, tag: string): Promise<SentLifecycle[]> {
  const lcs = await createLifecycles(ctx, n, (i) => labelled('silent', 'sandbox.ses-lifecycle.test', `${tag}${RUN}i${i}`));
  await settle(ctx);
  return lcs;
}

function eventsPhase(ctx: Ctx): Phase {
  const title = `3. events: ${P.rounds} × ${P.n} signed Delivery notifications → webhook, concurrency ${P.concurrency}`;
  const rounds: EventsRound[] = [];
  const cpu: CpuShare[] = [];
  return {
    title,
    round: async (r: number) => {
      const res = await measured(ctx, `events round ${r + 1}`, async (attempt) => {
        // Fresh lifecycles per round (created untimed), so each event is a Delivery to an email that
        // waits for its outcome and every workflow is in the worker cache, as in the baseline.
        const lcs = await freshSilent(ctx, P.n, `e${r}a${attempt}`);
        const posts = lcs.map((lc) => signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', lc));
        const statuses: Record<string, number> = {};
        const delivered0 = await countRunning(ctx.client, DELIVERED);
        const c0 = cpuSnap(ctx);
        const t0 = performance.now();
        await pool(posts.length, P.concurrency, async (i) => {
          const p = posts[i]!;
          const res = await ctx.poster.post(p.body, p.headers).catch(() => ({ status: 0, text: '' }));
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        });
        const ms = performance.now() - t0;
        const ok = statuses['200'] ?? 0;
        // Processed: every signalled lifecycle ran its workflow task and upserted EmailStatus=delivered.
        const got = await waitForCount('events processed', async () => (await countRunning(ctx.client, DELIVERED)) - delivered0, ok, 300_000, 50);
        const processedMs = got.lastProgressAt - t0;
        ctx.delivered.push(...lcs);
        return { round: { n: posts.length, ms: round(ms), processedMs: round(processedMs), ok, failed: posts.length - ok, statuses }, lcs, cpu: cpuShare(c0, cpuSnap(ctx)) };
      });
      rounds.push(res.round);
      cpu.push(res.cpu);
      const x = res.round;
      log(`   round ${r + 1}: ${round((x.ok * 1000) / x.ms)} events/s accepted, ${round((x.ok * 1000) / x.processedMs)}/s processed (${JSON.stringify(x.statuses)}; others ${res.cpu.others} cores)`);
      if (r === 0) ctx.results.timings.eventsSignal = await signalTimings(ctx.client, res.lcs.slice(0, TIMING_SAMPLES).map((l) => l.lifecycleId));
    },
    finish: async () => {
      const eventsPerSec = round(median(rounds.map((x) => (x.ok * 1000) / x.ms)), 1);
      const processedPerSec = round(median(rounds.map((x) => (x.ok * 1000) / x.processedMs)), 1);
      ctx.results.events = { rounds, eventsPerSec, processedPerSec };
      addCpu(ctx, 'events: post → processed (saturated)', cpu, P.n);

      // Latency under an offered load below saturation. The sustainable ("saturated") rate is the
      // processed rate: a burst is accepted faster than it is processed, and pacing above the
      // processed rate only builds a queue.
      for (const share of [0.5, 0.9] as const) {
        const rate = processedPerSec * share;
        const n = Math.max(20, Math.round(rate * P.pacedSec));
        const res = await measured(ctx, `events paced ${share * 100}%`, async (attempt) => {
          const lcs = await freshSilent(ctx, n, `p${share * 100}a${attempt}`);
          log(`   paced at ${share * 100}% of the processed rate: ${round(rate)} events/s for ${P.pacedSec} s`);
          const r = await pacedPosts(ctx, lcs, rate);
          ctx.delivered.push(...lcs);
          return { ...r, lcs };
        });
        addCpu(ctx, `events paced ${share * 100}%`, [res.cpu], n);
        const s = { ...pacedSummary(rate, res.out), breakdown: res.breakdown };
        if (share === 0.5) ctx.results.events.at50 = s;
        else ctx.results.events.at90 = s;
        log(`   → p50 ${s.p50} ms, p99 ${s.p99} ms, errors ${s.errors} (others ${res.cpu.others} cores)`);
        for (const line of breakdownLines(res.breakdown)) log(line);
        if (share === 0.5) {
          // A second event of the same lifecycles: this webhook has their type cached (no describe).
          await settle(ctx);
          log(`   paced again at ${round(rate)} events/s: a second Delivery of the same lifecycles (their type is cached: no describe)`);
          const again = await pacedPosts(ctx, res.lcs, rate);
          const cached = { ...pacedSummary(rate, again.out), breakdown: again.breakdown };
          ctx.results.events.at50Cached = cached;
          log(`   → p50 ${cached.p50} ms, p99 ${cached.p99} ms, errors ${cached.errors} (others ${again.cpu.others} cores)`);
          for (const line of breakdownLines(again.breakdown)) log(line);
          // The webhook as its own process, first events of fresh lifecycles again. (Its event-loop
          // and GC figures are this process's, the load generator's: the breakdown's `outside`.)
          const fresh = await freshSilent(ctx, n, 'p50s');
          // Warm it up as the in-process webhook was by the rounds before: its signing-certificate
          // cache and JIT (a third Delivery to a few lifecycles of the cached run, untimed).
          const warm = res.lcs.slice(0, 50).map((lc) => signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', lc));
          await pool(warm.length, 10, (i) => postOk(ctx, warm[i]!.body, warm[i]!.headers, undefined, undefined, ctx.standalone.poster));
          await settle(ctx);
          log(`   paced at ${round(rate)} events/s to the standalone webhook process (ses-lifecycle webhook), first events of ${n} fresh lifecycles`);
          const alone = await pacedPosts(ctx, fresh, rate, ctx.standalone.poster);
          ctx.delivered.push(...fresh);
          const standalone = { ...pacedSummary(rate, alone.out), breakdown: alone.breakdown };
          ctx.results.events.at50Standalone = standalone;
          log(`   → p50 ${standalone.p50} ms, p99 ${standalone.p99} ms, errors ${standalone.errors} (others ${alone.cpu.others} cores)`);
          for (const line of breakdownLines(alone.breakdown)) log(line);
          // The same offered load as bare Temporal calls: what the server's own latency allows.
          const signal = await pacedBare(ctx, rate, n, false);
          const describeSignal = await pacedBare(ctx, rate, n, true);
          ctx.results.events.bareAt50 = { signal, describeSignal };
        }
      }
    },
  };
}

/** Paced signed Delivery posts to `lcs` at `rate`, with the latency breakdown (see {@link latencyBreakdown}). */
async function pacedPosts(ctx: Ctx, lcs: readonly SentLifecycle[], rate: number, poster = ctx.poster): Promise<{ out: Awaited<ReturnType<typeof paced>>; cpu: CpuShare; breakdown: LatencyBreakdown }> {
  const posts = lcs.map((lc) => signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', lc));
  const timings: Record<string, number>[] = [];
  const server0 = await ctx.serverLatency?.scrape();
  const c0 = cpuSnap(ctx);
  const pauses = processPauses();
  const out = await paced(posts.length, rate, (i) => postOk(ctx, posts[i]!.body, posts[i]!.headers, timings, i, poster));
  const seen = pauses.stop();
  const cpu = cpuShare(c0, cpuSnap(ctx));
  const server1 = await ctx.serverLatency?.scrape();
  const breakdown = latencyBreakdown(out, timings, seen);
  if (server0 && server1) breakdown.server = ServerLatency.between(server0, server1, ['DescribeWorkflowExecution', 'SignalWorkflowExecution', 'persistence:UpdateWorkflowExecution', 'persistence:GetWorkflowExecution']);
  return { out, cpu, breakdown };
}

/**
 * Paced bare calls at `rate` to fresh baseline workflows (started untimed, waiting for their
 * signal): a signal each, or a describe then a signal (the webhook's calls for a lifecycle's first
 * event, without HTTP and verification). Latency from the scheduled start, as for the posts.
 */
async function pacedBare(ctx: Ctx, rate: number, n: number, withDescribe: boolean): Promise<PacedResult> {
  const what = withDescribe ? 'describe + signal' : 'signal';
  const res = await measured(ctx, `bare ${what} paced`, async (attempt) => {
    const ids = Array.from({ length: n }, (_, i) => `bench-${RUN}-paced-${withDescribe ? 'd' : 's'}a${attempt}-${i}`);
    const act0 = (await ctx.baseWorker.stats()).activities;
    await pool(n, P.concurrency, (i) => ctx.client.workflow.start('benchBaseline', { workflowId: ids[i]!, taskQueue: BASELINE_TQ }));
    await waitUntil('baseline activities', async () => (await ctx.baseWorker.stats()).activities - act0 >= n, 300_000, 20);
    await settle(ctx);
    const payload = 'x'.repeat(600);
    const server0 = await ctx.serverLatency?.scrape();
    const c0 = cpuSnap(ctx);
    const out = await paced(n, rate, async (i) => {
      const h = ctx.client.workflow.getHandle(ids[i]!);
      if (withDescribe) await h.describe();
      await h.signal('benchSignal', payload);
    });
    const cpu = cpuShare(c0, cpuSnap(ctx));
    const server1 = await ctx.serverLatency?.scrape();
    return { out, cpu, server: server0 && server1 ? ServerLatency.between(server0, server1, ['DescribeWorkflowExecution', 'SignalWorkflowExecution']) : undefined };
  });
  const s = pacedSummary(rate, res.out);
  const server = Object.entries(res.server ?? {}).map(([op, v]) => `${op} ${v.p50}/${v.p99}`);
  log(`   bare ${what} paced at ${round(rate)}/s: p50 ${s.p50} ms, p99 ${s.p99} ms, errors ${s.errors}${server.length ? `; Temporal frontend p50/p99 ms: ${server.join(', ')}` : ''} (others ${res.cpu.others} cores)`);
  return s;
}

async function benchE2e(ctx: Ctx): Promise<void> {
  log(`4. end-to-end: ${P.e2eSamples} sequential Delivery posts → status query shows delivered`);
  const lcs = await freshSilent(ctx, P.e2eSamples, 'x');
  const samples: number[] = [];
  const postMs: number[] = [];
  for (const lc of lcs) {
    const p = signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', lc);
    const handle = ctx.client.workflow.getHandle(lc.lifecycleId);
    const t0 = performance.now();
    await postOk(ctx, p.body, p.headers);
    const accepted = performance.now();
    for (;;) {
      const s = await handle.query(statusQuery);
      if (s.recipients[0]?.status === 'delivered') break;
      if (performance.now() - accepted > 30_000) throw new Error(`${lc.lifecycleId} not delivered after 30 s`);
      await sleep(1);
    }
    samples.push(performance.now() - accepted);
    postMs.push(accepted - t0);
  }
  ctx.delivered.push(...lcs);
  ctx.results.e2e = {
    samples: samples.map((x) => round(x, 2)),
    postMs: postMs.map((x) => round(x, 2)),
    p50: round(percentile(samples, 50), 2),
    p99: round(percentile(samples, 99), 2),
    max: round(Math.max(...samples), 2),
    postP50: round(percentile(postMs, 50), 2),
  };
  log(`   → p50 ${ctx.results.e2e.p50} ms, p99 ${ctx.results.e2e.p99} ms (post itself p50 ${ctx.results.e2e.postP50} ms)`);
}

// ------------------------------------------------------------------------------------------------
// 8. The homegrown peer (bench/peer.ts): verify + one PostgreSQL UPSERT per event
// ------------------------------------------------------------------------------------------------

async function benchPeer(ctx: Ctx): Promise<void> {
  log(`8. homegrown peer: Fastify + SNS verification + one PostgreSQL UPSERT per event; ${P.rounds} × ${P.n} Delivery posts, concurrency ${P.concurrency}, then paced`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-peer-'));
  chmodSync(root, 0o755); // the postgres user (when we are root) must reach its folder inside
  let pg: Postgres | undefined;
  let peer: Peer | undefined;
  try {
    pg = await startPostgres(path.join(root, 'pg'));
    const pgPids = pg.dataDir;
    peer = await startPeer({ pg: { port: pg.port, user: PG_USER, password: PG_PASSWORD }, verifier: sandboxVerifier(ctx.sandbox), allowedTopicArns: [ctx.topicArn] });
    const peerPoster = new Poster(peer.url, P.concurrency);
    const fake = (tag: string, i: number): SentLifecycle => ({ lifecycleId: `peer-${RUN}-${tag}-${i}`, sesMessageId: `0100peer${RUN}${tag}x${i}`, recipient: `p${i}@example.com` });
    const peerCpu = (): number => postgresPids(pgPids).reduce((a, p) => a + (procCpuSeconds(p) ?? 0), 0);
    const post = async (p: { body: string; headers: Record<string, string> }): Promise<void> => {
      const r = await peerPoster.post(p.body, p.headers);
      if (r.status !== 200) throw new Error(`peer answered ${r.status}: ${r.text.slice(0, 200)}`);
    };
    // Warm-up: the certificate fetch and the pool's connections.
    await pool(50, 10, (i) => post(signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', fake('w', i))));
    const rounds: { n: number; ms: number; ok: number; otherCores: number; postgresCores: number; benchCores: number }[] = [];
    for (let r = 0; r < P.rounds; r++) {
      const posts = Array.from({ length: P.n }, (_, i) => signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', fake(`r${r}`, i)));
      await settle(ctx);
      const c0 = cpuSnap(ctx);
      const pg0 = peerCpu();
      const t0 = performance.now();
      let ok = 0;
      await pool(posts.length, P.concurrency, async (i) => {
        await post(posts[i]!);
        ok++;
      });
      const ms = performance.now() - t0;
      const share = cpuShare(c0, cpuSnap(ctx));
      const postgresCores = round((peerCpu() - pg0) / share.wallSec, 2);
      rounds.push({ n: posts.length, ms: round(ms), ok, otherCores: round(Math.max(0, share.others - postgresCores), 2), postgresCores, benchCores: share.bench });
      log(`   round ${r + 1}: ${round((ok * 1000) / ms)} events/s (answered = row written; bench process ${share.bench} cores, PostgreSQL ${postgresCores} cores, others ${rounds.at(-1)!.otherCores} cores)`);
    }
    const eventsPerSec = round(median(rounds.map((x) => (x.ok * 1000) / x.ms)), 1);
    const pacedAt = async (rate: number, tag: string): Promise<PacedResult> => {
      const n = Math.max(20, Math.round(rate * P.pacedSec));
      const posts = Array.from({ length: n }, (_, i) => signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', fake(tag, i)));
      await settle(ctx);
      const out = await paced(n, rate, (i) => post(posts[i]!));
      const s = pacedSummary(rate, out);
      log(`   paced ${round(rate)} events/s (${tag}): p50 ${s.p50} ms, p99 ${s.p99} ms, errors ${s.errors}`);
      return s;
    };
    const at50 = await pacedAt(eventsPerSec * 0.5, 'half');
    // The product's half-load rate, for latency at the same offered load.
    const productRate = ctx.results.events?.at50?.offeredRate;
    const atProductRate = productRate ? await pacedAt(productRate, 'product50') : undefined;
    const counts = await peer.counts();
    peerPoster.close();
    // Answered 200 = row written: every event posted is one row (distinct message ids).
    const posted = 50 + rounds.reduce((a, x) => a + x.ok, 0) + at50.n + (atProductRate?.n ?? 0);
    if (counts.rows !== posted || counts.events !== posted) throw new Error(`peer: ${posted} events answered 200 but ${counts.rows} rows / ${counts.events} events in PostgreSQL`);
    ctx.results.peer = { rounds, eventsPerSec, at50, ...(atProductRate ? { atProductRate } : {}), rows: counts.rows, rowEvents: counts.events, poolSize: 10 };
    log(`   → ${eventsPerSec} events/s; ${counts.rows} rows hold ${counts.events} events`);
  } catch (err) {
    ctx.results.notes.push(`homegrown peer not measured: ${err instanceof Error ? err.message : String(err)}`);
    log(`   peer not measured: ${String(err)}`);
  } finally {
    await peer?.close().catch(() => undefined);
    await pg?.dispose().catch(() => undefined);
    forgetOnExit('postgres');
    rmSync(root, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------
// 5. Cost per email
// ------------------------------------------------------------------------------------------------

async function benchCost(ctx: Ctx, baselineId: string | undefined): Promise<void> {
  log(`5. cost per email: happy, bounce, delay-then-delivery × ${P.costRepeats} (short policy durations)`);
  const paths = [
    { name: 'happy', recipient: (i: number) => labelled('success', 'simulator.amazonses.com', `c${RUN}h${i}`) },
    { name: 'bounce', recipient: (i: number) => labelled('bounce', 'simulator.amazonses.com', `c${RUN}b${i}`) },
    { name: 'delay-then-delivery', recipient: (i: number) => labelled('delay', 'sandbox.ses-lifecycle.test', `c${RUN}d${i}`) },
  ];
  // Production shape with short durations: one timer serves deadline and complaint window.
  const policy = { deliveryDeadline: '6s', complaintWindow: '2s', resendBackoff: '1s' };
  const started = await Promise.all(
    paths.flatMap((p) =>
      Array.from({ length: P.costRepeats }, async (_, i) => ({
        path: p.name,
        recipient: p.recipient(i),
        email: await ctx.stack.lc.sendTracked({ from: FROM, to: [p.recipient(i)], subject: `bench cost ${p.name}`, text: 'benchmark', policy }),
      })),
    ),
  );
  const finals = await Promise.all(started.map(async (s) => ({ ...s, final: await s.email.result() })));
  const out: CostPath[] = [];
  for (const p of paths) {
    const samples: CostSample[] = [];
    for (const f of finals.filter((x) => x.path === p.name)) {
      const c = await historyCost(ctx.client, f.email.id);
      c.finalStatus = f.final.status;
      samples.push(c);
    }
    const sorted = [...samples].sort((a, b) => a.actions - b.actions || a.historyEvents - b.historyEvents);
    const med = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const actions = median(samples.map((s) => s.actions));
    out.push({
      name: p.name,
      recipient: p.recipient(0),
      samples,
      historyEvents: median(samples.map((s) => s.historyEvents)),
      actions,
      usdPerMillion: round(actions * USD_PER_MILLION_ACTIONS, 2),
      median: med,
    });
    log(`   ${p.name}: ${samples.map((s) => `${s.historyEvents} events/${s.actions} actions (${s.finalStatus})`).join(', ')}`);
  }
  const baseline = baselineId ? await historyCost(ctx.client, baselineId) : undefined;
  ctx.results.cost = {
    paths: out,
    ...(baseline ? { baseline: { ...baseline, usdPerMillion: round(baseline.actions * USD_PER_MILLION_ACTIONS, 2) } } : {}),
    rule: COST_RULE,
    usdPerMillionActions: USD_PER_MILLION_ACTIONS,
  };
}

// ------------------------------------------------------------------------------------------------
// 6. Scale
// ------------------------------------------------------------------------------------------------


async function scalePoint(ctx: Ctx, gc: boolean): Promise<ScalePoint> {
  const [open, st] = await Promise.all([countRunning(ctx.client, RUNNING_LIFECYCLES), ctx.lcWorker.stats(gc)]);
  return {
    open,
    workerRss: procRss(ctx.lcWorker.pid) ?? st.rss,
    workerHeapUsed: st.heapUsed,
    cachedWorkflows: st.numCachedWorkflows,
    devServerRss: ctx.server.rss(),
    benchRss: process.memoryUsage().rss,
  };
}

/** Open-loop Open events at `rate`/s to random lifecycles among `targets`. */
async function scaleLatency(ctx: Ctx, targets: SentLifecycle[], rate: number): Promise<PacedResult> {
  const n = Math.round(rate * P.pacedSec);
  const posts = Array.from({ length: n }, () => signedEvent(ctx.sandbox, ctx.topicArn, 'Open', targets[Math.floor(Math.random() * targets.length)]!));
  const res = await paced(n, rate, (i) => postOk(ctx, posts[i]!.body, posts[i]!.headers));
  return pacedSummary(rate, res);
}

/** Scale, part 1: 100 open lifecycles, each delivered (a Delivery posted), waiting in its complaint window. */
async function scaleLow(ctx: Ctx): Promise<ScalePoint> {
  log(`6a. scale: ${P.scaleLow} open lifecycles (silent send + one posted Delivery → complaint window)`);
  const targets = await createLifecycles(ctx, P.scaleLow, (i) => labelled('silent', 'sandbox.ses-lifecycle.test', `l${RUN}i${i}`));
  await pool(targets.length, 10, (i) => {
    const p = signedEvent(ctx.sandbox, ctx.topicArn, 'Delivery', targets[i]!);
    return postOk(ctx, p.body, p.headers);
  });
  ctx.delivered.push(...targets);
  await settle(ctx);
  const point = await probeAndMeasure(ctx, targets);
  log(`   open ${point.open}: worker RSS ${round(point.workerRss / MB)} MB, heap ${round(point.workerHeapUsed / MB)} MB, cached ${point.cachedWorkflows}, dev server ${round(point.devServerRss / MB)} MB; latency p50 ${point.p50} / p99 ${point.p99} ms`);
  return point;
}

/** Webhook latency probe (Open events at P.scaleRate to random delivered lifecycles), then memory after a settle. */
async function probeAndMeasure(ctx: Ctx, targets: SentLifecycle[]): Promise<ScalePoint> {
  const p = await scaleLatency(ctx, targets, P.scaleRate);
  await settle(ctx);
  const point = await scalePoint(ctx, true);
  return Object.assign(point, { p50: p.p50, p99: p.p99, paced: p });
}

/** Scale, part 2: fill up to P.scaleOpen open lifecycles and measure again. */
async function scaleHigh(ctx: Ctx, low: ScalePoint): Promise<void> {
  const timeline: ScalePoint[] = [low];
  let open = await countRunning(ctx.client, RUNNING_LIFECYCLES);
  timeline.push(await scalePoint(ctx, true));
  const recipient = P.scaleRecipient === 'success' ? (c: number, i: number) => labelled('success', 'simulator.amazonses.com', `f${RUN}c${c}i${i}`) : (c: number, i: number) => labelled('silent', 'sandbox.ses-lifecycle.test', `f${RUN}c${c}i${i}`);
  log(`6b. scale: filling from ${open} to ${P.scaleOpen} open lifecycles (${P.scaleRecipient} recipients)`);
  const fillIds = new Set<string>();
  const t0 = performance.now();
  const c0 = cpuSnap(ctx);
  let chunkNo = 0;
  while (open < P.scaleOpen) {
    const n = Math.min(P.scaleChunk, P.scaleOpen - open);
    const c = chunkNo++;
    await pool(n, P.concurrency, async (i) => {
      const email = await ctx.stack.lc.sendTracked({ from: FROM, to: [recipient(c, i)], subject: `bench scale ${i}`, text: 'benchmark' });
      fillIds.add(email.id);
    });
    const pt = await scalePoint(ctx, false);
    timeline.push(pt);
    open = pt.open;
    log(`   open ${open}: worker RSS ${round(pt.workerRss / MB)} MB, heap ${round(pt.workerHeapUsed / MB)} MB, cached ${pt.cachedWorkflows}, dev server ${round(pt.devServerRss / MB)} MB`);
  }
  // Every SendEmail accepted (and, for success@ recipients, every Send/Delivery notification delivered).
  await waitForCount('all fill sends accepted', () => acceptedFor(ctx.sandbox, fillIds).size, fillIds.size, 900_000, 2_000, 30_000);
  await ctx.sandbox.waitForIdle(900_000);
  await settle(ctx, 300_000);
  const fillMs = performance.now() - t0;
  addCpu(ctx, 'scale fill', [cpuShare(c0, cpuSnap(ctx))]);
  const high = await probeAndMeasure(ctx, ctx.delivered);
  timeline.push(high);
  log(`   open ${high.open}: worker RSS ${round(high.workerRss / MB)} MB, heap ${round(high.workerHeapUsed / MB)} MB, cached ${high.cachedWorkflows}, dev server ${round(high.devServerRss / MB)} MB; latency p50 ${high.p50} / p99 ${high.p99} ms`);
  const cacheFull = timeline.find((x) => x.cachedWorkflows >= P.cache);
  ctx.results.scale = {
    maxCachedWorkflows: P.cache,
    latencyRate: P.scaleRate,
    low,
    high,
    ...(cacheFull ? { cacheFull } : {}),
    timeline,
    fillMs: round(fillMs),
    fillRecipients:
      P.scaleRecipient === 'success'
        ? 'success@simulator.amazonses.com (+label): Send + Delivery through the sandbox SNS → webhook, then open in the 48 h complaint window'
        : 'silent@sandbox.ses-lifecycle.test (+label): sent, no events, open with its 72 h delivery-deadline timer; the latency probe targets the ' +
          `${ctx.delivered.length} delivered lifecycles (complaint window) spread over the whole set`,
    probeTargets: ctx.delivered.length,
  };
}

// ------------------------------------------------------------------------------------------------
// Main
// ------------------------------------------------------------------------------------------------

function evaluateTargets(r: BenchResults): void {
  const t = r.targets;
  if (r.baseline && r.sends) {
    t.sendsRatio = round(r.sends.sentPerSec / r.baseline.startsPerSec, 3);
    t.sendsMet = t.sendsRatio >= 0.8;
  }
  if (r.baseline && r.events) {
    // Sustained: events processed per second vs baseline signals processed (signal → completed).
    t.eventsRatio = round(r.events.processedPerSec / r.baseline.signalToCompletePerSec, 3);
    t.eventsMet = t.eventsRatio >= 0.9;
    // Burst: posts answered 200 per second vs baseline signal calls accepted per second.
    t.eventsAcceptedRatio = round(r.events.eventsPerSec / r.baseline.signalsPerSec, 3);
    t.eventsAcceptedMet = t.eventsAcceptedRatio >= 0.9;
  }
  if (r.events?.at50) t.p99At50Met = r.events.at50.p99 < 50 && r.events.at50.errors === 0;
  const happy = r.cost?.paths.find((p) => p.name === 'happy');
  if (happy) t.happyEventsMet = happy.historyEvents <= 25;
  if (r.scale) {
    // "Flat": the worker's RSS at the high point is within 10% of the low point.
    t.workerRssGrowth = round(r.scale.high.workerRss / r.scale.low.workerRss - 1, 3);
    t.workerRssFlatMet = t.workerRssGrowth <= 0.1;
    // "Bounded by the cache": from the first point with a full cache to the high point, within 10%.
    // Only meaningful when the cache filled well before the high point.
    if (r.scale.cacheFull && r.scale.cacheFull.open <= r.scale.high.open / 2) {
      t.workerRssGrowthAfterCacheFull = round(r.scale.high.workerRss / r.scale.cacheFull.workerRss - 1, 3);
      t.workerRssBoundedMet = t.workerRssGrowthAfterCacheFull <= 0.1;
    }
  }
}

async function bundle(file: string, dir: string, name: string): Promise<string> {
  const t0 = performance.now();
  const { code } = await bundleWorkflowCode({ workflowsPath: file, logger: new DefaultLogger('WARN') });
  const out = path.join(dir, `${name}.js`);
  writeFileSync(out, code);
  log(`   bundled ${name} in ${round((performance.now() - t0) / 1000)} s`);
  return out;
}

async function main(): Promise<void> {
  // The AWS SDK's 8-line Node-version banner (Node 20 is supported); worker children inherit it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const mdFrom = str('md-from', '');
  if (mdFrom !== '') {
    // Re-render BENCHMARKS.md from a saved raw results file (no measurement).
    const saved = JSON.parse(readFileSync(mdFrom, 'utf8')) as BenchResults;
    const { loadExtras, writeBenchmarksMd } = await import('./markdown');
    writeBenchmarksMd(path.join(ROOT, 'BENCHMARKS.md'), saved, path.relative(ROOT, path.resolve(mdFrom)), loadExtras(str('md-extra', ''), ROOT));
    log(`wrote BENCHMARKS.md from ${mdFrom}`);
    return;
  }
  const startedAt = new Date();
  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  const dataDir = mkdtempSync(path.join(P.dataRoot, 'ses-lifecycle-bench-'));
  const cli = await resolveTemporalCli({ allowSdkDownload: false });
  const results: BenchResults = {
    meta: { startedAt: startedAt.toISOString(), command, mode: QUICK ? 'quick' : 'full', temporal: TEMPORAL, params: { ...P }, machine: machine(cli.version) },
    cpu: {},
    timings: {},
    contention: [],
    targets: {},
    notes: [],
  };
  let stack: RunningStack | undefined;
  let cluster: Cluster | undefined;
  const children: (WorkerChild | WebhookChild)[] = [];
  let poster: Poster | undefined;
  let standalonePoster: Poster | undefined;
  let profiler: ServerProfiler | undefined;
  let serverLatency: ServerLatency | undefined;
  let cleaned = false;
  let failure: Error | undefined;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    poster?.close();
    standalonePoster?.close();
    await Promise.all(children.map((c) => c.stop().catch(() => undefined)));
    await stack?.stop().catch((err: unknown) => log(`stop failed: ${String(err)}`));
    await cluster?.stop().catch((err: unknown) => log(`cluster stop failed: ${String(err)}`));
    if (!flag('keep-data')) rmSync(dataDir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    log(`mode ${results.meta.mode}; data dir ${dataDir}; temporal CLI ${cli.version ?? '?'} (${cli.source})`);
    log('bundling workflow code (product + baseline)');
    const bundleDir = path.join(dataDir, 'bundles');
    mkdirSync(bundleDir, { recursive: true });
    const lcBundle = await bundle(WORKFLOWS_PATH, bundleDir, 'lifecycle');
    const baseBundle = await bundle(path.join(__dirname, 'workflows.ts'), bundleDir, 'baseline');

    // The embedded stack on free ports (TEMPORAL_PORT=0 would be passed to the CLI verbatim, so
    // the gRPC and UI ports are picked here; webhook and sandbox bind port 0 themselves).
    const [temporalPort, uiPort] = await freePorts(2);
    const config = loadConfig({
      DATA_DIR: dataDir,
      TEMPORAL_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      WEBHOOK_PORT: '0',
      // Each answer says where its time went (bench/load.ts reads it for the latency breakdown).
      WEBHOOK_SERVER_TIMING: 'true',
      SANDBOX_PORT: '0',
      SANDBOX_HTTPS_PORT: '0',
      SES_PACE_TO_SEND_RATE: 'false',
      LOG_LEVEL: 'warn',
    });
    let external: { address: string; namespace: string } | undefined;
    if (TEMPORAL === 'cluster') {
      if (SERVER_PROFILE) {
        // The server's config reads the pprof port from the environment (deploy/temporal/config).
        const [pprofPort] = await freePorts(1);
        process.env.TEMPORAL_PPROF_PORT = String(pprofPort);
        profiler = new ServerProfiler(pprofPort!);
        mkdirSync(path.join(ROOT, 'bench-results'), { recursive: true });
      }
      // The server's Prometheus endpoint (its own latency histograms for the latency breakdown).
      const [promPort] = await freePorts(1);
      process.env.PROMETHEUS_ENDPOINT = `127.0.0.1:${promPort}`;
      serverLatency = new ServerLatency(`http://127.0.0.1:${promPort}/metrics`);
      log('starting the cluster: PostgreSQL, Temporal schemas, Temporal server (test/cluster/cluster.ts)');
      cluster = await startCluster();
      results.meta.cluster = { serverVersion: cluster.build.version, timings: cluster.timings };
      // The namespace and search attributes through the product's own setup code.
      const conn = await Connection.connect({ address: cluster.temporal.address });
      try {
        const c = new TemporalClient({ connection: conn, namespace: config.temporal.namespace });
        await ensureNamespace(c, config.temporal.namespace);
        await ensureSearchAttributes(c, config.temporal.namespace);
      } finally {
        await conn.close();
      }
      external = { address: cluster.temporal.address, namespace: config.temporal.namespace };
      profiler?.start();
    }
    log(`starting the stack (${external ? `Temporal server on PostgreSQL at ${external.address}` : 'dev server'}, sandbox, webhook)`);
    stack = await startStack({
      ...(external ? { temporal: external } : {}),
      config,
      // Events the sandbox publishes itself (cost paths) come 1 s apart, closer to real SES than
      // the 50 ms default, so Send and Delivery land in separate workflow tasks as in production.
      sandbox: { maxSendRate: 100_000, max24HourSend: 100_000_000, eventDelayMs: P.eventDelayMs },
      withoutWorker: true,
      logger: pino({ level: 'warn' }),
    });
    if (!stack.sandbox || !stack.topicArn) throw new Error('stack has no sandbox');
    log(`   Temporal ${stack.temporalAddress} (pid ${stack.devServer?.pid ?? cluster?.temporal.pid}), webhook ${stack.webhookUrl}`);
    const cl = cluster;
    const devPid = stack.devServer?.pid ?? -1;
    const server: ServerProcs = cl
      ? {
          cpuSeconds: () => [cl.temporal.pid, ...postgresPids(cl.postgres.dataDir)].reduce((a, p) => a + (procCpuSeconds(p) ?? 0), 0),
          // The server's RSS plus PostgreSQL's proportional set size (its backends share memory).
          rss: () => (procRss(cl.temporal.pid) ?? 0) + postgresPids(cl.postgres.dataDir).reduce((a, p) => a + procPss(p), 0),
        }
      : { cpuSeconds: () => procCpuSeconds(devPid) ?? 0, rss: () => procRss(devPid) ?? 0 };

    log('starting workers in child processes');
    const common = { address: stack.temporalAddress, namespace: stack.namespace, maxCachedWorkflows: P.cache };
    const [lcWorker, baseWorker] = await Promise.all([
      startWorkerChild({
        ...common,
        kind: 'lifecycle',
        taskQueue: stack.taskQueue,
        bundlePath: lcBundle,
        ses: { endpoint: stack.sandbox.endpoint, region: stack.sandbox.region, credentials: stack.sandbox.credentials },
        configurationSetName: config.aws.configurationSetName,
      }),
      startWorkerChild({ ...common, kind: 'baseline', taskQueue: BASELINE_TQ, bundlePath: baseBundle }),
    ]);
    children.push(lcWorker, baseWorker);
    poster = new Poster(stack.webhookUrl, P.concurrency);
    // The webhook once more as its own process (`ses-lifecycle webhook`, as deployments run it),
    // trusting the sandbox's signer through the product's own SNS_SIGNER_* settings: latency at
    // half load is measured there too, away from this process's heap (load generator, sandbox).
    const caPath = path.join(dataDir, 'sandbox-ca.pem');
    writeFileSync(caPath, stack.sandbox.caCertPem);
    const [hookPort, hookMetricsPort] = await freePorts(2);
    const standalone = await startWebhookChild({
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_NAMESPACE: stack.namespace,
      TEMPORAL_TASK_QUEUE: stack.taskQueue,
      SNS_ALLOWED_TOPIC_ARNS: stack.topicArn,
      SNS_SIGNER_CA_PATH: caPath,
      SNS_SIGNER_CERT_HOST_PATTERN: stack.sandbox.certHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: String(hookPort),
      WEBHOOK_METRICS_PORT: String(hookMetricsPort),
      WEBHOOK_SERVER_TIMING: 'true',
      LOG_LEVEL: 'warn',
    });
    children.push(standalone);
    standalonePoster = new Poster(standalone.url, P.concurrency);
    const ctx: Ctx = {
      stack,
      sandbox: stack.sandbox,
      topicArn: stack.topicArn,
      client: stack.client,
      lcWorker,
      baseWorker,
      poster,
      standalone: { pid: standalone.pid, poster: standalonePoster },
      results,
      delivered: [],
      baselineIds: [],
      server,
      ...(profiler ? { profiler } : {}),
      ...(serverLatency ? { serverLatency } : {}),
    };

    await benchVerify(ctx);
    const low = await scaleLow(ctx);
    // Interleaved, each round in a rotated order: measured one after the other, the later
    // measurements met a server with more open workflows and a larger database than the
    // baseline did (the events rate fell round by round on the cluster, the baseline's did not).
    const phases = [baselinePhase(ctx), sendsPhase(ctx), eventsPhase(ctx)];
    for (const ph of phases) log(ph.title);
    for (let r = 0; r < P.rounds; r++) {
      for (let k = 0; k < phases.length; k++) {
        const ph = phases[(k + r) % phases.length]!;
        log(`   round ${r + 1}: ${ph.title.split(':')[0]}`);
        await ph.round(r);
      }
    }
    for (const ph of phases) await ph.finish();
    await benchCost(ctx, ctx.baselineIds[0]);
    await benchE2e(ctx);
    if (!flag('no-peer')) await benchPeer(ctx);
    await scaleHigh(ctx, low);
    if (ctx.profiler) {
      log('server profiles: merging the pprof slices per measurement');
      results.serverProfile = await ctx.profiler.finish(path.join(ROOT, 'bench-results', startedAt.toISOString().replace(/[:.]/g, '-')));
    }
  } catch (err) {
    // Keep what was measured: the raw file and the table are written anyway, then the run fails.
    failure = err instanceof Error ? err : new Error(String(err));
    results.error = failure.stack ?? failure.message;
    log(`FAILED: ${failure.message}`);
  } finally {
    const devPid = stack?.devServer?.pid ?? cluster?.temporal.pid;
    const childPids = children.map((c) => c.pid);
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const gone = (pid: number | undefined) => pid === undefined || !existsSync(`/proc/${pid}`);
    results.cleanup = { devServerGone: gone(devPid), workersGone: childPids.every(gone) };
    log(`cleanup: dev server gone ${results.cleanup.devServerGone}, workers gone ${results.cleanup.workersGone}`);
  }

  evaluateTargets(results);
  results.stragglers = stragglers;
  results.meta.finishedAt = new Date().toISOString();
  results.meta.machine.loadAvgAtEnd = os.loadavg().map((x) => round(x, 2));
  results.meta.machine.uptimeAtEnd = sh('uptime', []);
  results.meta.durationSec = round((Date.now() - startedAt.getTime()) / 1000, 1);
  results.notes.push(
    'All processes share this machine: the dev server, both workers, the webhook, the sandbox and the load generator compete for the same cores.',
    'Logging at warn (the webhook logs each routed event at info in production).',
  );

  const outDir = path.join(ROOT, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);

  const table = resultsTable(results);
  if (results.serverProfile) process.stdout.write(`\n${serverProfileTable(results.serverProfile).join('\n')}\n`);
  process.stdout.write(`\n${table}\n\nCPU (cores busy, median over rounds):\n\n${cpuTable(results)}\n\nWhere the time goes (server timestamps from histories):\n\n${timingsTable(results)}\n\nCost detail:\n\n${costTable(results)}\n\nScale timeline:\n\n${scaleTable(results)}\n\nMeasurements disturbed by other processes: ${results.contention.length ? results.contention.map((c) => `${c.label} (attempt ${c.attempt}: ${c.otherCores} cores)`).join('; ') : 'none'}\n\nraw: ${path.relative(ROOT, outFile)} (${results.meta.durationSec} s)\n`);
  if (failure) throw failure;
  if (flag('write-md')) {
    const { loadExtras, writeBenchmarksMd } = await import('./markdown');
    writeBenchmarksMd(path.join(ROOT, 'BENCHMARKS.md'), results, path.relative(ROOT, outFile), loadExtras(str('md-extra', ''), ROOT));
    log('wrote BENCHMARKS.md');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
