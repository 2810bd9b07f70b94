// Generates the MQTT contract documents from the zod schemas the agent itself uses (the TOPICS table):
// docs/mqtt.md, the AsyncAPI 3.0 document docs/asyncapi.yaml and one JSON Schema per payload in docs/schemas/.
// Every example below is a typed constant and is validated against its schema at generation time: generation
// fails when an example does not validate, so the documents cannot show a payload the agent would not send.
//
//   npx tsx tools/contract-docs/generate.ts            write the documents (under the package root)
//   npx tsx tools/contract-docs/generate.ts --check    exit 1 when a committed document is stale or missing
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import YAML from 'yaml';
import { AgentError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';
import type { BirthPayload } from '../../contract/birth.js';
import {
  COMMAND_ERROR_CODES,
  CommandError,
  CommandOk,
  CorrelationId,
  PingArgs,
  PingResult,
  RebirthArgs,
  RebirthResult,
  RESEND_MAX_ROWS,
  ResendArgs,
  ResendResult,
  SetLogLevelArgs,
  SetLogLevelResult,
  SignalArgs,
  SignalResult,
  SnapshotArgs,
  SnapshotResult,
  ReloadConfigArgs,
  ReloadConfigResult,
  type CommandRequest,
  type CommandResponse,
} from '../../contract/command.js';
import { EVENT_SCHEMA, WireEventSchema, type WireEvent } from '../../contract/event.js';
import { HEALTH_SCHEMA, HealthMessage } from '../../contract/health.js';
import type { CameraStatusPayload, StatusPayload } from '../../contract/status.js';
import { CONTRACT_VERSION, DeliveryFields, TOPICS, type TopicName, type TopicSpec } from '../../contract/topics.js';

// ---------------------------------------------------------------------------------------------------------
// Payload schemas

/**
 * Topics whose TOPICS entry only names the delivery fields (`DeliveryFields`, a loose object): the documents use
 * the full message schema, which contains those fields (checked by `checkDeliveryFields`).
 */
const FULL_MESSAGE: Partial<Record<TopicName, z.ZodType>> = {
  events: WireEventSchema,
  health: HealthMessage,
};

/** The schema of a topic's payload as documented: the TOPICS schema, or the full message for outbox topics. */
export function payloadSchema(name: TopicName): z.ZodType {
  const spec: TopicSpec = TOPICS[name];
  if (spec.schema !== DeliveryFields) return spec.schema;
  const full = FULL_MESSAGE[name];
  if (!full) throw new ContractDocsError(`topic "${name}" only has the DeliveryFields schema and no full message schema in generate.ts`);
  return full;
}

/** Commands of the agent: the uplink's own (agent/uplink/uplink.ts) and the agent's (agent/commands.ts), with their argument and result schemas. */
export const BUILTIN_COMMANDS = {
  ping: { args: PingArgs, result: PingResult, summary: 'Liveness check: uptime, session and the last seq assigned by the outbox' },
  rebirth: { args: RebirthArgs, result: RebirthResult, summary: 'Publish birth, online status and the retained camera states again' },
  resend: {
    args: ResendArgs,
    result: ResendResult,
    summary: `Publish the kept outbox rows with from <= seq <= to again (replayed: true), at most ${RESEND_MAX_ROWS} seqs per request. The center repairs seq gaps with it`,
  },
  'set-log-level': { args: SetLogLevelArgs, result: SetLogLevelResult, summary: 'Change the log level until the agent restarts' },
  snapshot: { args: SnapshotArgs, result: SnapshotResult, summary: 'A JPEG of a camera at its native resolution (a short extra connection to the camera)' },
  signal: { args: SignalArgs, result: SignalResult, summary: 'Signal state for red-light enforcement, from the center or a local signal-controller bridge' },
  'reload-config': { args: ReloadConfigArgs, result: ReloadConfigResult, summary: 'Read the config file again: refused with every problem if invalid (running config kept); applied by a restart if changed' },
} as const;
export type BuiltinCommand = keyof typeof BUILTIN_COMMANDS;
const COMMAND_NAMES = Object.keys(BUILTIN_COMMANDS) as BuiltinCommand[];

/** `{id?, ...args}`: the request of one command (the args' refinements are checked separately on examples). */
function commandRequestSchema(name: BuiltinCommand): z.ZodType {
  const args = BUILTIN_COMMANDS[name].args;
  return z.strictObject({ id: CorrelationId.optional(), ...args.shape }).describe(`${name} request: ${args.description ?? ''}`.trim());
}

/** The response of one command, with its typed `data`. */
function commandResponseSchema(name: BuiltinCommand): z.ZodType {
  return z
    .discriminatedUnion('status', [CommandOk.extend({ data: BUILTIN_COMMANDS[name].result }), CommandError])
    .describe(`${name} response`);
}

// ---------------------------------------------------------------------------------------------------------
// Examples (typed; validated at generation time)

export interface Example<T> {
  name: string;
  summary: string;
  /** A concrete topic the example travels on. */
  topic: string;
  payload: T;
}
export type CommandExample<T> = Example<T> & { command: BuiltinCommand };

interface PayloadTypes {
  status: StatusPayload;
  birth: BirthPayload;
  events: WireEvent;
  health: HealthMessage;
  camera_status: CameraStatusPayload;
  command: CommandRequest;
  command_result: CommandResponse;
}
type Examples = { [K in TopicName]: K extends 'command' | 'command_result' ? CommandExample<PayloadTypes[K]>[] : Example<PayloadTypes[K]>[] };

const BASE = 'roadside/a7-north/box-0042';
const T0 = '2026-11-26T12:00:00.000Z';

const FLOW_IN = {
  volume: 31,
  volume_by_class: { car: 27, truck: 3, motorcycle: 1 },
  speed_samples: 29,
  speed_mean_kmh: 71.4,
  speed_p85_kmh: 83.0,
};

export const EXAMPLES: Examples = {
  status: [
    { name: 'online', summary: 'Connected, birth published', topic: `${BASE}/status`, payload: { state: 'online', session: 42, ts: '2026-11-26T11:58:02.117Z' } },
    {
      name: 'offline_will',
      summary: 'The Will, published by the broker when the connection of session 42 died (ts: when that connection opened)',
      topic: `${BASE}/status`,
      payload: { state: 'offline', session: 42, ts: '2026-11-26T11:58:01.950Z' },
    },
    { name: 'stopped', summary: 'Clean shutdown', topic: `${BASE}/status`, payload: { state: 'stopped', session: 43, ts: '2026-11-26T13:10:44.500Z' } },
  ],
  birth: [
    {
      name: 'birth',
      summary: 'Birth certificate of a box with one camera',
      topic: `${BASE}/birth`,
      payload: {
        agent_version: '0.1.0',
        model: { name: 'nanodet-m-416', version: 'tfjs-3.0.4', sha256: '3f1c7d0e9a4b6c2d8e5f7a1b3c9d0e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3d' },
        config_hash: '9c2f41d07e3a5b18',
        cameras: [{ id: 'cam1', lines: ['stop-nb'], zones: ['shoulder'] }],
        capabilities: ['speed', 'wrong_way', 'snapshot'],
        last_reboot_reason: 'power_loss',
        restarts: 17,
        health: {
          schema: HEALTH_SCHEMA,
          ts: '2026-11-26T11:57:30.000Z',
          status: 'ok',
          reasons: [],
          cpu_cores: 4,
          memory_total_mb: 3794,
          disk_total_mb: 29_000,
          disk_free_mb: 21_400,
          soc_temp_c: 61.2,
          clock_synced: true,
          network_interface: 'eth0',
          ip4: '10.20.4.42',
        },
        location: { lat: 45.5017, lon: -73.5673, description: 'A-7 km 42 northbound' },
        contract_version: CONTRACT_VERSION,
        session: 42,
        ts: '2026-11-26T11:58:02.101Z',
        commands: ['ping', 'rebirth', 'reload-config', 'resend', 'set-log-level', 'signal', 'snapshot'],
      },
    },
  ],
  events: [
    {
      name: 'line_crossing',
      summary: 'A car crossed the counting line (live)',
      topic: `${BASE}/events/cam1`,
      payload: {
        schema: EVENT_SCHEMA,
        id: '01937f6e-2a40-7c3d-8e5f-0123456789ab',
        device: 'box-0042',
        site: 'a7-north',
        camera: 'cam1',
        captured_at: T0,
        mono_ms: 81_234_567.5,
        clock_synced: true,
        type: 'line_crossing',
        priority: 'event',
        object: { track_id: 1187, class: 'car', score: 0.81, box: [412, 233, 518, 301], speed_kmh: 74.2, speed_uncertainty_kmh: 3.1 },
        rule: { kind: 'line', id: 'stop-nb' },
        attributes: { direction: 'in', point_px: [465.2, 300.8], crossed_at: '2026-11-26T11:59:59.968Z' },
        seq: 1_048_211,
        sent_at: '2026-11-26T12:00:00.043Z',
        replayed: false,
      },
    },
    {
      name: 'wrong_way_replayed',
      summary: 'A violation with evidence, sent from the backlog after an outage',
      topic: `${BASE}/events/cam1`,
      payload: {
        schema: EVENT_SCHEMA,
        id: '01937f6e-3b51-7d4e-9f60-1123456789ab',
        device: 'box-0042',
        site: 'a7-north',
        camera: 'cam1',
        captured_at: '2026-11-26T12:00:04.400Z',
        mono_ms: 81_238_967.1,
        clock_synced: true,
        type: 'wrong_way',
        priority: 'violation',
        object: { track_id: 1190, class: 'car', score: 0.77, box: [300, 180, 372, 231] },
        rule: { kind: 'zone', id: 'ramp-exit' },
        attributes: { distance_px: 143.5, allowed_direction: [0, 1], heading: [0.06, -0.998] },
        evidence: {
          frame_sha256: 'a3f1c7d0e9a4b6c2d8e5f7a1b3c9d0e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3',
          crop_sha256: 'b4a2d8e1f0b5c7d3e9f6a8b2c4d0e1f3a5b7c9d1e2f4a6b8c0d3e5f7a9b1c2d4',
          frame_file: '20261126T120004.400Z-1190-frame.jpg',
          crop_file: '20261126T120004.400Z-1190-crop.jpg',
        },
        seq: 1_048_230,
        sent_at: '2026-11-26T12:41:17.212Z',
        replayed: true,
      },
    },
    {
      name: 'flow',
      summary: 'Traffic statistics of a line over one 60 s bin',
      topic: `${BASE}/events/cam1`,
      payload: {
        schema: EVENT_SCHEMA,
        id: '01937f6f-0f00-7a11-8b22-2123456789ab',
        device: 'box-0042',
        site: 'a7-north',
        camera: 'cam1',
        captured_at: '2026-11-26T12:01:00.000Z',
        mono_ms: 81_294_567.5,
        clock_synced: true,
        type: 'flow',
        priority: 'statistics',
        rule: { kind: 'line', id: 'stop-nb' },
        attributes: {
          bin_start: T0,
          bin_end: '2026-11-26T12:01:00.000Z',
          observed_s: 60,
          occupancy: 0.12,
          in: FLOW_IN,
          out: { volume: 0, volume_by_class: {}, speed_samples: 0 },
        },
        seq: 1_048_260,
        sent_at: '2026-11-26T12:01:00.051Z',
        replayed: false,
      },
    },
  ],
  health: [
    {
      name: 'health',
      summary: 'Periodic health report of a box with one camera, slightly warm',
      topic: `${BASE}/health`,
      payload: {
        schema: HEALTH_SCHEMA,
        ts: T0,
        slow_sampled_at: '2026-11-26T11:59:30.000Z',
        status: 'warn',
        reasons: [{ code: 'temperature_high', severity: 'warn', message: 'SoC at 78.5 °C (warn above 75 °C)' }],
        system: {
          cpu_load_pct: 63.5,
          cpu_core_load_pct: [70.1, 58.2, 61.0, 64.7],
          cpu_cores: 4,
          load_avg_1m: 2.61,
          soc_temp_c: 78.5,
          soc_temp_source: 'thermal_zone0:cpu-thermal',
          throttled: { throttled_now: false, under_voltage_now: false, freq_capped_now: false, soft_temp_limit_now: false, occurred_since_boot: false, raw: '0x0' },
          memory_total_mb: 3794,
          memory_used_mb: 1210,
          memory_available_mb: 2584,
          swap_used_mb: 0,
          disk_path: '/var/lib/roadside',
          disk_total_mb: 29_000,
          disk_free_mb: 21_400,
          uptime_s: 86_400,
          network: { interface: 'eth0', link_up: true, type: 'wired', ip4: '10.20.4.42', ip6: null, speed_mbps: 100 },
          clock: { synced: true, offset_ms: 1.8, source: 'chronyc' },
        },
        agent: { uptime_s: 7200, rss_mb: 312, heap_used_mb: 48, event_loop_lag_ms: 2.1, event_loop_lag_max_ms: 9.4 },
        cameras: [
          {
            id: 'cam1',
            status: 'online',
            camera_fps: 10,
            process_fps: 9.6,
            skipped_fps: 0.4,
            motion_skipped_fps: 0,
            reconnects_last_hour: 0,
            stalls_last_hour: 0,
            last_frame_age_s: 0.08,
          },
        ],
        detector: { state: 'running', inference_ms_mean: 41.2, inference_ms_p95: 55.0, detection_fps: 9.6, restarts: 0, last_inference_age_s: 0.1 },
        outbox: { depth: 3, oldest_unsent_age_s: 0.2, evicted: 0 },
        uplink: { connected: true, state: 'online', publish_rate_per_s: 4.2, session: 42 },
        id: '01937f6e-2b00-7c3d-8e5f-3123456789ab',
        seq: 1_048_212,
        sent_at: '2026-11-26T12:00:00.120Z',
        replayed: false,
      },
    },
  ],
  camera_status: [
    {
      name: 'offline',
      summary: 'The camera refuses the credentials',
      topic: `${BASE}/cameras/cam1/status`,
      payload: { camera: 'cam1', state: 'offline', reason: 'rtsp 401 Unauthorized', ts: '2026-11-26T11:58:10.000Z' },
    },
  ],
  command: [
    { name: 'ping', summary: 'ping with a correlation id', command: 'ping', topic: `${BASE}/cmd/ping`, payload: { id: 'c-1001' } },
    { name: 'resend', summary: 'Ask for seqs 1048214 to 1048229 again', command: 'resend', topic: `${BASE}/cmd/resend`, payload: { id: 'c-1002', from: 1_048_214, to: 1_048_229 } },
    { name: 'set_log_level', summary: 'Turn on debug logging', command: 'set-log-level', topic: `${BASE}/cmd/set-log-level`, payload: { id: 7, level: 'debug' } },
    { name: 'rebirth', summary: 'Republish birth and retained states (empty payload means {})', command: 'rebirth', topic: `${BASE}/cmd/rebirth`, payload: {} },
  ],
  command_result: [
    {
      name: 'ping_ok',
      summary: 'ping answered',
      command: 'ping',
      topic: `${BASE}/cmd/ping/result`,
      payload: { status: 'ok', data: { uptime_s: 7200, session: 42, seq: 1_048_260, ts: '2026-11-26T12:01:00.300Z' }, id: 'c-1001' },
    },
    {
      name: 'resend_ok',
      summary: '15 of the 16 seqs are still kept and queued; one was evicted',
      command: 'resend',
      topic: `${BASE}/cmd/resend/result`,
      payload: { status: 'ok', data: { queued: 15, missing: 1 }, id: 'c-1002' },
    },
    {
      name: 'resend_error',
      summary: 'Invalid range',
      command: 'resend',
      topic: `${BASE}/cmd/resend/result`,
      payload: { status: 'error', error: { code: 'INVALID_ARGS', message: 'to: to must be >= from' }, id: 'c-1003' },
    },
  ],
};

export class ContractDocsError extends AgentError {
  constructor(message: string) {
    super('CONTRACT_DOCS', message);
  }
}

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Every example against its topic schema (and command examples against the command's own schemas). Returns problems. */
export function exampleProblems(examples: Examples = EXAMPLES): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(TOPICS) as TopicName[]) {
    const list = examples[name] as (Example<unknown> & { command?: BuiltinCommand })[];
    if (list.length === 0) problems.push(`${name}: no example`);
    const schema = payloadSchema(name);
    for (const ex of list) {
      const where = `${name} example "${ex.name}"`;
      const r = schema.safeParse(ex.payload);
      if (!r.success) problems.push(`${where}: ${issues(r.error)}`);
      if (FULL_MESSAGE[name]) {
        const d = DeliveryFields.safeParse(ex.payload);
        if (!d.success) problems.push(`${where} (delivery fields): ${issues(d.error)}`);
      }
      if (ex.command !== undefined) {
        const cmd = BUILTIN_COMMANDS[ex.command];
        if (name === 'command') {
          const { id: _id, ...args } = ex.payload as Record<string, unknown>;
          const a = cmd.args.safeParse(args);
          if (!a.success) problems.push(`${where} (${ex.command} args): ${issues(a.error)}`);
        } else {
          const resp = ex.payload as CommandResponse;
          if (resp.status === 'ok') {
            const d = cmd.result.safeParse(resp.data);
            if (!d.success) problems.push(`${where} (${ex.command} result): ${issues(d.error)}`);
          }
        }
      }
      if (!topicMatches(TOPICS[name].pattern, ex.topic)) problems.push(`${where}: topic ${ex.topic} does not match ${TOPICS[name].pattern}`);
    }
  }
  return problems;
}

