/**
 * SES email templates in the sandbox: the stored templates (SESv2 `CreateEmailTemplate`,
 * `GetEmailTemplate`, `UpdateEmailTemplate`, `DeleteEmailTemplate`, `ListEmailTemplates`), the
 * rendering SES applies at send time, and the sandbox's virus check (the EICAR test string),
 * which makes SES publish a Reject.
 *
 * Rendering follows SES's Handlebars templates for what a lifecycle can observe: variable
 * references `{{name}}`, `{{a.b}}` and `{{{raw}}}` are replaced from `TemplateData`; a referenced
 * variable missing from the data makes the send a Rendering Failure (SES accepts the call and then
 * publishes the event with `Attribute '<name>' is not present in the rendering data.`). Block
 * helpers (`{{#if}}`, `{{#each}}`, `{{else}}`, `{{/…}}`) and comments are dropped, not evaluated.
 */
import { z } from 'zod';
import { sesError } from './errors';

/** SES template names: 1-64 ASCII letters, digits, `_` or `-`. */
export const TEMPLATE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** SES: a template (subject, text and html parts) is at most 500 KB. */
export const MAX_TEMPLATE_BYTES = 500 * 1024;
/** SES: `TemplateData` is at most 262 144 characters. */
export const MAX_TEMPLATE_DATA_CHARS = 262_144;
/** Templates the sandbox keeps (bounded state); more → LimitExceededException. */
export const MAX_TEMPLATES = 1000;

/** `EmailTemplateContent` as SESv2 stores it. */
export interface TemplateContent {
  Subject?: string;
  Text?: string;
  Html?: string;
}

/** A stored template. */
export interface StoredTemplate {
  TemplateName: string;
  TemplateContent: TemplateContent;
  /** Epoch ms. */
  CreatedTimestamp: number;
}

export const templateContentSchema = z.looseObject({ Subject: z.string().optional(), Text: z.string().optional(), Html: z.string().optional() });
export const storedTemplateSchema = z.object({ TemplateName: z.string().regex(TEMPLATE_NAME), TemplateContent: templateContentSchema, CreatedTimestamp: z.number() });

function checkName(name: string): void {
  if (!TEMPLATE_NAME.test(name)) {
    throw sesError('BadRequestException', `Invalid template name <${name}>: use 1-64 ASCII letters, numbers, underscores or dashes.`);
  }
}

function checkContent(c: TemplateContent): TemplateContent {
  if (c.Subject === undefined && c.Text === undefined && c.Html === undefined) {
    throw sesError('BadRequestException', 'TemplateContent must contain at least one of Subject, Text or Html.');
  }
  const bytes = Buffer.byteLength(c.Subject ?? '') + Buffer.byteLength(c.Text ?? '') + Buffer.byteLength(c.Html ?? '');
  if (bytes > MAX_TEMPLATE_BYTES) throw sesError('BadRequestException', `Template is ${bytes} bytes; at most ${MAX_TEMPLATE_BYTES} are allowed.`);
  return { ...(c.Subject !== undefined ? { Subject: c.Subject } : {}), ...(c.Text !== undefined ? { Text: c.Text } : {}), ...(c.Html !== undefined ? { Html: c.Html } : {}) };
}

/** The account's templates. Every method throws {@link SesApiError} as SESv2 would. */
export class TemplateStore {
  private readonly templates = new Map<string, StoredTemplate>();

  constructor(private readonly onChange: () => void) {}

  /** Loads persisted templates (no change notification). */
  load(list: readonly StoredTemplate[]): void {
    for (const t of list) this.templates.set(t.TemplateName, structuredClone(t));
  }

  all(): StoredTemplate[] {
    return [...this.templates.values()].map((t) => structuredClone(t));
  }

  create(name: string, content: TemplateContent): void {
    checkName(name);
    if (this.templates.has(name)) throw sesError('AlreadyExistsException', `Template <${name}> already exists.`);
    if (this.templates.size >= MAX_TEMPLATES) throw sesError('LimitExceededException', `At most ${MAX_TEMPLATES} templates are allowed.`);
    this.templates.set(name, { TemplateName: name, TemplateContent: checkContent(content), CreatedTimestamp: Date.now() });
    this.onChange();
  }

  get(name: string): StoredTemplate {
    const t = this.templates.get(name);
    if (!t) throw sesError('NotFoundException', `Template <${name}> does not exist.`);
    return structuredClone(t);
  }

  update(name: string, content: TemplateContent): void {
    const t = this.templates.get(name);
    if (!t) throw sesError('NotFoundException', `Template <${name}> does not exist.`);
    t.TemplateContent = checkContent(content);
    this.onChange();
  }

  delete(name: string): void {
    if (!this.templates.delete(name)) throw sesError('NotFoundException', `Template <${name}> does not exist.`);
    this.onChange();
  }

