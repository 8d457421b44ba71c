/**
 * The SNS Query API (awsQuery: form-encoded `Action=…` requests, XML responses) over the
 * sandbox's {@link SnsService}, in the exact shapes `@aws-sdk/client-sns` parses. Served as
 * `POST /` (form body) and `GET /?Action=…` (how SubscribeURL and UnsubscribeURL work).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SnsApiError } from './errors';
import type { SnsService, Subscription, Topic } from './sns-service';
import { verifySigV4, type SandboxCredentials } from './sigv4';
import { requestId, xmlEscape } from './util';

const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';

function el(name: string, value: string): string {
  return `<${name}>${xmlEscape(value)}</${name}>`;
}

function response(action: string, result?: string): string {
  const res = result !== undefined ? `<${action}Result>${result}</${action}Result>` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}">${res}<ResponseMetadata>${el('RequestId', requestId())}</ResponseMetadata></${action}Response>`;
}

/** Renders an SNS error document. */
export function snsErrorXml(err: SnsApiError): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${NS}"><Error>${el('Type', err.type)}${el('Code', err.code)}${el('Message', err.message)}</Error>${el('RequestId', requestId())}</ErrorResponse>`;
}

function attributesXml(attrs: Record<string, string>): string {
  return `<Attributes>${Object.entries(attrs)
    .map(([k, v]) => `<entry>${el('key', k)}${el('value', v)}</entry>`)
    .join('')}</Attributes>`;
}

/** Reads `Prefix.entry.N.key/value` (awsQuery map encoding) into an object. */
function readMap(params: URLSearchParams, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; i <= 100; i++) {
    const key = params.get(`${prefix}.entry.${i}.key`);
    if (key === null) break;
    out[key] = params.get(`${prefix}.entry.${i}.value`) ?? '';
  }
  return out;
}

function required(params: URLSearchParams, name: string): string {
  const v = params.get(name);
  if (v === null || v === '') throw new SnsApiError('InvalidParameter', 400, `Invalid parameter: ${name} is required`);
  return v;
}

function subscriptionMember(s: Subscription, owner: string): string {
  return `<member>${el('Owner', owner)}${el('Endpoint', s.endpoint)}${el('Protocol', s.protocol)}${el('SubscriptionArn', s.confirmed ? s.arn : 'PendingConfirmation')}${el('TopicArn', s.topicArn)}</member>`;
}

function topicAttributes(t: Topic, accountId: string): Record<string, string> {
  const subs = [...t.subscriptions.values()];
  return {
    TopicArn: t.arn,
    Owner: accountId,
    DisplayName: t.displayName,
    SignatureVersion: t.signatureVersion,
    SubscriptionsConfirmed: String(subs.filter((s) => s.confirmed).length),
    SubscriptionsPending: String(subs.filter((s) => !s.confirmed).length),
    SubscriptionsDeleted: String(t.deletedSubscriptions),
    Policy: JSON.stringify({
      Version: '2008-10-17',
      Id: '__default_policy_ID',
      Statement: [{ Sid: '__default_statement_ID', Effect: 'Allow', Principal: { AWS: '*' }, Action: ['SNS:Publish', 'SNS:Subscribe'], Resource: t.arn, Condition: { StringEquals: { 'AWS:SourceOwner': accountId } } }],
    }),
    EffectiveDeliveryPolicy: JSON.stringify({
      http: { defaultHealthyRetryPolicy: { minDelayTarget: 20, maxDelayTarget: 20, numRetries: 3, numMaxDelayRetries: 0, numNoDelayRetries: 0, numMinDelayRetries: 0, backoffFunction: 'linear' }, disableSubscriptionOverrides: false },
    }),
  };
}

/**
 * Executes one SNS Query API action and returns the XML response.
 *
 * @throws {SnsApiError} InvalidParameter, NotFound, or InvalidAction for unsupported actions.
 */
