/**
 * Writes BENCHMARKS.md from one run's raw results (`npm run bench -- --write-md`, or later from the
 * saved JSON with `npm run bench -- --md-from bench-results/<file>.json [--md-extra label=file,...]`).
 * Every number in the file comes from the results; the prose explains how to read them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { round } from './load';
import { cpuTable, costTable, resultsTable, scaleTable, timingsTable } from './report';
import type { BenchResults } from './types';

const MB = 1024 * 1024;

function n(x: number | undefined, d = 1): string {
  return x === undefined || Number.isNaN(x) ? '—' : String(round(x, d));
}

/** A machine fact as text (strings and numbers as they are, anything else as JSON). */
function txt(x: unknown, dflt: string): string {
  if (x === undefined || x === null) return dflt;
  return typeof x === 'string' || typeof x === 'number' ? String(x) : JSON.stringify(x);
}

function pct(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '—' : `${Math.round(x * 100)}%`;
}

function mark(met: boolean | undefined): string {
  return met === undefined ? '—' : met ? '✅ met' : '❌ missed';
}

/** Extra runs to compare (`label=path`), e.g. the same run on tmpfs or with a smaller cache. */
export interface ExtraRun {
  label: string;
  file: string;
  results: BenchResults;
}

export function loadExtras(spec: string, root: string): ExtraRun[] {
  if (!spec) return [];
  return spec.split(',').map((part) => {
    const [label, file] = part.split('=');
    if (!label || !file) throw new Error(`--md-extra expects label=path[,label=path], got ${part}`);
    const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
    return { label, file: path.relative(root, path.resolve(file)), results };
  });
}

