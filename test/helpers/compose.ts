/**
 * docker-compose.yml read the way Compose reads it, without the docker compose plugin:
 *
 *   parse (YAML anchors and `<<` merge keys, the `!reset` / `!override` tags)
 *   → interpolate `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
 *     `${VAR:+alt}`, `$VAR` per file (`$$` stays `$$`, as `docker compose config` prints it)
 *   → validate each file against the published Compose Specification JSON schema
 *     (test/compose-spec/compose-spec.json, vendored; see its README) with ajv
 *   → merge the files in order (mappings key by key; `command`, `entrypoint` and healthcheck
 *     `test` replaced; other sequences appended; `!reset` clears, `!override` replaces)
 *   → normalize the short forms the tests read (environment lists, port strings, `build: .`,
 *     `depends_on` lists, a string healthcheck test) into the long forms `docker compose config`
 *     prints.
 *
 * Only the parts of the specification docker-compose.yml and deploy/compose.temporal-cloud.yml
 * use are implemented (no `include`, `extends`, profiles or env_file); a file using anything else
 * still gets the schema check, and the semantic checks in test/compose.test.ts say what they miss.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { isMap, isSeq, parseDocument, Scalar, visit, YAMLMap } from 'yaml';

export const COMPOSE_SPEC_DIR = path.join(__dirname, '..', 'compose-spec');

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  ports?: { target: number; published?: string; host_ip?: string; protocol?: string }[];
  volumes?: unknown[];
  [key: string]: unknown;
}
export interface ComposeModel {
  name: string;
  services: Record<string, ComposeService>;
  [key: string]: unknown;
}

/** A file that the schema rejects, or that Compose refuses to interpolate. */
export class ComposeError extends Error {}

const RESET = '\u0000compose:reset';
const OVERRIDE = '\u0000compose:override';

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(doc: unknown): ErrorObject[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(path.join(COMPOSE_SPEC_DIR, 'compose-spec.json'), 'utf8')) as Record<string, unknown>;
    // The schema names draft-07 by an https URL ajv does not know as its meta-schema; it is draft-07.
    delete schema.$schema;
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validator = ajv.compile(schema);
  }
  return validator(doc) ? [] : [...(validator.errors ?? [])];
}

/** Readable schema errors: `services.worker: must NOT have additional properties (healtcheck)`. */
export function formatSchemaErrors(errors: ErrorObject[]): string[] {
  return errors.map((e) => {
    const at = e.instancePath.split('/').slice(1).join('.') || '(root)';
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
    return `${at}: ${e.message ?? e.keyword}${extra}`;
  });
}

/** Parses one Compose file: YAML with merge keys; `!reset` / `!override` become markers. */
export function parseComposeYaml(text: string, file = 'compose file'): unknown {
  const doc = parseDocument(text, { merge: true });
  const errors = doc.errors.map((e) => e.message);
  if (errors.length) throw new ComposeError(`${file}: invalid YAML: ${errors.join('; ')}`);
  visit(doc, {
    Node(_, node) {
      if (node.tag === '!reset') return new Scalar(RESET);
      if (node.tag === '!override' && (isMap(node) || isSeq(node))) {
        const wrap = new YAMLMap();
        wrap.set(OVERRIDE, node);
        node.tag = undefined;
        return wrap;
      }
      return undefined;
    },
  });
  return doc.toJS({ maxAliasCount: 1000 }) as unknown;
}

/** Interpolates one string (Compose's rules; see the module comment). */
export function interpolate(s: string, env: Record<string, string | undefined>, where: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$$';
      i += 2;
      continue;
    }
    if (next === '{') {
      // The matching brace (defaults may nest ${...}).
      let depth = 1;
      let j = i + 2;
      for (; j < s.length && depth > 0; j++) {
        if (s[j] === '{') depth++;
        else if (s[j] === '}') depth--;
      }
      if (depth !== 0) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(s)}: unclosed \${`);
      const inner = s.slice(i + 2, j - 1);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(inner);
      if (!m) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(s)}`);
      const [, name, op, arg = ''] = m;
      const value = env[name!];
      const unsetOrEmpty = value === undefined || value === '';
      switch (op) {
        case undefined:
          out += value ?? '';
          break;
        case ':-':
          out += unsetOrEmpty ? interpolate(arg, env, where) : value;
          break;
        case '-':
          out += value === undefined ? interpolate(arg, env, where) : value;
          break;
        case ':?':
        case '?':
          if (op === ':?' ? unsetOrEmpty : value === undefined) throw new ComposeError(`${where}: required variable ${name} is missing a value: ${interpolate(arg, env, where)}`);
          out += value;
          break;
        case ':+':
          out += unsetOrEmpty ? '' : interpolate(arg, env, where);
          break;
        case '+':
          out += value === undefined ? '' : interpolate(arg, env, where);
          break;
        default:
          break;
      }
      i = j;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
    if (m) {
      out += env[m[0]] ?? '';
      i += 1 + m[0].length;
      continue;
    }
    out += '$';
    i++;
  }
  return out;
}

function interpolateAll(v: unknown, env: Record<string, string | undefined>, where: string): unknown {
  if (typeof v === 'string') return v === RESET ? v : interpolate(v, env, where);
  if (Array.isArray(v)) return v.map((x, i) => interpolateAll(x, env, `${where}[${i}]`));
  if (v !== null && typeof v === 'object') {
    // Keys are not interpolated; `x-` extension fields are (Compose does too).
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateAll(x, env, where === '' ? k : `${where}.${k}`)]));
  }
  return v;
}

