/**
 * Shape of the raw results written to bench-results/<timestamp>.json.
 */

/** Cores busy per process over a phase (CPU seconds / wall seconds). */
export interface CpuShare {
  /** Epoch ms of the measurement's start and end. */
  at?: [number, number];
  bench: number;
  worker: number;
  baselineWorker: number;
  devServer: number;
  /** Everything else on the machine (other users' processes, kernel). */
  others: number;
  wallSec: number;
  /** CPU milliseconds per item (workflow, event) per process. */
  msPerItem?: { bench: number; worker: number; baselineWorker: number; devServer: number; items: number };
}

export interface BaselineRound {
  n: number;
  /** All start calls returned. */
  startCallsMs: number;
  /** From the first start until every no-op activity ran. */
  startedAndActivityMs: number;
  /** All signal calls returned (server accepted). */
  signalCallsMs: number;
  /** From the first signal until no baseline workflow runs. */
  signalToAllCompletedMs: number;
}

export interface SendsRound {
  n: number;
  /** All sendTracked() calls returned. */
  sendTrackedCallsMs: number;
  /** From the first sendTracked() until the sandbox accepted every SendEmail. */
  allSentMs: number;
}

export interface EventsRound {
  n: number;
  /** All posts answered. */
  ms: number;
  /** From the first post until every signalled lifecycle shows EmailStatus=delivered in visibility. */
  processedMs: number;
  ok: number;
  failed: number;
  statuses: Record<string, number>;
}

export interface PacedResult {
  offeredRate: number;
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  achievedRate: number;
  maxSendLagMs: number;
  /** Where the time went (product webhook posts only: read from each answer's Server-Timing). */
  breakdown?: LatencyBreakdown;
}

/** ms statistics of one stage over the posts that ran it. */
export interface StageStats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Where the time of paced webhook posts went: the webhook's `Server-Timing` of each answer
 * (handler, verify, lookup, describe, signal), `outside` = the client's latency minus the
 * handler (HTTP, socket queueing, the event loop of the process), and that process's event-loop
 * delay during the phase.
 */
export interface LatencyBreakdown {
  stages: Record<string, StageStats>;
  /** The slowest 1% of posts (at least 3): mean ms per part, and when they were scheduled. */
  slowest: {
    n: number;
    latency: number;
    handler: number;
    outside: number;
    verify: number;
    describe: number;
    signal: number;
    /** Distinct 250-ms windows of the phase the slowest posts were scheduled in (few = a pause). */
    windows: number;
    /** Their scheduled times, s from the phase start. */
    scheduledSec: number[];
    /** How many of them overlapped a garbage collection of the bench process, and the mean GC ms inside them. */
    withGc: number;
    gcMs: number;
  };
  /** Garbage collections of the bench process during the phase (count, major ones, longest, total ms). */
  gc: { count: number; major: number; maxMs: number; totalMs: number };
  /** The Temporal server's own frontend latency per operation in the phase (cluster only; bucket-interpolated), ms. */
  server?: Record<string, { n: number; p50: number; p99: number }>;
  /** Event-loop delay of the bench process (webhook, sandbox, load generator), ms. */
  eventLoop: { p50: number; p99: number; max: number };
}

export interface CostSample {
  lifecycleId: string;
  historyEvents: number;
  actions: number;
  actionBreakdown: Record<string, number>;
  eventTypes: Record<string, number>;
  finalStatus?: string;
}

export interface CostPath {
  name: string;
  recipient: string;
  samples: CostSample[];
  /** Medians over samples. */
  historyEvents: number;
  actions: number;
  usdPerMillion: number;
  median: CostSample;
}

export interface ScalePoint {
  open: number;
  workerRss: number;
  workerHeapUsed: number;
  cachedWorkflows: number;
  devServerRss: number;
  benchRss: number;
  p50?: number;
  p99?: number;
  paced?: PacedResult;
}

