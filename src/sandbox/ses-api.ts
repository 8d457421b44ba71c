/**
 * SESv2 REST routes (restJson1, under `/v2/email/…`) over {@link SesService}, matching the paths
 * and methods `@aws-sdk/client-sesv2` sends. SendEmail also applies injected {@link SendFault}s.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SES_ERROR_STATUS, SesApiError, sesError } from './errors';
import { z } from 'zod';
import { parseInput, type SesService } from './ses-service';
import { templateContentSchema } from './templates';
import type { SendFault } from './types';
import type { TimerSet } from './util';

type Query = Record<string, string | string[] | undefined>;

const templateBodySchema = z.looseObject({ TemplateContent: templateContentSchema });

function first(q: Query, name: string): string | undefined {
  const v = q[name];
  return Array.isArray(v) ? v[0] : v;
}

function all(q: Query, name: string): string[] {
  const v = q[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Parses an httpQuery timestamp: ISO 8601 (the SDK's default) or epoch seconds. */
function dateParam(q: Query, name: string): number | undefined {
  const v = first(q, name);
  if (v === undefined || v === '') return undefined;
  const ms = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (Number.isNaN(ms)) throw sesError('BadRequestException', `Invalid ${name}: ${v}`);
  return ms;
}

function intParam(q: Query, name: string): number | undefined {
  const v = first(q, name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw sesError('BadRequestException', `Invalid ${name}: ${v}`);
  return n;
}

function param(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}

const DEFAULT_FAULT_MESSAGES: Readonly<Record<string, string>> = {
  MessageRejected: 'Email address is not verified. The following identities failed the check in region US-EAST-1: sandbox',
  MailFromDomainNotVerifiedException: 'The MAIL FROM domain is not verified.',
  AccountSuspendedException: 'The account has been suspended from sending email.',
  SendingPausedException: 'Sending is paused for this account.',
  BadRequestException: 'Bad request (injected fault).',
  LimitExceededException: 'Limit exceeded (injected fault).',
  NotFoundException: 'Resource not found (injected fault).',
};

/** Pending `accept-then-hang` responses, so close() can cut them short. */
export class HangingResponses {
  constructor(private readonly timers: TimerSet) {}

  /** Resolves after `ms`, or at close (the timer set cancels; the socket is destroyed by the server). */
  wait(ms: number, req: FastifyRequest): Promise<void> {
    return new Promise((resolve) => {
      const socket = req.raw.socket;
      const done = (): void => {
        socket.off('close', done);
        resolve();
      };
      socket.once('close', done);
      this.timers.schedule(ms, done);
    });
  }
}

function destroySocket(req: FastifyRequest, reply: FastifyReply): void {
  reply.hijack();
  req.raw.socket.destroy();
}

/**
 * Applies a fault that must answer before anything is accepted. Returns `true` when the
 * request has been dealt with (socket destroyed); throws the fault's error otherwise.
 */
function applyPreAcceptFault(fault: SendFault, req: FastifyRequest, reply: FastifyReply): boolean {
  switch (fault.kind) {
    case 'throttle':
      throw sesError('TooManyRequestsException', 'Maximum sending rate exceeded.');
    case 'error':
      throw new SesApiError(fault.code, fault.status ?? SES_ERROR_STATUS[fault.code], fault.message ?? DEFAULT_FAULT_MESSAGES[fault.code] ?? fault.code);
    case 'internal':
      throw sesError('InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.');
    case 'reset-before-accept':
      destroySocket(req, reply);
      return true;
    case 'accept-then-hang':
    case 'accept-then-reset':
      return false;
    default: {
      const never: never = fault;
      throw new Error(`unknown fault ${JSON.stringify(never)}`);
    }
  }
}

/** Registers every SESv2 route. */
export function registerSesV2Api(app: FastifyInstance, ses: SesService, hangs: HangingResponses, suppressionDelayMs = 0): void {
  app.post('/v2/email/outbound-emails', async (req, reply) => {
    const fault = ses.takeFault();
    if (fault && applyPreAcceptFault(fault, req, reply)) return reply;
    const accepted = ses.sendEmail(req.body, req.ip);
    if (fault?.kind === 'accept-then-reset') {
      destroySocket(req, reply);
      return reply;
    }
    if (fault?.kind === 'accept-then-hang') {
      await hangs.wait(fault.hangMs, req);
      if (req.raw.socket.destroyed) {
        reply.hijack();
        return reply;
      }
    }
    return reply.send({ MessageId: accepted.sesMessageId });
  });

  app.get('/v2/email/account', () => ses.getAccount());
  // GetMessageInsights (the SDK sends `/v2/email/insights/{MessageId}/`, with the trailing slash).
  app.get('/v2/email/insights/:MessageId', (req) => ses.getMessageInsights(param(req, 'MessageId')));
  app.get('/v2/email/insights/:MessageId/', (req) => ses.getMessageInsights(param(req, 'MessageId')));

  // Suppression list.
  app.put('/v2/email/suppression/addresses', async (req, reply) => {
    const fault = ses.takeSuppressionFault();
    const delay = (fault?.kind === 'delay' ? fault.ms : 0) + suppressionDelayMs;
    if (delay > 0) await hangs.wait(delay, req);
    switch (fault?.kind) {
      case 'access-denied':
        throw sesError('AccessDeniedException', 'User is not authorized to perform: ses:PutSuppressedDestination');
      case 'internal':
        throw sesError('InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.');
      case 'reset':
        destroySocket(req, reply);
        return reply;
      default:
        break;
    }
    if (req.raw.socket.destroyed) {
      reply.hijack();
      return reply;
    }
    ses.putSuppressed(req.body);
    return reply.send({});
  });
  app.get('/v2/email/suppression/addresses', (req) => {
    const q = req.query as Query;
    const reasons = all(q, 'Reason');
    for (const r of reasons) {
      if (r !== 'BOUNCE' && r !== 'COMPLAINT') throw sesError('BadRequestException', `Invalid Reason: ${r}`);
    }
    const startDate = dateParam(q, 'StartDate');
    const endDate = dateParam(q, 'EndDate');
    const nextToken = first(q, 'NextToken');
    const pageSize = intParam(q, 'PageSize');
    return ses.listSuppressed({
      reasons,
      ...(startDate !== undefined ? { startDate } : {}),
      ...(endDate !== undefined ? { endDate } : {}),
      ...(nextToken !== undefined ? { nextToken } : {}),
      ...(pageSize !== undefined ? { pageSize } : {}),
    });
  });
  app.get('/v2/email/suppression/addresses/:EmailAddress', (req) => ses.getSuppressed(param(req, 'EmailAddress')));
  app.delete('/v2/email/suppression/addresses/:EmailAddress', (req) => {
    ses.deleteSuppressed(param(req, 'EmailAddress'));
    return {};
  });

  // Identities: the sandbox sends from any address, so every identity reads as verified.
  app.get('/v2/email/identities/:EmailIdentity', (req) => {
    const id = param(req, 'EmailIdentity');
    return {
      IdentityType: id.includes('@') ? 'EMAIL_ADDRESS' : 'DOMAIN',
      FeedbackForwardingStatus: true,
      VerifiedForSendingStatus: true,
      VerificationStatus: 'SUCCESS',
      DkimAttributes: { SigningEnabled: !id.includes('@'), Status: id.includes('@') ? 'NOT_STARTED' : 'SUCCESS' },
    };
  });

  // Email templates (CreateEmailTemplate, GetEmailTemplate, UpdateEmailTemplate, DeleteEmailTemplate, ListEmailTemplates).
  app.post('/v2/email/templates', (req) => {
    const b = parseInput(templateBodySchema.extend({ TemplateName: z.string() }), req.body, 'CreateEmailTemplate');
    ses.templates.create(b.TemplateName, b.TemplateContent);
    return {};
  });
  app.get('/v2/email/templates', (req) => {
    const q = req.query as Query;
    return ses.templates.list(first(q, 'NextToken'), intParam(q, 'PageSize'));
  });
  app.get('/v2/email/templates/:TemplateName', (req) => {
    const t = ses.templates.get(param(req, 'TemplateName'));
    return { TemplateName: t.TemplateName, TemplateContent: t.TemplateContent };
  });
  app.put('/v2/email/templates/:TemplateName', (req) => {
    const b = parseInput(templateBodySchema, req.body, 'UpdateEmailTemplate');
    ses.templates.update(param(req, 'TemplateName'), b.TemplateContent);
    return {};
  });
  app.delete('/v2/email/templates/:TemplateName', (req) => {
    ses.templates.delete(param(req, 'TemplateName'));
    return {};
  });

  // Configuration sets.
  app.post('/v2/email/configuration-sets', (req) => {
    ses.createConfigurationSet(req.body);
    return {};
  });
  const list = (body: unknown, q: Query): Record<string, unknown> => {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { NextToken?: unknown; PageSize?: unknown };
    const token = typeof b.NextToken === 'string' ? b.NextToken : first(q, 'NextToken');
    const size = typeof b.PageSize === 'number' ? b.PageSize : intParam(q, 'PageSize');
    return ses.listConfigurationSets(token, size);
  };
  // Current SDKs POST to /list-configuration-sets; older ones GET the collection.
  app.post('/v2/email/list-configuration-sets', (req) => list(req.body, req.query as Query));
  app.get('/v2/email/configuration-sets', (req) => list(undefined, req.query as Query));
  app.get('/v2/email/configuration-sets/:ConfigurationSetName', (req) => ses.getConfigurationSet(param(req, 'ConfigurationSetName')));
  app.delete('/v2/email/configuration-sets/:ConfigurationSetName', (req) => {
    ses.deleteConfigurationSet(param(req, 'ConfigurationSetName'));
    return {};
  });
  app.post('/v2/email/configuration-sets/:ConfigurationSetName/event-destinations', (req) => {
    ses.createEventDestination(param(req, 'ConfigurationSetName'), req.body);
    return {};
  });
  app.get('/v2/email/configuration-sets/:ConfigurationSetName/event-destinations', (req) => ses.getEventDestinations(param(req, 'ConfigurationSetName')));
  app.put('/v2/email/configuration-sets/:ConfigurationSetName/event-destinations/:EventDestinationName', (req) => {
    ses.updateEventDestination(param(req, 'ConfigurationSetName'), param(req, 'EventDestinationName'), req.body);
    return {};
  });
  app.delete('/v2/email/configuration-sets/:ConfigurationSetName/event-destinations/:EventDestinationName', (req) => {
    ses.deleteEventDestination(param(req, 'ConfigurationSetName'), param(req, 'EventDestinationName'));
    return {};
  });
}
