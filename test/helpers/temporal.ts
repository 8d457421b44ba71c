/**
 * Test-side access to the Temporal dev server started by test/global-setup.ts.
 *
 *   const { client, connection, namespace } = await getTestConnection();
 *   const taskQueue = uniqueTaskQueue('lifecycle');
 *
 * The connection is cached per test file (each file runs in its own module graph) and closed by
 * an afterAll hook that this module registers when a test file imports it.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, inject } from 'vitest';

export interface TestConnection {
  address: string;
  namespace: string;
  connection: Connection;
  client: Client;
}

let cached: Promise<TestConnection> | undefined;

// Registered when a test file imports this module (during collection), so it runs once after
// that file's tests. Inside a running test it would be too late to register a hook.
afterAll(async () => {
  const current = cached;
  cached = undefined;
  const tc = await current?.catch(() => undefined);
  await tc?.connection.close();
});

export function getTestAddress(): string {
  return inject('temporalAddress');
}

export function getTestNamespace(): string {
  return inject('temporalNamespace');
}

/** Connection + Client for the shared test server; created on first use, once per test file. */
export function getTestConnection(): Promise<TestConnection> {
  if (!cached) {
    const address = getTestAddress();
    const namespace = getTestNamespace();
    const created = (async () => {
      const connection = await Connection.connect({ address });
      const client = new Client({ connection, namespace });
      return { address, namespace, connection, client };
    })();
    cached = created;
    created.catch(() => {
      if (cached === created) cached = undefined; // let a later call retry
    });
  }
  return cached;
}

/** A task queue name no other test (or test run) uses: `${prefix}-<uuid>`. */
export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`;
}
