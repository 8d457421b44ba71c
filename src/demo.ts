/**
 * `ses-lifecycle demo`: the local stack, then one tracked send to every SES mailbox simulator
 * address and the sandbox's delay / soft-bounce / silent cases, live progress, and a final
 * outcome table with each lifecycle's Temporal UI link.
 */
import type { Config } from './config';
import type { LifecycleStatus } from './definitions';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { CreateEmailTemplateCommand } from '@aws-sdk/client-sesv2';
import { startStack } from './stack';
import { createSesClient } from './worker';

/** The SES template the demo's template rows send (created in the sandbox at start). */
export const DEMO_TEMPLATE = {
  TemplateName: 'ses-lifecycle-demo',
  TemplateContent: { Subject: 'ses-lifecycle demo: {{case}}', Text: 'Hello {{name}}, your code is {{code}}.' },
};

/** One demo row: a recipient, the outcome it must reach, and (template rows) the template data. */
export interface DemoCase {
  readonly address: string;
  readonly expect: string;
  readonly note: string;
  /** Sent with {@link DEMO_TEMPLATE} and this data instead of a subject and text; the row's label is `key`. */
  readonly template?: { readonly key: string; readonly data: Record<string, string> };
}

/** The demo's cases and the outcome each must reach. */
export const DEMO_CASES: readonly DemoCase[] = [
  { address: 'success@simulator.amazonses.com', expect: 'delivered', note: 'delivered' },
  { address: 'bounce@simulator.amazonses.com', expect: 'bounced', note: 'hard bounce → suppressed' },
  { address: 'ooto@simulator.amazonses.com', expect: 'delivered', note: 'delivered + out-of-office auto-reply' },
  { address: 'complaint@simulator.amazonses.com', expect: 'complained', note: 'complaint → suppressed' },
  { address: 'suppressionlist@simulator.amazonses.com', expect: 'bounced', note: 'on the global suppression list (Permanent/Suppressed)' },
  { address: 'delay@sandbox.ses-lifecycle.test', expect: 'delivered', note: 'delivery delay, then delivered' },
  { address: 'softbounce@sandbox.ses-lifecycle.test', expect: 'delivered', note: 'soft bounce, resent, delivered' },
  { address: 'silent@sandbox.ses-lifecycle.test', expect: 'unconfirmed', note: 'no events: delivery deadline' },
  { address: 'open@sandbox.ses-lifecycle.test', expect: 'delivered', note: 'delivered, then opened' },
  { address: 'click@sandbox.ses-lifecycle.test', expect: 'delivered', note: 'delivered, opened, then a link clicked' },
  { address: 'unsubscribe@sandbox.ses-lifecycle.test', expect: 'delivered', note: 'delivered, then unsubscribed (Subscription)' },
  { address: 'reject@sandbox.ses-lifecycle.test', expect: 'rejected', note: 'rejected as a virus would be (Reject)' },
  { address: 'success@simulator.amazonses.com', expect: 'delivered', note: 'SES template, rendered', template: { key: 'template', data: { case: 'template', name: 'Ada', code: '42' } } },
  { address: 'success@simulator.amazonses.com', expect: 'failed', note: 'SES template without {{code}}: Rendering Failure', template: { key: 'render', data: { case: 'render', name: 'Ada' } } },
];

/**
 * Runs the demo. With `exit`, stops the stack and resolves once every lifecycle settled;
 * otherwise keeps the stack running until SIGINT/SIGTERM.
 *
 * @returns true when every case reached its expected outcome.
 */
