/**
 * Side-by-side table of two `npm run bench` raw results: one on the dev server, one with
 * `--temporal cluster`, each with the homegrown peer measured in the same run.
 *
 *   npx tsx bench/compare.ts bench-results/<dev>.json bench-results/<cluster>.json
 *
 * Prints Markdown (the table in BENCHMARKS.md's "Dev server vs PostgreSQL cluster vs homegrown
 * peer" section). Ratios are within one run: ours over the bare-Temporal baseline on the same server.
 */
import { readFileSync } from 'node:fs';
import { round } from './load';
import type { BenchResults, PacedResult } from './types';

const [devFile, clusterFile] = process.argv.slice(2);
if (!devFile || !clusterFile) {
  console.error('usage: tsx bench/compare.ts <dev-server results.json> <cluster results.json>');
  process.exit(2);
}
const dev = JSON.parse(readFileSync(devFile, 'utf8')) as BenchResults;
const cl = JSON.parse(readFileSync(clusterFile, 'utf8')) as BenchResults;
if ((dev.meta.temporal ?? 'dev') !== 'dev' || cl.meta.temporal !== 'cluster') throw new Error('give the dev-server run first, then the --temporal cluster run');

const MB = 1024 * 1024;
const times = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? `${round(a / b, 1)}×` : '');
const pct = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? `${Math.round((a / b) * 100)}%` : '');
const lat = (p: PacedResult | undefined): string => (p ? `${p.p50} / ${p.p99} (at ${p.offeredRate}/s${p.errors ? `, ${p.errors} errors` : ''})` : '');
const mb = (x: number | undefined): string => (x === undefined ? '' : String(Math.round(x / MB)));
const others = (r: BenchResults): string => {
  const xs = Object.values(r.cpu).map((c) => c.others);
  return xs.length ? `${round(Math.min(...xs), 2)}–${round(Math.max(...xs), 2)}` : '';
};

const rows: [string, string, string, string][] = [];
const row = (label: string, d: string, c: string, p = ''): void => void rows.push([label, d, c, p]);
row('Bare Temporal: workflows/s (start → activity done)', String(dev.baseline?.startsPerSec ?? ''), String(cl.baseline?.startsPerSec ?? ''));
row('Bare Temporal: signals → workflow completed /s', String(dev.baseline?.signalToCompletePerSec ?? ''), String(cl.baseline?.signalToCompletePerSec ?? ''));
row('Bare Temporal: signal calls accepted /s', String(dev.baseline?.signalsPerSec ?? ''), String(cl.baseline?.signalsPerSec ?? ''));
row('Sends: lifecycles started and SendEmail accepted /s', String(dev.sends?.sentPerSec ?? ''), String(cl.sends?.sentPerSec ?? ''));
row('**Sends / bare start** (target ≥ 85%)', pct(dev.sends?.sentPerSec, dev.baseline?.startsPerSec), pct(cl.sends?.sentPerSec, cl.baseline?.startsPerSec));
row('Events: signed SNS posts → webhook → workflow task done /s (peer: posts answered = row written)', String(dev.events?.processedPerSec ?? ''), String(cl.events?.processedPerSec ?? ''), `${dev.peer?.eventsPerSec ?? '—'} (dev run) / ${cl.peer?.eventsPerSec ?? '—'} (cluster run)`);
row('**Events / bare signal → completed** (target ≥ 95%)', pct(dev.events?.processedPerSec, dev.baseline?.signalToCompletePerSec), pct(cl.events?.processedPerSec, cl.baseline?.signalToCompletePerSec));
row('Events burst: posts answered 200 /s', String(dev.events?.eventsPerSec ?? ''), String(cl.events?.eventsPerSec ?? ''));
row('Events burst / bare signal calls accepted', pct(dev.events?.eventsPerSec, dev.baseline?.signalsPerSec), pct(cl.events?.eventsPerSec, cl.baseline?.signalsPerSec));
row('Peer events/s ÷ product events/s (same run)', times(dev.peer?.eventsPerSec, dev.events?.processedPerSec), times(cl.peer?.eventsPerSec, cl.events?.processedPerSec));
row('**Webhook p50 / p99 ms at half load** (target p99 < 50 ms)', lat(dev.events?.at50), lat(cl.events?.at50), `${lat(dev.peer?.at50)} / ${lat(cl.peer?.at50)}`);
row('Peer p50 / p99 ms at the product’s half-load rate', '', '', `${lat(dev.peer?.atProductRate)} / ${lat(cl.peer?.atProductRate)}`);
row('Webhook p50 / p99 ms at 90% load', lat(dev.events?.at90), lat(cl.events?.at90));
row('End-to-end: post accepted → `status` shows it, p50 / p99 ms', dev.e2e ? `${dev.e2e.p50} / ${dev.e2e.p99}` : '', cl.e2e ? `${cl.e2e.p50} / ${cl.e2e.p99}` : '');
const sc = (r: BenchResults): string =>
  r.scale ? `${mb(r.scale.low.workerRss)} → ${mb(r.scale.high.workerRss)} (${r.scale.low.open} → ${r.scale.high.open} open; cache ${r.scale.maxCachedWorkflows} full from ${r.scale.cacheFull?.open ?? '—'} open at ${mb(r.scale.cacheFull?.workerRss)} MB)` : '';