  /** Names in creation order, offset-paginated (PageSize 1-100, default 10, as SES). */
  list(nextToken: string | undefined, pageSize = 10): Record<string, unknown> {
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw sesError('BadRequestException', 'PageSize must be between 1 and 100.');
    let offset = 0;
    if (nextToken !== undefined && nextToken !== '') {
      const m = /^t(\d+)$/.exec(Buffer.from(nextToken, 'base64url').toString('utf8'));
      if (!m) throw sesError('BadRequestException', 'Invalid NextToken.');
      offset = Number(m[1]);
    }
    const all = [...this.templates.values()].sort((a, b) => a.CreatedTimestamp - b.CreatedTimestamp || a.TemplateName.localeCompare(b.TemplateName));
    const page = all.slice(offset, offset + pageSize);
    const next = offset + pageSize;
    return {
      TemplatesMetadata: page.map((t) => ({ TemplateName: t.TemplateName, CreatedTimestamp: t.CreatedTimestamp / 1000 })),
      ...(next < all.length ? { NextToken: Buffer.from(`t${next}`).toString('base64url') } : {}),
    };
  }
}

/**
 * Parses `TemplateData` (a JSON object in a string).
 *
 * @throws {SesApiError} BadRequestException when it is too long, not JSON, or not an object.
 */
export function parseTemplateData(data: string | undefined): Record<string, unknown> {
  if (data === undefined || data === '') return {};
  if (data.length > MAX_TEMPLATE_DATA_CHARS) throw sesError('BadRequestException', `TemplateData is ${data.length} characters; at most ${MAX_TEMPLATE_DATA_CHARS} are allowed.`);
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw sesError('BadRequestException', 'TemplateData is not valid JSON.');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw sesError('BadRequestException', 'TemplateData must be a JSON object.');
  return v as Record<string, unknown>;
}

const TOKEN = /\{\{(\{?)\s*([^{}]*?)\s*\}?\}\}/g;

function lookup(data: Record<string, unknown>, path: string): { found: boolean; value: unknown } {
  let cur: unknown = data;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.prototype.hasOwnProperty.call(cur, part)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[part];
  }
  return { found: true, value: cur };
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '`': '&#x60;', '=': '&#x3D;' };

/** Renders one template part; `missing` collects referenced variables absent from `data`. */
function renderPart(text: string, data: Record<string, unknown>, escapeHtml: boolean, missing: string[]): string {
  return text.replace(TOKEN, (_all, triple: string, expr: string) => {
    if (expr === '' || /^[#/!^>]/.test(expr) || expr === 'else' || expr === 'this' || expr.startsWith('@')) return '';
    if (!/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/.test(expr)) return '';
    const { found, value } = lookup(data, expr);
    if (!found) {
      missing.push(expr);
      return '';
    }
    const s = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? `${value}` : value === null || value === undefined ? '' : JSON.stringify(value);
    return escapeHtml && triple === '' ? s.replace(/[&<>"'`=]/g, (c) => HTML_ESCAPES[c] ?? c) : s;
  });
}

/** What rendering produced: the parts, or the Rendering Failure SES would publish. */
export type RenderResult =
  | { ok: true; subject: string; text?: string; html?: string }
  | { ok: false; errorMessage: string; subject: string };

/** Renders a template with its data as SES does (see the module comment). */
export function renderTemplate(content: TemplateContent, data: Record<string, unknown>): RenderResult {
  const missing: string[] = [];
  const subject = renderPart(content.Subject ?? '', data, false, missing);
  const html = content.Html !== undefined ? renderPart(content.Html, data, true, missing) : undefined;
  const text = content.Text !== undefined ? renderPart(content.Text, data, false, missing) : undefined;
  if (missing.length > 0) return { ok: false, errorMessage: `Attribute '${missing[0]}' is not present in the rendering data.`, subject };
  return { ok: true, subject, ...(text !== undefined ? { text } : {}), ...(html !== undefined ? { html } : {}) };
}

/** The EICAR anti-virus test string: what every virus scanner, SES's included, detects as a virus. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/**
 * True when `text` contains the EICAR test string, as is or inside a base64 block (a MIME
 * attachment). The sandbox rejects such a message as SES rejects a message with a virus.
 */
export function containsVirus(text: string): boolean {
  if (text.includes(EICAR)) return true;
  // Base64 blocks (MIME bodies wrap them in lines): decode each and look again.
  for (const m of text.matchAll(/(?:[A-Za-z0-9+/]{4}(?:\r?\n)?){12,}(?:[A-Za-z0-9+/]{2,3}={0,2})?/g)) {
    const decoded = Buffer.from(m[0].replace(/\s+/g, ''), 'base64').toString('latin1');
    if (decoded.includes(EICAR)) return true;
  }
  return false;
}
