/**
 * The Temporal server's own latency histograms (its Prometheus endpoint, `PROMETHEUS_ENDPOINT` in
 * deploy/temporal/config/temporal.yaml), read before and after a measurement: how long the
 * frontend took to answer each gRPC operation, as the server saw it. Beside the webhook's
 * Server-Timing (the same call as the client saw it) this says whether a slow signal was slow in
 * the server or on the way to and from it.
 */

/** Cumulative bucket counts of one histogram series: upper bound in seconds → count. */
type Buckets = Map<number, number>;

/** Parses `<name>_bucket{...operation="X"...,le="Y"} N` lines, summing series per operation. */
export function parseLatencyBuckets(text: string, metric: string, filter: (labels: Record<string, string>) => boolean): Map<string, Buckets> {
  const out = new Map<string, Buckets>();
  const re = new RegExp(`^${metric}_bucket\\{([^}]*)\\} ([0-9.eE+-]+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    if (!filter(labels) || labels.le === undefined || labels.operation === undefined) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    const b = out.get(labels.operation) ?? new Map<number, number>();
    b.set(le, (b.get(le) ?? 0) + Number(m[2]));
    out.set(labels.operation, b);
  }
  return out;
}

/** The quantile `q` (0..1) of the observations between two scrapes, linearly interpolated in its bucket; ms. */
export function deltaQuantileMs(before: Buckets | undefined, after: Buckets, q: number): { n: number; ms: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const cum = bounds.map((le) => (after.get(le) ?? 0) - (before?.get(le) ?? 0));
  const n = cum[cum.length - 1] ?? 0;
  if (n <= 0) return { n: 0, ms: NaN };
  const rank = q * n;
  let prevLe = 0;
  let prevCum = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (cum[i]! >= rank) {
      const le = bounds[i]!;
      if (!Number.isFinite(le)) return { n, ms: prevLe * 1000 };
      const inBucket = cum[i]! - prevCum;
      const frac = inBucket > 0 ? (rank - prevCum) / inBucket : 1;
      return { n, ms: (prevLe + (le - prevLe) * frac) * 1000 };
    }
    prevLe = bounds[i]!;
    prevCum = cum[i]!;
  }
  return { n, ms: NaN };
}

/**
 * Reads a Temporal server's latency histograms: the frontend's `service_latency` (keyed by the
 * gRPC operation, e.g. `SignalWorkflowExecution`) and `persistence_latency` (keyed
 * `persistence:<operation>`, e.g. `persistence:UpdateWorkflowExecution`).
 */
export class ServerLatency {
  constructor(private readonly url: string) {}

  async scrape(): Promise<Map<string, Buckets>> {
    const res = await fetch(this.url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`${this.url} answered ${res.status}`);
    const text = await res.text();
    const out = parseLatencyBuckets(text, 'service_latency', (l) => l.service_name === 'frontend');
    for (const [op, b] of parseLatencyBuckets(text, 'persistence_latency', () => true)) out.set(`persistence:${op}`, b);
    return out;
  }

  /** p50/p99 ms per operation between two scrapes, for the operations asked. */
  static between(before: Map<string, Buckets>, after: Map<string, Buckets>, operations: readonly string[]): Record<string, { n: number; p50: number; p99: number }> {
    const out: Record<string, { n: number; p50: number; p99: number }> = {};
    for (const op of operations) {
      const a = after.get(op);
      if (!a) continue;
      const p50 = deltaQuantileMs(before.get(op), a, 0.5);
      const p99 = deltaQuantileMs(before.get(op), a, 0.99);
      if (p50.n > 0) out[op] = { n: p50.n, p50: Math.round(p50.ms * 100) / 100, p99: Math.round(p99.ms * 100) / 100 };
    }
    return out;
  }
}