export function handleSnsAction(sns: SnsService, accountId: string, params: URLSearchParams): string {
  const action = params.get('Action');
  switch (action) {
    case 'CreateTopic': {
      const attrs = readMap(params, 'Attributes');
      const t = sns.createTopic(required(params, 'Name'), attrs.DisplayName ?? '', attrs);
      return response(action, el('TopicArn', t.arn));
    }
    case 'DeleteTopic':
      sns.deleteTopic(required(params, 'TopicArn'));
      return response(action);
    case 'ListTopics':
      return response(action, `<Topics>${sns
        .listTopics()
        .map((t) => `<member>${el('TopicArn', t.arn)}</member>`)
        .join('')}</Topics>`);
    case 'SetTopicAttributes':
      sns.setTopicAttribute(required(params, 'TopicArn'), required(params, 'AttributeName'), params.get('AttributeValue') ?? '');
      return response(action);
    case 'GetTopicAttributes':
      return response(action, attributesXml(topicAttributes(sns.getTopic(required(params, 'TopicArn')), accountId)));
    case 'Subscribe': {
      const sub = sns.subscribe(required(params, 'TopicArn'), required(params, 'Protocol'), required(params, 'Endpoint'), readMap(params, 'Attributes'));
      const returnArn = params.get('ReturnSubscriptionArn') === 'true';
      return response(action, el('SubscriptionArn', sub.confirmed || returnArn ? sub.arn : 'pending confirmation'));
    }
    case 'ConfirmSubscription': {
      const sub = sns.confirmSubscription(required(params, 'TopicArn'), required(params, 'Token'));
      return response(action, el('SubscriptionArn', sub.arn));
    }
    case 'ListSubscriptionsByTopic': {
      const t = sns.getTopic(required(params, 'TopicArn'));
      return response(action, `<Subscriptions>${[...t.subscriptions.values()].map((s) => subscriptionMember(s, accountId)).join('')}</Subscriptions>`);
    }
    case 'ListSubscriptions':
      return response(action, `<Subscriptions>${sns
        .listTopics()
        .flatMap((t) => [...t.subscriptions.values()])
        .map((s) => subscriptionMember(s, accountId))
        .join('')}</Subscriptions>`);
    case 'Unsubscribe':
      sns.unsubscribe(required(params, 'SubscriptionArn'));
      return response(action);
    case 'GetSubscriptionAttributes': {
      const s = sns.getSubscription(required(params, 'SubscriptionArn'));
      return response(action, attributesXml({
        SubscriptionArn: s.arn,
        TopicArn: s.topicArn,
        Owner: accountId,
        Protocol: s.protocol,
        Endpoint: s.endpoint,
        PendingConfirmation: String(!s.confirmed),
        ConfirmationWasAuthenticated: String(s.confirmed),
        RawMessageDelivery: String(s.rawMessageDelivery),
      }));
    }
    case 'SetSubscriptionAttributes':
      sns.setSubscriptionAttribute(required(params, 'SubscriptionArn'), required(params, 'AttributeName'), params.get('AttributeValue') ?? '');
      return response(action);
    case 'Publish': {
      const topicArn = required(params, 'TopicArn');
      sns.getTopic(topicArn);
      const message = required(params, 'Message');
      if (Buffer.byteLength(message) > 256 * 1024) throw new SnsApiError('InvalidParameter', 400, 'Invalid parameter: Message too long');
      const subject = params.get('Subject');
      const id = sns.publish(topicArn, message, { eventType: null, sesMessageId: null, recipients: [] }, subject ?? undefined);
      return response(action, el('MessageId', id));
    }
    case null:
      throw new SnsApiError('MissingAction', 400, 'Missing Action parameter');
    default:
      throw new SnsApiError('InvalidAction', 400, `The action ${action} is not valid for this endpoint (not implemented by the SES sandbox).`);
  }
}

/** Actions a `GET /?Action=…` may perform without a signature: the SubscribeURL and UnsubscribeURL links SNS sends. */
const LINK_ACTIONS = new Set(['ConfirmSubscription', 'Unsubscribe']);
/** Actions that only read. */
const READ_ONLY = /^(List|Get)/;

/**
 * Registers `POST /` (form-encoded) and `GET /` (query string) for the SNS Query API. The
 * instance must parse `application/x-www-form-urlencoded` bodies to strings.
 *
 * With `credentials`, every POST must carry a valid SigV4 signature by one of them (as the AWS SDK,
 * boto3 and the AWS CLI send it); `GET` performs only what SNS's own links do (ConfirmSubscription
 * by token, Unsubscribe by subscription ARN) unsigned, read-only actions signed, and no other change.
 */
export function registerSnsQueryApi(app: FastifyInstance, sns: SnsService, accountId: string, credentials?: readonly SandboxCredentials[]): void {
  const handle = (params: URLSearchParams, reply: FastifyReply): FastifyReply => {
    try {
      const xml = handleSnsAction(sns, accountId, params);
      return reply.status(200).type('text/xml').send(xml);
    } catch (err) {
      if (err instanceof SnsApiError) return reply.status(err.status).type('text/xml').send(snsErrorXml(err));
      throw err;
    }
  };
  const refuse = (reply: FastifyReply, err: SnsApiError): FastifyReply => reply.status(err.status).type('text/xml').send(snsErrorXml(err));
  app.post('/', (req: FastifyRequest, reply) => {
    const body = typeof req.body === 'string' ? req.body : '';
    if (credentials) {
      try {
        verifySigV4({ method: req.method, url: req.url, headers: req.headers, body }, credentials);
      } catch (err) {
        if (err instanceof SnsApiError) return refuse(reply, err);
        throw err;
      }
    }
    return handle(new URLSearchParams(body), reply);
  });
  app.get('/', (req: FastifyRequest, reply) => {
    const q = req.url.indexOf('?');
    const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    const action = params.get('Action') ?? '';
    if (credentials && !LINK_ACTIONS.has(action)) {
      if (!READ_ONLY.test(action)) {
        return refuse(reply, new SnsApiError('AuthorizationError', 403, `The sandbox performs ${action || 'this action'} only as a signed POST request`));
      }
      try {
        verifySigV4({ method: req.method, url: req.url, headers: req.headers, body: '' }, credentials);
      } catch (err) {
        if (err instanceof SnsApiError) return refuse(reply, err);
        throw err;
      }
    }
    return handle(params, reply);
  });
}