export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt?: string;
    command: string;
    mode: 'quick' | 'full';
    /** Which Temporal server: the embedded dev server (SQLite) or the cluster (server on PostgreSQL). Absent: dev. */
    temporal?: string;
    cluster?: { serverVersion: string; timings: Record<string, number> };
    params: Record<string, unknown>;
    machine: Record<string, unknown>;
    durationSec?: number;
  };
  /** `--server-profile`: Go pprof of the cluster's Temporal server per measurement. */
  serverProfile?: Record<string, import('./server-profile').ServerProfileResult>;
  verify?: { v2PerSec: number; v1PerSec: number; rawCryptoPerSec: number; rounds: { v2: number[]; v1: number[] } };
  baseline?: { rounds: BaselineRound[]; startsPerSec: number; clientStartsPerSec: number; signalsPerSec: number; cyclesPerSec: number; signalToCompletePerSec: number };
  sends?: { rounds: SendsRound[]; sentPerSec: number; callsPerSec: number };
  events?: {
    rounds: EventsRound[];
    eventsPerSec: number;
    processedPerSec: number;
    at50?: PacedResult;
    at90?: PacedResult;
    /** A second Delivery to the lifecycles of `at50`, at its rate: their type is cached, no describe. */
    at50Cached?: PacedResult;
    /** First events at the `at50` rate to the webhook running as its own process (`ses-lifecycle webhook`). */
    at50Standalone?: PacedResult;
    /**
     * Bare Temporal at the half-load rate, from a plain client to baseline workflows: one signal
     * per item, and the webhook's two calls (describe, then signal) without HTTP or verification.
     */
    bareAt50?: { signal: PacedResult; describeSignal: PacedResult };
  };
  /** The homegrown peer (bench/peer.ts): verify + one PostgreSQL UPSERT per event; answered = row written. */
  peer?: {
    rounds: { n: number; ms: number; ok: number; otherCores: number; postgresCores: number; benchCores: number }[];
    eventsPerSec: number;
    at50: PacedResult;
    /** Paced at the product's half-load rate (events.at50.offeredRate). */
    atProductRate?: PacedResult;
    rows: number;
    rowEvents: number;
    poolSize: number;
  };
  e2e?: { samples: number[]; postMs: number[]; p50: number; p99: number; max: number; postP50: number };
  cost?: { paths: CostPath[]; baseline?: CostSample & { usdPerMillion: number }; rule: string; usdPerMillionActions: number };
  scale?: {
    maxCachedWorkflows: number;
    latencyRate: number;
    low: ScalePoint;
    high: ScalePoint;
    /** First measured point with a full workflow cache. */
    cacheFull?: ScalePoint;
    timeline: ScalePoint[];
    fillMs: number;
    fillRecipients: string;
    probeTargets: number;
  };
  cpu: Record<string, CpuShare>;
  /** Phase durations (ms, medians) read from histories of sample workflows. */
  timings: Record<string, Record<string, number>>;
  /** Measurements repeated because other processes on the machine were busy. */
  contention: { label: string; attempt: number; otherCores: number }[];
  targets: {
    sendsRatio?: number;
    sendsMet?: boolean;
    eventsRatio?: number;
    eventsMet?: boolean;
    eventsAcceptedRatio?: number;
    eventsAcceptedMet?: boolean;
    p99At50Met?: boolean;
    happyEventsMet?: boolean;
    workerRssFlatMet?: boolean;
    workerRssGrowth?: number;
    workerRssBoundedMet?: boolean;
    workerRssGrowthAfterCacheFull?: number;
  };
  notes: string[];
  /** Lifecycles/events the harness stopped waiting for (ambiguous sends waiting for a Send event). */
  stragglers?: number;
  /** Set when the run failed part-way (the results up to then are kept). */
  error?: string;
  cleanup?: { devServerGone: boolean; workersGone: boolean };
}
