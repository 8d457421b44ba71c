/**
 * The local SES sandbox: an HTTP server that speaks the real SESv2 REST wire format and the SNS
 * Query API (so the real `@aws-sdk/client-sesv2` and `@aws-sdk/client-sns` talk to it unchanged
 * through `endpoint`), plus an SNS side that publishes SES events as really signed SNS HTTP(S)
 * notifications, with SNS's subscription handshake and retry policy. All tests and local
 * development use it; there is no AWS here.
 *
 * ```ts
 * const sandbox = await startSesSandbox({ eventDelayMs: 10 });
 * const ses = new SESv2Client({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials });
 * await sandbox.createConfigurationSet('app', { webhookUrl: 'http://127.0.0.1:3000/sns' });
 * ```
 *
 * Extra HTTP endpoints for tests and other processes: `GET /_sandbox/ledger`,
 * `GET /_sandbox/messages`, `POST /_sandbox/faults` (JSON array of {@link SendFault}),
 * `GET /_sandbox/ca.pem`, `GET /_sandbox/info`, `GET /_sandbox/idle?timeoutMs=…`,
 * `POST /_sandbox/send-rate` (`{"maxSendRate": n}`), `POST /_sandbox/drop` (JSON array of
 * {@link DropRule}: chaos mode that drops SNS deliveries), `GET /_sandbox/dropped`,
 * `GET /_sandbox/insights-stats`.
 */
import { randomBytes } from 'node:crypto';
import { join as joinPath } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { generateSandboxPki } from './certs';
import { SnsApiError, SesApiError } from './errors';
import { HangingResponses, registerSesV2Api } from './ses-api';
import { SesService, type DropRule, type InsightsFault } from './ses-service';
import { registerSnsQueryApi, snsErrorXml } from './sns-api';
import { SnsDelivery } from './sns-delivery';
import { SnsService } from './sns-service';
import { SqsSender } from './sqs-delivery';
import type { SnsMessage, UnsignedSnsMessage } from './sns-signing';
import type { SandboxOptions, SendFault, SesSandbox, SuppressionFault } from './types';
import type { SandboxCredentials } from './sigv4';
import { seededRandom, TimerSet, WorkTracker } from './util';

export type {
  AcceptedMessage,
  DeliveryAttempt,
  DeliveryStatus,
  LedgerEntry,
  MessageHeader,
  SandboxChaosOptions,
  SandboxEventType,
  SandboxLogger,
  SandboxOptions,
  SandboxSnsOptions,
  SendFault,
  SendFaultErrorCode,
  SesSandbox,
  SuppressionFault,
} from './types';
export type { DropRule, DroppedEvent, InsightsFault } from './ses-service';
export { buildSignedSnsMessage, buildStringToSign, signSnsMessage, verifySnsSignature } from './sns-signing';
export type { SnsMessage, SnsMessageType, SnsSignatureVersion, UnsignedSnsMessage } from './sns-signing';
export { SANDBOX_DOMAIN, SIMULATOR_DOMAIN } from './simulator';
export { verifySigV4, type SandboxCredentials } from './sigv4';
export { queuePolicyAllows, type SandboxSqsOptions } from './sqs-delivery';

/**
 * Default credentials of the sandbox (public constants: they keep other tools from calling it by
 * accident, not an attacker on the machine; pass `SandboxOptions.credentials` for a secret pair).
 */
export const SANDBOX_CREDENTIALS: Readonly<SandboxCredentials> = Object.freeze({ accessKeyId: 'AKIASESSANDBOX000000', secretAccessKey: 'ses-sandbox-secret-access-key' });

/** Largest request body accepted (SES raw messages can be large). */
const BODY_LIMIT = 16 * 1024 * 1024;

/** Schema of one {@link SendFault} (for `POST /_sandbox/faults`). */
export const sendFaultSchema: z.ZodType<SendFault> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('throttle') }),
  z.object({
    kind: z.literal('error'),
    code: z.enum([
      'MessageRejected',
      'MailFromDomainNotVerifiedException',
      'AccountSuspendedException',
      'SendingPausedException',
      'BadRequestException',
      'LimitExceededException',
      'NotFoundException',
    ]),
    status: z.number().int().min(400).max(599).optional(),
    message: z.string().max(1000).optional(),
  }),
  z.object({ kind: z.literal('internal') }),
  z.object({ kind: z.literal('accept-then-hang'), hangMs: z.number().int().min(0).max(600_000) }),
  z.object({ kind: z.literal('accept-then-reset') }),
  z.object({ kind: z.literal('reset-before-accept') }),
]);

