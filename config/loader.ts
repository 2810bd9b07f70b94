import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { AgentError } from '../core/errors.js';
import { DEFAULT_MODEL } from '../core/paths.js';
import { ConfigSchema, type Config, type Point } from './schema/index.js';

type Path = (string | number)[];

/** One thing wrong with a config file, located as precisely as the YAML allows. */
export interface ConfigProblem {
  file: string;
  /** 1-based line in the file; absent when the value came from the environment or the file is unreadable. */
  line?: number;
  path: string;
  message: string;
  /** The offending value, shortened; secrets are never echoed. */
  got?: string;
}

export class ConfigError extends AgentError {
  constructor(readonly problems: ConfigProblem[]) {
    super('CONFIG_INVALID', `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${formatProblems(problems)}`);
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return `${where} ${p.path || '(root)'}: ${p.message}${p.got === undefined ? '' : ` (got ${p.got})`}`;
}

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map(formatProblem).join('\n');
}

/** A loaded config plus what the center and the birth message need to know about it. */
export interface LoadedConfig {
  config: Config;
  file: string;
  /** sha256 of the file text (first 16 hex digits): tells the center which config a box runs. */
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

/** Loads, validates and resolves a config file. Throws ConfigError listing every problem at once. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError([{ file, path: '', message: `cannot read the config file (${code})` }]);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = doc.errors.map((e) => ({
    file,
    line: lineCounter.linePos(e.pos[0]).line,
    path: '',
    message: `YAML syntax: ${e.message.split('\n')[0] ?? e.message}`,
  }));
  if (problems.length > 0) throw new ConfigError(problems);

  const raw: unknown = doc.toJS() ?? {};
  const fromEnv = new Map<string, string>();
  for (const o of envOverrides(env, raw)) {
    setIn(raw, o.path, o.value);
    fromEnv.set(o.path.join('.'), o.name);
  }

  const locate = (path: Path, key?: string): number | undefined => lineOf(doc, lineCounter, path, key);
  const problem = (path: Path, message: string, key?: string): ConfigProblem => {
    const dotted = [...path, ...(key === undefined ? [] : [key])].join('.');
    const envName = fromEnv.get(dotted);
    const value = key === undefined ? getIn(raw, path) : undefined;
    const secret = path.some((p) => typeof p === 'string' && SECRET_KEY.test(p));
    return {
      file: envName ? `${file} (env ${envName})` : file,
      line: envName ? undefined : locate(path, key),
      path: dotted,
      message,
      got: value === undefined ? undefined : secret ? '<redacted>' : show(value),
    };
  };

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.flatMap((issue) => zodProblems(issue, raw, problem)));
  }
  const config = resolvePaths(parsed.data, dirname(resolve(file)));
  const semantic = checkSemantics(config, raw).map((p) => problem(p.path, p.message, p.key));
  if (semantic.length > 0) throw new ConfigError(semantic);
  return { config, file, hash: createHash('sha256').update(text).digest('hex').slice(0, 16) };
}

function zodProblems(issue: z.core.$ZodIssue, raw: unknown, problem: (path: Path, message: string, key?: string) => ConfigProblem): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => problem(path, `unknown key "${k}"`, k));
  }
  if (issue.code === 'invalid_type' && getIn(raw, path) === undefined) {
    return [{ ...problem(path, `required: ${issue.message.replace(/^Invalid input: /, '')}`), got: undefined }];
  }
  return [problem(path, issue.message.replace(/^Invalid input: /, ''))];
}

interface Semantic {
  path: Path;
  message: string;
  key?: string;
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** Checks that span fields or touch the file system: zod validates shapes, this validates meaning. */
function checkSemantics(config: Config, raw: unknown): Semantic[] {
  const out: Semantic[] = [];
  const seenCams = new Map<string, number>();
  config.cameras.forEach((cam, i) => {
    const at: Path = ['cameras', i];
    const first = seenCams.get(cam.id);
    if (first !== undefined) out.push({ path: [...at, 'id'], message: `duplicate camera id "${cam.id}" (also cameras.${first})` });
    else seenCams.set(cam.id, i);

    const rawUrl = getIn(raw, [...at, 'url']);
    if (/^rtsps?:\/\//i.test(cam.url)) {
      let u: URL | undefined;
      try {
        u = new URL(cam.url);
      } catch {
        out.push({ path: [...at, 'url'], message: 'not a valid RTSP URL' });
      }
      if (u && (u.username || u.password)) {
        out.push({ path: [...at, 'url'], message: 'credentials in the URL: move them to username/password (they would leak into logs and process lists)' });
      }
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(cam.url)) {
      out.push({ path: [...at, 'url'], message: 'expected rtsp://, rtsps:// or a local video file' });
    } else if (!existsSync(cam.url)) {
      out.push({ path: [...at, 'url'], message: `video file not found: ${typeof rawUrl === 'string' ? rawUrl : cam.url}` });
    }

    const { width, height } = cam.frame;
    const inside = (p: Point) => p[0] >= 0 && p[1] >= 0 && p[0] <= width && p[1] <= height;
    const checkPoints = (points: Point[], path: Path) =>
      points.forEach((p, k) => {
        if (!inside(p)) out.push({ path: [...path, k], message: `point [${p.join(', ')}] is outside the ${width}x${height} frame` });
      });
    const ids = new Set<string>();
    const unique = (id: string, path: Path) => {
      if (ids.has(id)) out.push({ path: [...path, 'id'], message: `duplicate line/zone id "${id}" on camera "${cam.id}"` });
      ids.add(id);
    };
    const signals = new Set(config.analytics.signals.map((s) => s.id));
    cam.lines.forEach((line, j) => {
      const lp: Path = [...at, 'lines', j];
      unique(line.id, lp);
      if (!inside(line.a)) out.push({ path: [...lp, 'a'], message: `point [${line.a.join(', ')}] is outside the ${width}x${height} frame` });
      if (!inside(line.b)) out.push({ path: [...lp, 'b'], message: `point [${line.b.join(', ')}] is outside the ${width}x${height} frame` });
      if (line.a[0] === line.b[0] && line.a[1] === line.b[1]) out.push({ path: [...lp, 'b'], message: 'a line needs two distinct points' });
      if (line.stop_line && !line.signal) out.push({ path: [...lp, 'signal'], message: 'a stop line needs the id of its signal' });
      if (line.signal && !signals.has(line.signal)) out.push({ path: [...lp, 'signal'], message: `unknown signal "${line.signal}" (not in analytics.signals)` });
    });
    cam.zones.forEach((zone, j) => {
      const zp: Path = [...at, 'zones', j];
      unique(zone.id, zp);
      checkPoints(zone.polygon, [...zp, 'polygon']);
      const d = zone.allowed_direction;
      if (d && d[0] === 0 && d[1] === 0) out.push({ path: [...zp, 'allowed_direction'], message: 'direction vector must not be [0, 0]' });
    });
    if (cam.roi) checkPoints(cam.roi, [...at, 'roi']);
    if (cam.calibration) {
      checkPoints(cam.calibration.image, [...at, 'calibration', 'image']);
      if (degenerate(cam.calibration.image) || degenerate(cam.calibration.world)) {
        out.push({ path: [...at, 'calibration'], message: 'three of the four calibration points are on one line: the ground plane cannot be solved' });
      }
    }
  });

  const model = config.detector.model_path;
  if (model && !existsSync(model)) out.push({ path: ['detector', 'model_path'], message: `model file not found: ${model}` });
  const names = config.detector.class_names;
  if (names) {
    config.detector.classes.forEach((c, i) => {
      if (!names.includes(c)) out.push({ path: ['detector', 'classes', i], message: `class "${c}" is not in detector.class_names` });
    });
  }
  const t = config.analytics.tracker;
  if (t.low_score > t.high_score) out.push({ path: ['analytics', 'tracker', 'low_score'], message: `must not exceed high_score (${t.high_score})` });

  const url = new URL(config.mqtt.url);
  const plaintext = url.protocol === 'mqtt:' || url.protocol === 'ws:';
  if (url.username || url.password) {
    out.push({ path: ['mqtt', 'url'], message: 'credentials in the URL: move them to mqtt.username / mqtt.password' });
  }
  if (plaintext && !isLoopbackHost(url.hostname) && !config.mqtt.allow_insecure) {
    out.push({ path: ['mqtt', 'url'], message: `plaintext ${url.protocol}// to the non-loopback host "${url.hostname}": use mqtts:// or set mqtt.allow_insecure: true` });
  }
  if (config.mqtt.embedded_broker && (!isLoopbackHost(url.hostname) || !plaintext)) {
    out.push({ path: ['mqtt', 'embedded_broker'], message: 'the embedded broker serves plain mqtt:// on loopback only' });
  }
  const tls = config.mqtt.tls;
  if (tls) {
    if (plaintext) out.push({ path: ['mqtt', 'tls'], message: `TLS files are set but the URL is plaintext ${url.protocol}//: use mqtts:// or wss://` });
    for (const k of ['ca', 'cert', 'key'] as const) {
      const f = tls[k];
      if (f && !isReadableFile(f)) out.push({ path: ['mqtt', 'tls', k], message: `file not found or not readable: ${f}` });
    }
    if (Boolean(tls.cert) !== Boolean(tls.key)) out.push({ path: ['mqtt', 'tls', tls.cert ? 'key' : 'cert'], message: 'mutual TLS needs both cert and key' });
  }
  if (config.status.enabled && !isLoopbackHost(config.status.bind) && !config.status.token) {
    out.push({ path: ['status', 'bind'], message: `binding to "${config.status.bind}" exposes the box beyond loopback: set status.token (or ROADSIDE_STATUS_TOKEN)` });
  }
  return out;
}

function isReadableFile(f: string): boolean {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
}

/** True when three of four points are (nearly) collinear. */
function degenerate(pts: Point[]): boolean {
  for (let i = 0; i < 4; i++) {
    const [a, b, c] = pts.filter((_, k) => k !== i) as [Point, Point, Point];
    const area2 = Math.abs((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1]));
    const scale = Math.max(1e-9, Math.hypot(b[0] - a[0], b[1] - a[1]) * Math.hypot(c[0] - a[0], c[1] - a[1]));
    if (area2 / scale < 1e-3) return true;
  }
  return false;
}

