import { defineConfig } from 'vitest/config';

/**
 * `npm run test:cluster`: the real Temporal server on PostgreSQL with two workers and two webhooks
 * (test/cluster/). One file, run alone: it starts and kills processes of its own.
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    // Only the workflow bundle: the cluster test starts its own Temporal server, not the dev server.
    globalSetup: ['test/global-bundle.ts'],
    // Scenarios wait on progress (test/helpers/wait.ts); these only stop a hang outright.
    testTimeout: 30 * 60_000,
    hookTimeout: 30 * 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