/** True when a concrete topic matches a TOPICS pattern (`{base}` = three levels, `{x}` = one level). */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.replace('{base}', '{prefix}/{site}/{device}').split('/');
  const t = topic.split('/');
  return p.length === t.length && p.every((level, i) => (/^\{\w+\}$/.test(level) ? (t[i] ?? '') !== '' : level === t[i]));
}

// ---------------------------------------------------------------------------------------------------------
// JSON Schemas

const SCHEMA_HOST = 'https://roadside-agent.invalid/schemas';

const kebab = (s: string): string => s.replace(/_/g, '-');

interface SchemaDoc {
  /** File base name (docs/schemas/<file>.schema.json) and AsyncAPI component name. */
  file: string;
  component: string;
  title: string;
  schema: z.ZodType;
  io: 'input' | 'output';
}

function schemaDocs(): SchemaDoc[] {
  const out: SchemaDoc[] = [];
  for (const name of Object.keys(TOPICS) as TopicName[]) {
    const spec: TopicSpec = TOPICS[name];
    out.push({ file: kebab(name), component: name, title: `${spec.pattern} payload`, schema: payloadSchema(name), io: spec.direction === 'subscribe' ? 'input' : 'output' });
  }
  for (const c of COMMAND_NAMES) {
    const id = c.replace(/-/g, '_');
    out.push({ file: `command-${c}`, component: `command_${id}`, title: `${c} request`, schema: commandRequestSchema(c), io: 'input' });
    out.push({ file: `command-${c}-result`, component: `command_${id}_result`, title: `${c} response`, schema: commandResponseSchema(c), io: 'output' });
  }
  return out;
}