export async function runDemo(config: Readonly<Config>, opts: { exit: boolean; out: (s: string) => void; tty?: boolean }): Promise<boolean> {
  const { out } = opts;
  // On a terminal the progress line is rewritten in place; in a log, one line per change.
  const tty = opts.tty ?? process.stdout.isTTY === true;
  // Component logs go to a file so the terminal shows only the demo's progress and table.
  mkdirSync(config.dataDir, { recursive: true });
  const logFile = path.join(config.dataDir, 'demo.log');
  const logger = pino({ level: config.logLevel }, pino.destination({ dest: logFile, sync: true }));
  const stack = await startStack({ config, logger });
  out(`Logs: ${logFile}\n`);
  try {
    out(`Temporal Web UI: ${stack.uiUrl ?? '(external cluster)'}\nWebhook: ${stack.webhookUrl}\n\nSending ${DEMO_CASES.length} tracked emails…\n`);
    const run = Date.now().toString(36);
    // Short durations so the demo settles in seconds (production defaults are hours/days).
    const policy = { deliveryDeadline: '15s', complaintWindow: '2s', resendBackoff: '2s' };
    if (stack.sandbox) {
      // The template rows' template, in the sandbox (kept in DATA_DIR: it may exist already).
      const ses = createSesClient({ region: stack.sandbox.region, endpoint: stack.sandbox.endpoint, credentials: stack.sandbox.credentials });
      try {
        await ses.send(new CreateEmailTemplateCommand(DEMO_TEMPLATE));
      } catch (err) {
        if ((err as { name?: string }).name !== 'AlreadyExistsException') throw err;
      } finally {
        ses.destroy();
      }
    }
    const started = Date.now();
    const emails = await Promise.all(
      DEMO_CASES.map((c) => {
        const [local, domain] = c.address.split('@') as [string, string];
        const key = c.template ? `${run}-${c.template.key}` : run;
        const content = c.template
          ? { template: { name: DEMO_TEMPLATE.TemplateName, data: c.template.data } }
          : { subject: `ses-lifecycle demo: ${local}`, text: `Demo message to ${c.address}.` };
        return stack.lc.sendTracked(
          { from: 'demo@example.com', to: [`${local}+demo-${key}@${domain}`], ...content, tags: { demo: run }, policy },
          { idempotencyKey: `demo-${run}-${c.template ? c.template.key : local}` },
        );
      }),
    );
    const settledAt = new Map<string, number>();
    const finals = new Map<string, LifecycleStatus>();
    const statuses = new Map<string, LifecycleStatus>();
    let lastLine = '';
    while (finals.size < emails.length) {
      await Promise.all(
        emails.map(async (e) => {
          if (finals.has(e.id)) return;
          const s = await e.status();
          statuses.set(e.id, s);
          const r = s.recipients[0];
          if (r && !settledAt.has(e.id) && ['delivered', 'bounced', 'complained', 'unconfirmed', 'suppressed', 'rejected', 'failed'].includes(r.status) && s.phase !== 'resend-backoff') {
            settledAt.set(e.id, Date.now());
          }
          if (s.phase === 'completed') finals.set(e.id, s);
        }),
      );
      const line = emails.map((e, i) => `${DEMO_CASES[i]!.template?.key ?? DEMO_CASES[i]!.address.split('@')[0]}:${statuses.get(e.id)?.recipients[0]?.status ?? '…'}`).join('  ');
      const stamp = `[${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${line}`;
      if (tty) out(`\r${stamp}`.padEnd(160));
      else if (line !== lastLine) out(`${stamp}\n`);
      lastLine = line;
      if (finals.size < emails.length) await new Promise((r) => setTimeout(r, 500));
    }
    out(tty ? '\n\n' : '\n');
    let ok = true;
    const rows = emails.map((e, i) => {
      const c = DEMO_CASES[i]!;
      const s = finals.get(e.id)!;
      const r = s.recipients[0]!;
      const pass = r.status === c.expect;
      ok &&= pass;
      const events = Object.entries(s.eventCounts)
        .map(([k, v]) => (v > 1 ? `${k}×${v}` : k))
        .join(',');
      const t = settledAt.get(e.id);
      return [r.email, `${r.status}${pass ? '' : ` (expected ${c.expect})`}`, events || '—', t ? `${((t - started) / 1000).toFixed(1)}s` : '—', stack.uiUrl ? `${stack.uiUrl}/namespaces/${stack.namespace}/workflows/${e.id}` : e.id];
    });
    const header = ['recipient', 'outcome', 'events seen', 'time to outcome', 'Temporal UI'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const fmt = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
    out([fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n') + '\n\n');
    out(ok ? 'All lifecycles reached their expected outcome.\n' : 'Some lifecycles did not reach their expected outcome.\n');
    if (opts.exit && stack.uiUrl) {
      out(`The stack stops now; the lifecycles stay in ${config.dataDir}/, and \`npm start\` (same DATA_DIR and TEMPORAL_UI_PORT) serves these links again.\n`);
    }
    if (!opts.exit) {
      out('The stack keeps running; open the Temporal Web UI above. Ctrl-C to stop.\n');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
    return ok;
  } finally {
    await stack.stop();
  }
}