/** Schema of one {@link DropRule} (for `POST /_sandbox/drop`). */
export const dropRuleSchema: z.ZodType<DropRule> = z.object({
  recipients: z.array(z.string().min(3).max(320)).max(1000).optional(),
  eventTypes: z.array(z.enum(['Send', 'Delivery', 'Bounce', 'Complaint', 'DeliveryDelay', 'Reject'])).max(6).optional(),
  probability: z.number().min(0).max(1).optional(),
});

const insightsFaultSchema: z.ZodType<InsightsFault> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('access-denied') }),
  z.object({ kind: z.literal('not-found') }),
  z.object({ kind: z.literal('internal') }),
]);

const suppressionFaultSchema: z.ZodType<SuppressionFault> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('delay'), ms: z.number().int().min(0).max(600_000) }),
  z.object({ kind: z.literal('access-denied') }),
  z.object({ kind: z.literal('internal') }),
  z.object({ kind: z.literal('reset') }),
]);

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(`SandboxOptions.${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}`);
  }
  return v;
}

/** Replaces Fastify's JSON parser: an empty body is `{}` (the SDK sends none for some calls). */
function jsonAndFormParsers(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, {});
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(new SesApiError('BadRequestException', 400, 'Request body is not valid JSON.'), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, typeof body === 'string' ? body : body.toString('utf8'));
  });
}

/** One error handler for both servers: SES JSON under /v2, SNS XML at /, plain JSON elsewhere. */
function errorHandler(logger: SandboxOptions['logger']) {
  return (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = req.url.split('?')[0] ?? '';
    const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (err instanceof SnsApiError || (path === '/' && !(err instanceof SesApiError))) {
      const e = err instanceof SnsApiError ? err : new SnsApiError(status < 500 ? 'InvalidParameter' : 'InternalFailure', status, err.message);
      return reply.status(e.status).type('text/xml').send(snsErrorXml(e));
    }
    if (err instanceof SesApiError || path.startsWith('/v2/')) {
      const e = err instanceof SesApiError ? err : status < 500 ? new SesApiError('BadRequestException', status, err.message) : new SesApiError('InternalFailure', 500, err.message);
      if (e.status >= 500 && !(err instanceof SesApiError)) logger?.error({ err, path }, 'sandbox internal error');
      return reply.status(e.status).header('x-amzn-ErrorType', e.code).type('application/json').send(JSON.stringify({ message: e.message }));
    }
    if (status >= 500) logger?.error({ err, path }, 'sandbox internal error');
    return reply.status(status).type('application/json').send(JSON.stringify({ error: err.message }));
  };
}

function notFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = req.url.split('?')[0] ?? '';
  const message = `The SES sandbox does not implement ${req.method} ${path}`;
  if (path.startsWith('/v2/')) {
    return reply.status(404).header('x-amzn-ErrorType', 'UnknownOperationException').type('application/json').send(JSON.stringify({ message }));
  }
  return reply.status(404).type('application/json').send(JSON.stringify({ error: message }));
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts the sandbox: generates its PKI, listens on the HTTP and HTTPS ports, and returns the
 * handle. Close it with {@link SesSandbox.close}.
 *
 * @throws {Error} for invalid options, or when a port cannot be bound.
 */