function jsonSchema(d: SchemaDoc, target: 'draft-2020-12' | 'draft-7'): Record<string, unknown> {
  return z.toJSONSchema(d.schema, { target, io: d.io, unrepresentable: 'throw' });
}

// ---------------------------------------------------------------------------------------------------------
// Markdown rendering of JSON Schemas

type Js = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  description?: string;
  default?: unknown;
  properties?: Record<string, Js>;
  required?: string[];
  additionalProperties?: boolean | Js;
  items?: Js;
  prefixItems?: Js[];
  anyOf?: Js[];
  oneOf?: Js[];
};

const SAFE = Number.MAX_SAFE_INTEGER;
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function nonNull(s: Js): { inner: Js; nullable: boolean } {
  const alts = s.anyOf ?? s.oneOf;
  if (alts && alts.length === 2 && alts.some((a) => a.type === 'null')) {
    const inner = alts.find((a) => a.type !== 'null') as Js;
    return { inner, nullable: true };
  }
  return { inner: s, nullable: false };
}

function bounds(s: Js): string {
  const parts: string[] = [];
  if (s.minimum !== undefined && s.minimum > -SAFE) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined && s.maximum < SAFE) parts.push(`≤ ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`);
  return parts.length ? ` ${parts.join(', ')}` : '';
}

