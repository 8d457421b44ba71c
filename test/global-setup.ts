/**
 * vitest globalSetup: one Temporal dev server (in-memory SQLite, free ports, our search
 * attributes) for the whole test run. Test files reach it through `inject('temporalAddress')`,
 * usually via `getTestConnection()` from test/helpers/temporal.ts.
 */
import type { TestProject } from 'vitest/node' with { 'resolution-mode': 'import' };
import { resolveTemporalCli, startDevServer, startDevServerViaSdkDownload, type DevServer, type SearchAttributeType } from '../src/temporal-cli';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    temporalCliPath: string;
  }
}

/** Search attributes registered on the test server (the product's visibility fields). */
export const TEST_SEARCH_ATTRIBUTES: Record<string, SearchAttributeType> = {
  EmailStatus: 'Keyword',
  EmailRecipients: 'KeywordList',
  SesMessageIds: 'KeywordList',
  EmailTags: 'KeywordList',
  LifecycleKind: 'Keyword',
};

const log = (msg: string): void => {
  if (process.env.TEMPORAL_TEST_VERBOSE) console.error(`[global-setup] ${msg}`);
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  // TEMPORAL_CLI_PATH, PATH, the pinned PyPI wheel; on machines with internet, the SDK's download.
  const cli = await resolveTemporalCli({ log });
  let server: DevServer | undefined;
  try {
    server =
      cli.source === 'sdk-download'
        ? await startDevServerViaSdkDownload({ namespace: 'default', searchAttributes: TEST_SEARCH_ATTRIBUTES })
        : await startDevServer({ cliPath: cli.path, namespace: 'default', searchAttributes: TEST_SEARCH_ATTRIBUTES, log });
  } catch (err) {
    throw new Error(`global-setup: could not start the Temporal dev server: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  const s = server;
  console.error(`[global-setup] Temporal dev server ${s.address} (pid ${s.pid}, CLI ${cli.source} ${cli.version ?? ''}) ready in ${Date.now() - started} ms`);
  project.provide('temporalAddress', s.address);
  project.provide('temporalNamespace', s.namespace);
  project.provide('temporalCliPath', cli.path);
  return async () => {
    await s.stop();
  };
}
