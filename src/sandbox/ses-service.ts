/**
 * The SES side of the sandbox, independent of HTTP: configuration sets and event destinations,
 * the account suppression list, sending quotas, SendEmail validation and acceptance, and the
 * scheduling of each accepted message's events onto its SNS topics.
 *
 * Every method throws {@link SesApiError} with the SESv2 error code real SES would use.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { SesApiError, sesError } from './errors';
import { planEvents, rfc5322Date, sesStyleId, type PlannedEvent, type SimulatedMessage, type SimulatorContext } from './simulator';
import type { SnsService } from './sns-service';
import type { AcceptedMessage, MessageHeader, SandboxEventType, SandboxLogger, SendFault, SuppressionFault } from './types';
import { containsVirus, parseTemplateData, renderTemplate, storedTemplateSchema, templateContentSchema, TemplateStore, type TemplateContent } from './templates';
import { bareAddress, domainOf, isValidAddress, shuffled, splitAddressList, type TimerSet, type WorkTracker } from './util';

/** The SNS Subject of every SES event-publishing notification, as SES sets it. */
export const SES_EVENT_SUBJECT = 'Amazon SES Email Event Notification';

/** Event types a configuration set's event destination can match. */
export const MATCHING_EVENT_TYPES = [
  'SEND',
  'REJECT',
  'BOUNCE',
  'COMPLAINT',
  'DELIVERY',
  'OPEN',
  'CLICK',
  'RENDERING_FAILURE',
  'DELIVERY_DELAY',
  'SUBSCRIPTION',
] as const;

const EVENT_TYPE_TO_MATCHING: Readonly<Record<SandboxEventType, (typeof MATCHING_EVENT_TYPES)[number]>> = {
  Send: 'SEND',
  Reject: 'REJECT',
  Bounce: 'BOUNCE',
  Complaint: 'COMPLAINT',
  Delivery: 'DELIVERY',
  DeliveryDelay: 'DELIVERY_DELAY',
  Open: 'OPEN',
  Click: 'CLICK',
  'Rendering Failure': 'RENDERING_FAILURE',
  Subscription: 'SUBSCRIPTION',
};

/** Configuration of {@link SesService}. */
export interface SesServiceConfig {
  region: string;
  accountId: string;
  maxSendRate: number;
  max24HourSend: number;
  accountSuppression: boolean;
  eventDelayMs: number;
  /** GetMessageInsights calls per second (SES: about 1). */
  insightsRatePerSecond: number;
  reorder: boolean;
  rand: () => number;
  logger: SandboxLogger | undefined;
  /** JSON file that keeps the account suppression list across restarts; in memory only when unset. */
  stateFile?: string;
}

/** An event destination as stored (SESv2 `EventDestination` shape). */
export interface StoredEventDestination {
  Name: string;
  Enabled: boolean;
  MatchingEventTypes: string[];
  SnsDestination?: { TopicArn: string };
  /** Other destination kinds are stored and echoed, never used. */
  [other: string]: unknown;
}

interface ConfigSet {
  name: string;
  /** Request members other than the name, echoed by GetConfigurationSet. */
  options: Record<string, unknown>;
  eventDestinations: Map<string, StoredEventDestination>;
}

interface SuppressedEntry {
  EmailAddress: string;
  Reason: 'BOUNCE' | 'COMPLAINT';
  LastUpdateTime: number;
}

/**
 * Shape of the persisted state file: the account suppression list and, since version 2, the
 * configuration sets with their event destinations, the soft-bounce simulator's memory (which
 * `softbounce@` addresses already bounced once) and the email templates. Version 1 files
 * (suppressions, perhaps templates) still load.
 */
const persistedStateSchema = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  suppressedDestinations: z.array(z.object({ EmailAddress: z.string().min(3), Reason: z.enum(['BOUNCE', 'COMPLAINT']), LastUpdateTime: z.number() })),
  configurationSets: z
    .array(
      z.object({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
        options: z.record(z.string(), z.unknown()),
        eventDestinations: z.array(
          z.looseObject({ Name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), Enabled: z.boolean(), MatchingEventTypes: z.array(z.string()), SnsDestination: z.looseObject({ TopicArn: z.string() }).optional() }),
        ),
      }),
    )
    .default([]),
  softBounced: z.array(z.string()).default([]),
  /** Email templates (absent in files written before templates existed). */
  templates: z.array(storedTemplateSchema).optional(),
});

// ---------------------------------------------------------------------------------------------
// Input schemas (lenient about unknown members, strict about the ones used)

const content = z.looseObject({ Data: z.string(), Charset: z.string().optional() });
const header = z.looseObject({ Name: z.string(), Value: z.string() });
const tag = z.looseObject({ Name: z.string(), Value: z.string() });

const sendEmailSchema = z.looseObject({
  FromEmailAddress: z.string().optional(),
  Destination: z
    .looseObject({
      ToAddresses: z.array(z.string()).optional(),
      CcAddresses: z.array(z.string()).optional(),
      BccAddresses: z.array(z.string()).optional(),
    })
    .optional(),
  ReplyToAddresses: z.array(z.string()).optional(),
  Content: z.looseObject({
    Simple: z
      .looseObject({
        Subject: content,
        Body: z.looseObject({ Text: content.optional(), Html: content.optional() }),
        Headers: z.array(header).optional(),
        Attachments: z.array(z.unknown()).optional(),
      })
      .optional(),
    Raw: z.looseObject({ Data: z.string() }).optional(),
    Template: z
      .looseObject({
        TemplateName: z.string().optional(),
        TemplateArn: z.string().optional(),
        TemplateContent: templateContentSchema.optional(),
        TemplateData: z.string().optional(),
        Headers: z.array(header).optional(),
      })
      .optional(),
  }),
  EmailTags: z.array(tag).optional(),
  ConfigurationSetName: z.string().optional(),
});
/** The SendEmail request members the sandbox uses. */
export type SendEmailInput = z.infer<typeof sendEmailSchema>;

