/**
 * Load generation and statistics: closed-loop pools (saturation), open-loop pacing (latency at a
 * fixed offered rate), percentiles, and a keep-alive HTTP poster (node:http; undici is not a
 * dependency).
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** Median of numbers (NaN for none). */
export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Percentile with linear interpolation between closest ranks (NaN for none). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

/** Rounds to `d` decimals. */
export function round(x: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

/**
 * Runs `fn(0..n-1)` with at most `concurrency` calls in flight (closed loop). Resolves with the
 * elapsed milliseconds; rejects on the first error after in-flight calls settle.
 */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  let failed: unknown;
  const lane = async (): Promise<void> => {
    while (failed === undefined) {
      const i = next++;
      if (i >= n) return;
      try {
        await fn(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  if (failed !== undefined) throw failed instanceof Error ? failed : new Error('a pooled call failed', { cause: failed });
  return performance.now() - t0;
}

/**
 * Open-loop pacing: starts `fn(i)` at `t0 + i / rate` regardless of completions, for `n` calls.
 * Latency is measured from the *scheduled* start (so a late sender does not hide queueing).
 * Returns per-call latencies in ms and how many calls failed.
 */
export async function paced(
  n: number,
  ratePerSec: number,
  fn: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; errors: number; achievedRate: number; maxSendLagMs: number; byIndex: (number | undefined)[]; scheduledMs: number[]; t0: number }> {
  const latencies: number[] = [];
  const byIndex: (number | undefined)[] = new Array<number | undefined>(n).fill(undefined);
  const scheduledMs: number[] = [];
  let errors = 0;
  let maxLag = 0;
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const at = t0 + (i * 1000) / ratePerSec;
    scheduledMs.push(at - t0);
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait);
    maxLag = Math.max(maxLag, performance.now() - at);
    inflight.push(
      fn(i).then(
        () => {
          const ms = performance.now() - at;
          latencies.push(ms);
          byIndex[i] = ms;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = performance.now() - t0;
  return { latencies, errors, achievedRate: (n * 1000) / elapsed, maxSendLagMs: maxLag, byIndex, scheduledMs, t0 };
}

/** A keep-alive HTTP POST client for one URL. */
export class Poster {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(url: string, maxSockets: number) {
    this.url = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  /** POSTs `body`; resolves with status, body text and the `Server-Timing` header (if any). */
  post(body: string, headers: Record<string, string>): Promise<{ status: number; text: string; serverTiming?: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname,
          method: 'POST',
          agent: this.agent,
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          const timing = res.headers['server-timing'];
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(typeof timing === 'string' ? { serverTiming: timing } : {}) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Parses a `Server-Timing` header (`name;dur=ms, ...`) into ms by name. */
export function parseServerTiming(header: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? '').split(',')) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)\s*$/.exec(part);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
