/**
 * Registers our custom search attributes on a Temporal namespace through the operator service,
 * so the Web UI and `list` can filter by them (e.g. `EmailStatus="bounced"`). Idempotent. The
 * embedded dev server gets them with `--search-attribute` flags instead.
 */
import type { Client } from '@temporalio/client';
import { msNumberToTs } from '@temporalio/common';
import type { Logger } from 'pino';
import { SEARCH_ATTRIBUTES } from './definitions';

/** temporal.api.enums.v1.IndexedValueType numbers (the proto package is not a direct dependency). */
const INDEXED_VALUE_TYPE = { Keyword: 2, KeywordList: 7 } as const;

/**
 * Adds any of our search attributes the namespace lacks.
 *
 * @throws when the operator service refuses (e.g. Temporal Cloud, where attributes are managed
 *   in the Cloud UI / tcld: the message says so).
 */
export async function ensureSearchAttributes(client: Client, namespace: string, logger?: Pick<Logger, 'info'>): Promise<string[]> {
  const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !have.has(name));
  if (missing.length === 0) return [];
  try {
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED_VALUE_TYPE[type]])),
    });
  } catch (err) {
    throw new Error(
      `could not register search attributes ${missing.map(([n]) => n).join(', ')} on namespace ${namespace}: ${(err as Error).message}. ` +
        'On Temporal Cloud, add them in the Cloud UI or with tcld.',
      { cause: err },
    );
  }
  logger?.info({ added: missing.map(([n]) => n), namespace }, 'registered search attributes');
  return missing.map(([n]) => n);
}

/**
 * Registers `namespace` on a self-hosted cluster when it does not exist yet (what
 * docker-compose.yml's `temporal-setup` job does with `temporal operator namespace create`), and
 * waits until the frontend serves it (a new namespace becomes usable after the server's
 * namespace cache refresh, seconds). Idempotent; returns true when it created the namespace.
 *
 * @throws when the namespace is missing and cannot be registered (e.g. Temporal Cloud, where
 *   namespaces are created in the Cloud UI or with tcld), or it does not become usable within
 *   `readyTimeoutMs`.
 */
export async function ensureNamespace(
  client: Client,
  namespace: string,
  opts: { retentionDays?: number; readyTimeoutMs?: number; logger?: Pick<Logger, 'info'> } = {},
): Promise<boolean> {
  const svc = client.connection.workflowService;
  const exists = async (): Promise<boolean> =>
    svc.describeNamespace({ namespace }).then(
      () => true,
      (err: unknown) => {
        if ((err as { code?: number }).code === 5) return false; // NOT_FOUND
        throw err;
      },
    );
  if (await exists()) return false;
  const retentionSeconds = (opts.retentionDays ?? 7) * 24 * 3600;
  try {
    await svc.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msNumberToTs(retentionSeconds * 1000) });
  } catch (err) {
    if ((err as { code?: number }).code !== 6) {
      // 6 = ALREADY_EXISTS: another process registered it meanwhile.
      throw new Error(`could not register namespace ${namespace}: ${(err as Error).message}. On Temporal Cloud, create it in the Cloud UI or with tcld.`, { cause: err });
    }
  }
  // Served = known to the frontend's namespace cache (refreshed every few seconds), which is what
  // the operator and workflow APIs consult; DescribeNamespace reads the database directly.
  const served = async (): Promise<boolean> =>
    client.connection.operatorService.listSearchAttributes({ namespace }).then(
      () => true,
      (err: unknown) => {
        if ((err as { code?: number }).code === 5) return false;
        throw err;
      },
    );
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  while (!(await served())) {
    if (Date.now() > deadline) throw new Error(`namespace ${namespace} was registered but is not served after ${opts.readyTimeoutMs ?? 60_000} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
  opts.logger?.info({ namespace, retentionDays: retentionSeconds / 86400 }, 'registered namespace');
  return true;
}
