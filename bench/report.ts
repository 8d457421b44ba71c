/**
 * Turning raw results into the markdown table and BENCHMARKS.md.
 */
import type { BenchResults } from './types';
import { round } from './load';

const MB = 1024 * 1024;

function fmt(x: number | undefined, d = 1): string {
  return x === undefined || Number.isNaN(x) ? '—' : String(round(x, d));
}

function pct(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '—' : `${round(x * 100, 0)}%`;
}

function yes(b: boolean | undefined): string {
  return b === undefined ? '—' : b ? '✅ met' : '❌ missed';
}

/** The main results table (markdown). */
export function resultsTable(r: BenchResults): string {
  const b = r.baseline;
  const s = r.sends;
  const e = r.events;
  const rows: string[][] = [
    ['#', 'Measurement', 'Ours', 'Baseline (bare Temporal)', 'Ratio', 'Target'],
    ['1', 'Baseline: workflows/s (start → activity done), median', '', fmt(b?.startsPerSec), '', ''],
    ['1', 'Baseline: signals/s (accepted), median', '', fmt(b?.signalsPerSec), '', ''],
    ['1', 'Baseline: full cycles/s (start → activity → signal → completed), median', '', fmt(b?.cyclesPerSec), '', ''],
    ['2', 'Sends: lifecycles started and SendEmail accepted /s, median', fmt(s?.sentPerSec), fmt(b?.startsPerSec), pct(r.targets.sendsRatio), `≥ 80% → ${yes(r.targets.sendsMet)}`],
    [
      '3',
      'Events, sustained: signed SNS posts → webhook → workflow task done /s (baseline: signal → workflow completed), median',
      fmt(e?.processedPerSec),
      fmt(b?.signalToCompletePerSec),
      pct(r.targets.eventsRatio),
      `≥ 90% → ${yes(r.targets.eventsMet)}`,
    ],
    [
      '3',
      'Events, burst: posts answered 200 (verified, signal accepted) /s (baseline: signal calls returned), median',
      fmt(e?.eventsPerSec),
      fmt(b?.signalsPerSec),
      pct(r.targets.eventsAcceptedRatio),
      `≥ 90% → ${yes(r.targets.eventsAcceptedMet)}`,
    ],
    [
      '3',
      `Webhook latency at 50% load (${fmt(e?.at50?.offeredRate, 0)}/s) p50 / p99 ms`,
      `${fmt(e?.at50?.p50)} / ${fmt(e?.at50?.p99)}`,
      '',
      '',
      `p99 < 50 ms → ${yes(r.targets.p99At50Met)}`,
    ],
    ['3', `Webhook latency at 90% load (${fmt(e?.at90?.offeredRate, 0)}/s) p50 / p99 ms`, `${fmt(e?.at90?.p50)} / ${fmt(e?.at90?.p99)}`, '', '', ''],
    ['4', 'End-to-end: SNS post accepted → state visible in `status` query, p50 / p99 ms', `${fmt(r.e2e?.p50)} / ${fmt(r.e2e?.p99)}`, '', '', ''],
  ];
  for (const p of r.cost?.paths ?? []) {
    rows.push([
      '5',
      `Cost, ${p.name}: history events / billable actions per email (median of ${p.samples.length})`,
      `${fmt(p.historyEvents, 0)} / ${fmt(p.actions, 0)}`,
      r.cost?.baseline ? `${r.cost.baseline.historyEvents} / ${r.cost.baseline.actions}` : '',
      '',
      p.name === 'happy' ? `≤ 25 events → ${yes(r.targets.happyEventsMet)}` : '',
    ]);
    rows.push(['5', `Cost, ${p.name}: USD per million emails at $50 / million actions`, `$${fmt(p.usdPerMillion, 0)}`, r.cost?.baseline ? `$${fmt(r.cost.baseline.usdPerMillion, 0)}` : '', '', '']);
  }
  const sc = r.scale;
  if (sc) {
    rows.push(['6', `Worker RSS: ${sc.low.open} open → ${sc.high.open} open (MB)`, `${fmt(sc.low.workerRss / MB, 0)} → ${fmt(sc.high.workerRss / MB, 0)}`, '', '', `flat (≤ +10%) → ${yes(r.targets.workerRssFlatMet)}`]);
    if (sc.cacheFull) {
      rows.push([
        '6',
        `Worker RSS once the cache is full (${sc.cacheFull.cachedWorkflows} cached, ${sc.cacheFull.open} open) → ${sc.high.open} open (MB)`,
        `${fmt(sc.cacheFull.workerRss / MB, 0)} → ${fmt(sc.high.workerRss / MB, 0)}`,
        '',
        '',
        `bounded by cache (≤ +10%) → ${yes(r.targets.workerRssBoundedMet)}`,
      ]);
    }
    rows.push(['6', `Worker heap used after GC: ${sc.low.open} → ${sc.high.open} open (MB)`, `${fmt(sc.low.workerHeapUsed / MB, 0)} → ${fmt(sc.high.workerHeapUsed / MB, 0)}`, '', '', '']);
    rows.push(['6', `Worker cached workflows: ${sc.low.open} → ${sc.high.open} open (max ${sc.maxCachedWorkflows})`, `${sc.low.cachedWorkflows} → ${sc.high.cachedWorkflows}`, '', '', '']);
    rows.push(['6', `Dev-server RSS: ${sc.low.open} → ${sc.high.open} open (MB)`, `${fmt(sc.low.devServerRss / MB, 0)} → ${fmt(sc.high.devServerRss / MB, 0)}`, '', '', '']);
    rows.push([
      '6',
      `Webhook latency p50 / p99 ms at ${sc.latencyRate}/s: ${sc.low.open} open vs ${sc.high.open} open`,
      `${fmt(sc.low.p50)} / ${fmt(sc.low.p99)} vs ${fmt(sc.high.p50)} / ${fmt(sc.high.p99)}`,
      '',
      '',
      '',
    ]);
  }
  if (r.verify) {
    rows.push(['7', 'Webhook alone: SNS signature verifications/s, cert cached, 1 core (SigV2 RSA-SHA256)', fmt(r.verify.v2PerSec, 0), '', '', '']);
    rows.push(['7', 'Webhook alone: same, SignatureVersion 1 (RSA-SHA1)', fmt(r.verify.v1PerSec, 0), '', '', '']);
    rows.push(['7', 'Reference: bare node:crypto RSA-SHA256 verify/s', fmt(r.verify.rawCryptoPerSec, 0), '', '', '']);
  }
  const lines = rows.map((row) => `| ${row.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

/** CPU use per process during the saturation phases (cores busy, of 2). */
export function cpuTable(r: BenchResults): string {
  const rows = [['Phase', 'bench process (driver + webhook + sandbox)', 'lifecycle worker', 'baseline worker', 'dev server', 'ours total', 'other processes on the machine', 'CPU ms per item: bench / worker / dev server']];
  for (const [name, c] of Object.entries(r.cpu)) {
    const w = c.msPerItem ? (c.msPerItem.worker > c.msPerItem.baselineWorker ? c.msPerItem.worker : c.msPerItem.baselineWorker) : undefined;
    rows.push([
      name,
      fmt(c.bench, 2),
      fmt(c.worker, 2),
      fmt(c.baselineWorker, 2),
      fmt(c.devServer, 2),
      fmt(c.bench + c.worker + c.baselineWorker + c.devServer, 2),
      fmt(c.others, 2),
      c.msPerItem ? `${fmt(c.msPerItem.bench, 2)} / ${fmt(w, 2)} / ${fmt(c.msPerItem.devServer, 2)}` : '',
    ]);
  }
  const lines = rows.map((row) => `| ${row.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

/** Per-path breakdown of billable actions. */
export function costTable(r: BenchResults): string {
  if (!r.cost) return '';
  const rows = [['Path', 'History events', 'Actions', 'Action breakdown (median sample)', 'Event types (median sample)']];
  const row = (name: string, p: { historyEvents: number; actions: number; actionBreakdown: Record<string, number>; eventTypes: Record<string, number> }) =>
    rows.push([
      name,
      String(p.historyEvents),
      String(p.actions),
      Object.entries(p.actionBreakdown)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
      Object.entries(p.eventTypes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ]);
  for (const p of r.cost.paths) row(p.name, p.median);
  if (r.cost.baseline) row('baseline (bare)', r.cost.baseline);
  const lines = rows.map((x) => `| ${x.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

/** Scale timeline rows. */
export function scaleTable(r: BenchResults): string {
  if (!r.scale) return '';
  const rows = [['Open lifecycles', 'Worker RSS MB', 'Worker heap used MB', 'Cached workflows', 'Dev-server RSS MB']];
  for (const p of r.scale.timeline) rows.push([String(p.open), fmt(p.workerRss / MB, 0), fmt(p.workerHeapUsed / MB, 0), String(p.cachedWorkflows), fmt(p.devServerRss / MB, 0)]);
  const lines = rows.map((x) => `| ${x.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

/** Phase durations from histories. */
export function timingsTable(r: BenchResults): string {
  const entries = Object.entries(r.timings);
  if (entries.length === 0) return '';
  const rows = [['Sample (first round)', 'Phase', 'Median ms']];
  for (const [name, phases] of entries) for (const [phase, ms] of Object.entries(phases)) rows.push([name, phase, fmt(ms, 1)]);
  const lines = rows.map((x) => `| ${x.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}
