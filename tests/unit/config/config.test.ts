import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cli } from '../../../cli/main.js';
import type { CliIo } from '../../../cli/io.js';
import { configJsonSchemaText } from '../../../config/json-schema.js';
import { ConfigError, keysAllowedAt, loadConfig, type ConfigProblem } from '../../../config/loader.js';
import { didYouMean } from '../../../config/problems.js';
import { ConfigSchema } from '../../../config/schema/index.js';

const run = promisify(execFile);
const INVALID = 'tests/fixtures/configs/invalid';
const corpus = readdirSync(INVALID).filter((f) => f.endsWith('.yaml')).sort();

function capture(env: NodeJS.ProcessEnv = {}): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, env, interactive: false, stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
}

function problemsOf(file: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    loadConfig(file, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error(`${file} unexpectedly passed validation`);
}

/** Each corpus file states its expected problems: "# expect: LINE PATH :: MESSAGE-SUBSTRING". */
function expectations(file: string) {
  return [...readFileSync(file, 'utf8').matchAll(/^# expect: (\d+) (\S+) :: (.+)$/gm)].map((m) => ({
    line: Number(m[1]),
    path: m[2] === '(root)' ? '' : m[2]!,
    message: m[3]!,
  }));
}

describe('invalid config corpus', () => {
  it('has at least 25 cases, each with an expectation', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(25);
    for (const f of corpus) expect(expectations(join(INVALID, f)).length, f).toBeGreaterThan(0);
  });

  it.each(corpus)('%s reports exactly the expected problems with line and path', (name) => {
    const file = join(INVALID, name);
    const problems = problemsOf(file);
    const expected = expectations(file);
    expect(problems.map((p) => `${p.line} ${p.path}`).sort()).toEqual(expected.map((e) => `${e.line} ${e.path}`).sort());
    for (const e of expected) {
      const p = problems.find((q) => q.line === e.line && q.path === e.path)!;
      expect(p.message).toContain(e.message);
      expect(p.file).toBe(file);
    }
  });

  it.each(corpus)('%s: run exits 78 and starts nothing', async (name) => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'data');
    const io = capture({ ROADSIDE_DATA_DIR: dataDir });
    const code = await cli(['run', '--config', join(INVALID, name)], io);
    expect(code).toBe(78);
    expect(io.err.join('')).toMatch(/not starting: the config has problems/);
    expect(io.out.join('')).not.toContain('module started');
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('every problem at once', () => {
  it('an unknown key names the key meant: edit distance up to 2, or a prefix, among the keys allowed there', () => {
    const detector = keysAllowedAt(ConfigSchema, ['detector']);
    expect(detector).toEqual(expect.arrayContaining(['model_path', 'decoder', 'score_threshold']));
    expect(keysAllowedAt(ConfigSchema, ['cameras', 0, 'lines', 0])).toEqual(expect.arrayContaining(['id', 'a', 'b', 'stop_line']));
    expect(keysAllowedAt(ConfigSchema, [])).toEqual(Object.keys(ConfigSchema.shape));
    expect(keysAllowedAt(ConfigSchema, ['nope'])).toEqual([]);
    expect(didYouMean('model', detector)).toBe('model_path');
    expect(didYouMean('scor_treshold', detector)).toBe('score_threshold');
    expect(didYouMean('Decoder', detector)).toBe('decoder');
    expect(didYouMean('colour', detector)).toBeUndefined();
    const problems = problemsOf(join(INVALID, '46-unknown-key-did-you-mean.yaml'));
    expect(problems.find((p) => p.path === 'detector.colour')!.message).toBe('unknown key "colour"');
    expect(problems.find((p) => p.path === 'detector.model')!.message).toBe('unknown key "model"; did you mean "model_path"?');
  });

  it('a type error in one section does not hide the cross-field problems of the sections that parsed', () => {
    const problems = problemsOf(join(INVALID, '47-type-error-and-cross-field.yaml'));
    expect(problems.map((p) => p.path)).toEqual(['logging.level', 'cameras.1.id', 'cameras.1.lines.0.b', 'mqtt.url']);
  });

  it('keeps the parsed config when only cross-field problems were found (for doctor), never with type errors', () => {
    const semantic = (() => {
      try {
        loadConfig(join(INVALID, '08-duplicate-camera-id.yaml'), {});
      } catch (err) {
        return err as ConfigError;
      }
    })();
    expect(semantic?.parsed?.config.cameras).toHaveLength(2);
    expect(semantic?.parsed?.hash).toMatch(/^[0-9a-f]{16}$/);
    const typed = (() => {
      try {
        loadConfig(join(INVALID, '47-type-error-and-cross-field.yaml'), {});
      } catch (err) {
        return err as ConfigError;
      }
    })();
    expect(typed).toBeInstanceOf(ConfigError);
    expect(typed?.parsed).toBeUndefined();
  });
});

describe('valid configs', () => {
  it.each(['config/examples/demo.yaml', 'config/examples/field.yaml', 'tests/fixtures/configs/valid-min.yaml'])('%s passes', (file) => {
    const { config, hash } = loadConfig(file, {});
    expect(config.cameras.length).toBeGreaterThan(0);
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('fills defaults and resolves relative paths against the file', () => {
    const { config } = loadConfig('tests/fixtures/configs/valid-min.yaml', {});
    const cam = config.cameras[0]!;
    expect(cam.transport).toBe('tcp');
    expect(cam.detection_fps).toBe(5);
    expect(cam.motion.enabled).toBe(true);
    expect(cam.url).toBe(join(process.cwd(), 'tests/fixtures/clips/vtest-20s.mp4'));
    expect(config.detector.model_path).toBe(join(process.cwd(), 'models/nanodet-int8.onnx'));
    expect(config.outbox.path).toBe('/var/lib/roadside-agent/outbox.db');
    expect(config.outbox.ttl_s.health).toBe(86_400);
    expect(config.mqtt.protocol).toBe(5);
    expect(config.status.bind).toBe('127.0.0.1');
  });

  it('takes secrets from the environment and never echoes them', () => {
    const env = { ROADSIDE_MQTT_PASSWORD: 's3cret-pw', ROADSIDE_CAMERA_NORTH_PASSWORD: 'cam-pw', ROADSIDE_STATUS_TOKEN: 'x'.repeat(20) };
    const { config } = loadConfig('config/examples/field.yaml', env);
    expect(config.mqtt.password).toBe('s3cret-pw');
    expect(config.cameras.find((c) => c.id === 'north')!.password).toBe('cam-pw');
    expect(config.status.token).toBe('x'.repeat(20));
    const problems = problemsOf('tests/fixtures/configs/valid-min.yaml', { ROADSIDE_STATUS_TOKEN: 'short-secret' });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.file).toContain('(env ROADSIDE_STATUS_TOKEN)');
    expect(problems[0]!.line).toBeUndefined();
    expect(problems[0]!.got).toBe('<redacted>');
    expect(JSON.stringify(problems)).not.toContain('short-secret');
  });

  it('reports a missing file clearly', () => {
    const problems = problemsOf('/nonexistent/agent.yaml');
    expect(problems[0]!.message).toContain('cannot read the config file (ENOENT)');
  });
});

describe('config CLI (compiled binary)', () => {
  const bin = 'dist/cli/main.js';

  it('config check prints FILE:LINE path: message (got …) and exits 78', async () => {
    const file = join(INVALID, '01-wrong-type-fps.yaml');
    const err = await run('node', [bin, 'config', 'check', file]).catch((e: { code: number; stderr: string }) => e);
    expect('code' in err && err.code).toBe(78);
    expect((err as { stderr: string }).stderr).toContain(`${file}:8 cameras.0.detection_fps: expected number, received string (got "fast")`);
  });

  it('config check exits 0 on a valid file', async () => {
    const { stdout } = await run('node', [bin, 'config', 'check', 'config/examples/field.yaml']);
    expect(stdout).toContain('valid (device n1-km12/box-n1-km12, 2 camera(s)');
  });

  it('config schema prints the committed JSON Schema, which is not stale', async () => {
    const committed = readFileSync('config/config.schema.json', 'utf8');
    expect(configJsonSchemaText()).toBe(committed);
    const { stdout } = await run('node', [bin, 'config', 'schema']);
    expect(stdout).toBe(committed);
    const schema = JSON.parse(committed) as { properties: Record<string, { description?: string }> };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['device', 'cameras', 'detector', 'outbox', 'mqtt', 'health', 'status', 'logging']));
  });

  it('an unknown command is a usage error', async () => {
    const io = capture();
    expect(await cli(['fly'], io)).toBe(64);
    expect(io.err.join('')).toContain('unknown command "fly"');
  });

  it('rejects a config written with an insecure remote broker unless allowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const text = readFileSync(join(INVALID, '11-insecure-remote-broker.yaml'), 'utf8').replace(/\.\.\/\.\.\/clips/g, join(process.cwd(), 'tests/fixtures/clips'));
    writeFileSync(join(dir, 'a.yaml'), `${text}  allow_insecure: true\n`);
    expect(() => loadConfig(join(dir, 'a.yaml'), {})).not.toThrow();
  });
});
