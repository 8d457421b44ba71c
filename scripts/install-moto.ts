/**
 * `npm run sqs:install`: installs moto's server (the real SQS of the SQS tests and bench) from
 * PyPI into `.sqs/pip` (see scripts/moto.ts), starts it once to prove it runs, and prints how long
 * that took. Exits non-zero when it cannot: the SQS tests then skip with a WARNING.
 */
import { ensureMoto, MOTO_VERSION, startMoto } from './moto';

async function main(): Promise<void> {
  const started = Date.now();
  const install = await ensureMoto({ log: (m) => console.error(`[sqs:install] ${m}`) });
  const installedMs = Date.now() - started;
  const server = await startMoto(install);
  await server.stop();
  console.log(`moto ${MOTO_VERSION}: ${install.target} (${install.installed ? `installed in ${installedMs} ms` : 'already installed'}; server start checked, ${Date.now() - started} ms in all)`);
}

main().catch((err: unknown) => {
  console.error(`sqs:install failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