function extrasTable(main: BenchResults, mainLabel: string, extras: ExtraRun[]): string {
  const runs = [{ label: mainLabel, r: main, file: '' }, ...extras.map((e) => ({ label: e.label, r: e.results, file: e.file }))];
  const rows = [
    [
      'Run',
      'Command',
      'Baseline starts/s',
      'Sends/s (ratio)',
      'Baseline signals processed/s',
      'Events processed/s (ratio)',
      'Events accepted/s vs baseline',
      'p99 at 50% load (ms)',
      `Worker RSS MB: low → cache full → high open`,
      'Disturbed measurements (other processes > limit)',
    ],
  ];
  for (const { label, r } of runs) {
    const sc = r.scale;
    rows.push([
      label,
      `\`${r.meta.command}\``,
      n(r.baseline?.startsPerSec),
      `${n(r.sends?.sentPerSec)} (${pct(r.targets.sendsRatio)})`,
      n(r.baseline?.signalToCompletePerSec),
      `${n(r.events?.processedPerSec)} (${pct(r.targets.eventsRatio)})`,
      `${n(r.events?.eventsPerSec)} vs ${n(r.baseline?.signalsPerSec)} (${pct(r.targets.eventsAcceptedRatio)})`,
      n(r.events?.at50?.p99),
      sc
        ? `${n(sc.low.workerRss / MB, 0)} (${sc.low.open}) → ${sc.cacheFull ? `${n(sc.cacheFull.workerRss / MB, 0)} (${sc.cacheFull.open})` : '—'} → ${n(sc.high.workerRss / MB, 0)} (${sc.high.open}); cache ${sc.maxCachedWorkflows}`
        : '—',
      r.contention.length ? r.contention.map((c) => `${c.label} (${c.otherCores})`).join('; ') : 'none',
    ]);
  }
  const lines = rows.map((x) => `| ${x.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

/** Everything in BENCHMARKS.md from this line on is written by other scripts and kept by `--write-md`. */
export const KEPT_MARKER = '<!-- Sections below are kept by `npm run bench -- --write-md` (written by bench:flood, bench:sqs, bench:cost runs). -->';

export function writeBenchmarksMd(file: string, r: BenchResults, rawPath: string, extras: ExtraRun[] = []): void {
  const m = r.meta.machine;
  const t = r.targets;
  const b = r.baseline;
  const happy = r.cost?.paths.find((p) => p.name === 'happy');
  const sc = r.scale;
  const cpuSends = r.cpu['sends: start → SendEmail accepted']?.msPerItem;
  const cpuBaseStart = r.cpu['baseline: start → activity']?.msPerItem;
  const cpuEvents = r.cpu['events: post → processed (saturated)']?.msPerItem;
  const cpuBaseSignal = r.cpu['baseline: signal → completed']?.msPerItem;
  const dataRoot = String((r.meta.params as { dataRoot?: string }).dataRoot ?? '?');
  const perCached = sc?.cacheFull ? (sc.cacheFull.workerRss - sc.low.workerRss) / Math.max(1, sc.cacheFull.cachedWorkflows - sc.low.cachedWorkflows) : undefined;

  const lines: string[] = [
    '# Benchmarks',
    '',
    `Measured with \`${r.meta.command}\` on ${r.meta.startedAt.slice(0, 10)} (${n(r.meta.durationSec, 0)} s). ` +
      `Raw results: \`${rawPath}\` (\`bench-results/\` is git-ignored; re-render this file from it with \`npm run bench -- --md-from ${rawPath}\`).`,
    '',
    '## Machine',
    '',
    `- CPU: ${txt(m.cpuModel, '?')}; \`nproc\` = ${txt(m.nproc, '?')}`,
    `- Node ${txt(m.node, '?')}; Temporal CLI ${txt(m.temporalCli, '?')} (\`temporal server start-dev\`, SQLite file with WAL in a throwaway DATA_DIR under \`${dataRoot}\`); ${txt(m.platform, '')}`,
    `- Load average when the run started: ${Array.isArray(m.loadAvgAtStart) ? (m.loadAvgAtStart as number[]).join(', ') : '?'}`,
    '- `free -g`:',
    '',
    '```',
    txt(m.freeG, ''),
    '```',
    '',
    `**Everything shares these ${txt(m.nproc, '?')} cores**: the Temporal dev server, the lifecycle worker and the baseline worker (two child ` +
      'processes), and one process holding the webhook, the SES sandbox and the load generator. The machine is also shared with other ' +
      'sessions (builds, test suites); the bench measures their CPU during every measurement ("other processes" below) and lists the ' +
      `measurements during which they used more than ${String((r.meta.params as { maxOthers?: number }).maxOthers ?? '?')} cores (\`--max-tries N\` repeats those). Absolute rates are therefore low and noisy; ` +
      'the ratios to the baseline, measured in the same run against the same server, are what the targets are about.',
    '',
    '## How to run',
    '',
    '```',
    'npm run bench                  # full: 3 rounds × 500, 20 000 open lifecycles, DATA_DIR under /tmp (~15 min here)',
    'npm run bench -- --quick       # development: 1 round × 200, 2 000 open lifecycles, DATA_DIR on /dev/shm (< 2 min)',
    'npm run bench -- --write-md    # also write this file',
    '```',
    '',
    'Flags: `--rounds N`, `--n N` (workflows/lifecycles/events per round), `--concurrency N` (default 100), `--scale N`, `--cache N` ' +
      '(worker maxCachedWorkflows, default 1000), `--scale-rate N` (events/s of the scale latency probe), `--data-root DIR`, ' +
      '`--scale-recipient success|silent`, `--max-others CORES`, `--max-tries N`, `--keep-data`, `--temporal dev|cluster` (cluster: the Temporal server on PostgreSQL as `npm run test:cluster` starts it), `--no-peer` (skip the homegrown peer), `--server-profile` (cluster only: Go pprof CPU profile of the Temporal server per measurement). Baseline, send and event rounds run interleaved, in a rotated order per round.',
    '',
    '## Results',
    '',
    resultsTable(r),
    '',
    '## Targets',
    '',
    '| Target | Measured | |',
    '|---|---|---|',
    `| Events path ≥ 90% of the baseline signal rate (sustained: processed/s) | ${n(r.events?.processedPerSec)} vs ${n(b?.signalToCompletePerSec)} = ${pct(t.eventsRatio)} | ${mark(t.eventsMet)} |`,
    `| … same, burst (posts answered vs signal calls returned) | ${n(r.events?.eventsPerSec)} vs ${n(b?.signalsPerSec)} = ${pct(t.eventsAcceptedRatio)} | ${mark(t.eventsAcceptedMet)} |`,
    `| Sends path ≥ 80% of the baseline start rate | ${n(r.sends?.sentPerSec)} vs ${n(b?.startsPerSec)} = ${pct(t.sendsRatio)} | ${mark(t.sendsMet)} |`,
    `| Webhook p99 < 50 ms at 50% load | p99 ${n(r.events?.at50?.p99)} ms at ${n(r.events?.at50?.offeredRate)} events/s | ${mark(t.p99At50Met)} |`,
    `| Happy path ≤ 25 history events | ${n(happy?.historyEvents, 0)} (samples: ${happy?.samples.map((s) => s.historyEvents).join(', ') ?? '—'}) | ${mark(t.happyEventsMet)} |`,
    sc
      ? `| Worker RSS flat between ${sc.low.open} and ${sc.high.open} open (≤ +10%) | ${n(sc.low.workerRss / MB, 0)} → ${n(sc.high.workerRss / MB, 0)} MB (${pct(t.workerRssGrowth)}) | ${mark(t.workerRssFlatMet)} |`
      : '| Worker RSS flat | — | — |',
    sc?.cacheFull
      ? `| … bounded by the cache: from the first point with a full cache (${sc.cacheFull.open} open) to ${sc.high.open} open (≤ +10%) | ${n(sc.cacheFull.workerRss / MB, 0)} → ${n(sc.high.workerRss / MB, 0)} MB (${pct(t.workerRssGrowthAfterCacheFull)}) | ${mark(t.workerRssBoundedMet)} |`
      : '',
    '',
    '## What each number is',
    '',
    '1. **Baseline** (`bench/workflows.ts`, its own bundle, worker process and task queue on the same dev server): `benchBaseline` = start → one no-op ' +
      'activity → wait for one signal → complete. Per round, N workflows are started through the Temporal client with 100 calls in flight; ' +
      '"workflows/s" is N / time until every no-op activity ran (the worker counts them). Then N signals (600-byte payload, about one ' +
      'normalized SES event) with 100 in flight: "signals/s accepted" = N / time until the signal calls returned; "processed" = N / time ' +
      'until no baseline workflow is running (visibility count).',
    '2. **Sends**: N `sendTracked()` calls (100 in flight) to `silent+<label>@sandbox.ses-lifecycle.test` (the sandbox accepts the email and ' +
      'publishes no event), sandbox `maxSendRate` 100 000/s, `SES_PACE_TO_SEND_RATE=false`; rate = N / time until the sandbox accepted every ' +
      'SendEmail (`sandbox.sentMessages()`). Same milestone as the baseline: start → workflow task → activity done.',
    '3. **Events**: per round, N fresh lifecycles are created untimed (so each is waiting for its outcome and in the worker cache, like the ' +
      'baseline workflows); then N SES Delivery events (`test/helpers/ses-json.ts`), each in an SNS Notification signed by the sandbox key ' +
      '(SignatureVersion 2), are POSTed to `/sns` with SNS headers and `text/plain`, 100 in flight, over keep-alive connections. "Accepted" = ' +
      'all answered 200 (signature verified, signal accepted by Temporal); "processed" = every lifecycle ran the workflow task for it (visibility ' +
      '`EmailStatus = "delivered"`). Latency: open-loop pacing at 50% and 90% of the processed (sustainable) rate — a burst is accepted faster ' +
      'than it is processed, and pacing above the processed rate only builds a queue — with fresh lifecycles, latency measured from each ' +
      "request's scheduled start to its 200.",
    '4. **End to end**: one Delivery at a time; from the 200 to the first `status` query (polled back to back) that shows the recipient delivered.',
    '5. **Cost**: happy (`success@simulator`), bounce (`bounce@simulator`) and delay-then-delivery (`delay@sandbox`) lifecycles, 3 each, through ' +
      'the real sandbox SNS → webhook path, with short policy durations (delivery deadline 6 s, complaint window 2 s) that keep the production ' +
      'shape (one timer serves deadline and complaint window); the sandbox publishes each message’s events 1 s apart (Send, then Delivery / ' +
      'Bounce / DeliveryDelay, then Delivery), so they reach the workflow separately as SES events usually do; history fetched with `handle.fetchHistory()` after completion.',
    `6. **Scale**: ${sc ? `${sc.low.open} open lifecycles (each delivered, in its complaint window), then filled to ${sc.high.open}` : 'low, then high'}; ` +
      'the lifecycle worker runs in its own process with `maxCachedWorkflows` ' +
      `${sc?.maxCachedWorkflows ?? '?'}; RSS from /proc/<pid>/status after a forced GC in the worker; the latency probe posts Open events at ` +
      `${sc?.latencyRate ?? '?'}/s (open loop) to random delivered lifecycles. ${sc?.fillRecipients ?? ''}.`,
    '7. **Webhook alone**: `SnsVerifier` from `src/webhook/sns-verify.ts` verifying pre-signed notifications in a loop on one core, certificate ' +
      'cached (the first call fetches it from the sandbox over HTTPS); reference: bare `node:crypto` RSA-SHA256 verification of the same messages.',
    '',
    'All throughput numbers are medians over rounds; with `--quick` there is one round.',
    '',
    '## Where the limit is',
    '',
    '### CPU per process',
    '',
    `Cores busy (CPU seconds / wall seconds, from /proc) during each measurement, median over rounds, and CPU milliseconds per item (per workflow or event). The machine has ${txt(m.nproc, '?')} cores.`,
    '',
    cpuTable(r),
    '',
    '### Where the time goes',
    '',
    'Phase durations from the server timestamps in the histories of 40 workflows of the first round (medians, ms). Under saturation almost all ' +
      'of a workflow\'s time is spent queued for a workflow task, i.e. waiting for the server.',
    '',
    timingsTable(r),
    '',
    '### Reading',
    '',
    `- **The dev server is the bottleneck, for the baseline and for us alike.** It is the busiest process in every saturated measurement ` +
      `(see the table) while the workers and the webhook use a fraction of a core, and the queue wait before each workflow task dominates the timings. ` +
      'The embedded dev server persists into one SQLite file, and every history append, task and visibility update goes through it. ' +
      (extras.length > 0 ? 'The comparison runs below show how much of the limit is the disk (same bench with DATA_DIR on tmpfs).' : ''),
    cpuSends && cpuBaseStart
      ? `- **Sends cost more server work than the bare start.** Per lifecycle, the dev server spends ${n(cpuSends.devServer, 2)} ms CPU vs ${n(cpuBaseStart.devServer, 2)} ms for a baseline start, ` +
        `and the worker ${n(cpuSends.worker, 2)} ms vs ${n(cpuBaseStart.baselineWorker, 2)} ms. A lifecycle starts with three or four search attributes and a UI summary/details, its ` +
        'activity makes two SES calls (suppression check + SendEmail), and the workflow task after the send upserts `EmailStatus`/`SesMessageIds` ' +
        '(a visibility write) and starts the deadline timer; the bare workflow does none of these. On a server that is already the bottleneck, ' +
        `that extra work per lifecycle shows up one to one in the rate: sends reach ${pct(t.sendsRatio)} of the baseline start rate here.`
      : '',
    cpuEvents && cpuBaseSignal
      ? `- **Events**: per event the dev server spends ${n(cpuEvents.devServer, 2)} ms CPU vs ${n(cpuBaseSignal.devServer, 2)} ms per baseline signal (both: one signal and one ` +
        `workflow task; ours upserts EmailStatus, the baseline completes the workflow), and the bench process (webhook + load generator) ${n(cpuEvents.bench, 2)} ms vs ` +
        `${n(cpuBaseSignal.bench, 2)} ms for a bare client signal. The webhook's own work (HTTP, signature verification, parsing, routing) is well below a millisecond per event; ` +
        `one webhook instance verifies ${n(r.verify?.v2PerSec, 0)} signatures/s on one core (bare RSA: ${n(r.verify?.rawCryptoPerSec, 0)}/s), so verification is not the limit.`
      : '',
    `- **Latency** at 50% of the sustainable rate: p50 ${n(r.events?.at50?.p50)} ms, p99 ${n(r.events?.at50?.p99)} ms; at 90%: p50 ${n(r.events?.at90?.p50)} ms, p99 ${n(r.events?.at90?.p99)} ms. ` +
      `End to end (200 → state visible in a query): p50 ${n(r.e2e?.p50)} ms, p99 ${n(r.e2e?.p99)} ms — the workflow task that applies the signal has to run first.`,
    sc
      ? `- **Worker memory is bounded by the cache, not by open lifecycles.** RSS grows while the cache fills (${sc.low.cachedWorkflows} → ${sc.cacheFull?.cachedWorkflows ?? '?'} cached workflows` +
        `${perCached !== undefined ? `, about ${n(perCached / MB, 2)} MB per cached workflow` : ''}), then stays put from ${sc.cacheFull?.open ?? '?'} to ${sc.high.open} open lifecycles ` +
        `(${pct(t.workerRssGrowthAfterCacheFull)}); the JS heap after GC stays between ${n(sc.low.workerHeapUsed / MB, 0)} and ${n(sc.high.workerHeapUsed / MB, 0)} MB. ` +
        `So "flat between ${sc.low.open} and ${sc.high.open}" is ${t.workerRssFlatMet ? 'met' : `missed only because ${sc.low.open} open lifecycles do not fill a ${sc.maxCachedWorkflows}-workflow cache`}: ` +
        'size `maxCachedWorkflows` for the memory you want to give the worker. Uncached lifecycles cost the worker nothing while they wait; ' +
        'a signal to one replays its (short) history. The dev server grows with open lifecycles ' +
        `(${n(sc.low.devServerRss / MB, 0)} → ${n(sc.high.devServerRss / MB, 0)} MB RSS), as any Temporal server does with open workflows and their timers. ` +
        `Webhook latency at ${sc.latencyRate}/s: p50/p99 ${n(sc.low.p50)}/${n(sc.low.p99)} ms at ${sc.low.open} open vs ${n(sc.high.p50)}/${n(sc.high.p99)} ms at ${sc.high.open} open.`
      : '',
    '',
  ];

  if (extras.length > 0) {
    lines.push('### Comparison runs', '', 'The same benchmark with one setting changed (raw files: ' + extras.map((e) => `\`${e.file}\``).join(', ') + ').', '', extrasTable(r, 'this run', extras), '');
  }

  lines.push(
    '## Cost per email',
    '',
    `Counting rule (Temporal Cloud's definition of billable actions): ${r.cost?.rule ?? ''}`,
    '',
    'Source of the rule: Temporal Cloud documentation, page "Temporal Cloud Actions": workflow started "via client start, client ' +
      'Signal-With-Start, Continue-As-New, or Child Workflow start"; "Timer started. Includes implicit Timers … such as … condition in ' +
      'TypeScript"; "Search Attribute upsert requested. Occurs for each invocation of UpsertSearchAttributes command … Search Attributes ' +
      'specified during Workflow start are excluded"; "Signal sent. An Action occurs for every Signal, whether sent from a Client or from a ' +
      'Workflow"; "Query received by Worker. An Action occurs for every Query"; activities count when started or retried; "Actions that ' +
      'occur during Workflow Replay do not count towards billed Actions".',
    '',
    `Price: $${r.cost?.usdPerMillionActions ?? 50} per million actions (list price, first tier), so **USD per million emails = actions per email × ${r.cost?.usdPerMillionActions ?? 50}**. ` +
      'Each `status()` query an app makes adds one action; storage is billed separately and not included.',
    '',
    costTable(r),
    '',
    happy
      ? `The happy path has ${happy.historyEvents} history events (samples ${happy.samples.map((s) => s.historyEvents).join(', ')}). The count depends on timing: signals that arrive while a workflow task is pending share it, so under load (or with SES events close together) the same email can take fewer events — an earlier, heavily loaded run saw 19 when Send and Delivery both arrived before the post-send workflow task ran. ` +
        'Each signal that arrives on its own costs a workflow task (3 events) besides the signal event, and each status change an upsert event. ' +
        `Against the bare workflow (${r.cost?.baseline?.actions ?? '?'} actions: start, activity, signal), a tracked email adds one signal per extra SES event (Send and Delivery are two), ` +
        'the status upserts that keep the Temporal UI searchable (sent → delivered), and one timer (deadline and complaint window).'
      : '',
    '',
    '## Scale timeline',
    '',
    scaleTable(r),
    '',
  );

  if (r.contention.length > 0) {
    lines.push(
      '## Disturbed measurements',
      '',
      'Measurements during which other processes on the machine used more cores than allowed (the least disturbed attempt was kept):',
      '',
      ...r.contention.map((c) => `- ${c.label}, attempt ${c.attempt}: ${c.otherCores} cores`),
      '',
    );
  }
  lines.push('## Notes', '', ...r.notes.map((x) => `- ${x}`), '');
  // Hand-written investigation notes (evidence gathered around the runs), kept next to the code.
  const findings = path.join(__dirname, 'findings.md');
  if (existsSync(findings)) lines.push(readFileSync(findings, 'utf8').trimEnd(), '');
  // The dev server vs cluster vs homegrown peer section (bench/compare.ts renders its table).
  const comparison = path.join(__dirname, 'comparison.md');
  if (existsSync(comparison)) lines.push(readFileSync(comparison, 'utf8').trimEnd(), '');
  // Sections other scripts maintain (flood, SQS, cost per path) follow the marker and are kept.
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = previous.indexOf(KEPT_MARKER);
  if (kept >= 0) lines.push(previous.slice(kept).trimEnd(), '');
  writeFileSync(file, lines.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n'));
}
