// Loading a config: bounded read (config/read.ts) → YAML with limits (config/yaml.ts) → environment overrides →
// zod shapes → resolved paths → meaning (config/semantics.ts). Every problem is a ConfigProblem at FILE:LINE;
// at most MAX_PROBLEMS_SHOWN are located and kept, the rest counted. A file with type errors still gets the
// cross-field problems of every section that parsed: every problem at once.
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import { redactUrl } from '../core/log.js';
import { DEFAULT_MODEL } from '../core/paths.js';
import { issueLine } from '../core/zod-issues.js';
import { ConfigError, didYouMean, MAX_PROBLEMS_SHOWN, type ConfigProblem } from './problems.js';
import { decodeConfigText, readConfigBytes, readConfigBytesSync } from './read.js';
import { ConfigSchema, type Config } from './schema/index.js';
import { checkSemantics } from './semantics.js';
import { lineOf, parseConfigYaml, type Path } from './yaml.js';

export { ConfigError, formatProblem, formatProblems, problemSummary, MAX_PROBLEMS_SHOWN, type ConfigProblem } from './problems.js';

/** A loaded config plus what the center and the birth message need to know about it. */
export interface LoadedConfig {
  config: Config;
  file: string;
  /** sha256 of the file bytes (first 16 hex digits): tells the center which config a box runs. */
  hash: string;
}

/** Environment variables that override secrets and a few deployment paths; the rest comes from the file. */
function envOverrides(env: NodeJS.ProcessEnv, raw: unknown): { path: Path; value: unknown; name: string }[] {
  const out: { path: Path; value: unknown; name: string }[] = [];
  const add = (name: string, path: Path, asNumber = false) => {
    const value = env[name];
    if (value !== undefined && value !== '') out.push({ path, value: asNumber && /^\d+$/.test(value) ? Number(value) : value, name });
  };
  add('ROADSIDE_MQTT_URL', ['mqtt', 'url']);
  add('ROADSIDE_MQTT_USERNAME', ['mqtt', 'username']);
  add('ROADSIDE_MQTT_PASSWORD', ['mqtt', 'password']);
  add('ROADSIDE_STATUS_TOKEN', ['status', 'token']);
  add('ROADSIDE_LOG_LEVEL', ['logging', 'level']);
  add('ROADSIDE_DATA_DIR', ['device', 'data_dir']);
  add('ROADSIDE_STATUS_PORT', ['status', 'port'], true);
  const cameras = isRecord(raw) && Array.isArray(raw.cameras) ? raw.cameras : [];
  cameras.forEach((cam, i) => {
    if (!isRecord(cam) || typeof cam.id !== 'string') return;
    const key = cam.id.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    add(`ROADSIDE_CAMERA_${key}_USERNAME`, ['cameras', i, 'username']);
    add(`ROADSIDE_CAMERA_${key}_PASSWORD`, ['cameras', i, 'password']);
  });
  return out;
}

const SECRET_KEY = /pass(word)?|token|secret|^key$|private/i;

/** Loads, validates and resolves a config file. Throws ConfigError listing its problems. Bounded in size, not in time. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  return parseConfig(readConfigBytesSync(file), file, env);
}

/** loadConfig for the CLI: the read also has a time limit (a hung mount is a problem, not a hang). */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, timeoutMs?: number): Promise<LoadedConfig> {
  return parseConfig(await readConfigBytes(file, timeoutMs), file, env);
}

/** A problem not yet located: located ones cost a walk of the YAML tree each, so only the shown ones are. */
interface Found {
  path: Path;
  message: string;
  key?: string;
  /** No `got`: the value is absent (a required key). */
  noValue?: boolean;
}

export function parseConfig(input: string | Uint8Array, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const text = typeof input === 'string' ? input : decodeConfigText(input, file);
  const { doc, lines, raw } = parseConfigYaml(text, file);
  const fromEnv = new Map<string, string>();
  for (const o of envOverrides(env, raw)) {
    setIn(raw, o.path, o.value);
    fromEnv.set(o.path.join('.'), o.name);
  }

  const locate = (f: Found): ConfigProblem => {
    const dotted = [...f.path, ...(f.key === undefined ? [] : [f.key])].join('.');
    const envName = fromEnv.get(dotted);
    const value = f.key === undefined && !f.noValue ? getIn(raw, f.path) : undefined;
    const secret = f.path.some((p) => typeof p === 'string' && SECRET_KEY.test(p));
    const line = envName ? undefined : lineOf(doc, lines, f.path, f.key);
    return {
      file: envName ? `${file} (env ${envName})` : file,
      ...(line === undefined ? {} : { line }),
      path: dotted,
      message: redactUrl(f.message),
      ...(value === undefined ? {} : { got: secret ? '<redacted>' : show(value) }),
    };
  };
  const fail = (found: Found[], parsed?: { config: Config; hash: string }): never => {
    throw new ConfigError(found.slice(0, MAX_PROBLEMS_SHOWN).map(locate), found.length, parsed);
  };

  const base = dirname(resolve(file));
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const shapes = parsed.error.issues.flatMap((issue) => zodProblems(issue, raw));
    return fail([...shapes, ...checkSemantics(resolvePaths(parseSections(raw), base), raw, getIn)]);
  }
  const config = resolvePaths(parsed.data, base) as Config;
  const hash = createHash('sha256').update(input).digest('hex').slice(0, 16);
  const semantic = checkSemantics(config, raw, getIn);
  if (semantic.length > 0) return fail(semantic, { config, hash });
  return { config, file, hash };
}

