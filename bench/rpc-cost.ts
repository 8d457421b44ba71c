/**
 * Server CPU per Temporal call the webhook can make for one event, on the embedded dev server.
 *
 *   npx tsx bench/rpc-cost.ts [--n 1000] [--concurrency 50]
 *
 * Starts a throwaway dev server (SQLite under /tmp), starts N workflows on a task queue no
 * worker polls (their first workflow task stays pending, like a lifecycle between events), then
 * runs N of each call against them, 50 in flight, and prints the server's and this process's CPU
 * milliseconds per call (from /proc). The calls: DescribeWorkflowExecution (what the router used
 * to check a claimed workflow's type), SignalWorkflowExecution (recording an event), and
 * SignalWithStartWorkflowExecution on running workflows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { procCpuSeconds } from './children';
import { pool } from './load';
import { resolveTemporalCli, startDevServer } from '../src/temporal-cli';

const argv = process.argv.slice(2);
if (argv.some((a) => a.startsWith('--') && !['--n', '--concurrency'].includes(a)) || argv.length % 2 !== 0) {
  console.error('usage: npx tsx bench/rpc-cost.ts [--n 1000] [--concurrency 50]');
  process.exit(2);
}
const num = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
};
const N = num('n', 1000);
const CONCURRENCY = num('concurrency', 50);

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rpc-cost-'));
  const cli = await resolveTemporalCli({ allowSdkDownload: false });
  const server = await startDevServer({ cliPath: cli.path, dbFilename: path.join(dir, 'temporal.db') });
  try {
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: server.namespace });
    const ids = Array.from({ length: N }, (_, i) => `rpc-cost-${i}`);
    const taskQueue = 'rpc-cost-no-worker';
    const measure = async (label: string, fn: (i: number) => Promise<unknown>): Promise<void> => {
      const s0 = procCpuSeconds(server.pid) ?? 0;
      const c0 = process.cpuUsage();
      const wall = await pool(N, CONCURRENCY, fn);
      const s1 = procCpuSeconds(server.pid) ?? 0;
      const c = process.cpuUsage(c0);
      const serverMs = ((s1 - s0) * 1000) / N;
      const clientMs = (c.user + c.system) / 1000 / N;
      console.log(`${label.padEnd(34)} ${(N / (wall / 1000)).toFixed(0).padStart(6)}/s   server CPU ${serverMs.toFixed(2)} ms/call   client CPU ${clientMs.toFixed(2)} ms/call`);
    };
    await measure('start (no worker)', (i) => client.workflow.start('rpcCostTarget', { workflowId: ids[i]!, taskQueue, args: [] }));
    await measure('describe', (i) => client.workflow.getHandle(ids[i]!).describe());
    await measure('signal', (i) => client.workflow.getHandle(ids[i]!).signal('e', { n: i, pad: 'x'.repeat(600) }));
    await measure('describe (again)', (i) => client.workflow.getHandle(ids[i]!).describe());
    await measure('signal (again)', (i) => client.workflow.getHandle(ids[i]!).signal('e', { n: i, pad: 'x'.repeat(600) }));
    await measure('signalWithStart (running)', (i) =>
      client.workflow.signalWithStart('rpcCostTarget', { workflowId: ids[i]!, taskQueue, args: [], signal: 'e', signalArgs: [{ n: i }] }),
    );
    console.log(`(${N} workflows, ${CONCURRENCY} calls in flight, Temporal CLI ${cli.version ?? '?'}, load ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')})`);
    await connection.close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
