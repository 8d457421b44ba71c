/**
 * Activities: every side effect of a lifecycle (SES calls, app callbacks). Built by a factory
 * that receives its clients, so tests pass real clients pointed at the local SES sandbox.
 */
import { log } from '@temporalio/activity';
import {
  GetMessageInsightsCommand,
  GetSuppressedDestinationCommand,
  PutSuppressedDestinationCommand,
  SendEmailCommand,
  type SESv2Client,
  type SendEmailCommandInput,
} from '@aws-sdk/client-sesv2';
import { ApplicationFailure } from '@temporalio/common';
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { CALLBACK_HEADERS, CallbackDestinationError, checkCallbackUrl, guardedLookup, signCallback } from '../src/callbacks';
import { ErrorType, LIFECYCLE_HEADER, LIFECYCLE_TAG, type CallbackPayload, type EmailMessage } from '../src/definitions';
import { normalizeAddress, type SesEvent } from '../src/lifecycle';
import { workerMetrics } from '../src/metrics';
import { classifySesError, toApplicationFailure } from './ses-errors';

/** Dependencies of the activities. */
export interface ActivityDeps {
  ses: SESv2Client;
  /** Default configuration set for sends that name none. */
  configurationSetName?: string;
  /** HMAC secret for app callbacks (never in workflow history). Callbacks fail without it. */
  callbackSecret?: string;
  /** Timeout of one callback POST. Default 10 s. */
  callbackTimeoutMs?: number;
  /** Callback hosts allowed to be loopback/private/link-local (`CALLBACK_ALLOWED_HOSTS`). */
  callbackAllowedHosts?: readonly string[];
  /** Refuse http callback URLs (aws mode). Default false. */
  callbackRequireHttps?: boolean;
}

/** Input of {@link createActivities}' `sendEmail`. */
export interface SendEmailInput {
  lifecycleId: string;
  attempt: number;
  message: EmailMessage;
  /** Recipients of this attempt (a resend goes only to the soft-bounced ones). */
  recipients: { to: string[]; cc: string[]; bcc: string[] };
  configurationSetName?: string;
  checkSuppression: boolean;
}

/** Result of `sendEmail`. `sesMessageId` is absent when every recipient was suppressed. */
export interface SendEmailResult {
  sesMessageId?: string;
  sentTo: string[];
  suppressed: string[];
}

/** Result of `fetchMessageInsights`: the message's insights as lifecycle events (source `insights`). */
export interface MessageInsightsResult {
  sesMessageId: string;
  events: SesEvent[];
  /** Why nothing could be read (the message is unknown to insights, e.g. VDM off or too old). */
  unavailable?: string;
}

/** Insights types that become lifecycle events (engagement is not repaired: tallies cannot tell which opens they hold). */
const INSIGHTS_TYPES: Readonly<Record<string, SesEvent['type']>> = {
  SEND: 'Send',
  DELIVERY: 'Delivery',
  BOUNCE: 'Bounce',
  COMPLAINT: 'Complaint',
  REJECT: 'Reject',
  RENDERING_FAILURE: 'Rendering Failure',
  DELIVERY_DELAY: 'DeliveryDelay',
};
const BOUNCE_TYPES: Readonly<Record<string, 'Permanent' | 'Transient' | 'Undetermined'>> = { PERMANENT: 'Permanent', TRANSIENT: 'Transient', UNDETERMINED: 'Undetermined' };

