/**
 * CPU profiles of the Temporal server (Go pprof) per measurement: `npm run bench -- --temporal
 * cluster --server-profile`.
 *
 * Go's `/debug/pprof/profile?seconds=N` needs its length up front, so the profiler records
 * back-to-back 1-second slices for the whole run; each measurement then gets the merge of the
 * slices that lie entirely inside its windows (`go tool pprof -proto`), written next to the raw
 * results, and a table of CPU milliseconds per item for the server's request handlers, its task
 * queues, visibility and the Go garbage collector. Items are scaled to the slice time covered,
 * so the numbers compare across measurements of different lengths.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SLICE_SECONDS = 1;

interface Slice {
  from: number;
  to: number;
  data: Buffer;
}

interface Window {
  from: number;
  to: number;
  items: number;
}

/** One measurement's profile: where it was written, and ms of server CPU per item by function. */
export interface ServerProfileResult {
  file: string;
  /** Slice seconds covered, and the items those seconds stand for. */
  coveredSec: number;
  items: number;
  /** Total sampled CPU of the server process, ms per item. */
  totalMsPerItem: number;
  /** Cumulative ms per item of the functions in {@link FUNCTIONS} that appear. */
  msPerItem: Record<string, number>;
}

/** What the table shows: the server's gRPC handlers, its task executors, visibility writes, GC. */
const FUNCTIONS: [label: string, pattern: RegExp][] = [
  ['history: RecordWorkflowTaskStarted', /service\/history\.\(\*Handler\)\.RecordWorkflowTaskStarted$/],
  ['history: RespondWorkflowTaskCompleted', /service\/history\.\(\*Handler\)\.RespondWorkflowTaskCompleted$/],
  ['history: SignalWorkflowExecution', /service\/history\.\(\*Handler\)\.SignalWorkflowExecution$/],
  ['history: StartWorkflowExecution', /service\/history\.\(\*Handler\)\.StartWorkflowExecution$/],
  ['history: RecordActivityTaskStarted', /service\/history\.\(\*Handler\)\.RecordActivityTaskStarted$/],
  ['history: RespondActivityTaskCompleted', /service\/history\.\(\*Handler\)\.RespondActivityTaskCompleted$/],
  ['history: DescribeWorkflowExecution', /service\/history\.\(\*Handler\)\.DescribeWorkflowExecution$/],
  ['frontend: DescribeWorkflowExecution', /service\/frontend\.\(\*WorkflowHandler\)\.DescribeWorkflowExecution$/],
  ['frontend: CountWorkflowExecutions (harness polling)', /service\/frontend\.\(\*WorkflowHandler\)\.CountWorkflowExecutions$/],
  ['frontend: ListWorkflowExecutions', /service\/frontend\.\(\*WorkflowHandler\)\.ListWorkflowExecutions$/],
  ['matching: PollWorkflowTaskQueue', /service\/matching\.\(\*Handler\)\.PollWorkflowTaskQueue$/],
  ['matching: PollActivityTaskQueue', /service\/matching\.\(\*Handler\)\.PollActivityTaskQueue$/],
  ['task queues (transfer, timer, visibility)', /service\/history\/queues\.\(\*executableImpl\)\.Execute$/],
  ['visibility: UpsertWorkflowExecution', /visibility\/store\/sql\.\(\*VisibilityStore\)\.UpsertWorkflowExecution$/],
  ['visibility: RecordWorkflowExecutionStarted', /visibility\/store\/sql\.\(\*VisibilityStore\)\.RecordWorkflowExecutionStarted$/],
  ['visibility: RecordWorkflowExecutionClosed', /visibility\/store\/sql\.\(\*VisibilityStore\)\.RecordWorkflowExecutionClosed$/],
  ['persistence: UpdateWorkflowExecution (SQL)', /persistence\/sql\.\(\*sqlExecutionStore\)\.UpdateWorkflowExecution$/],
  ['persistence: AppendHistoryNodes (SQL)', /persistence\/sql\.\(\*sqlExecutionStore\)\.AppendHistoryNodes$/],
  ['Go garbage collector (background mark)', /^runtime\.gcBgMarkWorker$/],
];

