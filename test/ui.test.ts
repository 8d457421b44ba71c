/**
 * The Temporal Web UI as the inspection surface, checked in a real browser: headless Chromium
 * (Debian package, driven by playwright-core) opens the UI of a dev server started WITH the UI
 * (the shared test server is headless), filters the workflow list by our search attribute
 * `EmailStatus="bounced"`, follows the lifecycle's link and reads its user metadata: the static
 * summary and details set by sendTracked(), and the current details the workflow keeps up to
 * date (rendered by the UI through the __temporal_workflow_metadata query, so our worker answers).
 * It also checks what a support engineer sees without opening a tab: our search attributes as list
 * columns, the lifecycle's headline first in its Result, activity and timer summaries in the
 * timeline, and an orphan lifecycle's page. Screenshots go to test-artifacts/, or to
 * docs/screenshots/ (the ones the README shows) with `npm run docs:screenshots`. Skips, saying
 * why, where Chromium is absent.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import pino from 'pino';
import { loadConfig } from '../src/config';
import type { LifecycleResult } from '../src/definitions';
import { orphanWorkflowId, SEARCH_ATTRIBUTES } from '../src/definitions';
import { startStack, type RunningStack } from '../src/stack';
import { freePorts, startDevServer, startDevServerViaSdkDownload, type DevServer } from '../src/temporal-cli';
import { chromiumMissingReason, DOCS_SHOTS, launchChromium, openLocalPage, screenshot, type LocalPage } from './helpers/browser';
import { signedSesNotification } from '../bench/sns';
import { quietRuntime } from './helpers/stack';
import { sesEventJson } from './helpers/ses-json';
import { loadFactor } from './helpers/wait';
import { uniqueTaskQueue } from './helpers/temporal';

const missing = chromiumMissingReason();
if (missing) console.warn(`[ui.test] ${missing}`);

const UI_TIMEOUT = 15_000;
// Message lifecycles only: the orphan this test creates is bounced too.
const BOUNCED_QUERY = 'EmailStatus="bounced" AND LifecycleKind="message"';

describe('Temporal Web UI (headless Chromium)', () => {
  let server: DevServer | undefined;
  let stack: RunningStack | undefined;
  let browser: Browser | undefined;
  let ui: LocalPage | undefined;
  let uiUrl = '';
  const label = `ui${Date.now()}`;
  const bounceTo = `bounce+${label}@simulator.amazonses.com`;
  const successTo = `success+${label}@simulator.amazonses.com`;
  let bounced: { id: string; result: LifecycleResult };
  let delivered: { id: string; result: LifecycleResult };
  const orphanSesId = `0100ui${Date.now()}-orphan-000000`;

  beforeAll(async () => {
    if (missing) return;
    quietRuntime();
    // Our own dev server with the UI (the global one runs --headless), same search attributes.
    const cliPath = inject('temporalCliPath');
    server = cliPath
      ? await startDevServer({ cliPath, ui: true, namespace: 'default', searchAttributes: SEARCH_ATTRIBUTES })
      : await startDevServerViaSdkDownload({ ui: true, uiPort: (await freePorts(1))[0]!, namespace: 'default', searchAttributes: SEARCH_ATTRIBUTES });
    if (!server.uiUrl) throw new Error('the dev server did not report a UI URL');
    uiUrl = server.uiUrl;

    stack = await startStack({
      config: loadConfig({ LOG_LEVEL: 'warn', SES_CONFIGURATION_SET: 'ui-test' }),
      temporal: { address: server.address, namespace: server.namespace },
      taskQueue: uniqueTaskQueue('ui'),
      webhookPort: 0,
      sandbox: { port: 0, httpsPort: 0, maxSendRate: 100, sns: { retryDelayMs: 200 } },
      workflowBundle: { codePath: inject('workflowBundlePath') },
      logger: pino({ level: process.env.TEMPORAL_TEST_VERBOSE ? 'info' : 'silent' }),
    });
    const lc = stack.lc;
    const send = (to: string, subject: string) =>
      lc.sendTracked({
        from: 'app@example.com',
        to: [to],
        subject,
        text: 'Checking the Temporal Web UI.',
        tags: { suite: 'ui' },
        policy: { deliveryDeadline: '6s', complaintWindow: '1s' },
      });
    const [b, s] = await Promise.all([send(bounceTo, `UI check ${label} bounce`), send(successTo, `UI check ${label} success`)]);
    const [br, sr] = await Promise.all([b.result(), s.result()]);
    bounced = { id: b.id, result: br };
    delivered = { id: s.id, result: sr };
    expect(br.status).toBe('bounced');
    expect(sr.status).toBe('delivered');

    // An SES event of a message no lifecycle sent, posted to the webhook signed as SNS would:
    // it becomes an orphan lifecycle named after the SES message id.
    const post = signedSesNotification(stack.sandbox!, stack.topicArn!, sesEventJson('Bounce', { messageId: orphanSesId, recipients: [`orphan+${label}@example.com`], at: new Date().toISOString() }));
    const res = await fetch(stack.webhookUrl, { method: 'POST', headers: post.headers, body: post.body });
    expect(res.status).toBe(200);

    // Visibility is eventually consistent: wait until the filter the UI will run finds the lifecycle.
    const deadline = Date.now() + 10_000 * loadFactor();
    for (;;) {
      const ids: string[] = [];
      for await (const wf of stack.client.workflow.list({ query: BOUNCED_QUERY })) ids.push(wf.workflowId);
      if (ids.includes(bounced.id)) break;
      if (Date.now() > deadline) throw new Error(`visibility never listed ${bounced.id} for ${BOUNCED_QUERY} (got ${ids.join(', ') || 'nothing'})`);
      await new Promise((r) => setTimeout(r, 200));
    }

    browser = await launchChromium();
    ui = await openLocalPage(browser, uiUrl);
  });

  afterAll(async () => {
    await ui?.context.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await stack?.stop();
    await server?.stop();
  });

  /** Runs a browser step; on failure saves a screenshot and adds the page's errors to the message. */
  async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const shot = ui ? await screenshot(ui.page, `ui-failure-${name}.png`).catch(() => 'none') : 'none';
      const problems = ui?.problems.length ? `\npage problems:\n  ${ui.problems.slice(-10).join('\n  ')}` : '';
      throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}\nscreenshot: ${shot}${problems}`, { cause: err });
    }
  }

  it.skipIf(Boolean(missing))('lists the bounced lifecycle, and only it, under EmailStatus="bounced"', async () => {
    const { page } = ui!;
    await step('workflow-list', async () => {
      await page.goto(`${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(BOUNCED_QUERY)}`);
      const rows = page.getByTestId('workflows-summary-configurable-table-row');
      // Its row links to the lifecycle by its readable id (msg-...).
      await rows.getByRole('link', { name: bounced.id, exact: true }).waitFor({ timeout: UI_TIMEOUT });
      const text = await rows.allInnerTexts();
      expect(text).toHaveLength(1);
      expect(text[0]).toContain('messageLifecycle');
      expect(await page.locator('body').innerText()).not.toContain(delivered.id);
      // A support engineer adds our search attributes as columns (Configure Columns, kept by the
      // browser): the row then shows the email's status and recipients.
      await page.getByTestId('workflows-summary-table-configuration-button').click({ timeout: UI_TIMEOUT });
      const column = (name: string) => page.locator('li, div[role="listitem"], [data-testid*="column"]').filter({ hasText: new RegExp(`^\\s*${name}\\s*$`) }).first();
      for (const name of ['Run ID', 'End']) await column(name).getByRole('button').last().click({ timeout: UI_TIMEOUT });
      for (const name of ['EmailStatus', 'EmailRecipients']) await column(name).getByRole('button').first().click({ timeout: UI_TIMEOUT });
      await page.getByRole('button', { name: /close/i }).filter({ visible: true }).first().click({ timeout: UI_TIMEOUT });
      await rows.filter({ hasText: bounceTo }).filter({ hasText: 'bounced' }).waitFor({ timeout: UI_TIMEOUT });
      await screenshot(page, 'ui-workflows-bounced-filter.png', DOCS_SHOTS);
    });
  });

  it.skipIf(Boolean(missing))('shows the lifecycle\'s summary, details and current details', async () => {
    const { page } = ui!;
    const subject = `UI check ${label} bounce`;
    const sesMessageId = bounced.result.sesMessageIds[0]!;
    expect(sesMessageId).toBeTruthy();
    await step('workflow-page', async () => {
      // From the filtered list, follow the link, as a person would.
      await page.goto(`${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(BOUNCED_QUERY)}`);
      await page.getByRole('link', { name: bounced.id, exact: true }).click({ timeout: UI_TIMEOUT });
      await page.waitForURL(new RegExp(`/workflows/${bounced.id}/[^/]+/`), { timeout: UI_TIMEOUT });
      await page.getByTestId('workflow-id-heading').filter({ hasText: bounced.id }).waitFor({ timeout: UI_TIMEOUT });
      // The first page says what happened without opening a tab: the Result panel starts with
      // the lifecycle's headline, the timeline names each activity and timer.
      const main = page.locator('main');
      await main.filter({ hasText: `Email bounced (completed): ${bounceTo} bounced (Permanent/General, smtp; 550 5.1.1 user unknown, suppressed)` }).waitFor({ timeout: UI_TIMEOUT });
      for (const t of ['SendEmail to 1 recipient (attempt 1)', `Suppress ${bounceTo} (hard bounce)`]) await main.filter({ hasText: t }).waitFor({ timeout: UI_TIMEOUT });
      expect(await main.innerText()).not.toMatch(/"payloads"|"data":\s*"[A-Za-z0-9+/=]{8,}"/);
      await screenshot(page, 'ui-bounced-lifecycle-first-page.png', DOCS_SHOTS);

      await page.getByRole('tab', { name: 'User Metadata' }).click({ timeout: UI_TIMEOUT });
      await page.waitForURL(/\/user-metadata$/, { timeout: UI_TIMEOUT });
      // The UI renders each markdown field in its own iframe (/render?content=...).
      const frameBody = (id: string) => page.frameLocator(`#${id}`).locator('body');
      const expectText = async (id: string, texts: string[]) => {
        for (const t of texts) await frameBody(id).filter({ hasText: t }).waitFor({ timeout: UI_TIMEOUT });
      };
      // Static summary (one line) and static details (markdown), set at start by sendTracked().
      await expectText('user-metadata-summary', [`To ${bounceTo}: ${subject}`]);
      await expectText('user-metadata-details', ['From: app@example.com', `To: ${bounceTo}`, `Subject: ${subject}`, 'Tags: suite=ui']);
      // Current details, kept by the workflow (setCurrentDetails): state, recipient row, events.
      await expectText('user-metadata-current-details', ['Email: bounced', 'phase: completed', bounceTo, 'Permanent/General', sesMessageId, 'Bounce', 'suppressed']);
      const current = await frameBody('user-metadata-current-details').innerText();
      expect(current).not.toContain('delivered');
      await screenshot(page, 'ui-bounced-lifecycle-user-metadata.png', DOCS_SHOTS);
    });
  });

  it.skipIf(Boolean(missing))('shows an orphan lifecycle: its SES message id, what it did, and its details', async () => {
    const { page } = ui!;
    const workflowId = orphanWorkflowId(orphanSesId);
    const { runId } = await stack!.client.workflow.getHandle(workflowId).describe();
    await step('orphan-page', async () => {
      // A running orphan has no result yet: its first page names it after the SES message id,
      // shows that id in its input, and the timeline says what it did (suppression, idle timer).
      await page.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}`);
      await page.getByTestId('workflow-id-heading').filter({ hasText: orphanSesId }).waitFor({ timeout: UI_TIMEOUT });
      const main = page.locator('main');
      for (const t of [`"sesMessageId": "${orphanSesId}"`, `Suppress orphan+${label}@example.com (hard bounce)`, 'orphan idle timeout']) {
        await main.filter({ hasText: t }).waitFor({ timeout: UI_TIMEOUT });
      }
      await screenshot(page, 'ui-orphan-lifecycle.png', DOCS_SHOTS);
      await page.getByRole('tab', { name: 'User Metadata' }).click({ timeout: UI_TIMEOUT });
      const frame = (id: string) => page.frameLocator(`#${id}`).locator('body');
      await frame('user-metadata-summary').filter({ hasText: `Orphan SES events for message ${orphanSesId}` }).waitFor({ timeout: UI_TIMEOUT });
      for (const t of ['Orphan events: bounced', `SES message ids: ${orphanSesId}`, `orphan+${label}@example.com: bounced`]) {
        await frame('user-metadata-current-details').filter({ hasText: t }).waitFor({ timeout: UI_TIMEOUT });
      }
    });
  });
});
