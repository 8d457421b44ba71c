/**
 * The SNS webhook: verify ▶ parse ▶ route SES events into their Temporal lifecycles.
 */
export { buildWebhookApp, metricsRegistriesOf, webhookMetricsOf } from './app';
export { metricsRoute, startMetricsListener, type MetricsListener, type MetricsRouteOptions } from './metrics-listener';
export { startWebhookServer, type MetricsListenOptions, type WebhookServer } from './server';
export { DEFAULT_BODY_LIMIT, DEFAULT_KEEP_ALIVE_TIMEOUT_MS, DEFAULT_REPLAY_WINDOW_MS, MIN_REPLAY_WINDOW_MS, resolveWebhookOptions, type ResolvedWebhookOptions, type WebhookOptions } from './options';
export { EventRouter, isWorkflowGone, visibilityLiteral, type EventRouterOptions, type RecordResult } from './router';
export { INGEST_STAGES, RejectReason, UnavailableReason, WebhookMetrics, type StageTimings, type WebhookCounts } from './metrics';
export { amazonRootCas, DEFAULT_ISSUER_URL_PATTERN, expectedSigningCertNames, fieldWithLineBreak, SIGNED_SINGLE_LINE_FIELDS, SnsVerificationError, SnsVerifier, snsStringToSign, SNS_MESSAGE_TYPES, type SnsEnvelope, type SnsMessageType, type SnsVerifierOptions } from './sns-verify';
export { checkTimestamp, parseSnsBody, type ParsedBody } from './envelope';
export { checkSigningCertUrl, checkSubscribeUrl, DEFAULT_CERT_PATH_PATTERN, DEFAULT_SNS_HOST_PATTERN, type UrlCheck } from './url-checks';
export { TemporalReadiness } from './health';
export { anyOf, signerTrustOptions, type SignerTrust } from './signer-trust';
export type { SnsRouteStatus } from './sns-route';