/** A YAML scalar as the string Compose makes of it. */
const scalar = (x: unknown): string => (typeof x === 'string' ? x : typeof x === 'number' || typeof x === 'boolean' ? String(x) : JSON.stringify(x));
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const REPLACED_SEQUENCES = new Set(['command', 'entrypoint', 'test', 'dns', 'dns_search', 'tmpfs']);

/** Environment (or labels) as a mapping; the list form `NAME=value` / `NAME` is converted. */
function asMapping(v: unknown): Record<string, string | null> {
  if (Array.isArray(v)) {
    return Object.fromEntries(
      v.map((e) => {
        const s = String(e);
        const eq = s.indexOf('=');
        return eq < 0 ? [s, null] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null || x === undefined ? null : scalar(x)]));
  return {};
}

function merge(base: unknown, over: unknown, key: string): unknown {
  if (over === RESET) return undefined;
  if (isObject(over) && OVERRIDE in over) return over[OVERRIDE];
  if (key === 'environment' || key === 'labels') return { ...asMapping(base), ...asMapping(over) };
  if (isObject(base) && isObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) {
      const merged = merge(base[k], v, k);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(over) && !REPLACED_SEQUENCES.has(key)) return [...(base as unknown[]), ...(over as unknown[])];
  return over;
}

/** Drops markers left in a single file (a `!reset` with nothing to reset). */
function stripMarkers(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripMarkers);
  if (isObject(v)) {
    if (OVERRIDE in v) return stripMarkers(v[OVERRIDE]);
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== RESET)
        .map(([k, x]) => [k, stripMarkers(x)]),
    );
  }
  return v;
}

function parsePort(p: unknown): { target: number; published?: string; host_ip?: string; protocol?: string } {
  if (typeof p === 'number') return { target: p };
  if (isObject(p)) {
    const published = p.published === undefined ? undefined : scalar(p.published);
    return { ...(p as object), target: Number(p.target), ...(published !== undefined ? { published } : {}) };
  }
  const [spec = '', protocol] = scalar(p).split('/');
  const parts = spec.split(':');
  const target = Number(parts.pop());
  const published = parts.pop();
  const hostIp = parts.join(':');
  return { target, ...(published ? { published } : {}), ...(hostIp ? { host_ip: hostIp } : {}), ...(protocol ? { protocol } : {}) };
}

function normalizeService(s: Record<string, unknown>, projectDir: string, env: Record<string, string | undefined>): ComposeService {
  const out: ComposeService = { ...s };
  // `NAME:` with no value passes the variable through from the environment Compose runs in.
  if ('environment' in s) out.environment = Object.fromEntries(Object.entries(asMapping(s.environment)).map(([k, v]) => [k, v ?? env[k] ?? null]));
  if (typeof s.build === 'string') out.build = { context: path.resolve(projectDir, s.build), dockerfile: 'Dockerfile' };
  else if (isObject(s.build)) out.build = { dockerfile: 'Dockerfile', ...s.build, context: path.resolve(projectDir, scalar(s.build.context ?? '.')) };
  if (Array.isArray(s.ports)) out.ports = s.ports.map(parsePort);
  if (Array.isArray(s.depends_on)) out.depends_on = Object.fromEntries(s.depends_on.map((d) => [String(d), { condition: 'service_started' }]));
  if (isObject(s.healthcheck) && typeof s.healthcheck.test === 'string') out.healthcheck = { ...s.healthcheck, test: ['CMD-SHELL', s.healthcheck.test] };
  for (const k of ['command', 'entrypoint'] as const) if (typeof s[k] === 'string') out[k] = [s[k]]; // Compose splits it shell-like; ours are lists
  return out;
}

export interface LoadOptions {
  /** The variables Compose interpolates with (the tests pass a clean environment). */
  env?: Record<string, string | undefined>;
  /** Project name when the file has none (Compose uses the folder name). */
  projectDir?: string;
}

/**
 * Loads, validates, merges and normalizes Compose files, like `docker compose -f a -f b config`.
 *
 * @throws ComposeError naming the file and the schema errors, or the missing required variable.
 */
export function loadCompose(files: string[], opts: LoadOptions = {}): ComposeModel {
  const env = opts.env ?? {};
  const projectDir = opts.projectDir ?? path.dirname(files[0] ?? '.');
  let merged: unknown = {};
  for (const file of files) {
    const raw = parseComposeYaml(readFileSync(file, 'utf8'), path.basename(file));
    const doc = interpolateAll(raw, env, '');
    const errors = validate(stripMarkers(doc));
    if (errors.length) throw new ComposeError(`${path.basename(file)} does not follow the Compose Specification:\n  ${formatSchemaErrors(errors).join('\n  ')}`);
    merged = merge(merged, doc, '');
  }
  const model = stripMarkers(merged) as Record<string, unknown>;
  const services = isObject(model.services) ? model.services : {};
  return {
    ...model,
    name: typeof model.name === 'string' ? model.name : path.basename(projectDir),
    services: Object.fromEntries(Object.entries(services).map(([n, s]) => [n, normalizeService(isObject(s) ? s : {}, projectDir, env)])),
  };
}

/** Schema errors of one Compose document given as text (after interpolation with `env`). */
export function schemaErrors(text: string, env: Record<string, string | undefined> = {}): string[] {
  return formatSchemaErrors(validate(stripMarkers(interpolateAll(parseComposeYaml(text), env, ''))));
}