/** Converts one GetMessageInsights answer into lifecycle events (rule 13). Pure; exported for tests. */
export function insightsToEvents(sesMessageId: string, lifecycleId: string | undefined, out: { Insights?: { Destination?: string; Events?: { Timestamp?: Date; Type?: string; Details?: { Bounce?: { BounceType?: string; BounceSubType?: string; DiagnosticCode?: string }; Complaint?: { ComplaintSubType?: string; ComplaintFeedbackType?: string } } }[] }[] }): SesEvent[] {
  const events: SesEvent[] = [];
  for (const insight of (out.Insights ?? []).slice(0, 50)) {
    if (!insight.Destination) continue;
    const recipient = normalizeAddress(insight.Destination);
    for (const ev of (insight.Events ?? []).slice(0, 100)) {
      const type = ev.Type !== undefined ? INSIGHTS_TYPES[ev.Type] : undefined;
      if (type === undefined || !(ev.Timestamp instanceof Date) || Number.isNaN(ev.Timestamp.getTime())) continue;
      const timestamp = ev.Timestamp.toISOString();
      const b = ev.Details?.Bounce;
      const c = ev.Details?.Complaint;
      const bounce = type === 'Bounce' ? { type: BOUNCE_TYPES[b?.BounceType ?? ''] ?? 'Undetermined', subType: (b?.BounceSubType ?? 'Undetermined').slice(0, 128), ...(b?.DiagnosticCode ? { diagnosticCodes: { [recipient]: b.DiagnosticCode.slice(0, 1000) } } : {}) } : undefined;
      const id = `ins-${createHash('sha256').update([sesMessageId, type, recipient, timestamp, bounce?.type ?? ''].join('\u0000')).digest('hex').slice(0, 32)}`;
      events.push({
        id,
        type,
        sesMessageId,
        timestamp,
        recipients: [recipient],
        source: 'insights',
        ...(lifecycleId !== undefined ? { lifecycleId } : {}),
        ...(bounce ? { bounce } : {}),
        ...(type === 'Complaint' ? { complaint: { ...(c?.ComplaintFeedbackType ? { feedbackType: c.ComplaintFeedbackType.slice(0, 128) } : {}), ...(c?.ComplaintSubType ? { subType: c.ComplaintSubType.slice(0, 128) } : {}) } } : {}),
      });
    }
  }
  return events;
}

/** SES EmailTag values allow only ASCII letters, digits, `_ - . @`. */
export function toTagValue(value: string): string {
  return value.replace(/[^A-Za-z0-9_\-.@]/g, '_').slice(0, 256);
}

/**
 * Creates the activity implementations.
 *
 * @throws nothing at creation; each activity throws ApplicationFailure with a stable type
 *   (see `ErrorType` and `activities/ses-errors.ts`).
 */
