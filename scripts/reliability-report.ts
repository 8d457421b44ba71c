/**
 * Prints the reliability figures gathered by the fault and hostile-input suites
 * (test-artifacts/reliability/*.jsonl, written by test/reliability/*) as a markdown table.
 *   npm run test:reliability     # runs the suites, then this
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface FaultRecord {
  fault: string;
  injected: number;
  survived: boolean;
  eventsPublished?: number;
  eventsRecorded?: number;
  duplicateSends?: number;
  notes?: string;
}
interface HostileRecord {
  suite: string;
  tried: number;
  refused: number;
  signalled?: number;
  crashes?: number;
}

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** The files only grow across runs: keep the newest record per key (records are appended in time order). */
function newest<T>(records: T[], key: (r: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const r of records) byKey.set(key(r), r);
  return [...byKey.values()];
}

function main(): void {
  const dir = path.join(__dirname, '..', 'test-artifacts', 'reliability');
  if (!existsSync(dir)) throw new Error(`no figures in ${dir}: run the reliability suites first (npm run test:reliability)`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  const faults = newest(
    files.filter((f) => f.startsWith('faults')).flatMap((f) => readJsonl<FaultRecord>(path.join(dir, f))),
    (r) => r.fault,
  );
  const hostile = newest(
    files.filter((f) => f.startsWith('hostile')).flatMap((f) => readJsonl<HostileRecord>(path.join(dir, f))),
    (r) => r.suite,
  );
  const out: string[] = [];
  out.push('| fault | injected | survived | events published | events recorded | duplicate sends |', '|---|---|---|---|---|---|');
  for (const f of faults) {
    out.push(`| ${f.fault} | ${f.injected} | ${f.survived ? 'yes' : '**no**'} | ${f.eventsPublished ?? '—'} | ${f.eventsRecorded ?? '—'} | ${f.duplicateSends ?? '—'} |`);
  }
  const pub = faults.reduce((n, f) => n + (f.eventsPublished ?? 0), 0);
  const rec = faults.reduce((n, f) => n + (f.eventsRecorded ?? 0), 0);
  const dup = faults.reduce((n, f) => n + (f.duplicateSends ?? 0), 0);
  out.push(`| **all faults** | ${faults.reduce((n, f) => n + f.injected, 0)} | ${faults.filter((f) => f.survived).length}/${faults.length} | ${pub} | ${rec} | ${dup} |`);
  out.push('', '| hostile-input suite | tried | refused | signalled | crashes |', '|---|---|---|---|---|');
  for (const h of hostile) out.push(`| ${h.suite} | ${h.tried} | ${h.refused} | ${h.signalled ?? 0} | ${h.crashes ?? 0} |`);
  out.push(`| **all** | ${hostile.reduce((n, h) => n + h.tried, 0)} | ${hostile.reduce((n, h) => n + h.refused, 0)} | ${hostile.reduce((n, h) => n + (h.signalled ?? 0), 0)} | ${hostile.reduce((n, h) => n + (h.crashes ?? 0), 0)} |`);
  console.log(out.join('\n'));
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