function typeOf(s: Js): string {
  if (Array.isArray(s.type)) {
    const types = s.type.filter((t) => t !== 'null');
    const base = types.map((t) => typeOf({ ...s, type: t })).join(' or ');
    return s.type.includes('null') ? `${base} or null` : base;
  }
  const { inner, nullable } = nonNull(s);
  if (nullable) return `${typeOf(inner)} or null`;
  if ('const' in s) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' / ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(typeOf).join(' or ');
  switch (s.type) {
    case 'string': {
      if (s.format) return `string (${s.format})`;
      if (s.pattern) return `string \`${s.pattern}\``;
      const len = s.maxLength !== undefined ? ` (≤ ${s.maxLength} chars)` : '';
      return `string${len}`;
    }
    case 'integer':
    case 'number':
      return `${s.type}${bounds(s)}`;
    case 'boolean':
      return 'boolean';
    case 'array': {
      if (s.prefixItems) return `[${s.prefixItems.map(typeOf).join(', ')}]`;
      const items = s.items ? typeOf(s.items) : 'any';
      const n = s.minItems ? ` (≥ ${s.minItems})` : '';
      return `${/\s/.test(items) ? `(${items})` : items}[]${n}`;
    }
    case 'object':
      if (!s.properties && typeof s.additionalProperties === 'object') return `map of ${typeOf(s.additionalProperties)}`;
      return 'object';
    default:
      return 'any';
  }
}

