/**
 * `npm run bench:cost`: Temporal history events and billable actions per email, per path, on the
 * real product (embedded dev server on free ports, sandbox, webhook, worker, insights worker),
 * with the sandbox publishing each message's events 1 s apart so every SES event reaches the
 * workflow on its own (the unbatched, worst realistic history). Three configurations:
 *
 * - `all events`: the configuration set publishes every event type (today's default, init-aws);
 * - `no Send events`: the event destination without SEND (its only use is the proof of an
 *   ambiguous send, which any later event of the message also gives);
 * - the repair path: Delivery lost on the way (sandbox chaos), outcome repaired from insights at
 *   the deadline.
 *
 * Prints a Markdown table (history events / actions, median of `--repeats`, and USD per
 * million emails at $50 per million actions) and writes it between the cost markers of
 * BENCHMARKS.md with `--write`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetConfigurationSetEventDestinationsCommand, UpdateConfigurationSetEventDestinationCommand, type EventType } from '@aws-sdk/client-sesv2';
import pino from 'pino';
import { startStack, throwawayStackConfig } from '../src/stack';
import { createSesClient } from '../src/worker';
import { COST_RULE, historyCost } from './history-cost';
import { median } from './load';
import type { CostSample } from './types';

const USD_PER_MILLION_ACTIONS = 50;
const args = process.argv.slice(2);
const repeatsArg = args.includes('--repeats') ? Number(args[args.indexOf('--repeats') + 1]) : 3;
if (!Number.isInteger(repeatsArg) || repeatsArg < 1) throw new Error('--repeats must be a positive whole number');
const repeats = repeatsArg;
const write = args.includes('--write');
const policy = { deliveryDeadline: '6s', complaintWindow: '2s', resendBackoff: '1s' };

interface Row {
  config: string;
  path: string;
  events: number;
  actions: number;
  breakdown: string;
  samples: string;
}

async function main(): Promise<void> {
  const { config, remove } = await throwawayStackConfig('cost');
  const stack = await startStack({ config, logger: pino({ level: 'warn' }), sandbox: { maxSendRate: 1000, eventDelayMs: 1_000 } });
  const sandbox = stack.sandbox!;
  const ses = createSesClient({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
  const run = Date.now().toString(36);
  const rows: Row[] = [];
  const dropRules: { recipients: string[]; eventTypes: ['Delivery'] }[] = [];
  try {
    const measure = async (cfg: string, paths: { name: string; local: string; domain: string; drop?: boolean }[]): Promise<void> => {
      const started = await Promise.all(
        paths.flatMap((p) =>
          Array.from({ length: repeats }, async (_, i) => {
            const to = `${p.local}+c${run}${cfg.length}${p.name.length}${i}@${p.domain}`;
            if (p.drop) {
              dropRules.push({ recipients: [to], eventTypes: ['Delivery'] });
              sandbox.dropDeliveries(dropRules);
            }
            return { path: p.name, email: await stack.lc.sendTracked({ from: 'bench@example.com', to: [to], subject: `cost ${p.name}`, text: 'x', policy }) };
          }),
        ),
      );
      const finals = await Promise.all(started.map(async (s) => ({ ...s, final: await s.email.result() })));
      for (const p of paths) {
        const samples: CostSample[] = [];
        for (const f of finals.filter((x) => x.path === p.name)) samples.push({ ...(await historyCost(stack.client, f.email.id)), finalStatus: f.final.status });
        const sorted = [...samples].sort((a, b) => a.actions - b.actions || a.historyEvents - b.historyEvents);
        const med = sorted[Math.floor((sorted.length - 1) / 2)]!;
        rows.push({
          config: cfg,
          path: p.name,
          events: median(samples.map((s) => s.historyEvents)),
          actions: median(samples.map((s) => s.actions)),
          breakdown: Object.entries(med.actionBreakdown).map(([k, n]) => `${k} ${n}`).join(', '),
          samples: samples.map((s) => `${s.historyEvents}/${s.actions} ${s.finalStatus ?? ''}`).join(', '),
        });
        console.error(`${cfg} ${p.name}: ${rows.at(-1)!.samples}`);
      }
    };
    const paths = [
      { name: 'happy (success@)', local: 'success', domain: 'simulator.amazonses.com' },
      { name: 'bounce (bounce@)', local: 'bounce', domain: 'simulator.amazonses.com' },
      { name: 'delay (delay@, then Delivery)', local: 'delay', domain: 'sandbox.ses-lifecycle.test' },
      { name: 'deadline (silent@, no events)', local: 'silent', domain: 'sandbox.ses-lifecycle.test' },
    ];
    await measure('all events', [...paths, { name: 'repair (Delivery lost, repaired from insights)', local: 'success', domain: 'simulator.amazonses.com', drop: true }]);

    // The same configuration set without SEND events.
    const name = config.aws.configurationSetName;
    const dests = await ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: name }));
    for (const d of dests.EventDestinations ?? []) {
      await ses.send(
        new UpdateConfigurationSetEventDestinationCommand({
          ConfigurationSetName: name,
          EventDestinationName: d.Name!,
          EventDestination: { Enabled: d.Enabled ?? false, MatchingEventTypes: (d.MatchingEventTypes ?? []).filter((t): t is EventType => t !== 'SEND'), ...(d.SnsDestination ? { SnsDestination: d.SnsDestination } : {}) },
        }),
      );
    }
    await measure('no Send events', paths.slice(0, 3));
  } finally {
    sandbox.dropDeliveries([]);
    ses.destroy();
    await stack.stop();
    remove();
  }

  const table = [
    `| configuration set | path | history events | billable actions | USD per million emails | action breakdown (median sample) | samples (events/actions) |`,
    `|---|---|---|---|---|---|---|`,
    ...rows.map((r) => `| ${r.config} | ${r.path} | ${r.events} | ${r.actions} | $${r.actions * USD_PER_MILLION_ACTIONS} | ${r.breakdown} | ${r.samples} |`),
  ].join('\n');
  const happyAll = rows.find((r) => r.config === 'all events' && r.path.startsWith('happy'));
  const happyNoSend = rows.find((r) => r.config === 'no Send events' && r.path.startsWith('happy'));
  const saving = happyAll && happyNoSend ? `\n\nHappy path without Send events: ${happyAll.events - happyNoSend.events} history events and ${happyAll.actions - happyNoSend.actions} action(s) fewer per email, $${(happyAll.actions - happyNoSend.actions) * USD_PER_MILLION_ACTIONS} per million emails at $${USD_PER_MILLION_ACTIONS} per million actions.` : '';
  const text = `Measured by \`npm run bench:cost\` (median of ${repeats} per path; policy deadline ${policy.deliveryDeadline}, complaint window ${policy.complaintWindow}; sandbox events 1 s apart).\n\n${table}${saving}\n\nCounting rule: ${COST_RULE}`;
  console.log(text);
  if (write) {
    const file = path.join(__dirname, '..', 'BENCHMARKS.md');
    const md = readFileSync(file, 'utf8');
    const begin = '<!-- cost-table -->';
    const end = '<!-- /cost-table -->';
    const i = md.indexOf(begin);
    const j = md.indexOf(end);
    if (i < 0 || j < i) throw new Error(`BENCHMARKS.md has no ${begin} … ${end} markers`);
    writeFileSync(file, `${md.slice(0, i + begin.length)}\n${text}\n${md.slice(j)}`);
    console.error('BENCHMARKS.md updated');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
