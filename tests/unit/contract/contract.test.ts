// The generated MQTT contract documents: fresh, structurally valid AsyncAPI 3.0, examples valid.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { EXAMPLES, exampleProblems, topicMatches } from '../../../tools/contract-docs/examples.js';
import { generateContractDocs, generateMain, staleContractDocs } from '../../../tools/contract-docs/generate.js';
import { payloadSchema } from '../../../tools/contract-docs/schemas.js';
import { COMMANDS } from '../../../contract/commands.js';
import { TOPICS, type TopicName } from '../../../contract/topics.js';
import { packageRoot } from '../../../core/paths.js';

const files = generateContractDocs();
const tmpRoots: string[] = [];
afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => {
  expect(v, 'expected an object').toBeTypeOf('object');
  expect(v).not.toBeNull();
  return v as Obj;
};

/** Resolves a local JSON pointer ("#/a/b") in the document. */
function resolve(doc: Obj, ref: string): unknown {
  expect(ref.startsWith('#/'), `only local refs: ${ref}`).toBe(true);
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !(key in cur)) return undefined;
    cur = (cur as Obj)[key];
  }
  return cur;
}

function refs(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) refs(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push(x);
      else refs(x, out);
    }
  }
  return out;
}

describe('generated contract documents', () => {
  it('are up to date in the repository (npm run gen:docs)', () => {
    expect(staleContractDocs(packageRoot(), files)).toEqual([]);
  });

  it('are deterministic', () => {
    const again = generateContractDocs();
    expect([...again.keys()]).toEqual([...files.keys()]);
    for (const [k, v] of again) expect(v, k).toBe(files.get(k));
  });

  it('cover every topic with a JSON Schema, and every command of the catalogue', () => {
    for (const name of Object.keys(TOPICS)) expect(files.has(`docs/schemas/${name.replace(/_/g, '-')}.schema.json`), name).toBe(true);
    for (const c of Object.keys(COMMANDS)) {
      expect(files.has(`docs/schemas/command-${c}.schema.json`)).toBe(true);
      expect(files.has(`docs/schemas/command-${c}-result.schema.json`)).toBe(true);
    }
    for (const [path, text] of files) {
      if (!path.endsWith('.schema.json')) continue;
      const s = obj(JSON.parse(text));
      expect(s.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(s.$id).toMatch(/^https:\/\/roadside-agent\.invalid\/schemas\/.+\.schema\.json$/);
      expect(typeof s.title).toBe('string');
    }
  });

  it('events and health document the full message, not only the delivery fields', () => {
    const events = obj(JSON.parse(files.get('docs/schemas/events.schema.json')!));
    const variants = events.oneOf as Obj[];
    expect(variants.length).toBeGreaterThan(5);
    for (const v of variants) {
      for (const k of ['id', 'seq', 'sent_at', 'replayed', 'type', 'captured_at']) expect((v.required as string[]).includes(k), k).toBe(true);
      expect(v.additionalProperties).toBe(false);
    }
    const health = obj(JSON.parse(files.get('docs/schemas/health.schema.json')!));
    for (const k of ['id', 'seq', 'sent_at', 'replayed', 'system', 'cameras', 'outbox']) expect((health.required as string[]).includes(k), k).toBe(true);
  });

  it('mqtt.md lists every topic with retain, QoS, direction and units from the schema descriptions', () => {
    const md = files.get('docs/mqtt.md')!;
    for (const [name, t] of Object.entries(TOPICS)) {
      expect(md, name).toContain(`| [\`${t.pattern}\`]`);
      expect(md).toContain(`<a id="topic-${name.replace(/_/g, '-')}"></a>`);
    }
    expect(md).toContain('| `system.soc_temp_c` | number or null | yes | SoC / CPU temperature, degrees C; null: no sensor exposed |');
    expect(md).toContain('`object.speed_kmh`');
    expect(md).toContain('#### `type: "line_crossing"`');
    expect(md).toContain('### `resend`');
  });
});

describe('AsyncAPI 3.0 document', () => {
  const text = files.get('docs/asyncapi.yaml')!;
  const doc = obj(YAML.parse(text));

  it('has the top-level structure', () => {
    expect(doc.asyncapi).toBe('3.0.0');
    const info = obj(doc.info);
    expect(typeof info.title).toBe('string');
    expect(info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(doc.defaultContentType).toBe('application/json');
    const servers = obj(doc.servers);
    for (const s of Object.values(servers)) {
      expect(obj(s).protocol).toMatch(/^(mqtt|secure-mqtt)$/);
      expect(typeof obj(s).host).toBe('string');
    }
    for (const k of ['channels', 'operations', 'components']) expect(doc[k], k).toBeTypeOf('object');
    expect(Object.keys(obj(obj(doc.components).messages)).length).toBeGreaterThan(0);
    expect(Object.keys(obj(obj(doc.components).schemas)).length).toBeGreaterThan(0);
  });

  it('resolves every $ref', () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(20);
    for (const r of all) expect(resolve(doc, r), r).toBeDefined();
  });

  it('has one channel per topic, with parameters for every address placeholder', () => {
    const channels = obj(doc.channels);
    for (const [name, t] of Object.entries(TOPICS)) {
      const ch = obj(channels[name]);
      expect(ch.address).toBe(t.pattern.replace('{base}', '{prefix}/{site}/{device}'));
      const params = obj(ch.parameters);
      const placeholders = [...(ch.address as string).matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      expect(Object.keys(params).sort()).toEqual([...placeholders].sort());
      for (const p of Object.values(params)) expect(typeof obj(p).description).toBe('string');
      expect(Object.keys(obj(ch.messages)).length).toBeGreaterThan(0);
    }
  });

  it('has one operation per topic, with the direction, QoS and retain of TOPICS; operation messages belong to their channel', () => {
    const ops = Object.values(obj(doc.operations)).map(obj);
    expect(ops.length).toBe(Object.keys(TOPICS).length);
    for (const [name, t] of Object.entries(TOPICS)) {
      const op = ops.find((o) => obj(o.channel).$ref === `#/channels/${name}`);
      expect(op, name).toBeDefined();
      expect(op!.action).toBe(t.direction === 'publish' ? 'send' : 'receive');
      const mqtt = obj(obj(op!.bindings).mqtt);
      expect(mqtt.qos).toBe(t.qos);
      expect(mqtt.retain).toBe(t.retained);
      for (const m of op!.messages as Obj[]) expect(m.$ref as string).toMatch(new RegExp(`^#/channels/${name}/messages/`));
    }
    const receiveCommand = ops.find((o) => o.action === 'receive')!;
    const reply = obj(receiveCommand.reply);
    expect(obj(reply.channel).$ref).toBe('#/channels/command_result');
    for (const m of reply.messages as Obj[]) expect(m.$ref as string).toMatch(/^#\/channels\/command_result\/messages\//);
  });

  it('messages carry a payload schema and examples that validate against the zod schemas', () => {
    const messages = obj(obj(doc.components).messages);
    let checked = 0;
    for (const [key, m] of Object.entries(messages)) {
      const msg = obj(m);
      expect(msg.contentType).toBe('application/json');
      expect(resolve(doc, obj(msg.payload).$ref as string), key).toBeTypeOf('object');
      const topic = key in TOPICS ? (key as TopicName) : key.endsWith('_result') ? 'command_result' : 'command';
      for (const ex of (msg.examples as Obj[] | undefined) ?? []) {
        const r = payloadSchema(topic).safeParse(ex.payload);
        expect(r.success, `${key} example ${String(ex.name)}: ${r.success ? '' : r.error.message}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(Object.values(EXAMPLES).flat().length);
  });
});

describe('examples', () => {
  it('every example validates against its topic schema (and command examples against the command schemas)', () => {
    expect(exampleProblems()).toEqual([]);
    for (const [name, list] of Object.entries(EXAMPLES)) {
      expect(list.length, name).toBeGreaterThan(0);
      for (const ex of list) expect(topicMatches(TOPICS[name as TopicName].pattern, ex.topic), ex.topic).toBe(true);
    }
  });

  it('an invalid example is reported (generation would fail)', () => {
    const bad = structuredClone(EXAMPLES);
    (bad.status[0]!.payload as { session: number }).session = 0;
    (bad.events[0]!.payload as { seq: unknown }).seq = 'x';
    (bad.command[1]!.payload as { to: number }).to = 1;
    const problems = exampleProblems(bad);
    expect(problems.some((p) => p.startsWith('status example "online"') && p.includes('session'))).toBe(true);
    expect(problems.some((p) => p.startsWith('events example "line_crossing"') && p.includes('seq'))).toBe(true);
    expect(problems.some((p) => p.includes('(resend args)'))).toBe(true);
  });
});

describe('generate CLI', () => {
  it('--check fails on a stale or missing file and succeeds after writing', () => {
    const root = mkdtempSync(join(tmpdir(), 'roadside-contract-'));
    tmpRoots.push(root);
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
    expect(generateMain(['--check', '--root', root], io)).toBe(1);
    expect(out.join('')).toContain('docs/mqtt.md');
    expect(generateMain(['--root', root], io)).toBe(0);
    expect(generateMain(['--check', '--root', root], io)).toBe(0);
    writeFileSync(join(root, 'docs/mqtt.md'), `${readFileSync(join(root, 'docs/mqtt.md'), 'utf8')}\nedited by hand\n`);
    writeFileSync(join(root, 'docs/schemas/old.schema.json'), '{}');
    out.length = 0;
    expect(generateMain(['--check', '--root', root], io)).toBe(1);
    expect(out.join('')).toContain('docs/mqtt.md');
    expect(out.join('')).toContain('docs/schemas/old.schema.json');
    expect(generateMain(['--root', root], io)).toBe(0);
    expect(staleContractDocs(root)).toEqual([]);
  });
});