const eventDestinationDefinition = z.looseObject({
  Enabled: z.boolean().optional(),
  MatchingEventTypes: z.array(z.enum(MATCHING_EVENT_TYPES)).optional(),
  SnsDestination: z.looseObject({ TopicArn: z.string() }).optional(),
});

const createConfigSetSchema = z.looseObject({
  ConfigurationSetName: z.string(),
  SuppressionOptions: z.looseObject({ SuppressedReasons: z.array(z.enum(['BOUNCE', 'COMPLAINT'])).optional() }).optional(),
  SendingOptions: z.looseObject({ SendingEnabled: z.boolean().optional() }).optional(),
});

const createEventDestinationSchema = z.looseObject({
  EventDestinationName: z.string(),
  EventDestination: eventDestinationDefinition,
});

const updateEventDestinationSchema = z.looseObject({ EventDestination: eventDestinationDefinition });

const putSuppressedSchema = z.looseObject({ EmailAddress: z.string(), Reason: z.enum(['BOUNCE', 'COMPLAINT']) });

/**
 * Parses `value` with `schema`, or throws BadRequestException naming the first bad member.
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = (issue?.path ?? []).map(String).join('.');
  throw sesError('BadRequestException', `Invalid ${what} request: ${path ? `${path}: ` : ''}${issue?.message ?? 'invalid input'}`);
}

/** SES tag names and values: ASCII letters, digits, `_ - . @`; names 1–256, values 0–256 characters. */
const TAG_NAME = /^[A-Za-z0-9_.@-]{1,256}$/;
const TAG_VALUE = /^[A-Za-z0-9_.@-]{0,256}$/;
const CONFIG_SET_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const HEADER_NAME = /^[!-9;-~]{1,126}$/;
const MAX_RECIPIENTS = 50;
const MAX_HEADERS = 15;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Token bucket counting recipients per second. Capacity = one second's worth. */
class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private rate: number) {
    this.tokens = rate;
  }

  setRate(rate: number): void {
    this.refill();
    this.rate = rate;
    this.tokens = Math.min(this.tokens, rate);
  }

  /** Takes `n` tokens (a request larger than the capacity needs a full bucket). */
  tryTake(n: number): boolean {
    this.refill();
    const need = Math.min(n, this.rate);
    if (this.tokens + 1e-9 < need) return false;
    this.tokens -= need;
    return true;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

/** An accepted message with what its events need. */
interface InternalMessage {
  accepted: AcceptedMessage;
  sim: SimulatedMessage;
  /** Every event SES decided for this message (published or not): what GetMessageInsights reports. */
  planned: PlannedEvent[];
}

/** Insights are kept for the most recent messages only (bounded memory). */
const MAX_INSIGHT_MESSAGES = 100_000;
/** SES event type → GetMessageInsights `Type`: the same names as the event destination's matching types. */
const INSIGHTS_TYPE = EVENT_TYPE_TO_MATCHING;
/** Types GetMessageInsights leaves out for messages with more than one recipient (SESv2 API reference, InsightsEvent). */
const SINGLE_RECIPIENT_ONLY = new Set<SandboxEventType>(['Delivery', 'Bounce', 'Complaint']);

/** Chaos: SNS publications of matching events are dropped (SNS gave up; the events are lost). */
export interface DropRule {
  /** Bare addresses (case-insensitive); an event is dropped when every recipient it names is listed. Absent: any recipient. */
  recipients?: string[];
  /** SES event types to drop (`Delivery`, `Bounce`, …). Absent: every type. */
  eventTypes?: SandboxEventType[];
  /** Fraction of matching publications dropped (seeded PRNG). Default 1. */
  probability?: number;
}

/** A fault consumed by the next GetMessageInsights call (VDM off → not-found, IAM → access-denied). */
export type InsightsFault = { kind: 'access-denied' } | { kind: 'not-found' } | { kind: 'internal' };

/** One SNS publication the chaos mode dropped. */
export interface DroppedEvent {
  sesMessageId: string;
  eventType: SandboxEventType;
  recipients: string[];
  at: string;
}

/** Parsed, validated content of a SendEmail request. */
interface ParsedSend {
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo: string[];
  subject: string;
  customHeaders: MessageHeader[];
  contentKind: 'simple' | 'raw' | 'template';
  contentType: string;
  /** For raw messages: every header as sent. */
  rawHeaders?: MessageHeader[];
  /** A template whose data lacks a referenced variable: SES accepts, then publishes a Rendering Failure. */
  renderingFailure?: { errorMessage: string; templateName: string };
  /** The content carries a virus (the EICAR test string): SES accepts, then publishes a Reject. */
  virus: boolean;
}

/** SES state and operations. */
export class SesService {
  private readonly configSets = new Map<string, ConfigSet>();
  private readonly suppressed = new Map<string, SuppressedEntry>();
  private readonly messages: InternalMessage[] = [];
  /** Messages by SES id, for GetMessageInsights (bounded, oldest dropped first). */
  private readonly byId = new Map<string, InternalMessage>();
  private readonly insightsBucket: TokenBucket;
  private readonly insightsLog = { calls: 0, throttled: 0, notFound: 0 };
  /** Times (epoch ms) and outcomes of the latest GetMessageInsights calls (bounded). */
  private readonly insightsCalls: { at: number; outcome: 'answered' | 'throttled' | 'not-found' | 'fault' }[] = [];
  private dropRules: DropRule[] = [];
  private readonly droppedLog: DroppedEvent[] = [];
  /** Dropped publications, kept so a test can deliver them late (an SNS redrive). */
  private readonly droppedPublishes: (() => void)[] = [];
  private readonly insightsFaults: InsightsFault[] = [];
  private readonly faults: SendFault[] = [];
  private readonly softbounced = new Set<string>();
  private readonly bucket: TokenBucket;
  private readonly sendLog: { at: number; n: number }[] = [];
  private maxSendRate: number;
  /** SESv2 email templates (persisted with the suppression list). */
  readonly templates = new TemplateStore(() => this.saveState());

  constructor(
    private readonly config: SesServiceConfig,
    private readonly sns: SnsService,
    private readonly timers: TimerSet,
    private readonly work: WorkTracker,
  ) {
    this.maxSendRate = config.maxSendRate;
    this.bucket = new TokenBucket(config.maxSendRate);
    this.insightsBucket = new TokenBucket(config.insightsRatePerSecond);
    this.loadState();
  }

  // ------------------------------------------------------------------------------- persistence

  /** Reads the state from {@link SesServiceConfig.stateFile}, if it exists. */
  private loadState(): void {
    const file = this.config.stateFile;
    if (file === undefined) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const r = persistedStateSchema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new Error(`sandbox state file ${file} is not valid (${issue.path.join('.') || '(root)'}: ${issue.message}); delete it to start empty`);
    }
    for (const e of r.data.suppressedDestinations) this.suppressed.set(e.EmailAddress.toLowerCase(), e);
    for (const cs of r.data.configurationSets) {
      this.configSets.set(cs.name, { name: cs.name, options: cs.options, eventDestinations: new Map(cs.eventDestinations.map((d) => [d.Name, d])) });
    }
    for (const a of r.data.softBounced) this.softbounced.add(a);
    this.templates.load(r.data.templates ?? []);
  }

  /** Writes the state atomically (temporary file, then rename). */
  private saveState(): void {
    const file = this.config.stateFile;
    if (file === undefined) return;
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    const state: z.input<typeof persistedStateSchema> = {
      version: 2,
      suppressedDestinations: [...this.suppressed.values()],
      configurationSets: [...this.configSets.values()].map((cs) => ({ name: cs.name, options: cs.options, eventDestinations: [...cs.eventDestinations.values()] })),
      softBounced: [...this.softbounced],
      templates: this.templates.all() as z.input<typeof persistedStateSchema>['templates'],
    };
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(tmp, file);
  }

  // ------------------------------------------------------------------------------- faults/quota

  /** Queues faults for later SendEmail calls. */
  injectFaults(faults: readonly SendFault[]): void {
    this.faults.push(...faults);
  }

  /** Takes the next queued fault, if any. */
  takeFault(): SendFault | undefined {
    return this.faults.shift();
  }

  private readonly suppressionFaults: SuppressionFault[] = [];

  /** Queues faults for later PutSuppressedDestination calls. */
  injectSuppressionFaults(faults: readonly SuppressionFault[]): void {
    this.suppressionFaults.push(...faults);
  }

  /** Takes the next queued suppression fault, if any. */
  takeSuppressionFault(): SuppressionFault | undefined {
    return this.suppressionFaults.shift();
  }

  setMaxSendRate(n: number): void {
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`maxSendRate must be a positive number, got ${n}`);
    this.maxSendRate = n;
    this.bucket.setRate(n);
  }

  private sentLast24Hours(): number {
    const cutoff = Date.now() - DAY_MS;
    while (this.sendLog.length > 0 && (this.sendLog[0]?.at ?? 0) < cutoff) this.sendLog.shift();
    return this.sendLog.reduce((a, e) => a + e.n, 0);
  }

  /** GetAccount response. */
  getAccount(): Record<string, unknown> {
    return {
      DedicatedIpAutoWarmupEnabled: false,
      EnforcementStatus: 'HEALTHY',
      ProductionAccessEnabled: true,
      SendQuota: { Max24HourSend: this.config.max24HourSend, MaxSendRate: this.maxSendRate, SentLast24Hours: this.sentLast24Hours() },
      SendingEnabled: true,
      SuppressionAttributes: { SuppressedReasons: this.config.accountSuppression ? ['BOUNCE', 'COMPLAINT'] : [] },
    };
  }

  // ------------------------------------------------------------------------------- SendEmail

  /**
   * Validates and accepts a SendEmail request; schedules its events. Returns the SES message id.
   *
   * @throws {SesApiError} BadRequestException (invalid input), NotFoundException (unknown
   *   configuration set), SendingPausedException (set paused), TooManyRequestsException (rate or
   *   daily quota).
   */
  sendEmail(body: unknown, sourceIp: string): AcceptedMessage {
    const input = parseInput(sendEmailSchema, body, 'SendEmail');
    const parsed = this.parseSend(input);
    const tags = input.EmailTags ?? [];
    for (const t of tags) {
      if (!TAG_NAME.test(t.Name)) {
        throw sesError('BadRequestException', `Invalid tag name <${t.Name}>: only ASCII letters, numbers, underscores, dashes, periods and @ are allowed (1-256 characters).`);
      }
      if (!TAG_VALUE.test(t.Value)) {
        throw sesError('BadRequestException', `Invalid tag value <${t.Value}> for tag <${t.Name}>: only ASCII letters, numbers, underscores, dashes, periods and @ are allowed (up to 256 characters).`);
      }
    }
    const configSet = input.ConfigurationSetName !== undefined ? this.configSets.get(input.ConfigurationSetName) : undefined;
    if (input.ConfigurationSetName !== undefined) {
      if (!configSet) throw sesError('NotFoundException', `Configuration set <${input.ConfigurationSetName}> does not exist.`);
      const sending = configSet.options.SendingOptions as { SendingEnabled?: boolean } | undefined;
      if (sending?.SendingEnabled === false) throw sesError('SendingPausedException', `Sending is paused for configuration set <${configSet.name}>.`);
    }
    const recipients = parsed.to.length + parsed.cc.length + parsed.bcc.length;
    if (this.sentLast24Hours() + recipients > this.config.max24HourSend) {
      throw sesError('TooManyRequestsException', 'Daily message quota exceeded.');
    }
    if (!this.bucket.tryTake(recipients)) {
      throw sesError('TooManyRequestsException', 'Maximum sending rate exceeded.');
    }

    // Accepted.
    const now = Date.now();
    this.sendLog.push({ at: now, n: recipients });
    const sesMessageId = sesStyleId(now);
    const dateHeader = rfc5322Date(now);
    const accepted: AcceptedMessage = {
      sesMessageId,
      from: parsed.from,
      destination: { to: parsed.to, cc: parsed.cc, bcc: parsed.bcc },
      replyTo: parsed.replyTo,
      subject: parsed.subject,
      tags: tags.map((t) => ({ name: t.Name, value: t.Value })),
      headers: parsed.rawHeaders ?? parsed.customHeaders,
      configurationSetName: configSet?.name ?? null,
      acceptedAt: new Date(now).toISOString(),
      contentKind: parsed.contentKind,
    };
    const mailHeaders: MessageHeader[] = parsed.rawHeaders
      ? parsed.rawHeaders.filter((h) => h.name.toLowerCase() !== 'bcc')
      : [
          { name: 'From', value: parsed.from },
          ...(parsed.replyTo.length > 0 ? [{ name: 'Reply-To', value: parsed.replyTo.join(', ') }] : []),
          ...(parsed.to.length > 0 ? [{ name: 'To', value: parsed.to.join(', ') }] : []),
          ...(parsed.cc.length > 0 ? [{ name: 'Cc', value: parsed.cc.join(', ') }] : []),
          { name: 'Subject', value: parsed.subject },
          { name: 'MIME-Version', value: '1.0' },
          { name: 'Content-Type', value: parsed.contentType },
          { name: 'Message-ID', value: `<${sesMessageId}@email.amazonses.com>` },
          { name: 'Date', value: dateHeader },
          ...parsed.customHeaders,
        ];
    const mailTags: Record<string, string[]> = {};
    if (configSet) {
      // The automatic tags, in SES's order (`ses:outgoing-ip` is added to Delivery events only).
      mailTags['ses:source-tls-version'] = ['TLSv1.3'];
      mailTags['ses:operation'] = ['SendEmail'];
      mailTags['ses:configuration-set'] = [configSet.name];
      mailTags['ses:source-ip'] = [sourceIp];
      mailTags['ses:from-domain'] = [domainOf(parsed.from)];
      mailTags['ses:caller-identity'] = ['ses-sandbox'];
    }
    for (const t of tags) (mailTags[t.Name] ??= []).push(t.Value);
    const sim: SimulatedMessage = {
      sesMessageId,
      from: parsed.from,
      to: parsed.to,
      cc: parsed.cc,
      bcc: parsed.bcc,
      replyTo: parsed.replyTo,
      subject: parsed.subject,
      mailHeaders,
      tags: mailTags,
      acceptedAt: now,
      dateHeader,
      ...(parsed.renderingFailure ? { renderingFailure: parsed.renderingFailure } : {}),
      ...(parsed.virus ? { virus: true } : {}),
    };
    // Events are simulated for messages sent with a configuration set only (as before insights):
    // without one, the sandbox's SES neither publishes nor reports any event for the message.
    const planned = configSet ? planEvents(sim, this.simulatorContext(configSet), (stage) => sim.acceptedAt + Math.max(1, this.config.eventDelayMs) * (stage + 1)) : [];
    this.messages.push({ accepted, sim, planned });
    this.byId.set(sesMessageId, this.messages[this.messages.length - 1]!);
    if (this.byId.size > MAX_INSIGHT_MESSAGES) this.byId.delete(this.byId.keys().next().value!);
    this.config.logger?.info({ sesMessageId, configurationSetName: accepted.configurationSetName, recipients }, 'ses message accepted');
    if (configSet) this.scheduleEvents(configSet, sim, planned);
    return structuredClone(accepted);
  }

  /** Copies of every accepted message, oldest first. */
  sentMessages(): AcceptedMessage[] {
    return this.messages.map((m) => structuredClone(m.accepted));
  }

  private parseSend(input: SendEmailInput): ParsedSend {
    const { Simple, Raw, Template } = input.Content;
    const kinds = [Simple, Raw, Template].filter((c) => c !== undefined).length;
    if (kinds !== 1) throw sesError('BadRequestException', 'Content must contain exactly one of Simple, Raw or Template.');

    let from = input.FromEmailAddress;
    let to = input.Destination?.ToAddresses ?? [];
    let cc = input.Destination?.CcAddresses ?? [];
    let bcc = input.Destination?.BccAddresses ?? [];
    let replyTo = input.ReplyToAddresses ?? [];
    let subject: string;
    let contentType: string;
    let customHeaders: MessageHeader[] = [];
    let rawHeaders: MessageHeader[] | undefined;
    let renderingFailure: ParsedSend['renderingFailure'];
    let virus = false;

    const checkHeaders = (hs: { Name: string; Value: string }[]): MessageHeader[] => {
      if (hs.length > MAX_HEADERS) throw sesError('BadRequestException', `Too many headers: ${hs.length} (maximum ${MAX_HEADERS}).`);
      for (const h of hs) {
        if (!HEADER_NAME.test(h.Name)) throw sesError('BadRequestException', `Invalid header name <${h.Name}>.`);
        if (/[\r\n]/.test(h.Value) || h.Value.length > 870) throw sesError('BadRequestException', `Invalid value for header <${h.Name}>.`);
      }
      return hs.map((h) => ({ name: h.Name, value: h.Value }));
    };

    if (Template) {
      // SESv2 Content.Template: a stored template by name (or ARN), or inline TemplateContent.
      const name = Template.TemplateName ?? (Template.TemplateArn !== undefined ? /:template\/([^/]+)$/.exec(Template.TemplateArn)?.[1] : undefined);
      let tc: TemplateContent;
      if (Template.TemplateContent !== undefined) tc = Template.TemplateContent;
      else if (name !== undefined) tc = this.templates.get(name).TemplateContent;
      else throw sesError('BadRequestException', 'Template must contain TemplateName, TemplateArn or TemplateContent.');
      const data = parseTemplateData(Template.TemplateData);
      const r = renderTemplate(tc, data);
      subject = r.subject;
      if (r.ok) {
        contentType = r.text !== undefined && r.html !== undefined ? `multipart/alternative; boundary="----=_Part_${sesStyleId().slice(4, 16)}"` : r.html !== undefined ? 'text/html; charset=UTF-8' : 'text/plain; charset=UTF-8';
        virus = containsVirus(`${r.text ?? ''}\n${r.html ?? ''}`);
      } else {
        contentType = 'text/plain; charset=UTF-8';
        renderingFailure = { errorMessage: r.errorMessage, templateName: name ?? '' };
      }
      customHeaders = checkHeaders(Template.Headers ?? []);
    } else if (Simple) {
      subject = Simple.Subject.Data;
      const { Text, Html } = Simple.Body;
      if (!Text && !Html) throw sesError('BadRequestException', 'Body must contain Text, Html or both.');
      contentType = Text && Html ? `multipart/alternative; boundary="----=_Part_${sesStyleId().slice(4, 16)}"` : Html ? 'text/html; charset=UTF-8' : 'text/plain; charset=UTF-8';
      customHeaders = checkHeaders(Simple.Headers ?? []);
      const attachments = (Simple.Attachments ?? []).map((a) => {
        const rc = (a as { RawContent?: unknown } | null)?.RawContent;
        return typeof rc === 'string' ? Buffer.from(rc, 'base64').toString('latin1') : '';
      });
      virus = containsVirus([Text?.Data ?? '', Html?.Data ?? '', ...attachments].join('\n'));
    } else {
      const raw = Buffer.from((Raw as { Data: string }).Data, 'base64').toString('utf8');
      virus = containsVirus(raw);
      rawHeaders = parseRawHeaders(raw);
      if (rawHeaders.length === 0) throw sesError('BadRequestException', 'Raw message has no headers.');
      const get = (name: string): string | undefined => rawHeaders?.find((h) => h.name.toLowerCase() === name)?.value;
      const list = (name: string): string[] => {
        const v = get(name);
        return v ? splitAddressList(v) : [];
      };
      from ??= get('from');
      if (input.Destination === undefined) {
        to = list('to');
        cc = list('cc');
        bcc = list('bcc');
      }
      if (input.ReplyToAddresses === undefined) replyTo = list('reply-to');
      subject = get('subject') ?? '';
      contentType = get('content-type') ?? 'text/plain; charset=UTF-8';
    }

    if (from === undefined || from.trim() === '') throw sesError('BadRequestException', 'Missing required parameter FromEmailAddress.');
    for (const a of [from, ...to, ...cc, ...bcc, ...replyTo]) {
      if (!isValidAddress(a)) throw sesError('BadRequestException', `Illegal address: <${a}>.`);
    }
    const total = to.length + cc.length + bcc.length;
    if (total === 0) throw sesError('BadRequestException', 'Missing required parameter: at least one of ToAddresses, CcAddresses or BccAddresses.');
    if (total > MAX_RECIPIENTS) throw sesError('BadRequestException', `Recipient count exceeds ${MAX_RECIPIENTS} (got ${total}).`);
    return {
      from,
      to,
      cc,
      bcc,
      replyTo,
      subject,
      customHeaders,
      contentKind: Template ? 'template' : Simple ? 'simple' : 'raw',
      contentType,
      ...(rawHeaders ? { rawHeaders } : {}),
      ...(renderingFailure ? { renderingFailure } : {}),
      virus,
    };
  }

  /** Simulator context for one message sent with `configSet`. */
  private simulatorContext(configSet: ConfigSet | undefined): SimulatorContext {
    const setReasons = (configSet?.options.SuppressionOptions as { SuppressedReasons?: string[] } | undefined)?.SuppressedReasons;
    const reasons = setReasons ?? (this.config.accountSuppression ? ['BOUNCE', 'COMPLAINT'] : []);
    return {
      region: this.config.region,
      accountId: this.config.accountId,
      isSuppressed: (address) => {
        const e = this.suppressed.get(address.toLowerCase());
        return e !== undefined && reasons.includes(e.Reason);
      },
      firstSoftbounce: (address) => {
        if (this.softbounced.has(address)) return false;
        this.softbounced.add(address);
        this.saveState();
        return true;
      },
    };
  }

  /**
   * Plans the message's events and schedules their publication: stage k at
   * `(k + 1) × eventDelayMs` after acceptance. With `reorder`, the events are published one by
   * one in shuffled order, after the last event's timestamp.
   */
  private scheduleEvents(configSet: ConfigSet, sim: SimulatedMessage, events: PlannedEvent[]): void {
    const step = Math.max(1, this.config.eventDelayMs);
    const eventTime = (stage: number): number => sim.acceptedAt + step * (stage + 1);
    const destinations = [...configSet.eventDestinations.values()].filter((d) => d.Enabled && d.SnsDestination);
    if (events.length === 0 || destinations.length === 0) return;

    const publish = (ev: PlannedEvent, late = false): void => {
      if (!late && this.dropped(ev, sim.sesMessageId)) {
        this.droppedPublishes.push(() => publish(ev, true));
        if (this.droppedPublishes.length > 10_000) this.droppedPublishes.shift();
        return;
      }
      const matching = EVENT_TYPE_TO_MATCHING[ev.eventType];
      const body = JSON.stringify(ev.event);
      for (const d of destinations) {
        if (!d.MatchingEventTypes.includes(matching) || !d.SnsDestination) continue;
        this.sns.publish(d.SnsDestination.TopicArn, body, { eventType: ev.eventType, sesMessageId: sim.sesMessageId, recipients: ev.recipients }, SES_EVENT_SUBJECT);
      }
    };
    const at = (delayMs: number, batch: PlannedEvent[]): void => {
      this.work.begin('events-scheduled');
      this.timers.schedule(delayMs - (Date.now() - sim.acceptedAt), () => {
        try {
          batch.forEach((ev) => publish(ev));
        } catch (err) {
          this.config.logger?.error({ err, sesMessageId: sim.sesMessageId }, 'publishing events failed');
        } finally {
          this.work.end('events-scheduled');
        }
      });
    };
    if (this.config.reorder) {
      const maxStage = Math.max(...events.map((e) => e.stage));
      shuffled(events, this.config.rand).forEach((ev, i) => at(step * (maxStage + 1 + i), [ev]));
    } else {
      const stages = [...new Set(events.map((e) => e.stage))].sort((a, b) => a - b);
      for (const s of stages) at(eventTime(s) - sim.acceptedAt, events.filter((e) => e.stage === s));
    }
  }

  // ------------------------------------------------------------------------------- chaos: dropped deliveries

  /** Replaces the drop rules (empty: deliver everything again). */
  setDropRules(rules: readonly DropRule[]): void {
    this.dropRules = rules.map((r) => ({
      ...r,
      ...(r.recipients ? { recipients: r.recipients.map((a) => bareAddress(a).toLowerCase()) } : {}),
    }));
  }

  /** Publishes every dropped event now (late copies, as after an SNS redrive); returns how many. */
  redeliverDropped(): number {
    const list = this.droppedPublishes.splice(0);
    for (const p of list) p();
    return list.length;
  }

  /** Queues faults for later GetMessageInsights calls. */
  injectInsightsFaults(faults: readonly InsightsFault[]): void {
    this.insightsFaults.push(...faults);
  }

  /** Publications dropped so far, oldest first (copies). */
  droppedEvents(): DroppedEvent[] {
    return this.droppedLog.map((d) => structuredClone(d));
  }

  private dropped(ev: PlannedEvent, sesMessageId: string): boolean {
    const recipients = ev.recipients.map((r) => bareAddress(r).toLowerCase());
    const rule = this.dropRules.find(
      (r) => (r.eventTypes === undefined || r.eventTypes.includes(ev.eventType)) && (r.recipients === undefined || recipients.every((a) => r.recipients!.includes(a))),
    );
    if (!rule) return false;
    if ((rule.probability ?? 1) < 1 && this.config.rand() >= (rule.probability ?? 1)) return false;
    this.droppedLog.push({ sesMessageId, eventType: ev.eventType, recipients, at: new Date().toISOString() });
    if (this.droppedLog.length > 10_000) this.droppedLog.shift();
    this.config.logger?.info({ sesMessageId, eventType: ev.eventType }, 'chaos: SNS delivery dropped');
    return true;
  }

  // ------------------------------------------------------------------------------- GetMessageInsights

  /**
   * GetMessageInsights from the ledger of sent messages: every event SES decided for the message
   * whose time has come, published to SNS or not (dropped deliveries included), per destination
   * (a message sent without a configuration set has no simulated events, so no insights events).
   * Like SES, events of types DELIVERY, BOUNCE and COMPLAINT are left out for messages with more
   * than one recipient. Unlike SES, mailbox-simulator messages are included (the tests use them).
   *
   * @throws {SesApiError} TooManyRequestsException above about one call per second (SES's
   *   limit for this operation), NotFoundException for an unknown message id.
   */
  getMessageInsights(messageId: string): Record<string, unknown> {
    this.insightsLog.calls += 1;
    const note = (outcome: 'answered' | 'throttled' | 'not-found' | 'fault'): void => {
      this.insightsCalls.push({ at: Date.now(), outcome });
      if (this.insightsCalls.length > 1000) this.insightsCalls.shift();
    };
    if (!this.insightsBucket.tryTake(1)) {
      note('throttled');
      this.insightsLog.throttled += 1;
      throw sesError('TooManyRequestsException', 'Rate exceeded');
    }
    const fault = this.insightsFaults.shift();
    if (fault) note(fault.kind === 'not-found' ? 'not-found' : 'fault');
    if (fault?.kind === 'access-denied') throw sesError('AccessDeniedException', 'User is not authorized to perform: ses:GetMessageInsights');
    if (fault?.kind === 'internal') throw sesError('InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.');
    const m = fault?.kind === 'not-found' ? undefined : this.byId.get(messageId);
    if (!m) {
      if (fault?.kind !== 'not-found') note('not-found');
      this.insightsLog.notFound += 1;
      throw sesError('NotFoundException', `Message <${messageId}> does not exist.`);
    }
    note('answered');
    const now = Date.now();
    const { to, cc, bcc } = m.accepted.destination;
    const destinations = [...to, ...cc, ...bcc];
    const single = destinations.length === 1;
    const step = Math.max(1, this.config.eventDelayMs);
    const insights = destinations.map((d) => {
      const bare = bareAddress(d).toLowerCase();
      const events = m.planned
        .filter((ev) => ev.recipients.some((r) => bareAddress(r).toLowerCase() === bare))
        .filter((ev) => single || !SINGLE_RECIPIENT_ONLY.has(ev.eventType))
        .map((ev) => ({ ev, at: eventTimestamp(ev) ?? m.sim.acceptedAt + step * (ev.stage + 1) }))
        .filter(({ at }) => at <= now)
        .sort((a, b) => a.at - b.at)
        .map(({ ev, at }) => ({ Timestamp: at / 1000, Type: INSIGHTS_TYPE[ev.eventType], ...insightDetails(ev) }));
      return { Destination: bareAddress(d), Isp: domainOf(d) === 'simulator.amazonses.com' ? 'Amazon SES Mailbox Simulator' : 'Other', Events: events };
    });
    return {
      MessageId: m.accepted.sesMessageId,
      FromEmailAddress: m.accepted.from,
      Subject: m.accepted.subject,
      EmailTags: m.accepted.tags.map((t) => ({ Name: t.name, Value: t.value })),
      Insights: insights,
    };
  }

  /** GetMessageInsights calls so far: answered, refused for the rate limit, unknown ids. */
  insightsStats(): { calls: number; throttled: number; notFound: number; recent: { at: number; outcome: string }[] } {
    return { ...this.insightsLog, recent: this.insightsCalls.map((c) => ({ ...c })) };
  }

  // ------------------------------------------------------------------------------- suppression

  /** PutSuppressedDestination. */
  putSuppressed(body: unknown): void {
    const input = parseInput(putSuppressedSchema, body, 'PutSuppressedDestination');
    if (!isValidAddress(input.EmailAddress)) throw sesError('BadRequestException', `Illegal address: <${input.EmailAddress}>.`);
    const address = bareAddress(input.EmailAddress);
    this.suppressed.set(address.toLowerCase(), { EmailAddress: address, Reason: input.Reason, LastUpdateTime: Date.now() });
    this.saveState();
    this.config.logger?.info({ address, reason: input.Reason }, 'address added to account suppression list');
  }

  /** GetSuppressedDestination. @throws {SesApiError} NotFoundException. */
  getSuppressed(address: string): Record<string, unknown> {
    const e = this.suppressed.get(address.toLowerCase());
    if (!e) throw sesError('NotFoundException', `Email address <${address}> does not exist on your suppression list.`);
    return { SuppressedDestination: { EmailAddress: e.EmailAddress, Reason: e.Reason, LastUpdateTime: e.LastUpdateTime / 1000, Attributes: {} } };
  }

  /** DeleteSuppressedDestination. @throws {SesApiError} NotFoundException. */
  deleteSuppressed(address: string): void {
    if (!this.suppressed.delete(address.toLowerCase())) {
      throw sesError('NotFoundException', `Email address <${address}> does not exist on your suppression list.`);
    }
    this.saveState();
  }

  /** ListSuppressedDestinations, filtered by reasons and [start, end] dates, paginated. */
  listSuppressed(q: { reasons: string[]; startDate?: number; endDate?: number; nextToken?: string; pageSize?: number }): Record<string, unknown> {
    const all = [...this.suppressed.values()]
      .filter((e) => q.reasons.length === 0 || q.reasons.includes(e.Reason))
      .filter((e) => q.startDate === undefined || e.LastUpdateTime >= q.startDate)
      .filter((e) => q.endDate === undefined || e.LastUpdateTime <= q.endDate)
      .sort((a, b) => a.EmailAddress.localeCompare(b.EmailAddress));
    const { page, nextToken } = paginate(all, q.nextToken, q.pageSize ?? 1000, 1000);
    return {
      SuppressedDestinationSummaries: page.map((e) => ({ EmailAddress: e.EmailAddress, Reason: e.Reason, LastUpdateTime: e.LastUpdateTime / 1000 })),
      ...(nextToken ? { NextToken: nextToken } : {}),
    };
  }

  // ------------------------------------------------------------------------------- configuration sets

  /** CreateConfigurationSet. @throws {SesApiError} AlreadyExistsException, BadRequestException. */
  createConfigurationSet(body: unknown): void {
    const input = parseInput(createConfigSetSchema, body, 'CreateConfigurationSet');
    const name = input.ConfigurationSetName;
    if (!CONFIG_SET_NAME.test(name)) {
      throw sesError('BadRequestException', `Invalid configuration set name <${name}>: use 1-64 ASCII letters, numbers, underscores or dashes.`);
    }
    if (this.configSets.has(name)) throw sesError('AlreadyExistsException', `Configuration set <${name}> already exists.`);
    const { ConfigurationSetName: _name, ...options }: Record<string, unknown> = structuredClone(input);
    options.SendingOptions ??= { SendingEnabled: true };
    this.configSets.set(name, { name, options, eventDestinations: new Map() });
    this.saveState();
    this.config.logger?.info({ configurationSetName: name }, 'configuration set created');
  }

  /** Whether a configuration set exists (also one restored from the state file). */
  hasConfigurationSet(name: string): boolean {
    return this.configSets.has(name);
  }

  /** Whether `configSetName` has an event destination named `destinationName`. */
  hasEventDestination(configSetName: string, destinationName: string): boolean {
    return this.configSets.get(configSetName)?.eventDestinations.has(destinationName) ?? false;
  }

  private configSet(name: string): ConfigSet {
    const cs = this.configSets.get(name);
    if (!cs) throw sesError('NotFoundException', `Configuration set <${name}> does not exist.`);
    return cs;
  }

  /** GetConfigurationSet. @throws {SesApiError} NotFoundException. */
  getConfigurationSet(name: string): Record<string, unknown> {
    const cs = this.configSet(name);
    return { ConfigurationSetName: cs.name, Tags: [], ...structuredClone(cs.options) };
  }

  /** DeleteConfigurationSet. @throws {SesApiError} NotFoundException. */
  deleteConfigurationSet(name: string): void {
    this.configSet(name);
    this.configSets.delete(name);
    this.saveState();
  }

  /** ListConfigurationSets, paginated. */
  listConfigurationSets(nextToken: string | undefined, pageSize: number | undefined): Record<string, unknown> {
    const names = [...this.configSets.keys()].sort();
    const r = paginate(names, nextToken, pageSize ?? 1000, 1000);
    return { ConfigurationSets: r.page, ...(r.nextToken ? { NextToken: r.nextToken } : {}) };
  }

  private checkDestination(def: z.infer<typeof eventDestinationDefinition>): void {
    const arn = def.SnsDestination?.TopicArn;
    if (arn !== undefined && !this.sns.hasTopic(arn)) {
      throw sesError('BadRequestException', `Could not access SNS topic <${arn}>: it does not exist in this sandbox (create it first).`);
    }
  }

  /** CreateConfigurationSetEventDestination. */
  createEventDestination(configSetName: string, body: unknown): void {
    const cs = this.configSet(configSetName);
    const input = parseInput(createEventDestinationSchema, body, 'CreateConfigurationSetEventDestination');
    if (cs.eventDestinations.has(input.EventDestinationName)) {
      throw sesError('AlreadyExistsException', `Event destination <${input.EventDestinationName}> already exists in configuration set <${cs.name}>.`);
    }
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(input.EventDestinationName)) {
      throw sesError('BadRequestException', `Invalid event destination name <${input.EventDestinationName}>.`);
    }
    this.checkDestination(input.EventDestination);
    const d = input.EventDestination;
    cs.eventDestinations.set(input.EventDestinationName, {
      ...structuredClone(d),
      Name: input.EventDestinationName,
      Enabled: d.Enabled ?? false,
      MatchingEventTypes: d.MatchingEventTypes ?? [],
    });
    this.saveState();
  }

  /** GetConfigurationSetEventDestinations. */
  getEventDestinations(configSetName: string): Record<string, unknown> {
    const cs = this.configSet(configSetName);
    return { EventDestinations: [...cs.eventDestinations.values()].map((d) => structuredClone(d)) };
  }

  /** UpdateConfigurationSetEventDestination: replaces the definition's given members. */
  updateEventDestination(configSetName: string, destinationName: string, body: unknown): void {
    const cs = this.configSet(configSetName);
    const existing = cs.eventDestinations.get(destinationName);
    if (!existing) throw sesError('NotFoundException', `Event destination <${destinationName}> does not exist in configuration set <${cs.name}>.`);
    const input = parseInput(updateEventDestinationSchema, body, 'UpdateConfigurationSetEventDestination');
    this.checkDestination(input.EventDestination);
    const d = input.EventDestination;
    cs.eventDestinations.set(destinationName, {
      ...structuredClone(d),
      Name: destinationName,
      Enabled: d.Enabled ?? false,
      MatchingEventTypes: d.MatchingEventTypes ?? [],
    });
    this.saveState();
  }

  /** DeleteConfigurationSetEventDestination. */
  deleteEventDestination(configSetName: string, destinationName: string): void {
    const cs = this.configSet(configSetName);
    if (!cs.eventDestinations.delete(destinationName)) {
      throw sesError('NotFoundException', `Event destination <${destinationName}> does not exist in configuration set <${cs.name}>.`);
    }
    this.saveState();
  }
}