/** The top-level sections that parse on their own (defaults filled), when the whole file does not. */
function parseSections(raw: unknown): Partial<Config> {
  const out: Record<string, unknown> = {};
  if (!isRecord(raw)) return out;
  for (const [name, schema] of Object.entries(ConfigSchema.shape)) {
    const r = (schema as z.ZodType).safeParse(raw[name]);
    if (r.success) out[name] = r.data;
  }
  return out;
}

/** One problem per unknown key (each at its own line, with the likely key meant); the message of core/zod-issues otherwise. */
function zodProblems(issue: z.core.$ZodIssue, raw: unknown): Found[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const allowed = keysAllowedAt(ConfigSchema, path);
    return issue.keys.map((k) => {
      const meant = didYouMean(k, allowed);
      return { path, message: `unknown key "${k}"${meant ? `; did you mean "${meant}"?` : ''}`, key: k };
    });
  }
  const { message } = issueLine(issue);
  if (issue.code === 'invalid_type' && getIn(raw, path) === undefined) return [{ path, message: `required: ${message}`, noValue: true }];
  return [{ path, message }];
}

/** The zod definition parts walked to find the keys an object allows (zod 4's `_zod.def`). */
interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}
const defOf = (s: z.ZodType): SchemaDef => s._zod.def;

/** The object schemas `schema` may be, through optional/default/prefault/pipe/union wrappers. */
function objectsOf(schema: z.ZodType, depth = 0): SchemaDef[] {
  const d = defOf(schema);
  if (depth > 16) return [];
  if (d.type === 'object') return [d];
  const inner = d.innerType ?? d.in ?? d.getter?.();
  if (inner) return objectsOf(inner, depth + 1);
  if (d.options) return d.options.flatMap((o) => objectsOf(o, depth + 1));
  return [];
}

/** The keys the schema allows for the object at `path` (derived from the zod schema, so never out of date). */
export function keysAllowedAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  let here: z.ZodType[] = [schema];
  for (const k of path) {
    here = here.flatMap((s) => {
      const unwrapped = unwrap(s);
      const d = defOf(unwrapped);
      if (typeof k === 'number' && d.element) return [d.element];
      if (d.valueType) return [d.valueType];
      return objectsOf(unwrapped).flatMap((o) => (o.shape?.[String(k)] ? [o.shape[String(k)]!] : []));
    });
  }
  return [...new Set(here.flatMap((s) => objectsOf(s).flatMap((o) => Object.keys(o.shape ?? {}))))];
}

/** Through optional/default/prefault/nullable/pipe wrappers to the schema that does the work. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 16; i++) {
    const d = defOf(s);
    const inner = d.innerType ?? d.in ?? d.getter?.();
    if (!inner) return s;
    s = inner;
  }
  return s;
}

/** Relative paths in the file are relative to the file, so a config works wherever it is started from. */
function resolvePaths(config: Partial<Config>, base: string): Partial<Config> {
  const abs = (p: string, from = base) => (isAbsolute(p) ? p : resolve(from, p));
  const out: Partial<Config> = { ...config };
  // Paths under the data dir resolve only when device parsed; the data-path checks need all three anyway.
  const dataDir = config.device && abs(config.device.data_dir);
  if (config.device && dataDir) out.device = { ...config.device, data_dir: dataDir };
  if (config.cameras) out.cameras = config.cameras.map((c) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(c.url) ? c : { ...c, url: abs(c.url) }));
  if (config.detector) out.detector = { ...config.detector, model_path: config.detector.model_path ? abs(config.detector.model_path) : DEFAULT_MODEL() };
  if (config.outbox && dataDir) out.outbox = { ...config.outbox, path: abs(config.outbox.path, dataDir) };
  if (config.analytics && dataDir) out.analytics = { ...config.analytics, evidence: { ...config.analytics.evidence, dir: abs(config.analytics.evidence.dir, dataDir) } };
  const tls = config.mqtt?.tls;
  if (config.mqtt) {
    out.mqtt = {
      ...config.mqtt,
      tls: tls && { ...tls, ca: tls.ca && abs(tls.ca), cert: tls.cert && abs(tls.cert), key: tls.key && abs(tls.key) },
    };
  }
  return out;
}

/** A plain object (not an array, not null). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value at `path` of a parsed YAML/JSON tree; undefined where the path leads nowhere. */
export function getIn(obj: unknown, path: readonly (string | number)[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (Array.isArray(cur) && typeof k === 'number') cur = cur[k];
    else if (isRecord(cur) && Object.hasOwn(cur, String(k))) cur = cur[String(k)];
    else return undefined;
  }
  return cur;
}

function setIn(obj: unknown, path: Path, value: unknown): void {
  let cur = obj;
  for (const [i, k] of path.entries()) {
    const last = i === path.length - 1;
    if (Array.isArray(cur) && typeof k === 'number') {
      if (last) cur[k] = value;
      else cur = cur[k];
    } else if (isRecord(cur)) {
      if (last) cur[String(k)] = value;
      else {
        cur[String(k)] ??= {};
        cur = cur[String(k)];
      }
    } else return;
  }
}

/** The value as JSON, URL credentials hidden before it is shortened (so a cut cannot leave half a password). */
function show(v: unknown): string {
  const s = redactUrl(JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
