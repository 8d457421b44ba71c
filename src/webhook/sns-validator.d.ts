/**
 * Minimal types for `sns-validator` (AWS's standalone SNS message validator), which ships none.
 * Only what `sns-verify.ts` uses.
 */
declare module 'sns-validator' {
  class MessageValidator {
    /** `hostPattern` is tested against the certificate URL's `host` (hostname[:port]). */
    constructor(hostPattern?: RegExp, encoding?: string);
    validate(message: Record<string, unknown> | string, cb: (err: Error | null, message?: Record<string, unknown>) => void): void;
  }
  export = MessageValidator;
}
