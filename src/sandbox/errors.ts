/**
 * Error types of the sandbox's two wire protocols. Route handlers throw these; the servers'
 * error handlers turn them into the exact wire shapes the AWS SDK v3 deserializes.
 */

/**
 * An SESv2 (restJson1) error. Rendered as HTTP `status`, header `x-amzn-ErrorType: code` and
 * body `{"message": …}`, which the SDK maps to the exception class named `code`
 * (e.g. `TooManyRequestsException`, `NotFoundException`).
 */
export class SesApiError extends Error {
  override readonly name = 'SesApiError';
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Default HTTP status of every SESv2 error code the sandbox emits. */
export const SES_ERROR_STATUS = {
  AccessDeniedException: 403,
  AccountSuspendedException: 400,
  AlreadyExistsException: 400,
  BadRequestException: 400,
  ConcurrentModificationException: 500,
  InternalFailure: 500,
  LimitExceededException: 400,
  MailFromDomainNotVerifiedException: 400,
  MessageRejected: 400,
  NotFoundException: 404,
  SendingPausedException: 400,
  TooManyRequestsException: 429,
  UnknownOperationException: 404,
} as const satisfies Record<string, number>;

/** An SESv2 error code the sandbox emits. */
export type SesErrorCode = keyof typeof SES_ERROR_STATUS;

/** Builds an {@link SesApiError} with the code's default status. */
export function sesError(code: SesErrorCode, message: string): SesApiError {
  return new SesApiError(code, SES_ERROR_STATUS[code], message);
}

/**
 * An SNS (awsQuery) error, rendered as an `ErrorResponse` XML document. `type` is `Sender`
 * for client faults and `Receiver` for server faults.
 */
export class SnsApiError extends Error {
  override readonly name = 'SnsApiError';
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly type: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
  }
}
