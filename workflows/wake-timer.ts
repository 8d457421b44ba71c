/**
 * One timer at a time, armed for the next moment the lifecycle must act (the updatable-timer
 * shape): arming for a later time keeps the pending earlier timer (the loop re-arms when it
 * fires), arming for an earlier time replaces it. Signals never restart it, so an event costs
 * only its own history events.
 */
import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';

export class WakeTimer {
  private pending: { at: number; scope: CancellationScope } | undefined;

  /** `onFire` is called when a timer fires (the lifecycle bumps its version there). */
  constructor(private readonly onFire: () => void) {}

  /**
   * Ensures a timer fires at or before `at` (epoch ms). `summary` names it in the Web UI's event
   * history ("delivery deadline", "complaint window"); user metadata, not part of replay matching.
   */
  arm(at: number, summary?: string): void {
    if (this.pending && this.pending.at <= at) return;
    this.pending?.scope.cancel();
    const scope = new CancellationScope();
    const t = { at, scope };
    this.pending = t;
    scope.run(() => sleep(Math.max(1, at - Date.now()), summary !== undefined ? { summary } : undefined)).then(
      () => {
        if (this.pending === t) this.pending = undefined;
        this.onFire();
      },
      (err: unknown) => {
        if (!isCancellation(err)) throw err;
      },
    );
  }

  /** When the pending timer fires, if any. */
  get at(): number | undefined {
    return this.pending?.at;
  }
}