interface Row {
  path: string;
  type: string;
  required: boolean;
  description: string;
}

function fieldRows(s: Js, path: string, required: boolean, out: Row[]): void {
  const { inner } = nonNull(s);
  const description = s.description ?? inner.description ?? '';
  out.push({ path, type: typeOf(s), required, description });
  const obj = inner.type === 'object' ? inner : inner.type === 'array' && inner.items?.type === 'object' ? inner.items : undefined;
  if (!obj?.properties) return;
  const sub = inner.type === 'array' ? `${path}[]` : path;
  for (const [k, v] of Object.entries(obj.properties)) fieldRows(v, `${sub}.${k}`, obj.required?.includes(k) ?? false, out);
}

function table(rows: Row[]): string {
  if (rows.length === 0) return '_(no fields)_\n';
  const lines = ['| field | type | required | description |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| \`${cell(r.path)}\` | ${cell(r.type)} | ${r.required ? 'yes' : 'no'} | ${cell(r.description)} |`);
  return `${lines.join('\n')}\n`;
}

function propsRows(s: Js, keys?: string[]): Row[] {
  const rows: Row[] = [];
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    if (keys && !keys.includes(k)) continue;
    fieldRows(v, k, s.required?.includes(k) ?? false, rows);
  }
  return rows;
}

/** Field tables of a payload: one table for an object; for a union, the fields common to all variants, then each variant's own. */
function payloadMarkdown(s: Js): string {
  const variants = s.oneOf ?? s.anyOf;
  if (!variants || !variants.every((v) => v.type === 'object')) {
    return s.type === 'object' ? table(propsRows(s)) : table([{ path: '(payload)', type: typeOf(s), required: true, description: s.description ?? '' }]);
  }
  const first = variants[0] as Js;
  const common = Object.keys(first.properties ?? {}).filter((k) =>
    variants.every((v) => v.properties?.[k] !== undefined && JSON.stringify(v.properties[k]) === JSON.stringify(first.properties?.[k]) && (v.required?.includes(k) ?? false) === (first.required?.includes(k) ?? false)),
  );
  const disc = Object.keys(first.properties ?? {}).find(
    (k) =>
      variants.every((v) => v.properties?.[k] && 'const' in (v.properties[k])) &&
      new Set(variants.map((v) => JSON.stringify((v.properties?.[k] as Js).const))).size === variants.length,
  );
  let md = `One of ${variants.length} shapes${disc ? `, told apart by \`${disc}\`` : ''}.\n\nFields of every shape:\n\n${table(propsRows(first, common))}`;
  for (const v of variants) {
    const tag = disc ? `\`${disc}: ${JSON.stringify((v.properties?.[disc] as Js).const)}\`` : 'variant';
    const own = Object.keys(v.properties ?? {}).filter((k) => !common.includes(k));
    md += `\n#### ${tag}\n\n${v.description ? `${v.description}.\n\n` : ''}${table(propsRows(v, own))}`;
  }
  return md;
}

