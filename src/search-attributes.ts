/**
 * Registers our custom search attributes on a Temporal namespace through the operator service,
 * so the Web UI and `list` can filter by them (e.g. `EmailStatus="bounced"`). Idempotent. The
 * embedded dev server gets them with `--search-attribute` flags instead.
 */
import type { Client } from '@temporalio/client';
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
