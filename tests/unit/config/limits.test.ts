// Bounded input: what the loader refuses before it spends time or memory on it, and how problems are capped.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, formatProblems, loadConfig, loadConfigFile, parseConfig, type ConfigProblem } from '../../../config/loader.js';
import { MAX_PROBLEMS_SHOWN } from '../../../config/problems.js';
import { decodeConfigText, invalidUtf8At, MAX_CONFIG_BYTES } from '../../../config/read.js';
import { MAX_DEPTH, parseConfigYaml, textDepthExceeded } from '../../../config/yaml.js';

const dir = mkdtempSync(join(tmpdir(), 'cfg-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CLIP = join(process.cwd(), 'tests/fixtures/clips/vtest-20s.mp4');
const HEAD = `device: { id: box-1, site: site-1, data_dir: ${join(dir, 'data')} }\nmqtt: { url: "mqtt://127.0.0.1:1883" }\n`;

function caught(f: () => unknown): ConfigError {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('size and kind of the config file', () => {
  it('refuses a file over 1 MB without parsing it', () => {
    const f = join(dir, 'big.yaml');
    writeFileSync(f, `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    expect(caught(() => loadConfig(f, {})).problems[0]!.message).toMatch(/bytes: at most 1048576 \(1 MB\)/);
  });

  it('refuses /dev/zero and a directory at once (sync and async)', async () => {
    expect(caught(() => loadConfig('/dev/zero', {})).problems[0]!.message).toBe('the config must be a regular file, not a character device');
    expect(caught(() => loadConfig(dir, {})).problems[0]!.message).toBe('the config must be a regular file, not a directory');
    await expect(loadConfigFile('/dev/zero', {})).rejects.toThrow(/not a character device/);
  });

  it('refuses a config on /proc', () => {
    expect(caught(() => loadConfig('/proc/self/environ', {})).problems[0]!.message).toBe('the config must be on a real filesystem, not /proc');
  });
});

describe('UTF-8', () => {
  it('finds the first invalid byte', () => {
    expect(invalidUtf8At(Buffer.from('plain ascii'))).toBe(-1);
    expect(invalidUtf8At(Buffer.from('héllo ✓ 𝄞'))).toBe(-1);
    expect(invalidUtf8At(Buffer.from([0x61, 0xff, 0x62]))).toBe(1);
    expect(invalidUtf8At(Buffer.from([0x61, 0xc3]))).toBe(1); // cut sequence
    expect(invalidUtf8At(Buffer.from([0xc0, 0xaf]))).toBe(0); // overlong "/"
    expect(invalidUtf8At(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0); // surrogate
  });

  it('reports each bad line with its line and column instead of replacing the byte', () => {
    const err = caught(() => decodeConfigText(Buffer.concat([Buffer.from('a: 1\nb: x'), Buffer.from([0xfe]), Buffer.from('\nc: \xe9\n', 'latin1')]), 'f.yaml'));
    expect(err.problems.map((p) => `${p.line}:${p.message}`)).toEqual([
      '2:not valid UTF-8: byte 0xfe at column 5 (save the file as UTF-8)',
      '3:not valid UTF-8: byte 0xe9 at column 4 (save the file as UTF-8)',
    ]);
  });
});

describe('YAML limits', () => {
  it('refuses deep nesting before the parser sees it (1 MB of "[" took the parser out of memory)', () => {
    const started = Date.now();
    const err = caught(() => parseConfigYaml(`a: ${'['.repeat(500_000)}`, 'f.yaml'));
    expect(err.problems[0]).toMatchObject({ line: 1, message: `YAML nested more than ${MAX_DEPTH} levels deep` });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(textDepthExceeded('- '.repeat(100) + '1')).toBe(1);
    expect(textDepthExceeded(Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}a:`).join('\n'))).toBe(2 * MAX_DEPTH + 1);
  });

  it('does not count brackets inside quotes, comments or block scalars', () => {
    const text = [`a: "${'['.repeat(200)}"`, `b: '${'{'.repeat(200)}'`, `# ${'['.repeat(200)}`, 'c: |', `  ${'['.repeat(200)}`, 'd: 1'].join('\n');
    expect(textDepthExceeded(text)).toBeUndefined();
    expect(() => parseConfigYaml(text, 'f.yaml')).not.toThrow();
  });

  it('checks the exact depth on the tree', () => {
    const err = caught(() => parseConfigYaml(`a: ${'['.repeat(40)}1${']'.repeat(40)}`, 'f.yaml'));
    expect(err.problems[0]).toMatchObject({ line: 1, message: `nested more than ${MAX_DEPTH} levels deep` });
    expect(() => parseConfigYaml(`a: ${'['.repeat(20)}1${']'.repeat(20)}`, 'f.yaml')).not.toThrow();
  });

  it('reports duplicate keys in linear time (40 000 keys took the yaml package 38 s)', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i % 20_000}: 1`).join('\n');
    const started = Date.now();
    const err = caught(() => parseConfigYaml(keys, 'f.yaml'));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err.total).toBe(20_000);
    expect(err.problems).toHaveLength(MAX_PROBLEMS_SHOWN);
    expect(err.problems[0]).toMatchObject({ line: 20_001, path: 'k0', message: 'duplicate key "k0" (first on line 1)' });
  });

  it('turns alias problems into located problems, never a raw exception', () => {
    expect(caught(() => parseConfigYaml('a: 1\nb: *x\n', 'f.yaml')).problems[0]).toMatchObject({ line: 2, path: 'b', message: 'YAML alias *x has no anchor &x before it' });
    expect(caught(() => parseConfigYaml('a: &x\n  - *x\n', 'f.yaml')).problems[0]).toMatchObject({ line: 2, path: 'a.0' });
    const bomb = ['a: &a [1,1,1,1,1,1,1,1,1,1]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]'].join('\n');
    expect(caught(() => parseConfigYaml(bomb, 'f.yaml')).problems[0]).toMatchObject({ line: 2, message: expect.stringContaining('too many copies') });
    // A few aliases are fine.
    expect(parseConfigYaml('a: &a [1, 2]\nb: *a\n', 'f.yaml').raw).toEqual({ a: [1, 2], b: [1, 2] });
  });

  it('refuses a collection as a key', () => {
    expect(caught(() => parseConfigYaml('? [a, b]\n: 1\n', 'f.yaml')).problems[0]!.message).toMatch(/a key must be a plain name/);
  });
});

describe('problem lists are capped', () => {
  it('a 1 MB config with thousands of duplicate camera ids: 100 problems located, the rest counted, quickly', () => {
    const cam = `  - { id: a, url: ${CLIP}, frame: { width: 768, height: 576 } }\n`;
    const n = Math.floor((MAX_CONFIG_BYTES - HEAD.length - 20) / cam.length);
    const f = join(dir, 'dups.yaml');
    writeFileSync(f, `${HEAD}cameras:\n${cam.repeat(n)}`);
    const started = Date.now();
    const err = caught(() => loadConfig(f, {}));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(err.total).toBe(n - 1);
    expect(err.problems).toHaveLength(MAX_PROBLEMS_SHOWN);
    expect(err.problems[0]).toMatchObject({ line: 5, path: 'cameras.1.id' });
    const text = formatProblems(err.problems, err.total);
    expect(text.split('\n')).toHaveLength(MAX_PROBLEMS_SHOWN + 1);
    expect(text.endsWith(`… and ${n - 1 - MAX_PROBLEMS_SHOWN} more`)).toBe(true);
    expect(err.message).toContain(`invalid configuration (${n - 1} problems)`);
  });

  it('formatProblems shows all when there are few, and hides URL credentials', () => {
    const p: ConfigProblem[] = [{ file: 'f.yaml', line: 3, path: 'mqtt.url', message: 'bad', got: '"mqtt://u:pw@h"' }];
    expect(formatProblems(p)).toBe('f.yaml:3 mqtt.url: bad (got "mqtt://[redacted]@h")');
  });
});

describe('got values and messages carry no URL credentials', () => {
  it('even when the value is cut to 60 characters right inside the password', () => {
    const secret = `S3cret-${'p'.repeat(60)}`;
    const text = `${HEAD.replace('mqtt://127.0.0.1:1883', `mqtt://agent:${secret}@127.0.0.1:1883`)}cameras:\n  - { id: cam1, url: ${CLIP}, frame: { width: 768, height: 576 } }\n`;
    const err = caught(() => parseConfig(text, 'f.yaml', {}));
    expect(err.problems[0]!.message).toContain('credentials in the URL');
    expect(JSON.stringify(err.problems)).not.toMatch(/S3cret|pppp/);
    expect(err.message).not.toMatch(/S3cret|pppp/);
  });
});
