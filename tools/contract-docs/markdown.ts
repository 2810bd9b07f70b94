// docs/mqtt.md: the contract as Markdown, with field tables rendered from the JSON Schemas.
import { z } from 'zod';
import { COMMAND_ERROR_CODES } from '../../contract/command.js';
import { COMMANDS, COMMAND_NAMES } from '../../contract/commands.js';
import { CONTRACT_VERSION, TOPICS, type TopicName, type TopicSpec } from '../../contract/topics.js';
import { EXAMPLES, type Example } from './examples.js';
import { kebab } from './schemas.js';

// ---------------------------------------------------------------------------------------------------------
// Markdown rendering of JSON Schemas

/** The parts of a JSON Schema the tables read. */
export type Js = {
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

/** docs/mqtt.md from the draft 2020-12 JSON Schemas, keyed by schema file base name. */
export function mqttMarkdown(docs: Map<string, Js>): string {
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
  \`data\` always matches the command's result schema: a result that does not is withheld and answered with
  \`RESULT_INVALID\`. With MQTT 5 the answer carries the request's Correlation Data and goes to its Response
  Topic, if that topic is in the **reply namespace**: \`{prefix}/_center/{id}/reply\` (the reply topic of
  \`roadside-agent center\`) or \`{base}/reply\` of the same device, each with any levels below. Any other Response Topic
  (the box's own status, birth, events, health or cmd topics, another device's tree, another tree) is refused:
  the command is not run and the error \`RESPONSE_TOPIC_REFUSED\` goes to \`{base}/cmd/{name}/result\`. Without a
  Response Topic (always with MQTT 3.1.1) the answer goes to \`{base}/cmd/{name}/result\`.
- **Never publish a command retained**: a retained request is never executed, neither when the broker replays
  it at subscribe time nor when it arrives live (with MQTT 5 the agent subscribes with Retain As Published, so
  the flag survives live delivery). With MQTT 3.1.1 the broker clears the retain flag on live delivery
  (MQTT 3.1.1 §3.3.1.3), so a retained request published while the box is connected runs once like a plain one;
  its retained copy is still ignored at every later connect. Clear it with an empty retained message.

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
  out.push(`\n## Commands\n\nThe command catalogue (\`contract/commands.ts\`); the birth's \`commands\` lists those a box accepts. Error codes: ${COMMAND_ERROR_CODES.map((c) => `\`${c}\``).join(', ')}, or a handler's own (e.g. \`BUSY\`).\n`);
  for (const c of COMMAND_NAMES) {
    const args = docs.get(`command-${c}`) as Js;
    const result = z.toJSONSchema(COMMANDS[c].result, { target: 'draft-2020-12', io: 'output' }) as Js;
    out.push(`\n### \`${c}\`\n\n${COMMANDS[c].summary}. Request on \`{base}/cmd/${c}\` ([schema](schemas/command-${c}.schema.json)), response ([schema](schemas/command-${c}-result.schema.json)).\n\n`);
    out.push(`Request fields:\n\n${table(propsRows(args))}\nResult (\`data\`) fields:\n\n${table(propsRows(result))}`);
  }
  return out.join('');
}

const anchor = (name: string): string => `topic-${kebab(name)}`;
