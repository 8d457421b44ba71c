/**
 * The SNS webhook: verify ▶ parse ▶ route SES events into their Temporal lifecycles.
 */
export { buildWebhookApp, webhookMetricsOf } from './app';
export { startWebhookServer, type WebhookServer } from './server';
export { DEFAULT_BODY_LIMIT, DEFAULT_REPLAY_WINDOW_MS, MIN_REPLAY_WINDOW_MS, resolveWebhookOptions, type ResolvedWebhookOptions, type WebhookOptions } from './options';
export { EventRouter, isWorkflowGone, visibilityLiteral, type EventRouterOptions, type RecordResult } from './router';
export { RejectReason, UnavailableReason, WebhookMetrics, type WebhookCounts } from './metrics';
export { SnsVerificationError, SnsVerifier, trustExtraCaForCertificateFetches, SNS_MESSAGE_TYPES, type SnsEnvelope, type SnsMessageType } from './sns-verify';
export { checkTimestamp, parseSnsBody, type ParsedBody } from './envelope';
export { checkSigningCertUrl, checkSubscribeUrl, DEFAULT_CERT_PATH_PATTERN, DEFAULT_SNS_HOST_PATTERN, type UrlCheck } from './url-checks';
export { TemporalReadiness } from './health';
export type { SnsRouteStatus } from './sns-route';
