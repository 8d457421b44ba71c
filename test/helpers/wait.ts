/**
 * The test suite's waiting rules: a test waits on events, and gives up only when the system
 * stopped making progress for longer than the machine can explain, never after a fixed
 * wall-clock guess.
 *
 *   await waitWithProgress('440 lifecycles to close', { done, progress, stallMs: stallBudget(policyMs) });
 *
 * `progress()` returns a number that grows while work is being done (lifecycles closed, SNS
 * deliveries made); the wait fails when it has not grown for `stallMs`. On a busy machine the
 * work is slower but still progresses, so the wait simply takes longer.
 */
import os from 'node:os';
import type { SesSandbox } from '../../src/sandbox';

/**
 * A last-resort bound for the long fault tests (vitest's per-test timeout): it only stops a test
 * that hangs outright; every decision inside those tests comes from progress watchdogs.
 */
export const HANG_GUARD_MS = 30 * 60_000;

/** How loaded the machine is right now: 1 on an idle machine, more when runnable work exceeds the cores. */
export function loadFactor(): number {
  const cores = Math.max(1, os.availableParallelism());
  return Math.max(1, os.loadavg()[0]! / cores);
}

/**
 * How long a piece of work may go without visible progress: the longest time one item may
 * legitimately take by its own policy (`boundMs`: deadlines, windows, backoffs), plus a base
 * for scheduling and I/O, both scaled by the machine's current load.
 */
export function stallBudget(boundMs: number, baseMs = 20_000): number {
  return Math.round((boundMs + baseMs) * loadFactor());
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ProgressWait {
  /** True when the work is done. */
  done: () => boolean | Promise<boolean>;
  /** A counter that grows while work is done. */
  progress: () => number | Promise<number>;
  /** Fail after this long without growth of `progress()` (re-read every poll: may follow load). */
  stallMs: number | (() => number);
  /** Poll interval. */
  intervalMs?: number;
  /** Extra text for the error (e.g. what is still open). */
  describe?: () => string | Promise<string>;
}

/**
 * Polls until `done()`; throws when `progress()` has not grown for the stall budget.
 *
 * @throws Error naming `what`, the stall budget and `describe()`.
 */
export async function waitWithProgress(what: string, w: ProgressWait): Promise<void> {
  let last = await w.progress();
  let lastChange = Date.now();
  for (;;) {
    if (await w.done()) return;
    await sleep(w.intervalMs ?? 200);
    const p = await w.progress();
    if (p !== last) {
      last = p;
      lastChange = Date.now();
      continue;
    }
    const stall = typeof w.stallMs === 'function' ? w.stallMs() : w.stallMs;
    if (Date.now() - lastChange > stall) {
      const extra = w.describe ? await w.describe() : '';
      throw new Error(`no progress for ${stall} ms waiting for ${what} (progress counter at ${p})${extra ? `: ${extra}` : ''}`);
    }
  }
}

/**
 * Waits until the sandbox has nothing left to publish or deliver. Fails only when its delivery
 * work stopped moving (no new delivery attempt) for the stall budget of `boundMs` (the longest
 * gap the scenario's own retry policy can leave between attempts).
 */
export async function sandboxSettled(sandbox: SesSandbox, boundMs = 0): Promise<void> {
  let idle = false;
  await waitWithProgress('the sandbox to publish and deliver everything', {
    done: async () => {
      idle = await sandbox.waitForIdle(50).then(
        () => true,
        () => false,
      );
      return idle;
    },
    progress: () => sandbox.ledger().reduce((n, e) => n + 1 + e.deliveries.length, 0),
    stallMs: () => stallBudget(boundMs),
  });
}