export function createActivities(deps: ActivityDeps) {
  const { ses } = deps;

  async function isSuppressed(email: string): Promise<boolean> {
    try {
      await ses.send(new GetSuppressedDestinationCommand({ EmailAddress: email }));
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'NotFoundException') return false;
      // The pre-send lookup happens before anything is sent: a timeout or reset here is never
      // ambiguous, so it is retried like throttling (only a final refusal stays final).
      const c = classifySesError(err);
      workerMetrics.sesErrors.inc({ type: c.type, operation: 'GetSuppressedDestination' });
      if (c.disposition === 'final') throw toApplicationFailure(err, 'GetSuppressedDestination');
      throw ApplicationFailure.retryable(
        `GetSuppressedDestination failed before sending: ${(err as Error).name}`,
        c.disposition === 'ambiguous' ? ErrorType.SesUnavailable : c.type,
      );
    }
  }

  return {
    /**
     * Checks the account suppression list, then sends the email through SESv2 SendEmail with
     * our lifecycle id as EmailTag and header. Runs once per schedule (the workflow owns
     * retries): a failure whose outcome is unknown (timeout, connection reset, worker crash)
     * must not be retried blindly, because SendEmail has no idempotency token.
     */
    async sendEmail(input: SendEmailInput): Promise<SendEmailResult> {
      const all = [...input.recipients.to, ...input.recipients.cc, ...input.recipients.bcc];
      const suppressed: string[] = [];
      if (input.checkSuppression) {
        const flags = await Promise.all(all.map((r) => isSuppressed(r)));
        all.forEach((r, i) => flags[i] && suppressed.push(r));
      }
      const keep = (list: string[]) => list.filter((r) => !suppressed.includes(r));
      const to = keep(input.recipients.to);
      const cc = keep(input.recipients.cc);
      const bcc = keep(input.recipients.bcc);
      const sentTo = [...to, ...cc, ...bcc];
      if (sentTo.length === 0) {
        workerMetrics.sends.inc({ outcome: 'suppressed-skip' });
        log.info('all recipients suppressed; SendEmail not called', { lifecycleId: input.lifecycleId, suppressed });
        return { sentTo, suppressed };
      }

      const m = input.message;
      const headers = [{ Name: LIFECYCLE_HEADER, Value: input.lifecycleId }, ...Object.entries(m.headers ?? {}).map(([Name, Value]) => ({ Name, Value }))];
      const userTags = Object.entries(m.tags ?? {}).map(([Name, Value]) => ({ Name, Value: toTagValue(Value) }));
      const configurationSetName = input.configurationSetName ?? deps.configurationSetName;
      const command: SendEmailCommandInput = {
        FromEmailAddress: m.from,
        Destination: { ToAddresses: to, ...(cc.length ? { CcAddresses: cc } : {}), ...(bcc.length ? { BccAddresses: bcc } : {}) },
        ...(m.replyTo?.length ? { ReplyToAddresses: m.replyTo } : {}),
        Content: m.template
          ? // A stored SES template (SESv2 Content.Template); SES renders it with TemplateData.
            { Template: { TemplateName: m.template.name, TemplateData: JSON.stringify(m.template.data), Headers: headers } }
          : {
              Simple: {
                Subject: { Data: m.subject ?? '', Charset: 'UTF-8' },
                Body: {
                  ...(m.text !== undefined ? { Text: { Data: m.text, Charset: 'UTF-8' } } : {}),
                  ...(m.html !== undefined ? { Html: { Data: m.html, Charset: 'UTF-8' } } : {}),
                },
                Headers: headers,
              },
            },
        EmailTags: [{ Name: LIFECYCLE_TAG, Value: toTagValue(input.lifecycleId) }, { Name: 'lifecycle-attempt', Value: String(input.attempt) }, ...userTags],
        ...(configurationSetName ? { ConfigurationSetName: configurationSetName } : {}),
      };

      const started = Date.now();
      try {
        const out = await ses.send(new SendEmailCommand(command));
        if (!out.MessageId) throw ApplicationFailure.nonRetryable('SendEmail returned no MessageId', ErrorType.SesAmbiguous);
        workerMetrics.sendLatency.observe((Date.now() - started) / 1000);
        workerMetrics.sends.inc({ outcome: 'accepted' });
        log.info('SendEmail accepted', {
          lifecycleId: input.lifecycleId,
          sesMessageId: out.MessageId,
          attempt: input.attempt,
          recipients: sentTo.length,
          ms: Date.now() - started,
        });
        return { sesMessageId: out.MessageId, sentTo, suppressed };
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        const c = classifySesError(err);
        workerMetrics.sesErrors.inc({ type: c.type, operation: 'SendEmail' });
        workerMetrics.sends.inc({ outcome: 'error' });
        log.warn('SendEmail failed', { lifecycleId: input.lifecycleId, errorType: c.type, disposition: c.disposition, error: (err as Error).name });
        throw toApplicationFailure(err, 'SendEmail');
      }
    },

    /**
     * Reads SESv2 GetMessageInsights for one SES message (one call per activity, so the task
     * queue's rate limit is the API call rate; see `createInsightsWorker`). NotFoundException
     * (insights unknown: VDM off, message too old) is an answer, not a failure; throttling and
     * 5xx are retried by Temporal; AccessDenied and other refusals are final.
     */
    async fetchMessageInsights(input: { sesMessageId: string; lifecycleId: string }): Promise<MessageInsightsResult> {
      try {
        const out = await ses.send(new GetMessageInsightsCommand({ MessageId: input.sesMessageId }));
        const tag = out.EmailTags?.find((t) => t.Name === LIFECYCLE_TAG)?.Value;
        const events = insightsToEvents(input.sesMessageId, tag, out);
        log.info('message insights read', { lifecycleId: input.lifecycleId, sesMessageId: input.sesMessageId, events: events.length });
        return { sesMessageId: input.sesMessageId, events };
      } catch (err) {
        if ((err as { name?: string }).name === 'NotFoundException') return { sesMessageId: input.sesMessageId, events: [], unavailable: 'NotFoundException: SES has no insights for this message' };
        const c = classifySesError(err);
        workerMetrics.sesErrors.inc({ type: c.type, operation: 'GetMessageInsights' });
        // A read: an unknown outcome is simply retried.
        if (c.disposition === 'ambiguous') throw ApplicationFailure.retryable(`GetMessageInsights failed: ${(err as Error).name}`, ErrorType.SesUnavailable);
        throw toApplicationFailure(err, 'GetMessageInsights');
      }
    },

    /** Adds an address to the SES account suppression list (idempotent). */
    async suppressAddress(input: { email: string; reason: 'BOUNCE' | 'COMPLAINT'; lifecycleId: string }): Promise<{ suppressed: string; reason: 'BOUNCE' | 'COMPLAINT' }> {
      try {
        await ses.send(new PutSuppressedDestinationCommand({ EmailAddress: input.email, Reason: input.reason }));
        log.info('address suppressed', { lifecycleId: input.lifecycleId, reason: input.reason });
        // A JSON result (not void's binary/null payload) so the Web UI shows what was done.
        return { suppressed: input.email, reason: input.reason };
      } catch (err) {
        const c = classifySesError(err);
        workerMetrics.sesErrors.inc({ type: c.type, operation: 'PutSuppressedDestination' });
        // PutSuppressedDestination is idempotent: an unknown outcome (reset, timeout) is simply
        // retried. Only a final refusal (AccessDenied, BadRequest) ends it; the workflow records it.
        if (c.disposition === 'ambiguous') {
          throw ApplicationFailure.retryable(`PutSuppressedDestination failed: ${(err as Error).name}`, ErrorType.SesUnavailable);
        }
        throw toApplicationFailure(err, 'PutSuppressedDestination');
      }
    },

    /**
     * POSTs a signed state change to the app's callback URL. 2xx = done; 408/429/5xx and network
     * errors are retried by Temporal; other 4xx mean the app refuses it for good, and so does a
     * destination that is not allowed (userinfo, loopback/private/link-local address, checked
     * again at each POST on the addresses the connection uses).
     */
    async notifyCallback(input: { url: string; payload: CallbackPayload }): Promise<{ status: number }> {
      if (!deps.callbackSecret) {
        throw ApplicationFailure.nonRetryable('callbacks need CALLBACK_SECRET on the worker', ErrorType.CallbackRejected);
      }
      const check = checkCallbackUrl(input.url, {
        ...(deps.callbackAllowedHosts !== undefined ? { allowedHosts: deps.callbackAllowedHosts } : {}),
        ...(deps.callbackRequireHttps !== undefined ? { requireHttps: deps.callbackRequireHttps } : {}),
      });
      if (!check.ok) throw ApplicationFailure.nonRetryable(`callbackUrl refused: ${check.reason}`, ErrorType.CallbackRejected);
      const body = JSON.stringify(input.payload);
      const timestamp = Math.floor(Date.now() / 1000);
      let status: number;
      try {
        status = await postCallback(check.url, check.allowedHost, body, deps.callbackTimeoutMs ?? 10_000, {
          'content-type': 'application/json',
          'user-agent': 'ses-lifecycle-callback/1',
          [CALLBACK_HEADERS.eventId]: input.payload.eventId,
          [CALLBACK_HEADERS.timestamp]: String(timestamp),
          [CALLBACK_HEADERS.signature]: signCallback(deps.callbackSecret, timestamp, body),
        });
      } catch (err) {
        if (err instanceof CallbackDestinationError) throw ApplicationFailure.nonRetryable(`callbackUrl refused: ${err.message}`, ErrorType.CallbackRejected);
        throw ApplicationFailure.retryable(`callback POST failed: ${(err as Error).name}`, 'CallbackUnreachable');
      }
      if (status >= 200 && status < 300) return { status };
      if (status === 408 || status === 429 || status >= 500) {
        throw ApplicationFailure.retryable(`callback answered ${status}`, 'CallbackUnavailable');
      }
      throw ApplicationFailure.nonRetryable(`callback answered ${status}`, ErrorType.CallbackRejected);
    },
  };
}

/**
 * One callback POST: no redirects followed, the response body drained and discarded, the whole
 * exchange bounded by `timeoutMs`, and the destination's addresses checked as they are resolved.
 *
 * @throws {CallbackDestinationError} when the host resolves to a forbidden address.
 */
function postCallback(url: URL, allowedHost: boolean, body: string, timeoutMs: number, headers: Record<string, string>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      lookup: guardedLookup(allowedHost),
      signal: AbortSignal.timeout(timeoutMs),
      agent: false,
    });
    req.on('response', (res) => {
      res.on('error', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.resume();
    });
    req.on('error', (err) => reject(err));
    req.end(body);
  });
}

/** The activity interface the workflow proxies. */
export type Activities = ReturnType<typeof createActivities>;
