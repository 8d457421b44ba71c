/**
 * SES error classification: one table decides what is retried, what is final, and what is
 * ambiguous (the request may have reached SES). Error `type` strings are stable: workflows,
 * metrics and users match on them.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../src/definitions';

/** How the workflow must treat a failed SES call. */
export type ErrorDisposition = 'retry' | 'final' | 'ambiguous';

interface Rule {
  type: ErrorType;
  disposition: ErrorDisposition;
}

/** SES exception names (SESv2 API) → our stable type and disposition. */
const BY_NAME: Record<string, Rule> = {
  TooManyRequestsException: { type: ErrorType.SesThrottled, disposition: 'retry' },
  ThrottlingException: { type: ErrorType.SesThrottled, disposition: 'retry' },
  LimitExceededException: { type: ErrorType.SesLimitExceeded, disposition: 'retry' },
  InternalFailure: { type: ErrorType.SesUnavailable, disposition: 'retry' },
  ServiceUnavailable: { type: ErrorType.SesUnavailable, disposition: 'retry' },
  MessageRejected: { type: ErrorType.SesMessageRejected, disposition: 'final' },
  MailFromDomainNotVerifiedException: { type: ErrorType.SesMailFromDomainNotVerified, disposition: 'final' },
  AccountSuspendedException: { type: ErrorType.SesAccountSuspended, disposition: 'final' },
  SendingPausedException: { type: ErrorType.SesSendingPaused, disposition: 'final' },
  BadRequestException: { type: ErrorType.SesBadRequest, disposition: 'final' },
  NotFoundException: { type: ErrorType.SesNotFound, disposition: 'final' },
  AccessDeniedException: { type: ErrorType.SesAccessDenied, disposition: 'final' },
  UnrecognizedClientException: { type: ErrorType.SesAccessDenied, disposition: 'final' },
  InvalidSignatureException: { type: ErrorType.SesAccessDenied, disposition: 'final' },
};

/** Network error codes raised before any byte of the request could reach SES. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED']);
/** Errors after the request may have been received: the outcome is unknown. */
const AMBIGUOUS_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const AMBIGUOUS_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'AbortError']);

/** The error types that must never be retried by Temporal. */
export const NON_RETRYABLE_TYPES: readonly string[] = [
  ...new Set(Object.values(BY_NAME).filter((r) => r.disposition === 'final').map((r) => r.type)),
  ErrorType.SesAmbiguous,
];

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/** Classifies any error thrown by an SES call. Pure; exported for tests and metrics. */
export function classifySesError(err: unknown): Rule & { status?: number } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as AwsLikeError;
  const status = e.$metadata?.httpStatusCode;
  const withStatus = (r: Rule): Rule & { status?: number } => (status !== undefined ? { ...r, status } : r);
  const byName = e.name !== undefined ? BY_NAME[e.name] : undefined;
  if (byName) return withStatus(byName);
  if (status === 429) return withStatus({ type: ErrorType.SesThrottled, disposition: 'retry' });
  if (status !== undefined && status >= 500) return withStatus({ type: ErrorType.SesUnavailable, disposition: 'retry' });
  if (status !== undefined && status >= 400) return withStatus({ type: ErrorType.SesBadRequest, disposition: 'final' });
  const code = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
  if (code !== undefined && NOT_SENT_CODES.has(code)) return { type: ErrorType.SesUnavailable, disposition: 'retry' };
  if ((code !== undefined && AMBIGUOUS_CODES.has(code)) || (e.name !== undefined && AMBIGUOUS_NAMES.has(e.name))) {
    return { type: ErrorType.SesAmbiguous, disposition: 'ambiguous' };
  }
  // No HTTP response and no recognisable cause: we cannot know whether SES got it.
  return { type: ErrorType.SesAmbiguous, disposition: 'ambiguous' };
}

/**
 * Converts an SES error into an ApplicationFailure with a stable type. `final` and `ambiguous`
 * are non-retryable: the workflow decides (fail the lifecycle, or wait for a Send event).
 */
export function toApplicationFailure(err: unknown, operation: string): ApplicationFailure {
  const c = classifySesError(err);
  const e = (typeof err === 'object' && err !== null ? err : {}) as AwsLikeError;
  const message = `${operation} failed: ${e.name ?? 'Error'}${e.message ? `: ${e.message}` : ''}`.slice(0, 500);
  const details = [{ sesErrorName: e.name ?? null, httpStatus: c.status ?? null, requestId: e.$metadata?.requestId ?? null }];
  return c.disposition === 'retry'
    ? ApplicationFailure.retryable(message, c.type, ...details)
    : ApplicationFailure.nonRetryable(message, c.type, ...details);
}
