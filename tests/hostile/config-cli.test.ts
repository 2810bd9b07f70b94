// Hostile input to `config check`, `run` and `provision` (issue 12): each case failed before its fix.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/io.js';
import { cli } from '../../cli/main.js';

const INVALID = 'tests/fixtures/configs/invalid';
const CLIP = join(process.cwd(), 'tests/fixtures/clips/vtest-20s.mp4');
const base = mkdtempSync(join(tmpdir(), 'hostile-config-'));
afterAll(() => execFileSync('rm', ['-rf', base]));

function capture(env: NodeJS.ProcessEnv = {}): CliIo & { out: () => string; err: () => string; all: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    env,
    interactive: false,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    out: () => out.join(''),
    err: () => err.join(''),
    all: () => out.join('') + err.join(''),
  };
}

async function check(file: string, env: NodeJS.ProcessEnv = {}) {
  const io = capture(env);
  const code = await cli(['config', 'check', file], io);
  return { code, err: io.err(), all: io.all() };
}

/** A valid config in its own directory with a data dir; `extra` YAML appended. */
function configFile(extra = '', mqttUrl = 'mqtt://127.0.0.1:1883'): { file: string; data: string } {
  const dir = mkdtempSync(join(base, 'box-'));
  const data = join(dir, 'data');
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    `device: { id: box-1, site: site-1, data_dir: ${data} }\ncameras:\n  - { id: cam1, url: ${CLIP}, frame: { width: 768, height: 576 } }\nmqtt: { url: "${mqttUrl}" }\n${extra}`,
  );
  return { file, data };
}

describe('1. own only what is ours', () => {
  it('outbox.path: ../../../../etc/passwd fails config check with exit 78 at FILE:LINE', async () => {
    const file = join(INVALID, '31-outbox-outside-data-dir.yaml');
    const r = await check(file);
    expect(r.code).toBe(78);
    expect(r.err).toContain(`${file}:9 outbox.path: resolves to /etc/passwd, outside device.data_dir`);
    expect(r.err).toContain('1 problem(s) found in');
  });

  it('run refuses it too, and creates nothing', async () => {
    const data = join(base, 'run-data');
    const io = capture({ ROADSIDE_DATA_DIR: data });
    expect(await cli(['run', '--config', join(INVALID, '31-outbox-outside-data-dir.yaml')], io)).toBe(78);
    expect(io.err()).toContain('not starting');
    expect(existsSync(data)).toBe(false);
  });
});

describe('4. URL credentials are hidden by value, wherever they come from', () => {
  it('from the environment: config check and run print no password', async () => {
    const env = { ROADSIDE_MQTT_URL: 'mqtt://agent:PASSWORD@host' };
    const r = await check('tests/fixtures/configs/valid-min.yaml', env);
    expect(r.code).toBe(78);
    expect(r.err).toContain('credentials in the URL');
    expect(r.err).toContain('(got "mqtt://[redacted]@host")');
    expect(r.all).not.toContain('PASSWORD');
    const io = capture({ ...env, ROADSIDE_DATA_DIR: join(base, 'run-env') });
    expect(await cli(['run', '--config', 'tests/fixtures/configs/valid-min.yaml'], io)).toBe(78);
    expect(io.all()).not.toContain('PASSWORD');
  });

  it('from the file: a password with "@" and long enough to be cut in the got value', async () => {
    const secret = `P@ss-${'w'.repeat(70)}`;
    const { file } = configFile('', `mqtt://agent:${secret}@127.0.0.1:1883`);
    const r = await check(file);
    expect(r.code).toBe(78);
    expect(r.err).toMatch(/:4 mqtt\.url: credentials in the URL/);
    expect(r.all).not.toMatch(/P@ss|wwww/);
  });

  it('from the command line: an error message quoting a URL shows no password', async () => {
    const io = capture();
    const code = await cli(['provision', '--out', join(base, 'p0', 'agent.yaml'), '--data-dir', join(base, 'p0', 'data'), '--device-id', 'b', '--site', 's', '--camera', 'ftp://user:CMDSECRET@127.0.0.1/x'], io);
    expect(code).toBe(64);
    expect(io.err()).toContain('ftp://[redacted]@127.0.0.1/x');
    expect(io.all()).not.toContain('CMDSECRET');
  });
});