// ---------------------------------------------------------------------------------------------------------
// docs/mqtt.md

const json = (v: unknown): string => JSON.stringify(v, null, 2);

function topicTitle(name: TopicName): string {
  return TOPICS[name].pattern;
}

function mqttMarkdown(docs: Map<string, Js>): string {
  const topics = Object.keys(TOPICS) as TopicName[];
  const out: string[] = [];
  out.push(`<!-- Generated by tools/contract-docs/generate.ts from the zod schemas in contract/. Do not edit: run \`npm run gen:docs\`. -->

# MQTT contract (version ${CONTRACT_VERSION})

The agent talks to the provincial control center over MQTT 5 (3.1.1 works, without the MQTT 5 properties).
Everything here is generated from the same zod schemas the agent validates with; the JSON Schemas are in
[\`schemas/\`](schemas/) and the AsyncAPI 3.0 document is [\`asyncapi.yaml\`](asyncapi.yaml).

## Conventions

- **Base topic** \`{base}\` = \`{prefix}/{site}/{device}\`; \`prefix\` is \`mqtt.topic_prefix\` (default \`roadside\`),
  \`site\` and \`device\` come from the config (\`device.site\`, \`device.id\`).
- **Payloads** are UTF-8 JSON objects with snake_case keys; units are in the key names (\`_s\`, \`_ms\`, \`_mb\`,
  \`_kmh\`, \`_c\`, \`_pct\`, \`_px\`) and times are ISO 8601 strings with an offset.
- **QoS 1 everywhere**, so delivery is at-least-once. Retained topics hold the latest state.
- **Delivery fields** on every message that goes through the outbox (events and health): \`id\` (unique: drop
  duplicates by it), \`seq\`, \`sent_at\` (this copy) and \`replayed\` (true when sent from the backlog, after a
  crash, or by the \`resend\` command).
- **\`seq\`** is one counter per device, shared by events *and* health (both come out of the same outbox),
  monotonic across restarts. A hole in the seqs a center received is a message lost on the way (resend it with
  the \`resend\` command) or dropped on the box (evicted by the outbox caps or TTL: \`resend\` then answers
  \`missing\`). Live messages are sent before the backlog and an in-flight window of up to
  \`mqtt.inflight_window\` messages is used, so seqs arrive out of order: wait before calling a hole a gap.
- **Sessions**: \`session\` grows by one at every connection attempt and survives restarts. The MQTT Will
  (\`status\` = \`offline\`) carries the session of the connection that set it, so a Will arriving after a newer
  birth (lower \`session\`) is late and must be ignored.
- **Commands** are requests on \`{base}/cmd/{name}\` answered zigbee2mqtt-style
  (\`{"status":"ok","data":…}\` or \`{"status":"error","error":{"code","message"}}\`, the request's \`id\` echoed).
  With MQTT 5 the answer goes to the request's Response Topic with its Correlation Data; without one (or
  with MQTT 3.1.1) to \`{base}/cmd/{name}/result\`. Never publish a command retained: the agent ignores it.

## Topics

| topic | direction | retained | QoS | payload | description |
|---|---|---|---|---|---|
`);
  for (const name of topics) {
    const t = TOPICS[name] as TopicSpec;
    const dir = t.direction === 'publish' ? 'agent → center' : 'center → agent';
    out.push(`| [\`${t.pattern}\`](#${anchor(name)}) | ${dir} | ${t.retained ? 'yes' : 'no'} | ${t.qos} | [\`${kebab(name)}.schema.json\`](schemas/${kebab(name)}.schema.json) | ${cell(t.description)} |\n`);
  }
  out.push(`
A center subscribes to \`{prefix}/+/+/status\`, \`{prefix}/+/+/birth\` and \`{prefix}/+/+/cameras/+/status\` on
every receiver (they are retained states: each receiver needs all of them), and to \`{prefix}/+/+/events/+\`
and \`{prefix}/+/+/health\`, which several receivers may split through an MQTT 5 shared subscription
(\`$share/{group}/…\`). \`roadside-agent center\` is such a receiver; [\`scaling.md\`](scaling.md) sizes a province-wide setup.
`);
  for (const name of topics) {
    const t = TOPICS[name] as TopicSpec;
    const s = docs.get(kebab(name)) as Js;
    out.push(`\n## <a id="${anchor(name)}"></a>\`${topicTitle(name)}\`\n\n`);
    out.push(`${t.description}.\n\n`);
    out.push(`- direction: ${t.direction === 'publish' ? 'published by the agent' : 'received by the agent'}\n- retained: ${t.retained ? 'yes' : 'no'}\n- QoS: ${t.qos}\n`);
    out.push(`- JSON Schema: [\`schemas/${kebab(name)}.schema.json\`](schemas/${kebab(name)}.schema.json)\n\n`);
    if (s.description) out.push(`${s.description}.\n\n`);
    out.push(`### Payload\n\n${payloadMarkdown(s)}`);
    const examples = EXAMPLES[name] as Example<unknown>[];
    out.push(`\n### Example${examples.length > 1 ? 's' : ''}\n`);
    for (const ex of examples) out.push(`\n${ex.summary} (\`${ex.topic}\`):\n\n\`\`\`json\n${json(ex.payload)}\n\`\`\`\n`);
  }
  out.push(`\n## Built-in commands\n\nError codes: ${COMMAND_ERROR_CODES.map((c) => `\`${c}\``).join(', ')}, or a handler's own (e.g. \`BUSY\`).\n`);
  for (const c of COMMAND_NAMES) {
    const args = docs.get(`command-${c}`) as Js;
    const result = z.toJSONSchema(BUILTIN_COMMANDS[c].result, { target: 'draft-2020-12', io: 'output' }) as Js;
    out.push(`\n### \`${c}\`\n\n${BUILTIN_COMMANDS[c].summary}. Request on \`{base}/cmd/${c}\` ([schema](schemas/command-${c}.schema.json)), response ([schema](schemas/command-${c}-result.schema.json)).\n\n`);
    out.push(`Request fields:\n\n${table(propsRows(args))}\nResult (\`data\`) fields:\n\n${table(propsRows(result))}`);
  }
  return out.join('');
}

