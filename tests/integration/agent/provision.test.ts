// `roadside-agent provision`: in-process through cli() and as real processes (the compiled
// binary, and in a pseudo-terminal for the prompts), always in temporary directories.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { CliIo } from '../../../cli/io.js';
import { cli } from '../../../cli/main.js';
import { envLine, type ProvisionDeps, type Prompter } from '../../../agent/field/provision.js';
import { writeFileAtomic } from '../../../core/fs.js';
import { loadConfig } from '../../../config/loader.js';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';
import { freePort } from '../../../testkit/ports.js';
import { RtspServer } from '../../../testkit/rtsp.js';

const run = promisify(execFile);
const BIN = 'dist/cli/main.js';
const CLIP = 'tests/fixtures/clips/vtest-20s.mp4';
// Passwords with everything a shell or systemd could mangle.
const TRICKY = `p'a$s "w\`d\\ #x`;

/** `roadside-agent provision ARGS` in-process with injected seams (the prompter). */
const runProvision = (args: string[], io: CliIo, deps: ProvisionDeps): Promise<number> => cli(['provision', ...args], io, { provision: deps });

let base: string;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'provision-'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
function box() {
  const root = join(base, `box${++n}`);
  return { root, out: join(root, 'etc', 'agent.yaml'), data: join(root, 'data'), etc: join(root, 'etc') };
}

function capture(env: NodeJS.ProcessEnv = {}, interactive = false): CliIo & { out: string[]; err: string[]; text: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, env, interactive, stdout: (t) => out.push(t), stderr: (t) => err.push(t), text: () => out.join('') + err.join('') };
}

/** The parts of a provisioned agent.yaml the tests look at. */
interface ProvisionedYaml {
  device: Record<string, unknown>;
  cameras: ({ id: string; url: string; frame: unknown } & Record<string, unknown>)[];
  mqtt: { url: string; username?: string; tls?: Record<string, string> } & Record<string, unknown>;
}
const readYaml = (text: string) => parse(text) as ProvisionedYaml;

const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);

