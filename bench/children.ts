/**
 * Starting and talking to worker child processes (bench/worker-proc.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FromChild, ToChild, WorkerProcConfig, WorkerStats } from './worker-proc';

/** Memory and progress numbers reported by a worker child. */
export type ChildStats = WorkerStats;

/** A running worker child. */
export interface WorkerChild {
  pid: number;
  stats(gc?: boolean): Promise<ChildStats>;
  /** Graceful stop (worker shutdown), SIGKILL after 20 s. Idempotent. */
  stop(): Promise<void>;
}

/** VmRSS of a process in bytes (from /proc), or undefined when it cannot be read. */
export function procRss(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Total CPU time (user+system) of a process in seconds, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (0-based after the command name), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Starts a worker child and resolves once its worker polls. */
export async function startWorkerChild(cfg: WorkerProcConfig, startTimeoutMs = 120_000): Promise<WorkerChild> {
  const child: ChildProcess = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'worker-proc.ts')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_WORKER: JSON.stringify(cfg) },
  });
  const pending = new Map<number, (s: ChildStats) => void>();
  let nextId = 1;
  let exited = false;
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    for (const [, r] of pending) r({ rss: 0, heapUsed: 0, heapTotal: 0, external: 0, activities: 0, numCachedWorkflows: 0, numInFlightWorkflowActivations: 0 });
    pending.clear();
    resolve();
  }));
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cfg.kind} worker did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
    child.on('message', (m: FromChild) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.pid);
      } else if (m.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${cfg.kind} worker failed: ${m.message}`));
      } else if (m.type === 'stats') {
        const r = pending.get(m.id);
        pending.delete(m.id);
        const { type: _t, id: _i, ...s } = m;
        r?.(s);
      }
    });
    void exitedP.then(() => {
      clearTimeout(timer);
      reject(new Error(`${cfg.kind} worker exited during start`));
    });
  });
  let stopP: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopP ??= (async () => {
      if (exited) return;
      if (child.connected) child.send({ type: 'stop' } satisfies ToChild);
      else child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exitedP;
      clearTimeout(t);
    })();
    return stopP;
  };
  try {
    const pid = await ready;
    return {
      pid,
      stats: (gc = false) =>
        new Promise<ChildStats>((resolve, reject) => {
          if (exited || !child.connected) {
            reject(new Error(`${cfg.kind} worker is gone`));
            return;
          }
          const id = nextId++;
          pending.set(id, resolve);
          child.send({ type: 'stats', id, gc } satisfies ToChild);
        }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The product's webhook as its own process (`ses-lifecycle webhook`), as deployments run it. */
export interface WebhookChild {
  pid: number;
  /** `http://127.0.0.1:<port><path>` of its SNS route. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `ses-lifecycle webhook` with `env` (TEMPORAL_ADDRESS, SNS_ALLOWED_TOPIC_ARNS, the signer
 * trust, ports...) and resolves once it prints the URL it listens at.
 */
export async function startWebhookChild(env: Record<string, string>, startTimeoutMs = 60_000): Promise<WebhookChild> {
  const bin = path.join(__dirname, '..', 'bin', 'ses-lifecycle.js');
  const child = spawn(process.execPath, [bin, 'webhook'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`ses-lifecycle webhook did not start within ${startTimeoutMs} ms: ${out.slice(-500)}`)), startTimeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /webhook listening at (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`ses-lifecycle webhook exited during start: ${out.slice(-500)}`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  child.stdout.resume();
  return {
    pid: child.pid!,
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
