/**
 * ses-lifecycle public API: the client, the worker and webhook builders, the lifecycle rules
 * and shared definitions.
 */
export {
  LifecycleClient,
  TrackedEmail,
  InvalidEmailInputError,
  IdempotencyKeyConflictError,
  validateSendInput,
  lifecycleIdFor,
  MAX_RECIPIENTS,
  MAX_BODY_CHARS,
  type ConnectOptions,
  type SendTrackedInput,
  type SendTrackedOptions,
} from './client';
export { verifyCallbackSignature, signCallback, CALLBACK_HEADERS } from './callbacks';
export * from './definitions';
export * from './lifecycle';
export { parseSesEvent, parseSesEventText, SesEventParseError, type SesParseResult } from './ses-events';
export { createLifecycleWorker, createSesClient, WORKFLOWS_PATH, type LifecycleWorkerOptions, type SesClientOptions } from './worker';
export { createInsightsWorker, type InsightsWorkerOptions } from './worker';
export { buildWebhookApp, signerTrustOptions, startWebhookServer, type SignerTrust, type WebhookOptions, type WebhookServer } from './webhook';
export { startSqsIngest, SqsIngestMetrics, SQS_MAX_RETENTION_MS, type SqsIngest, type SqsIngestCounts, type SqsIngestOptions } from './sqs-ingest';
export { loadConfig, ConfigError, type Config } from './config';
export { startStack, type RunningStack, type StackOptions } from './stack';
export { startSesSandbox, SANDBOX_CREDENTIALS, SANDBOX_DOMAIN, SIMULATOR_DOMAIN, type SandboxOptions, type SesSandbox } from './sandbox';
export { ensureSearchAttributes } from './search-attributes';