/** Reads a secrets.env the way systemd's EnvironmentFile= would (a POSIX shell parses the same quoting). */
function sourceEnv(file: string): Record<string, string> {
  // --norc: bash reads ~/.bashrc when its stdin looks like a network connection (libuv's socketpair pipes).
  const out = execFileSync('bash', ['--norc', '--noprofile', '-c', 'set -a; . "$1"; env -0', '_', file], { env: {}, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return Object.fromEntries(
    out
      .split('\0')
      .filter((l) => l.startsWith('ROADSIDE_'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function baseArgs(b: ReturnType<typeof box>): string[] {
  return ['provision', '--device-id', 'box-n1-km12', '--site', 'n1-km12', '--out', b.out, '--data-dir', b.data];
}

describe('provision (in-process, flags)', () => {
  it('writes config without secrets, secrets.env 0600, data dirs 0750, an EC P-256 key 0600 and a CSR; the config checks', async () => {
    const b = box();
    const io = capture({ ROADSIDE_MQTT_PASSWORD: TRICKY });
    const code = await cli(
      [...baseArgs(b), '--camera', 'north=rtsp://agent:cam%40pw@127.0.0.1:8554/north', '--frame', 'north=1920x1080', '--camera', `south=${CLIP}`,
        '--frame', 'south=768x576', '--camera-password', 'south=unused-for-files', '--mqtt-url', 'mqtts://broker.example:8883', '--org', 'anas'],
      io,
    );
    expect(code, io.text()).toBe(0);

    // The YAML: no secret, credentials moved out of the RTSP URL, TLS files relative to the config.
    const yamlText = readFileSync(b.out, 'utf8');
    for (const secret of ['cam@pw', 'cam%40pw', TRICKY, 'unused-for-files']) expect(yamlText).not.toContain(secret);
    const doc = readYaml(yamlText);
    expect(doc.device).toEqual({ id: 'box-n1-km12', site: 'n1-km12', data_dir: b.data });
    expect(doc.cameras[0]).toEqual({ id: 'north', url: 'rtsp://127.0.0.1:8554/north', username: 'agent', frame: { width: 1920, height: 1080 } });
    expect(doc.cameras[1]!.url).toBe(join(process.cwd(), CLIP));
    expect(doc.mqtt).toEqual({ url: 'mqtts://broker.example:8883', username: 'box-n1-km12', tls: { cert: 'tls/client.pem', key: 'tls/client.key' } });

    // secrets.env: 0600, parsed back identically by a shell (= systemd's EnvironmentFile quoting).
    const secretsFile = join(b.etc, 'secrets.env');
    expect(mode(secretsFile)).toBe('600');
    expect(sourceEnv(secretsFile)).toEqual({
      ROADSIDE_MQTT_PASSWORD: TRICKY,
      ROADSIDE_CAMERA_NORTH_PASSWORD: 'cam@pw',
      ROADSIDE_CAMERA_SOUTH_PASSWORD: 'unused-for-files',
    });
    // The center signs the CSR; with the certificate in place the loader accepts the config and picks the
    // secrets up from exactly those variables.
    const ca = await makeCerts(join(base, 'pki-sign'));
    execFileSync('openssl', ['x509', '-req', '-in', join(b.etc, 'tls', 'client.csr'), '-CA', ca.caFile, '-CAkey', ca.caKey, '-CAcreateserial', '-days', '1', '-out', join(b.etc, 'tls', 'client.pem')], { stdio: 'ignore' });
    const { config } = loadConfig(b.out, sourceEnv(secretsFile));
    expect(config.mqtt.password).toBe(TRICKY);
    expect(config.cameras.map((c) => c.password)).toEqual(['cam@pw', 'unused-for-files']);

    expect(mode(b.out)).toBe('644');
    expect(mode(b.etc)).toBe('750');
    expect(mode(b.data)).toBe('750');
    expect(mode(join(b.data, 'evidence'))).toBe('750');

    // Key and CSR: EC P-256, 0600, CSR signed by that key with CN = device, OU = site, O = --org.
    const key = join(b.etc, 'tls', 'client.key');
    const csr = join(b.etc, 'tls', 'client.csr');
    expect(mode(key)).toBe('600');
    expect(execFileSync('openssl', ['pkey', '-in', key, '-noout', '-text']).toString()).toMatch(/prime256v1|P-256/);
    const subject = execFileSync('openssl', ['req', '-in', csr, '-noout', '-subject', '-verify'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    expect(subject).toMatch(/O\s*=\s*anas, OU\s*=\s*n1-km12, CN\s*=\s*box-n1-km12/);
    const csrPub = execFileSync('openssl', ['req', '-in', csr, '-noout', '-pubkey']).toString();
    expect(csrPub).toBe(execFileSync('openssl', ['pkey', '-in', key, '-pubout']).toString());

    // No temp files left; next steps printed.
    expect(execFileSync('find', [b.root, '-name', '*.tmp']).toString()).toBe('');
    const text = io.out.join('');
    expect(text).toContain('client certificate client.pem pending');
    expect(text).toContain(`Send ${csr} to the control center`);
    expect(text).toContain(`roadside-agent doctor --config ${b.out}`);
  });

  it('probes the frame size of the camera when --frame is not given', async () => {
    const b = box();
    const io = capture();
    const code = await cli([...baseArgs(b), '--camera', CLIP, '--mqtt-url', 'mqtt://127.0.0.1:1883'], io);
    expect(code, io.text()).toBe(0);
    const doc = readYaml(readFileSync(b.out, 'utf8'));
    expect(doc.cameras[0]).toMatchObject({ id: 'cam1', frame: { width: 768, height: 576 } });
    expect(doc.mqtt.tls).toBeUndefined();
    expect(existsSync(join(b.etc, 'tls'))).toBe(false);
    expect(io.out.join('')).toContain('768x576 (probed)');
  });

  it('refuses to overwrite an existing config without --force; --force keeps the existing key and renews the CSR', async () => {
    const b = box();
    const args = [...baseArgs(b), '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtts://broker.example:8883'];
    expect(await cli(args, capture())).toBe(0);
    const before = readFileSync(b.out, 'utf8');
    const keyBefore = readFileSync(join(b.etc, 'tls', 'client.key'), 'utf8');

    const io = capture();
    expect(await cli([...args, '--site', 'other-site'], io)).toBe(64);
    expect(io.err.join('')).toContain('--force');
    expect(readFileSync(b.out, 'utf8')).toBe(before);

    expect(await cli([...args, '--site', 'other-site', '--force'], capture())).toBe(0);
    expect(readFileSync(b.out, 'utf8')).toContain('site: other-site');
    expect(readFileSync(join(b.etc, 'tls', 'client.key'), 'utf8')).toBe(keyBefore);
    expect(execFileSync('openssl', ['req', '-in', join(b.etc, 'tls', 'client.csr'), '-noout', '-subject']).toString()).toContain('other-site');

    expect(await cli([...args, '--force', '--new-key'], capture())).toBe(0);
    expect(readFileSync(join(b.etc, 'tls', 'client.key'), 'utf8')).not.toBe(keyBefore);
  });

  describe('with given certificates', () => {
    let certs: TestCerts;
    beforeAll(async () => {
      certs = await makeCerts(join(base, 'pki'));
    });

    it('installs CA, certificate and key (0600) instead of generating; the config checks with no pending step', async () => {
      const b = box();
      const io = capture();
      const code = await cli(
        [...baseArgs(b), '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtts://127.0.0.1:8883', '--ca', certs.caFile, '--cert', certs.clientCert, '--key', certs.clientKey],
        io,
      );
      expect(code, io.text()).toBe(0);
      const tls = join(b.etc, 'tls');
      expect(readFileSync(join(tls, 'ca.pem'), 'utf8')).toBe(readFileSync(certs.caFile, 'utf8'));
      expect(readFileSync(join(tls, 'client.pem'), 'utf8')).toBe(readFileSync(certs.clientCert, 'utf8'));
      expect(readFileSync(join(tls, 'client.key'), 'utf8')).toBe(readFileSync(certs.clientKey, 'utf8'));
      expect(mode(join(tls, 'client.key'))).toBe('600');
      expect(existsSync(join(tls, 'client.csr'))).toBe(false);
      expect((readYaml(readFileSync(b.out, 'utf8'))).mqtt.tls).toEqual({ ca: 'tls/ca.pem', cert: 'tls/client.pem', key: 'tls/client.key' });
      expect(io.out.join('')).not.toContain('pending');
      expect(loadConfig(b.out, {}).config.mqtt.tls?.key).toBe(join(tls, 'client.key'));
    });

    it('rejects a key that does not belong to the certificate, before writing anything', async () => {
      const b = box();
      const io = capture();
      const code = await cli([...baseArgs(b), '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtts://127.0.0.1:8883', '--cert', certs.clientCert, '--key', certs.serverKey], io);
      expect(code).toBe(64);
      expect(io.err.join('')).toContain('does not belong to --cert');
      expect(existsSync(b.root)).toBe(false);
    });
  });

  it('prints config problems as FILE:LINE path: message and exits 78', async () => {
    const b = box();
    const io = capture();
    const code = await cli([...baseArgs(b), '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtt://broker.example:1883'], io);
    expect(code).toBe(78);
    const lines = readFileSync(b.out, 'utf8').split('\n');
    const urlLine = lines.findIndex((l) => l.includes('url: mqtt://broker.example')) + 1;
    expect(urlLine).toBeGreaterThan(0);
    expect(io.err.join('')).toContain(`${b.out}:${urlLine} mqtt.url: plaintext mqtt:// to the non-loopback host "broker.example"`);
    // The same box with --allow-insecure is fine.
    expect(await cli([...baseArgs(b), '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtt://broker.example:1883', '--allow-insecure', '--force'], capture())).toBe(0);
  });

  it('is a usage error (64) when required input is missing and nobody can be asked', async () => {
    const b = box();
    const io = capture();
    expect(await cli(['provision', '--out', b.out, '--data-dir', b.data], io)).toBe(64);
    expect(io.err.join('')).toContain('--device-id is required');
    const io2 = capture();
    expect(await cli([...baseArgs(b), '--camera', 'rtsp://127.0.0.1:1/none', '--no-probe', '--mqtt-url', 'mqtt://127.0.0.1:1883'], io2)).toBe(64);
    expect(io2.err.join('')).toContain('give --frame cam1=WIDTHxHEIGHT');
    const io3 = capture();
    expect(await cli([...baseArgs(b).map((a) => (a === 'box-n1-km12' ? 'Box 1' : a)), '--camera', CLIP], io3)).toBe(64);
    expect(io3.err.join('')).toContain('--device-id "Box 1"');
    expect(existsSync(b.root)).toBe(false);
  });

  it('prints its help', async () => {
    const io = capture();
    expect(await cli(['provision', '--help'], io)).toBe(0);
    expect(io.out.join('')).toContain('--camera [ID=]URL');
  });
});

describe('provision: a camera that gives no picture says why', () => {
  const CAM_USER = 'admin';
  const CAM_PASSWORD = 'Cam-Pw-42';
  let camera: RtspServer;
  beforeAll(async () => {
    camera = await RtspServer.start({ auth: { username: CAM_USER, password: CAM_PASSWORD } });
  });
  afterAll(async () => {
    await camera?.stop();
  });

  const probe = async (url: string, password?: string) => {
    const b = box();
    const io = capture(password ? { ROADSIDE_CAMERA_CAM1_PASSWORD: password } : {});
    const code = await cli([...baseArgs(b), '--camera', `cam1=${url}`, '--camera-user', `cam1=${CAM_USER}`, '--mqtt-url', 'mqtt://127.0.0.1:1883'], io);
    return { code, err: io.err.join(''), out: io.out.join(''), written: existsSync(b.root) };
  };

  it('the right password: the frame size comes from the camera', async () => {
    const r = await probe(camera.url, CAM_PASSWORD);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('camera cam1: 768x576 (probed)');
  });

  it('a wrong password: 401 unauthorized and which flags to check, never the password', async () => {
    const r = await probe(camera.url, 'Wrong-Pw-99');
    expect(r.code).toBe(64);
    expect(r.err).toContain('frame size of camera cam1 unknown: it gave no picture: 401 unauthorized');
    expect(r.err).toContain('check --camera-user / --camera-password for cam1 (or ROADSIDE_CAMERA_CAM1_PASSWORD); or give --frame cam1=WIDTHxHEIGHT');
    expect(r.err).not.toContain('Wrong-Pw-99');
    expect(r.written).toBe(false);
  });

  it('nothing listening: connection refused, with the port to check', async () => {
    const port = await freePort();
    const r = await probe(`rtsp://127.0.0.1:${port}/cam1`);
    expect(r.code).toBe(64);
    expect(r.err).toContain('it gave no picture: connection refused');
    expect(r.err).toContain(`camera unreachable: check cabling/IP/port ${port} (127.0.0.1 refuses RTSP connections)`);
  });

  it('a wrong stream path: not found', async () => {
    const r = await probe(camera.url.replace(/\/cam1$/, '/nope'), CAM_PASSWORD);
    expect(r.code).toBe(64);
    expect(r.err).toContain('it gave no picture: not found');
    expect(r.err).toContain('check the stream path (/nope in --camera');
  });
});

describe('provision helpers', () => {
  it('envLine quotes so that a shell (and systemd) reads the value back unchanged', () => {
    const dir = mkdtempSync(join(base, 'env-'));
    const values = ['plain', "it's", 'a"b', 'dollar $HOME ${X}', 'back\\slash', 'tick `id`', '  spaces  ', '#hash', ''];
    const file = join(dir, 'e.env');
    writeFileSync(file, values.map((v, i) => envLine(`ROADSIDE_V${i}`, v)).join('\n'));
    const back = sourceEnv(file);
    values.forEach((v, i) => expect(back[`ROADSIDE_V${i}`]).toBe(v));
    expect(() => envLine('X', 'a\nb')).toThrow(/line break/);
  });

  it('writeFileAtomic replaces the file whole, with the requested mode from the start', () => {
    const dir = mkdtempSync(join(base, 'atomic-'));
    const f = join(dir, 'secret');
    writeFileAtomic(f, 'one', 0o600);
    expect(mode(f)).toBe('600');
    writeFileAtomic(f, 'two', 0o600);
    expect(readFileSync(f, 'utf8')).toBe('two');
    expect(execFileSync('ls', ['-A', dir]).toString().trim()).toBe('secret');
  });
});

/** A prompter that answers from a script and records what was asked, and how. */
function scripted(steps: [RegExp, string][]): Prompter & { asked: { q: string; secret: boolean }[]; notes: string[] } {
  const asked: { q: string; secret: boolean }[] = [];
  const notes: string[] = [];
  const next = (q: string, secret: boolean, def?: string) => {
    asked.push({ q, secret });
    const step = steps.shift();
    if (!step) throw new Error(`unexpected question: ${q}`);
    expect(q).toMatch(step[0]);
    return Promise.resolve(step[1] === '' ? (def ?? '') : step[1]);
  };
  return { asked, notes, ask: (q, def) => next(q, false, def), askSecret: (q) => next(q, true), note: (t) => notes.push(t), close: () => undefined };
}

describe('provision (in-process, prompts)', () => {
  it('asks for what flags did not give, re-asks invalid answers, and asks secrets with askSecret', async () => {
    const b = box();
    const prompter = scripted([
      [/^Device id/, 'Not A Slug'],
      [/^Device id/, 'box-7'],
      [/^Site id/, 'site-7'],
      [/^Camera 1 id/, ''],
      [/^Camera cam1 RTSP URL/, 'rtsp://127.0.0.1:8554/one'],
      [/^Add another camera/, 'y'],
      [/^Camera 2 id/, 'side'],
      [/^Camera side RTSP URL/, CLIP],
      [/^Add another camera/, ''],
      [/^Camera cam1 user name/, 'agent'],
      [/^Camera cam1 password/, 'cam-secret'],
      [/^Camera cam1 frame size/, '1280x720'],
      [/^Camera side frame size/, ''], // default from the probe
      [/^MQTT broker URL/, 'mqtts://broker.example:8883'],
      [/^MQTT user name/, ''],
      [/^MQTT password/, 'mqtt-secret'],
      [/^CA certificate/, ''],
      [/^Client certificate/, ''],
    ]);
    const io = capture({}, true);
    const code = await runProvision(['--out', b.out, '--data-dir', b.data], io, { prompter });
    expect(code, io.text()).toBe(0);
    expect(prompter.notes.join('\n')).toContain('expected 1-63 lowercase letters');
    expect(prompter.asked.filter((a) => a.secret).map((a) => a.q)).toEqual([expect.stringMatching(/^Camera cam1 password/), expect.stringMatching(/^MQTT password/)]);
    const doc = readYaml(readFileSync(b.out, 'utf8'));
    expect(doc.device.id).toBe('box-7');
    expect(doc.cameras).toEqual([
      { id: 'cam1', url: 'rtsp://127.0.0.1:8554/one', username: 'agent', frame: { width: 1280, height: 720 } },
      { id: 'side', url: join(process.cwd(), CLIP), frame: { width: 768, height: 576 } },
    ]);
    expect(doc.mqtt.username).toBe('box-7');
    expect(sourceEnv(join(b.etc, 'secrets.env'))).toEqual({ ROADSIDE_MQTT_PASSWORD: 'mqtt-secret', ROADSIDE_CAMERA_CAM1_PASSWORD: 'cam-secret' });
  });

  it('does not prompt with --non-interactive even at a terminal', async () => {
    const b = box();
    const prompter = scripted([]);
    const io = capture({}, true);
    expect(await runProvision(['--out', b.out, '--non-interactive'], io, { prompter })).toBe(64);
    expect(prompter.asked).toEqual([]);
  });
});

describe('provision (real processes)', () => {
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first (npm test does)`);
  });

  it('the compiled binary provisions a box (exit 0) and reports problems (exit 78)', async () => {
    const b = box();
    const env = { ...process.env, ROADSIDE_MQTT_PASSWORD: 'from-env' };
    const ok = await run('node', [BIN, ...baseArgs(b), '--camera', CLIP, '--mqtt-url', 'mqtts://broker.example:8883'], { env });
    expect(ok.stdout).toContain('Next steps:');
    expect(sourceEnv(join(b.etc, 'secrets.env'))).toEqual({ ROADSIDE_MQTT_PASSWORD: 'from-env' });

    const b2 = box();
    const err = await run('node', [BIN, ...baseArgs(b2), '--camera', CLIP, '--mqtt-url', 'ws://broker.example/mqtt']).catch((e: { code: number; stderr: string }) => e);
    expect('code' in err && err.code).toBe(78);
    expect((err as { stderr: string }).stderr).toMatch(new RegExp(`${b2.out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+ mqtt\\.url: plaintext ws://`));
  });

  it('the compiled binary refuses --out on /proc at once (it used to never return) and a password for an unknown camera', async () => {
    const b = box();
    const args = [BIN, ...baseArgs(b), '--camera', CLIP, '--frame', '768x576', '--mqtt-url', 'mqtt://127.0.0.1:1883', '--no-probe'];
    const proc = await run('node', [...args, '--out', '/proc/x/agent.yaml'], { timeout: 20_000 }).catch((e: { code: number; stderr: string }) => e);
    expect('code' in proc && proc.code).toBe(64);
    expect((proc as { stderr: string }).stderr).toContain('--out /proc/x/agent.yaml: on /proc, a kernel pseudo-filesystem');
    const cam9 = await run('node', [...args, '--camera-password', 'cam9=Cam9-Secret'], { timeout: 20_000 }).catch((e: { code: number; stderr: string }) => e);
    expect('code' in cam9 && cam9.code).toBe(64);
    expect((cam9 as { stderr: string }).stderr).toContain('names no camera of this box (cameras: cam1)');
    expect((cam9 as { stderr: string }).stderr).not.toContain('Cam9-Secret');
    expect(existsSync(b.root)).toBe(false);
  });

  it('prompts in a terminal without echoing passwords (pseudo-terminal)', async () => {
    const b = box();
    const steps: [string, string][] = [
      ['Device id', 'box-9'],
      ['Site id', 'site-9'],
      ['Camera 1 id', ''],
      ['Camera cam1 RTSP URL', 'rtsp://127.0.0.1:8554/nine'],
      ['Add another camera', ''],
      ['Camera cam1 user name', 'agent-nine'],
      ['Camera cam1 password', 'Cam-S3cret-9'],
      ['Camera cam1 frame size', '1920x1080'],
      ['MQTT broker URL', 'mqtt://127.0.0.1:1883'],
      ['MQTT user name', ''],
      ['MQTT password', 'Mqtt-S3cret-9'],
      ['Next steps', ''],
    ];
    const argv = ['node', BIN, 'provision', '--out', b.out, '--data-dir', b.data, '--no-probe'];
    const { stdout } = await run('/usr/bin/python3', ['-c', PTY_DRIVER, JSON.stringify({ argv, steps, timeout: 60 })], { maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout) as { code: number; transcript: string; error?: string };
    expect(result.error, result.transcript).toBeUndefined();
    expect(result.code, result.transcript).toBe(0);
    // Ordinary answers are echoed (so the check below can see an echo), passwords are not.
    expect(result.transcript).toContain('agent-nine');
    expect(result.transcript).not.toContain('Cam-S3cret-9');
    expect(result.transcript).not.toContain('Mqtt-S3cret-9');
    expect(sourceEnv(join(b.etc, 'secrets.env'))).toEqual({ ROADSIDE_MQTT_PASSWORD: 'Mqtt-S3cret-9', ROADSIDE_CAMERA_CAM1_PASSWORD: 'Cam-S3cret-9' });
  });
});

describe('provision (real processes, Ctrl-C)', () => {
  it('Ctrl-C at a prompt aborts with exit 1 and writes nothing', async () => {
    const b = box();
    const argv = ['node', BIN, 'provision', '--out', b.out, '--data-dir', b.data];
    const steps: [string, string][] = [
      ['Device id', 'box-9'],
      ['Site id', '\u0003'],
      ['nothing was written', ''],
    ];
    const { stdout } = await run('/usr/bin/python3', ['-c', PTY_DRIVER, JSON.stringify({ argv, steps, timeout: 60 })], { maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout) as { code: number; transcript: string; error?: string };
    expect(result.error, result.transcript).toBeUndefined();
    expect(result.code, result.transcript).toBe(1);
    expect(existsSync(b.root)).toBe(false);
  });
});

/** Runs argv in a pseudo-terminal; for each [expected text, answer] waits for the text, then types the answer + Enter. */
const PTY_DRIVER = String.raw`
import json, os, pty, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(spec["argv"][0], spec["argv"])
buf = b""
pos = 0
error = None
deadline = time.time() + spec["timeout"]
def pump(wait):
    global buf
    r, _, _ = select.select([fd], [], [], wait)
    if not r:
        return True
    try:
        data = os.read(fd, 4096)
    except OSError:
        return False
    if not data:
        return False
    buf += data
    return True
for expect, answer in spec["steps"]:
    alive = True
    while buf.find(expect.encode(), pos) < 0:
        if time.time() > deadline:
            error = "timeout waiting for " + expect
            break
        if not pump(0.2):
            alive = False
            break
    if error or buf.find(expect.encode(), pos) < 0:
        error = error or "process ended before " + expect
        break
    pos = buf.find(expect.encode(), pos) + len(expect)
    time.sleep(0.05)
    if answer.startswith("\u0003"):
        os.write(fd, b"\x03")
    elif answer is not None and expect not in ("Next steps", "nothing was written"):
        os.write(fd, answer.encode() + b"\r")
while time.time() < deadline and pump(0.2):
    pass
_, status = os.waitpid(pid, 0)
out = {"code": os.waitstatus_to_exitcode(status), "transcript": buf.decode("utf8", "replace")}
if error:
    out["error"] = error
print(json.dumps(out))
`;