row('Worker RSS MB', sc(dev), sc(cl));
row('Server RSS MB (dev server; cluster: server RSS + PostgreSQL PSS)', dev.scale ? `${mb(dev.scale.low.devServerRss)} → ${mb(dev.scale.high.devServerRss)}` : '', cl.scale ? `${mb(cl.scale.low.devServerRss)} → ${mb(cl.scale.high.devServerRss)}` : '');
row('Webhook p50 / p99 ms at 50/s, low vs high open', dev.scale ? `${dev.scale.low.p50} / ${dev.scale.low.p99} vs ${dev.scale.high.p50} / ${dev.scale.high.p99}` : '', cl.scale ? `${cl.scale.low.p50} / ${cl.scale.low.p99} vs ${cl.scale.high.p50} / ${cl.scale.high.p99}` : '');
const cpuPer = (r: BenchResults, k: string): string => {
  const c = r.cpu[k]?.msPerItem;
  // The bare workflows run on the baseline worker, the product's on the lifecycle worker.
  return c ? `${c.bench} / ${k.startsWith('baseline') ? c.baselineWorker : c.worker} / ${c.devServer}` : '';
};
row('CPU ms per bare start: bench / worker / server', cpuPer(dev, 'baseline: start → activity'), cpuPer(cl, 'baseline: start → activity'));
row('CPU ms per send: bench / worker / server', cpuPer(dev, 'sends: start → SendEmail accepted'), cpuPer(cl, 'sends: start → SendEmail accepted'));
row('CPU ms per bare signal: bench / worker / server', cpuPer(dev, 'baseline: signal → completed'), cpuPer(cl, 'baseline: signal → completed'));
row('CPU ms per event: bench / worker / server', cpuPer(dev, 'events: post → processed (saturated)'), cpuPer(cl, 'events: post → processed (saturated)'));
row('Other processes on the machine during the measurements (cores of 2)', others(dev), others(cl));
row('Stragglers (lifecycles the harness went on without)', String(dev.stragglers ?? 0), String(cl.stragglers ?? 0));
row('Run', `${dev.meta.command}, ${dev.meta.durationSec} s`, `${cl.meta.command}, ${cl.meta.durationSec} s`);
const up = (r: BenchResults, k: string): string => (typeof r.meta.machine[k] === 'string' ? (r.meta.machine[k]).replace(/^.*load average/, 'load average') : '');
row('`uptime` before / after', `${up(dev, 'uptimeAtStart')} / ${up(dev, 'uptimeAtEnd')}`, `${up(cl, 'uptimeAtStart')} / ${up(cl, 'uptimeAtEnd')}`);

const esc = (s: string): string => s.replace(/\|/g, '\\|');
process.stdout.write(
  `| Measurement | Dev server (SQLite) | Temporal ${cl.meta.cluster?.serverVersion ?? ''} on PostgreSQL | Homegrown peer (Fastify + UPSERT) |\n|---|---|---|---|\n` +
    rows.map((r) => `| ${r.map(esc).join(' | ')} |`).join('\n') +
    `\n\nRaw: \`${devFile}\`, \`${clusterFile}\`.\n`,
);