const anchor = (name: string): string => `topic-${kebab(name)}`;

// ---------------------------------------------------------------------------------------------------------
// docs/asyncapi.yaml

const PARAMS: Record<string, { description: string; default?: string; examples?: string[] }> = {
  prefix: { description: 'mqtt.topic_prefix of the agent config', default: 'roadside', examples: ['roadside'] },
  site: { description: 'device.site of the agent config', examples: ['a7-north'] },
  device: { description: 'device.id of the agent config', examples: ['box-0042'] },
  camera: { description: 'Camera id (cameras[].id)', examples: ['cam1'] },
  name: { description: 'Command name; the built-in ones are listed, the birth message lists what a box accepts', examples: COMMAND_NAMES },
};

function address(pattern: string): string {
  return pattern.replace('{base}', '{prefix}/{site}/{device}');
}

function asyncApiDoc(schemas: Map<string, Record<string, unknown>>): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const componentSchemas: Record<string, unknown> = {};
  const docs = schemaDocs();
  for (const d of docs) componentSchemas[d.component] = schemas.get(d.file);

  const mqttMessage = { mqtt: { payloadFormatIndicator: 1, contentType: 'application/json', bindingVersion: '0.2.0' } };
  const message = (key: string, title: string, summary: string, schema: string, examples: Example<unknown>[]): void => {
    messages[key] = {
      name: key,
      title,
      summary,
      contentType: 'application/json',
      payload: { $ref: `#/components/schemas/${schema}` },
      ...(examples.length ? { examples: examples.map((e) => ({ name: e.name, summary: e.summary, payload: e.payload })) } : {}),
      bindings: mqttMessage,
    };
  };

  for (const name of Object.keys(TOPICS) as TopicName[]) {
    const t = TOPICS[name] as TopicSpec;
    const addr = address(t.pattern);
    const params = Object.fromEntries([...addr.matchAll(/\{(\w+)\}/g)].map((m) => [m[1] as string, PARAMS[m[1] as string]]));
    const channelMessages: Record<string, unknown> = {};
    const examples = EXAMPLES[name] as (Example<unknown> & { command?: BuiltinCommand })[];
    message(name, t.pattern, t.description, name, examples.filter((e) => e.command === undefined || name === 'command' || name === 'command_result'));
    channelMessages[name] = { $ref: `#/components/messages/${name}` };
    if (name === 'command' || name === 'command_result') {
      for (const c of COMMAND_NAMES) {
        const key = `command_${c.replace(/-/g, '_')}${name === 'command_result' ? '_result' : ''}`;
        message(key, `${c} ${name === 'command' ? 'request' : 'response'}`, BUILTIN_COMMANDS[c].summary, key, examples.filter((e) => e.command === c));
        channelMessages[key] = { $ref: `#/components/messages/${key}` };
      }
    }
    channels[name] = {
      address: addr,
      title: t.pattern,
      description: t.description,
      parameters: params,
      messages: channelMessages,
    };
    const opName = `${t.direction === 'publish' ? 'send' : 'receive'}${name
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('')}`;
    const op: Record<string, unknown> = {
      action: t.direction === 'publish' ? 'send' : 'receive',
      channel: { $ref: `#/channels/${name}` },
      title: opName,
      summary: t.description,
      messages: Object.keys(channelMessages).map((m) => ({ $ref: `#/channels/${name}/messages/${m}` })),
      bindings: { mqtt: { qos: t.qos, retain: t.retained, bindingVersion: '0.2.0' } },
    };
    if (name === 'command') {
      op.reply = {
        address: { description: 'The MQTT 5 Response Topic of the request, else {base}/cmd/{name}/result', location: '$message.header#/responseTopic' },
        channel: { $ref: '#/channels/command_result' },
        messages: Object.keys(channelMessages).map((m) => ({ $ref: `#/channels/command_result/messages/${m === 'command' ? 'command_result' : `${m}_result`}` })),
      };
    }
    operations[opName] = op;
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'roadside-agent MQTT contract',
      version: `${CONTRACT_VERSION}.0.0`,
      description: [
        'MQTT 5 interface of a roadside-agent box (an edge agent beside traffic cameras) towards the provincial control center.',
        'Operations are described from the agent: "send" is what a box publishes, "receive" what it accepts.',
        `Events carry a per-device seq shared with health messages (one outbox); delivery is at-least-once (QoS 1), duplicates are dropped by id.`,
        'Generated by tools/contract-docs/generate.ts from the zod schemas; do not edit.',
      ].join('\n'),
      license: { name: 'Apache-2.0' },
    },
    defaultContentType: 'application/json',
    servers: {
      center: {
        host: 'mqtt.center.example.invalid:8883',
        protocol: 'secure-mqtt',
        protocolVersion: '5',
        description: 'The provincial broker (TLS; the agent always verifies the broker certificate; mutual TLS optional)',
        bindings: {
          mqtt: {
            cleanSession: true,
            keepAlive: 30,
            sessionExpiryInterval: 0,
            lastWill: { topic: '{prefix}/{site}/{device}/status', qos: 1, retain: true, message: '{"state":"offline","session":N,"ts":"…"}' },
            bindingVersion: '0.2.0',
          },
        },
      },
    },
    channels,
    operations,
    components: { schemas: componentSchemas, messages },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