describe('5. bounded input', () => {
  it('a named pipe, /dev/zero and a 2 MB file are refused at once (exit 78)', async () => {
    const fifo = join(base, 'agent.fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    expect(await check(fifo)).toMatchObject({ code: 78, err: expect.stringContaining('the config must be a regular file, not a named pipe') });
    expect(await check('/dev/zero')).toMatchObject({ code: 78, err: expect.stringContaining('not a character device') });
    const big = join(base, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    expect(await check(big)).toMatchObject({ code: 78, err: expect.stringContaining('at most 1048576 (1 MB)') });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a 1 MB config full of duplicate ids: 100 problems, "… and N more", the summary, in seconds', async () => {
    const cam = `  - { id: a, url: ${CLIP}, frame: { width: 768, height: 576 } }\n`;
    const { file } = configFile();
    const head = readFileSync(file, 'utf8').replace(/cameras:\n.*\n/, '');
    writeFileSync(file, `${head}cameras:\n${cam.repeat(Math.floor((1024 * 1024 - head.length - 20) / cam.length))}`);
    const started = Date.now();
    const r = await check(file);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.code).toBe(78);
    const lines = r.err.trimEnd().split('\n');
    expect(lines.filter((l) => l.includes('duplicate camera id'))).toHaveLength(100);
    expect(lines.at(-2)).toMatch(/^… and \d+ more$/);
    expect(lines.at(-1)).toMatch(/^\d+ problem\(s\) found in /);
  });

  it('provision refuses outputs on /proc, /sys and /dev, and writes nothing', async () => {
    const args = ['provision', '--device-id', 'box-1', '--site', 's', '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtt://127.0.0.1:1883', '--no-probe'];
    const started = Date.now();
    const io = capture();
    expect(await cli([...args, '--out', '/proc/x/agent.yaml', '--data-dir', join(base, 'pd')], io)).toBe(64);
    expect(io.err()).toContain('--out /proc/x/agent.yaml: on /proc, a kernel pseudo-filesystem');
    const io2 = capture();
    expect(await cli([...args, '--out', join(base, 'pd', 'agent.yaml'), '--data-dir', '/sys/roadside'], io2)).toBe(64);
    expect(io2.err()).toContain('--data-dir /sys/roadside: on /sys');
    const io3 = capture();
    expect(await cli([...args, '--out', '/dev/shm/roadside/agent.yaml', '--data-dir', join(base, 'pd')], io3)).toBe(64);
    expect(existsSync(join(base, 'pd'))).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('6. YAML-level problems are config problems (78) at FILE:LINE', () => {
  it.each([
    ['39-yaml-alias-bomb.yaml', 9, 'YAML aliases expand to too many copies'],
    ['40-yaml-unresolved-alias.yaml', 7, 'YAML alias *broker has no anchor'],
    ['41-yaml-recursive-alias.yaml', 4, 'inside the collection it names'],
    ['44-yaml-too-deep.yaml', 8, 'nested more than 32 levels deep'],
    ['43-duplicate-key.yaml', 8, 'duplicate key "mqtt"'],
  ])('%s', async (name, line, message) => {
    const file = join(INVALID, name);
    const r = await check(file);
    expect(r.code).toBe(78);
    expect(r.err).toContain(`${file}:${line} `);
    expect(r.err).toContain(message);
  });

  it('1 MB of "[" ends in a problem, not in an out-of-memory crash', async () => {
    const f = join(base, 'brackets.yaml');
    writeFileSync(f, `a: ${'['.repeat(1024 * 1024 - 10)}`);
    const r = await check(f);
    expect(r.code).toBe(78);
    expect(r.err).toContain(`${f}:1 (root): YAML nested more than 32 levels deep`);
  });
});

describe('7. piped output is complete', () => {
  it('more than 64 KiB of problems through a pipe that is read late arrives whole, summary included', async () => {
    // A long directory path makes each of the 100 problem lines ~2.5 KB: ~250 KB in all.
    const deep = join(base, ...Array.from({ length: 12 }, (_, i) => `${i}${'d'.repeat(199)}`));
    mkdirSync(deep, { recursive: true });
    const file = join(deep, 'agent.yaml');
    const cams = Array.from({ length: 150 }, (_, i) => `  - { id: c${i}, url: ${CLIP}, frame: { width: 10, height: 576 } }`).join('\n');
    writeFileSync(file, `device: { id: box-1, site: s, data_dir: ${join(base, 'pipe-data')} }\ncameras:\n${cams}\nmqtt: { url: "mqtt://127.0.0.1:1883" }\n`);
    const expected = await check(file);
    expect(expected.err.length).toBeGreaterThan(3 * 65_536);

    // A real pipe(2) (Node's own stdio pipes are socket pairs with bigger buffers), read only once the CLI has
    // exited (the old behaviour: whatever was past the first 64 KiB was lost) or after 8 s (it waits for us).
    const flag = join(base, 'cli-exited');
    const codeFile = join(base, 'cli-code');
    const script = [
      '("$4" --import tsx cli/main.ts config check "$1" 2>&1 >/dev/null; echo $? > "$3"; touch "$2")',
      '| (for i in $(seq 80); do [ -e "$2" ] && break; sleep 0.1; done; cat)',
    ].join(' ');
    const child = spawn('bash', ['-c', script, '_', file, flag, codeFile, process.execPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    await once(child, 'close');
    const text = Buffer.concat(chunks).toString();
    expect(readFileSync(codeFile, 'utf8').trim()).toBe('78');
    expect(text.length).toBe(expected.err.length);
    expect(text).toBe(expected.err);
    expect(text.trimEnd().split('\n').at(-1)).toBe(`150 problem(s) found in ${file}`);
  }, 40_000);
});

describe('8. accepted but wrong', () => {
  it.each([
    ['37-model-is-video.yaml', 8, 'detector.model_path: not an ONNX model'],
    ['38-model-is-directory.yaml', 8, 'detector.model_path: the model must be a regular file, not a directory'],
    ['34-zone-bow-tie.yaml', 9, 'cameras.0.zones.0.polygon: zone "bow-tie": edges 0→1 and 2→3 cross'],
    ['35-zone-zero-area.yaml', 9, 'cameras.0.zones.0.polygon: zone "flat": the polygon encloses no area'],
    ['36-roi-one-point.yaml', 7, 'cameras.0.roi: ROI: points 0 and 1 are the same point'],
    ['42-not-utf8.yaml', 2, '(root): not valid UTF-8: byte 0xe9 at column 19'],
  ])('%s: config check exits 78 at FILE:LINE', async (name, line, message) => {
    const file = join(INVALID, name);
    const r = await check(file);
    expect(r.code).toBe(78);
    expect(r.err).toContain(`${file}:${line} ${message}`);
  });

  it('run exits 78 (not 1) on a video file or a directory as the model', async () => {
    for (const name of ['37-model-is-video.yaml', '38-model-is-directory.yaml']) {
      const io = capture({ ROADSIDE_DATA_DIR: join(base, 'model-run') });
      expect(await cli(['run', '--config', join(INVALID, name)], io)).toBe(78);
      expect(io.err()).toContain('detector.model_path');
    }
  });

  it('a valid polygon, a valid model and UTF-8 text still pass', async () => {
    const { file } = configFile('detector: { model_path: ' + join(process.cwd(), 'models/nanodet.onnx') + ' }\n');
    writeFileSync(file, readFileSync(file, 'utf8').replace('frame: { width: 768, height: 576 } }', 'frame: { width: 768, height: 576 }, zones: [{ id: zoné-ok, polygon: [[0, 0], [100, 0], [100, 100]] }] }').replace('zoné-ok', 'ok'));
    writeFileSync(file, `# café ✓\n${readFileSync(file, 'utf8')}`);
    const r = await check(file);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('9. provision refuses values for unknown cameras', () => {
  it('--camera-password cam9=… when the only camera is cam1: exit 64, no password shown, nothing written', async () => {
    const root = join(base, 'p9');
    const out = join(root, 'etc', 'agent.yaml');
    const io = capture();
    const code = await cli(
      ['provision', '--out', out, '--data-dir', join(root, 'data'), '--device-id', 'box-1', '--site', 's', '--camera', `cam1=${CLIP}`, '--frame', 'cam1=768x576', '--mqtt-url', 'mqtt://127.0.0.1:1883', '--camera-password', 'cam9=Cam9-Secret'],
      io,
    );
    expect(code).toBe(64);
    expect(io.err()).toContain('--camera-password: the ID= prefix names no camera of this box (cameras: cam1)');
    expect(io.all()).not.toContain('Cam9-Secret');
    expect(existsSync(root)).toBe(false);
  });

  it('--frame cam9=… and --camera-user cam9=… are refused the same way, naming the id', async () => {
    const root = join(base, 'p9b');
    const args = ['provision', '--out', join(root, 'agent.yaml'), '--data-dir', join(root, 'data'), '--device-id', 'box-1', '--site', 's', '--camera', CLIP, '--mqtt-url', 'mqtt://127.0.0.1:1883', '--no-probe'];
    const io = capture();
    expect(await cli([...args, '--frame', 'cam9=768x576'], io)).toBe(64);
    expect(io.err()).toContain('--frame: no camera "cam9" on this box (cameras: cam1)');
    const io2 = capture();
    expect(await cli([...args, '--frame', '768x576', '--camera-user', 'cam9=agent'], io2)).toBe(64);
    expect(io2.err()).toContain('--camera-user: no camera "cam9"');
    expect(existsSync(root)).toBe(false);
  });
});