export async function startSesSandbox(opts: SandboxOptions = {}): Promise<SesSandbox> {
  const host = opts.host ?? '127.0.0.1';
  const region = opts.region ?? 'us-east-1';
  const accountId = opts.accountId ?? '123456789012';
  if (!/^\d{12}$/.test(accountId)) throw new Error(`SandboxOptions.accountId must be 12 digits, got ${accountId}`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new Error(`SandboxOptions.region is not an AWS region name: ${region}`);
  const signatureVersion = opts.signatureVersion ?? '1';
  if (signatureVersion !== '1' && signatureVersion !== '2') throw new Error(`SandboxOptions.signatureVersion must be '1' or '2'`);
  const policy = {
    retries: positive('sns.retries', opts.sns?.retries, 3, true),
    retryDelayMs: positive('sns.retryDelayMs', opts.sns?.retryDelayMs, 20_000, true),
    timeoutMs: positive('sns.timeoutMs', opts.sns?.timeoutMs, 15_000),
    maxInFlight: positive('sns.maxInFlight', opts.sns?.maxInFlight, 64),
  };
  const duplicateProbability = opts.chaos?.duplicateProbability ?? 0;
  if (!(duplicateProbability >= 0 && duplicateProbability <= 1)) throw new Error('SandboxOptions.chaos.duplicateProbability must be within [0, 1]');
  const rand = seededRandom(opts.chaos?.seed ?? 1);
  const logger = opts.logger;
  const credentials = opts.credentials ?? SANDBOX_CREDENTIALS;
  if (!/^[A-Z0-9]{16,128}$/.test(credentials.accessKeyId) || credentials.secretAccessKey.length < 8) {
    throw new Error('SandboxOptions.credentials: accessKeyId must be 16-128 upper-case letters or digits, secretAccessKey at least 8 characters');
  }
  // Who may call the SNS API: the sandbox's credentials only.
  const acceptedCredentials = [credentials];

  const pki = await generateSandboxPki(host === '127.0.0.1' || host === '::1' || host === 'localhost' ? [] : [host]);
  const work = new WorkTracker();
  const timers = new TimerSet();
  const certFile = `SimpleNotificationService-${randomBytes(16).toString('hex')}.pem`;

  const http = Fastify({ bodyLimit: BODY_LIMIT, forceCloseConnections: true, logger: false });
  const https = Fastify({ bodyLimit: 1024 * 1024, forceCloseConnections: true, logger: false, https: { key: pki.server.keyPem, cert: pki.server.certPem } });

  let closed = false;
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled([http.close(), https.close()]);
  };

  // Ports are known only after listen(), but routes must be registered before it: the URLs
  // that embed the HTTPS port are filled in right after listening, before any request.
  const urls = { endpoint: '', httpsOrigin: '', certHost: '', signingCertUrl: '' };
  if (opts.sqs !== undefined && !/^https?:\/\/[^/]+\/?$/.test(opts.sqs.endpoint)) throw new Error(`SandboxOptions.sqs.endpoint must be an http(s) origin, got ${opts.sqs.endpoint}`);
  const sqsSender = opts.sqs !== undefined ? new SqsSender({ ...opts.sqs, region, defaultCredentials: credentials }) : undefined;
  const delivery = new SnsDelivery(policy, work, logger, pki.ca.certPem, sqsSender);
  const sns = new SnsService(
    {
      region,
      accountId,
      urls,
      signingKeyPem: pki.signing.keyPem,
      signatureVersion,
      duplicateProbability,
      rand,
      logger,
      sqsEnabled: sqsSender !== undefined,
    },
    delivery,
  );
  const dropProbability = opts.chaos?.dropProbability ?? 0;
  if (!(dropProbability >= 0 && dropProbability <= 1)) throw new Error('SandboxOptions.chaos.dropProbability must be within [0, 1]');
  const ses = new SesService(
    {
      region,
      accountId,
      maxSendRate: positive('maxSendRate', opts.maxSendRate, 14),
      max24HourSend: positive('max24HourSend', opts.max24HourSend, 50_000),
      accountSuppression: opts.accountSuppression ?? true,
      eventDelayMs: positive('eventDelayMs', opts.eventDelayMs, 50, true),
      insightsRatePerSecond: positive('insightsRatePerSecond', opts.insightsRatePerSecond, 1),
      reorder: opts.chaos?.reorder ?? false,
      rand,
      logger,
      ...(opts.stateDir !== undefined ? { stateFile: joinPath(opts.stateDir, 'sandbox-state.json') } : {}),
    },
    sns,
    timers,
    work,
  );
  if (dropProbability > 0) ses.setDropRules([{ probability: dropProbability }]);
  const hangs = new HangingResponses(timers);

  // HTTP: SESv2 + SNS Query API + sandbox control endpoints.
  jsonAndFormParsers(http);
  http.setErrorHandler(errorHandler(logger));
  http.setNotFoundHandler(notFoundHandler);
  http.addHook('onSend', (_req, reply, payload, done) => {
    void reply.header('x-amzn-RequestId', randomBytes(16).toString('hex'));
    done(null, payload);
  });
  registerSesV2Api(http, ses, hangs, positive('suppressionDelayMs', opts.suppressionDelayMs, 0, true));
  registerSnsQueryApi(http, sns, accountId, acceptedCredentials);

  http.get('/_sandbox/ledger', () => delivery.ledger());
  http.get('/_sandbox/messages', () => ses.sentMessages());
  http.get('/_sandbox/ca.pem', (_req, reply) => reply.type('application/x-pem-file').send(pki.ca.certPem));
  http.get('/_sandbox/info', () => ({ ...urls, region, accountId }));
  http.post('/_sandbox/faults', (req, reply) => {
    const r = z.array(sendFaultSchema).safeParse(req.body);
    if (!r.success) return reply.status(400).send({ error: `invalid faults: ${z.prettifyError(r.error)}` });
    ses.injectFaults(r.data);
    return { queued: r.data.length };
  });
  http.post('/_sandbox/drop', (req, reply) => {
    const r = z.array(dropRuleSchema).max(100).safeParse(req.body);
    if (!r.success) return reply.status(400).send({ error: `invalid drop rules: ${z.prettifyError(r.error)}` });
    ses.setDropRules(r.data);
    return { rules: r.data.length };
  });
  http.get('/_sandbox/dropped', () => ses.droppedEvents());
  http.get('/_sandbox/insights-stats', () => ses.insightsStats());
  http.post('/_sandbox/send-rate', (req, reply) => {
    const r = z.object({ maxSendRate: z.number().positive() }).safeParse(req.body);
    if (!r.success) return reply.status(400).send({ error: `invalid body: ${z.prettifyError(r.error)}` });
    ses.setMaxSendRate(r.data.maxSendRate);
    return { maxSendRate: r.data.maxSendRate };
  });
  http.get('/_sandbox/idle', async (req, reply) => {
    const t = Number((req.query as Record<string, string | undefined>).timeoutMs ?? 30_000);
    try {
      await work.waitIdle(Number.isFinite(t) && t > 0 ? Math.min(t, 600_000) : 30_000);
      return { idle: true };
    } catch (err) {
      return reply.status(504).send({ idle: false, error: (err as Error).message });
    }
  });

  // HTTPS: the signing certificate, SubscribeURL/UnsubscribeURL (GET /?Action=…), SNS API.
  jsonAndFormParsers(https);
  https.setErrorHandler(errorHandler(logger));
  https.setNotFoundHandler(notFoundHandler);
  https.get(`/${certFile}`, (_req, reply) => reply.type('application/x-x509-ca-cert').send(pki.signing.certPem));
  https.get('/_sandbox/ca.pem', (_req, reply) => reply.type('application/x-pem-file').send(pki.ca.certPem));
  registerSnsQueryApi(https, sns, accountId, acceptedCredentials);

  try {
    await https.listen({ host, port: opts.httpsPort ?? 0 });
    await http.listen({ host, port: opts.port ?? 0 });
  } catch (err) {
    await closeAll();
    throw err;
  }
  const httpsPort = (https.server.address() as { port: number }).port;
  const httpPort = (http.server.address() as { port: number }).port;
  const certHost = `localhost:${httpsPort}`;
  const httpsOrigin = `https://${certHost}`;
  const endpoint = `http://${hostForUrl(host)}:${httpPort}`;
  const signingCertUrl = `${httpsOrigin}/${certFile}`;
  Object.assign(urls, { endpoint, httpsOrigin, certHost, signingCertUrl });

  const createConfigurationSet = (
    name: string,
    o: { webhookUrl: string; topicName?: string; rawMessageDelivery?: boolean } | { queueArn: string; topicName?: string; rawMessageDelivery?: boolean },
  ): { topicArn: string; subscriptionArn: string } => {
    let protocol = 'sqs';
    let subEndpoint: string;
    if ('webhookUrl' in o) {
      let url: URL;
      try {
        url = new URL(o.webhookUrl);
      } catch {
        throw new Error(`createConfigurationSet: webhookUrl is not a URL: ${o.webhookUrl}`);
      }
      protocol = url.protocol.replace(/:$/, '');
      if (protocol !== 'http' && protocol !== 'https') throw new Error(`createConfigurationSet: webhookUrl must be http(s): ${o.webhookUrl}`);
      subEndpoint = o.webhookUrl;
    } else {
      subEndpoint = o.queueArn;
    }
    try {
      // Idempotent: a configuration set restored from the state file (a restart on the same
      // DATA_DIR) is kept and its `sns` destination pointed at this run's topic.
      if (!ses.hasConfigurationSet(name)) ses.createConfigurationSet({ ConfigurationSetName: name });
      const topic = sns.createTopic(o.topicName ?? `${name}-events`);
      const sub = sns.subscribe(topic.arn, protocol, subEndpoint, o.rawMessageDelivery ? { RawMessageDelivery: 'true' } : {});
      const destination = {
        Enabled: true,
        MatchingEventTypes: ['SEND', 'REJECT', 'BOUNCE', 'COMPLAINT', 'DELIVERY', 'OPEN', 'CLICK', 'RENDERING_FAILURE', 'DELIVERY_DELAY', 'SUBSCRIPTION'],
        SnsDestination: { TopicArn: topic.arn },
      };
      if (ses.hasEventDestination(name, 'sns')) ses.updateEventDestination(name, 'sns', { EventDestination: destination });
      else ses.createEventDestination(name, { EventDestinationName: 'sns', EventDestination: destination });
      return { topicArn: topic.arn, subscriptionArn: sub.arn };
    } catch (err) {
      if (err instanceof SesApiError || err instanceof SnsApiError) throw new Error(`createConfigurationSet(${name}): ${err.code}: ${err.message}`, { cause: err });
      throw err;
    }
  };

  const sandbox: SesSandbox = {
    endpoint,
    httpsOrigin,
    caCertPem: pki.ca.certPem,
    certHost,
    signingCertUrl,
    region,
    accountId,
    credentials: { ...credentials },

    createConfigurationSet: (name, o) => Promise.resolve().then(() => createConfigurationSet(name, o)),
    waitForSubscriptionConfirmed(topicArn, timeoutMs = 10_000) {
      if (closed) return Promise.reject(new Error('sandbox is closed'));
      return sns.waitForConfirmed(topicArn, timeoutMs);
    },
    sentMessages: () => ses.sentMessages(),
    ledger: () => delivery.ledger(),
    waitForIdle: (timeoutMs = 30_000) => work.waitIdle(timeoutMs),
    injectSendFaults(faults) {
      ses.injectFaults(faults.map((f) => sendFaultSchema.parse(f)));
    },
    injectSuppressionFaults(faults) {
      ses.injectSuppressionFaults(faults.map((f) => suppressionFaultSchema.parse(f)));
    },
    setMaxSendRate: (n) => ses.setMaxSendRate(n),
    dropDeliveries(rules) {
      ses.setDropRules(rules.map((r) => dropRuleSchema.parse(r)));
    },
    droppedEvents: () => ses.droppedEvents(),
    redeliverDropped: () => ses.redeliverDropped(),
    injectInsightsFaults(faults) {
      ses.injectInsightsFaults(faults.map((f) => insightsFaultSchema.parse(f)));
    },
    insightsStats: () => ses.insightsStats(),
    signMessage: (msg: UnsignedSnsMessage, version?: '1' | '2'): SnsMessage => sns.sign(msg, version),
    async close() {
      if (closed) return;
      closed = true;
      // Waiters first, so they are rejected rather than released by the work being cancelled.
      work.close();
      sns.close();
      timers.close();
      delivery.close();
      await closeAll();
      logger?.info({ endpoint }, 'ses sandbox closed');
    },
  };

  logger?.info({ endpoint, httpsOrigin, region, accountId }, 'ses sandbox listening');
  return sandbox;
}