/** Generated files, keyed by path relative to the package root. Throws ContractDocsError when an example is invalid. */
export function generateContractDocs(): Map<string, string> {
  const problems = exampleProblems();
  if (problems.length > 0) throw new ContractDocsError(`invalid contract examples:\n  ${problems.join('\n  ')}`);
  const files = new Map<string, string>();
  const docs = schemaDocs();
  const forMd = new Map<string, Js>();
  const forAsyncApi = new Map<string, Record<string, unknown>>();
  for (const d of docs) {
    const s2020 = jsonSchema(d, 'draft-2020-12');
    forMd.set(d.file, s2020);
    const doc = { ...s2020, $id: `${SCHEMA_HOST}/${d.file}.schema.json`, title: d.title };
    files.set(`docs/schemas/${d.file}.schema.json`, `${JSON.stringify(doc, null, 2)}\n`);
    // AsyncAPI's default schema format is a superset of JSON Schema draft 07: tuples as `items: [...]`.
    const { $schema: _drop, ...s7 } = jsonSchema(d, 'draft-7');
    forAsyncApi.set(d.file, s7);
  }
  files.set('docs/mqtt.md', mqttMarkdown(forMd));
  const yaml = YAML.stringify(asyncApiDoc(forAsyncApi), { lineWidth: 0, aliasDuplicateObjects: false });
  files.set('docs/asyncapi.yaml', `# Generated by tools/contract-docs/generate.ts from the zod schemas in contract/. Do not edit: run \`npm run gen:docs\`.\n${yaml}`);
  return files;
}

/** Paths (relative to root) whose content differs from the generated text, that are missing, or left over in docs/schemas/. */
export function staleContractDocs(root: string = packageRoot(), files: Map<string, string> = generateContractDocs()): string[] {
  const stale: string[] = [];
  for (const [rel, text] of files) {
    const f = join(root, rel);
    if (!existsSync(f) || readFileSync(f, 'utf8') !== text) stale.push(rel);
  }
  for (const rel of leftovers(root, files)) stale.push(rel);
  return stale;
}

function leftovers(root: string, files: Map<string, string>): string[] {
  const dir = join(root, 'docs/schemas');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.schema.json'))
    .map((f) => `docs/schemas/${f}`)
    .filter((rel) => !files.has(rel));
}

/** Writes the generated files under root and removes schema files no longer generated. Returns the paths written. */
export function writeContractDocs(root: string = packageRoot()): string[] {
  const files = generateContractDocs();
  const written: string[] = [];
  for (const rel of leftovers(root, files)) rmSync(join(root, rel));
  for (const [rel, text] of files) {
    const f = join(root, rel);
    if (existsSync(f) && readFileSync(f, 'utf8') === text) continue;
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, text);
    written.push(rel);
  }
  return written;
}

/** CLI: write the documents, or with --check report stale ones (exit 1). */
export function generateMain(argv: string[], out: { stdout: (t: string) => void; stderr: (t: string) => void } = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }): number {
  const { values } = parseArgs({ args: argv, options: { check: { type: 'boolean', default: false }, root: { type: 'string' } }, strict: true });
  const root = values.root ?? packageRoot();
  try {
    if (values.check) {
      const stale = staleContractDocs(root);
      if (stale.length === 0) {
        out.stdout('contract documents are up to date\n');
        return 0;
      }
      out.stderr(`stale contract documents (run npm run gen:docs):\n  ${stale.join('\n  ')}\n`);
      return 1;
    }
    const written = writeContractDocs(root);
    out.stdout(written.length ? `wrote ${written.join(', ')}\n` : 'contract documents already up to date\n');
    return 0;
  } catch (err) {
    out.stderr(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) process.exitCode = generateMain(process.argv.slice(2));
