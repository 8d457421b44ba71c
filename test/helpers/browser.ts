/**
 * Headless Chromium for browser tests, driven by playwright-core with the system browser (the
 * Debian package `chromium`, installed by .ci/run; playwright's own CDN download is never used).
 * Tests that need it skip when {@link chromiumMissingReason} answers.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The Chromium binary: `CHROMIUM_PATH`, else the Debian package's `/usr/bin/chromium`. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Flags for a quiet, self-contained headless run (no sandbox: CI runs as root in a container). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where browser tests put their screenshots (kept by CI as artifacts). */
export const ARTIFACTS_DIR = path.join(__dirname, '..', '..', 'test-artifacts');

/** Why browser tests cannot run here, or undefined when they can. */
export function chromiumMissingReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  return (
    `Chromium not found at ${CHROMIUM_PATH}: skipping the Temporal Web UI browser test. ` +
    'Install it with "apt-get install chromium" (.ci/run does this in CI) or set CHROMIUM_PATH.'
  );
}

/** Launches headless Chromium (a fresh temporary profile each time). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

export interface LocalPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and failed requests of the allowed origin, for failure messages. */
  problems: string[];
}

/**
 * A page in a new context that may only reach `allowedOrigin` (e.g. the Temporal UI): every other
 * request (the UI's news feed, telemetry) is aborted at once, so the test never waits on the
 * internet and never leaves the machine.
 */
export async function openLocalPage(browser: Browser, allowedOrigin: string, viewport = { width: 1600, height: 1000 }): Promise<LocalPage> {
  const origin = new URL(allowedOrigin).origin;
  const context = await browser.newContext({ viewport, colorScheme: 'light', timezoneId: 'UTC', locale: 'en-US' });
  const problems: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    const local = url.startsWith(`${origin}/`) || url === origin || url.startsWith('data:') || url.startsWith('blob:') || url === 'about:srcdoc';
    return local ? route.continue() : route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('ERR_BLOCKED_BY_CLIENT')) problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    if (r.url().startsWith(origin)) problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? '?'})`);
  });
  return { context, page, problems };
}

/**
 * Where the screenshots the README shows go: docs/screenshots/ when `UPDATE_DOCS_SCREENSHOTS=1`
 * (`npm run docs:screenshots`), else test-artifacts/ like the others (a normal test run never
 * rewrites committed files).
 */
export const DOCS_SHOTS = process.env.UPDATE_DOCS_SCREENSHOTS === '1' ? path.join(__dirname, '..', '..', 'docs', 'screenshots') : ARTIFACTS_DIR;

/** Saves a full-page screenshot under `dir` (test-artifacts/ by default) and returns its path. */
export async function screenshot(page: Page, name: string, dir = ARTIFACTS_DIR): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