/** Parses pprof's duration column ("1.23s", "450ms", "0") into seconds. */
function seconds(s: string): number {
  if (s.endsWith('ms')) return Number(s.slice(0, -2)) / 1000;
  if (s.endsWith('us') || s.endsWith('µs')) return Number(s.slice(0, -2)) / 1e6;
  if (s.endsWith('s')) return Number(s.slice(0, -1));
  return Number(s);
}

export class ServerProfiler {
  private readonly slices: Slice[] = [];
  private readonly windows = new Map<string, Window[]>();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly port: number) {}

  /** Starts recording slices (returns at once). */
  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const from = Date.now();
        try {
          const res = await fetch(`http://localhost:${this.port}/debug/pprof/profile?seconds=${SLICE_SECONDS}`);
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const data = Buffer.from(await res.arrayBuffer());
          this.slices.push({ from, to: Date.now(), data });
        } catch {
          // The server is not up yet, or restarting: try again shortly.
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    })();
  }

  /** Registers a measurement window (epoch ms) standing for `items` items. */
  mark(label: string, from: number, to: number, items: number): void {
    const list = this.windows.get(label) ?? [];
    list.push({ from, to, items });
    this.windows.set(label, list);
  }

  /** Stops recording, merges each measurement's slices and reads the per-item table. */
  async finish(outPrefix: string): Promise<Record<string, ServerProfileResult>> {
    this.stopped = true;
    await this.loop;
    const tmp = mkdtempSync(path.join(tmpdir(), 'server-profile-'));
    const out: Record<string, ServerProfileResult> = {};
    try {
      for (const [label, windows] of this.windows) {
        const files: string[] = [];
        let items = 0;
        let covered = 0;
        for (const w of windows) {
          const inside = this.slices.filter((s) => s.from >= w.from && s.to <= w.to);
          const sec = inside.reduce((a, s) => a + (s.to - s.from) / 1000, 0);
          const windowSec = (w.to - w.from) / 1000;
          if (inside.length === 0 || windowSec <= 0) continue;
          covered += sec;
          items += (w.items * sec) / windowSec;
          for (const s of inside) {
            const f = path.join(tmp, `s${files.length}.pb.gz`);
            writeFileSync(f, s.data);
            files.push(f);
          }
        }
        if (files.length === 0 || items <= 0) continue;
        const slug = label.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
        const file = `${outPrefix}-server-${slug}.pb.gz`;
        const merged = await run('go', ['tool', 'pprof', '-proto', ...files], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
        writeFileSync(file, merged.stdout);
        const top = await run('go', ['tool', 'pprof', '-top', '-cum', '-nodecount=5000', file], { maxBuffer: 64 * 1024 * 1024 });
        const total = /Total samples = (\S+)/.exec(top.stdout)?.[1];
        const msPerItem: Record<string, number> = {};
        for (const line of top.stdout.split('\n')) {
          const cols = line.trim().split(/\s+/);
          if (cols.length < 6) continue;
          const fn = cols.slice(5).join(' ');
          for (const [name, re] of FUNCTIONS) {
            if (re.test(fn)) msPerItem[name] = Math.round(((seconds(cols[3]!) * 1000) / items) * 100) / 100;
          }
        }
        out[label] = {
          file,
          coveredSec: Math.round(covered * 10) / 10,
          items: Math.round(items),
          totalMsPerItem: total ? Math.round(((seconds(total) * 1000) / items) * 100) / 100 : NaN,
          msPerItem,
        };
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return out;
  }
}

/** Markdown table: one row per function, one column per measurement (ms of server CPU per item). */
export function serverProfileTable(profiles: Record<string, ServerProfileResult>): string[] {
  const labels = Object.keys(profiles);
  if (labels.length === 0) return [];
  const rows = FUNCTIONS.map(([name]) => name).filter((name) => labels.some((l) => profiles[l]!.msPerItem[name] !== undefined));
  return [
    `| Temporal server, ms of CPU per item (pprof, cumulative) | ${labels.join(' | ')} |`,
    `|---|${labels.map(() => '---').join('|')}|`,
    `| **all of the server process** | ${labels.map((l) => profiles[l]!.totalMsPerItem).join(' | ')} |`,
    ...rows.map((name) => `| ${name} | ${labels.map((l) => profiles[l]!.msPerItem[name] ?? '').join(' | ')} |`),
    `| slice seconds covered / items | ${labels.map((l) => `${profiles[l]!.coveredSec} s / ${profiles[l]!.items}`).join(' | ')} |`,
  ];
}
