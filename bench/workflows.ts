/**
 * The baseline for `npm run bench`: the least a lifecycle must do on Temporal (start, one
 * activity, wait for one signal, complete), with nothing of ours in it. Bundled on its own and run
 * by its own worker on its own task queue, on the same dev server as the product.
 */
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

/** The one signal the baseline waits for (payload: an opaque string of event size). */
export const benchSignal = defineSignal<[string]>('benchSignal');

/** Activities of the baseline worker. */
export interface BenchActivities {
  /** Does nothing (the worker counts its executions). */
  noop(): Promise<void>;
}

const { noop } = proxyActivities<BenchActivities>({ startToCloseTimeout: '30s' });

/** start → one no-op activity → wait for one signal → complete. */
export async function benchBaseline(): Promise<void> {
  let signalled = false;
  setHandler(benchSignal, () => {
    signalled = true;
  });
  await noop();
  await condition(() => signalled);
}