/** Relative paths in the file are relative to the file, so a config works wherever it is started from. */
function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string, from = base) => (isAbsolute(p) ? p : resolve(from, p));
  const dataDir = abs(config.device.data_dir);
  const tls = config.mqtt.tls;
  return {
    ...config,
    device: { ...config.device, data_dir: dataDir },
    cameras: config.cameras.map((c) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(c.url) ? c : { ...c, url: abs(c.url) })),
    detector: { ...config.detector, model_path: config.detector.model_path ? abs(config.detector.model_path) : DEFAULT_MODEL() },
    outbox: { ...config.outbox, path: abs(config.outbox.path, dataDir) },
    analytics: { ...config.analytics, evidence: { ...config.analytics.evidence, dir: abs(config.analytics.evidence.dir, dataDir) } },
    mqtt: {
      ...config.mqtt,
      tls: tls && {
        ...tls,
        ca: tls.ca && abs(tls.ca),
        cert: tls.cert && abs(tls.cert),
        key: tls.key && abs(tls.key),
      },
    },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getIn(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const k of path) {
    if (Array.isArray(cur) && typeof k === 'number') cur = cur[k];
    else if (isRecord(cur)) cur = cur[String(k)];
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

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Line of the key that holds `path` (+ `key`): "tls:" rather than the first line inside it. A missing key
 * falls back to its nearest existing parent, so "required" problems point at the section that lacks it.
 */
function lineOf(doc: Document, lc: LineCounter, path: Path, key?: string): number | undefined {
  const full = key === undefined ? path : [...path, key];
  for (let n = full.length; n >= 1; n--) {
    const parent = n === 1 ? doc.contents : (doc.getIn(full.slice(0, n - 1), true) as Node | undefined);
    const k = full[n - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === k);
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return lc.linePos(range[0]).line;
    } else if (isSeq(parent) && typeof k === 'number') {
      const item = parent.items[k];
      if ((isScalar(item) || isMap(item) || isSeq(item)) && item.range) return lc.linePos(item.range[0]).line;
    }
  }
  const root = doc.contents;
  return root?.range ? lc.linePos(root.range[0]).line : undefined;
}