/** The event's own timestamp (epoch ms), from its event-publishing JSON. */
function eventTimestamp(ev: PlannedEvent): number | undefined {
  const e = ev.event as Record<string, { timestamp?: unknown } | undefined>;
  const part = {
    Send: e.mail,
    Reject: e.mail,
    Bounce: e.bounce,
    Complaint: e.complaint,
    Delivery: e.delivery,
    DeliveryDelay: e.deliveryDelay,
    Open: e.open,
    Click: e.click,
    'Rendering Failure': e.mail,
    Subscription: e.subscription,
  }[ev.eventType];
  return typeof part?.timestamp === 'string' ? Date.parse(part.timestamp) : undefined;
}

/** `Details` of an insights event: Bounce or Complaint. */
function insightDetails(ev: PlannedEvent): { Details?: Record<string, unknown> } {
  if (ev.eventType === 'Bounce') {
    const b = (ev.event.bounce ?? {}) as { bounceType?: string; bounceSubType?: string; bouncedRecipients?: { diagnosticCode?: string }[] };
    const code = b.bouncedRecipients?.[0]?.diagnosticCode;
    return { Details: { Bounce: { BounceType: (b.bounceType ?? 'Undetermined').toUpperCase(), BounceSubType: b.bounceSubType ?? 'General', ...(code !== undefined ? { DiagnosticCode: code } : {}) } } };
  }
  if (ev.eventType === 'Complaint') {
    const c = (ev.event.complaint ?? {}) as { complaintSubType?: string | null; complaintFeedbackType?: string };
    return { Details: { Complaint: { ...(c.complaintSubType ? { ComplaintSubType: c.complaintSubType } : {}), ...(c.complaintFeedbackType !== undefined ? { ComplaintFeedbackType: c.complaintFeedbackType } : {}) } } };
  }
  return {};
}

/** Offset pagination with opaque tokens. @throws {SesApiError} BadRequestException for a bad token or size. */
function paginate<T>(items: readonly T[], token: string | undefined, pageSize: number, maxPageSize: number): { page: T[]; nextToken?: string } {
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > maxPageSize) {
    throw sesError('BadRequestException', `PageSize must be between 1 and ${maxPageSize}.`);
  }
  let offset = 0;
  if (token !== undefined && token !== '') {
    const m = /^o(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
    if (!m) throw new SesApiError('BadRequestException', 400, 'Invalid NextToken.');
    offset = Number(m[1]);
  }
  const page = items.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  return next < items.length ? { page, nextToken: Buffer.from(`o${next}`).toString('base64url') } : { page };
}

/** Parses the header section of a raw MIME message (unfolding continuation lines). */
export function parseRawHeaders(raw: string): MessageHeader[] {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end < 0 ? raw : raw.slice(0, end);
  const out: MessageHeader[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && out.length > 0) {
      const last = out[out.length - 1] as MessageHeader;
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return out;
}
