// `roadside-agent doctor` against real processes: a GStreamer RTSP camera with digest auth, mosquitto with a
// password and mutual TLS, the bundled model, a live outbox. First everything right (all PASS, exit 0), then each
// failure provoked on its own box (temp dir with its config, secrets.env and data dir).
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { DoctorDeps } from '../../../cli/doctor.js';
import type { CliIo } from '../../../cli/io.js';
import { cli } from '../../../cli/main.js';
import { envLine } from '../../../agent/field/provision.js';
import type { JsonResult } from '../../../agent/field/doctor/report.js';
import { SystemHealthSources } from '../../../agent/health/index.js';
import { silentLogger } from '../../../core/log.js';
import { Outbox } from '../../../buffer/index.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { RtspServer } from '../../../testkit/rtsp.js';

const CAM_USER = 'admin';
const CAM_PASSWORD = "c@m 'pw";
const MQTT_USER = 'box-1';
const MQTT_PASSWORD = 'mq$tt "pw';
const SECONDS = '3';

let certs: TestCerts;
let camera: RtspServer;
let downCamera: RtspServer;
let broker: Mosquitto;
let base: string;

// detection_fps 2: the model check warns when inference cannot keep up with the cameras' rate, and this 2-core VM
// runs the RTSP servers, mosquitto and other test files meanwhile.
// The VM has neither chrony nor timedatectl: a synchronised clock is injected, the disk is measured for real.
const sys = new SystemHealthSources();
const deps: DoctorDeps = {
  sources: { clock: () => Promise.resolve({ synced: true, offset_ms: 0.4, source: 'chronyc' }), disk: (p) => sys.disk(p) },
};

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'doctor-'));
  certs = await makeCerts();
  [camera, downCamera, broker] = await Promise.all([
    RtspServer.start({ auth: { username: CAM_USER, password: CAM_PASSWORD } }),
    RtspServer.start(),
    Mosquitto.start({ password: { username: MQTT_USER, password: MQTT_PASSWORD }, tls: { certs, requireClientCert: true } }),
  ]);
});

afterAll(async () => {
  await Promise.all([camera?.stop(), downCamera?.stop(), broker?.stop()]);
  rmSync(base, { recursive: true, force: true });
});

interface BoxOptions {
  cameraUrl?: string;
  cameraPassword?: string;
  mqttPassword?: string;
  ca?: 'ca' | 'other';
  /** detector.model_path; default the bundled model. */
  model?: string;
}

interface Box {
  dir: string;
  config: string;
  secrets: string;
  data: string;
}

let boxes = 0;

/** `roadside-agent doctor ARGS` in-process, with the injected clock/disk sources. */
const runDoctorCommand = (args: string[], io: CliIo, d: DoctorDeps = {}): Promise<number> => cli(['doctor', ...args], io, { doctor: d });

/** A provisioned box in a temp dir: agent.yaml (absolute paths), secrets.env 0600, tls/ with the client key 0600, data/. */
function makeBox(o: BoxOptions = {}): Box {
  const dir = join(base, `box${++boxes}`);
  const tls = join(dir, 'tls');
  const data = join(dir, 'data');
  mkdirSync(tls, { recursive: true });
  mkdirSync(data, { mode: 0o750 });
  copyFileSync(o.ca === 'other' ? certs.otherCaFile : certs.caFile, join(tls, 'ca.pem'));
  copyFileSync(certs.clientCert, join(tls, 'client.pem'));
  copyFileSync(certs.clientKey, join(tls, 'client.key'));
  chmodSync(join(tls, 'client.key'), 0o600);
  const config = {
    device: { id: 'box-1', site: 'site-1', data_dir: data },
    cameras: [{ id: 'cam1', url: o.cameraUrl ?? camera.url, username: CAM_USER, frame: { width: 768, height: 576 }, detection_fps: 2 }],
    ...(o.model ? { detector: { model_path: o.model } } : {}),
    mqtt: { url: broker.tlsUrl, username: MQTT_USER, tls: { ca: join(tls, 'ca.pem'), cert: join(tls, 'client.pem'), key: join(tls, 'client.key') } },
  };
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, stringify(config), { mode: 0o644 });
  const secrets = join(dir, 'secrets.env');
  writeFileSync(
    secrets,
    `${[envLine('ROADSIDE_MQTT_PASSWORD', o.mqttPassword ?? MQTT_PASSWORD), envLine('ROADSIDE_CAMERA_CAM1_PASSWORD', o.cameraPassword ?? CAM_PASSWORD)].join('\n')}\n`,
    { mode: 0o600 },
  );
  return { dir, config: file, secrets, data };
}

function capture(env: NodeJS.ProcessEnv = {}): CliIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  // No ROADSIDE_* from the test's environment: the secrets come from the box's secrets.env only.
  return { env, interactive: false, stdout: (t) => out.push(t), stderr: (t) => err.push(t), out: () => out.join(''), err: () => err.join('') };
}

async function doctorJson(box: Pick<Box, 'config'>, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; results: JsonResult[]; byCheck: (name: string) => JsonResult; ms: number }> {
  const io = capture(env);
  const t0 = performance.now();
  const code = await runDoctorCommand(['--config', box.config, '--seconds', SECONDS, '--json', ...extra], io, deps);
  const ms = performance.now() - t0;
  const results = JSON.parse(io.out()) as JsonResult[];
  const byCheck = (name: string): JsonResult => {
    const r = results.find((x) => x.check === name);
    if (!r) throw new Error(`no ${name} in ${io.out()}`);
    return r;
  };
  return { code, results, byCheck, ms };
}

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('doctor: a box where everything works', () => {
  it('passes every check, exits 0, and leaves the live outbox as it was', async () => {
    const box = makeBox();
    // A live outbox (the agent running): 5 rows, 2 acknowledged, so 3 wait.
    const outboxConfig = OutboxSchema.parse({ path: join(box.data, 'outbox.db') });
    const writer = new Outbox(outboxConfig, silentLogger());
    await writer.start();
    for (let i = 1; i <= 5; i++) writer.append({ id: `ev-${i}`, topic: 'events/cam1', priority: i === 1 ? 'violation' : 'event', payload: { n: i } });
    await writer.stop();
    await writer.start();
    const leased = writer.lease(2);
    for (const row of leased) writer.ack(row.seq);
    await writer.stop();
    const live = new Outbox(outboxConfig, silentLogger());
    await live.start();
    const before = sha(outboxConfig.path);

    try {
      const { code, results, byCheck, ms } = await doctorJson(box);
      console.log(`doctor, all good: ${Math.round(ms)} ms\n${results.map((r) => `  ${r.status.toUpperCase()} ${r.check}: ${r.detail}`).join('\n')}`);
      expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
      expect(code).toBe(0);

      // JSON shape: [{check, status, detail, fix, figures}], figures always with duration_ms.
      for (const r of results) {
        expect(Object.keys(r).sort()).toEqual(['check', 'detail', 'figures', 'fix', 'status']);
        expect(typeof r.detail).toBe('string');
        expect(r.fix).toBeNull();
        expect(typeof r.figures.duration_ms).toBe('number');
      }
      expect(results.map((r) => r.check)).toEqual(['config', 'camera:cam1', 'model', 'broker', 'clock', 'disk', 'outbox', 'files:config', 'files:secrets', 'files:tls', 'files:data']);

      const cam = byCheck('camera:cam1').figures;
      expect(cam.fps).toBeGreaterThan(1.6);
      expect(cam.fps).toBeLessThan(2.4);
      expect(cam.source_size).toBe('768x576');
      expect(byCheck('model').figures.inference_ms).toBeGreaterThan(0);
      const mq = byCheck('broker').figures;
      expect(mq).toMatchObject({ tls: true, tls_verified: true, username: MQTT_USER, protocol: 5 });
      expect(mq.topic).toMatch(/^roadside\/site-1\/box-1\/doctor\/[0-9a-f]{8}$/);
      expect(mq.round_trip_ms).toBeGreaterThan(0);
      expect(byCheck('config').detail).toContain(`secrets from ${box.secrets}`);
      expect(byCheck('outbox').figures).toMatchObject({ quick_check: 'ok', rows_total: 5, rows_waiting: 3, acked_kept: 2, waiting: { violation: 0, event: 3 } });
      // Cameras, model and broker ran side by side: the run takes about the camera's time, not the sum.
      expect(ms).toBeLessThan(15_000);

      // Read only: the database is unchanged, nothing quarantined, and the agent's outbox carries on.
      expect(sha(outboxConfig.path)).toBe(before);
      expect(readdirSync(box.data).filter((n) => n.includes('corrupt'))).toEqual([]);
      expect(() => live.append({ id: 'ev-6', topic: 'events/cam1', priority: 'event', payload: { n: 6 } })).not.toThrow();
    } finally {
      await live.stop();
    }
  });
});

describe.concurrent('doctor: each failure provoked', () => {
  it('wrong camera password: camera FAIL with the unauthorized fix (table output)', async () => {
    const box = makeBox({ cameraPassword: 'wrong-password' });
    const io = capture();
    const code = await runDoctorCommand(['--config', box.config, '--seconds', SECONDS], io, deps);
    const table = io.out();
    console.log(`doctor, wrong camera password:\n${table}`);
    expect(code).toBe(1);
    expect(table).toMatch(/^FAIL\s+camera:cam1\s+no picture: unauthorized/m);
    expect(table).toContain('fix: check camera username/password (ROADSIDE_CAMERA_CAM1_PASSWORD');
    expect(table).toMatch(/^PASS\s+broker\s/m);
    expect(table).not.toContain('wrong-password');
    expect(table).toMatch(/1 FAIL, .*: the box is NOT ready/);
    // Not a terminal: one plain progress line per finished check on stderr.
    expect(io.err()).toMatch(/^doctor: camera:cam1 fail \(\d+\.\d s\)$/m);
  });

  it('camera down (server stopped): camera FAIL unreachable', async () => {
    await downCamera.stop();
    const box = makeBox({ cameraUrl: downCamera.url });
    const { code, byCheck } = await doctorJson(box);
    const cam = byCheck('camera:cam1');
    expect(code).toBe(1);
    expect(cam.status).toBe('fail');
    expect(cam.figures.reason).toBe('connection_refused');
    expect(cam.fix).toBe(`camera unreachable: check cabling/IP/port ${downCamera.port} (127.0.0.1 refuses RTSP connections)`);
  });

  it('broker certificate from another CA: broker FAIL naming the certificate', async () => {
    const box = makeBox({ ca: 'other' });
    const { code, byCheck } = await doctorJson(box);
    const b = byCheck('broker');
    expect(code).toBe(1);
    expect(b.status).toBe('fail');
    expect(b.detail).toMatch(/certificate of mqtts:\/\/127\.0\.0\.1:\d+ is not trusted/);
    expect(['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']).toContain(b.figures.cause);
    expect(b.fix).toContain(`the broker certificate is not signed by mqtt.tls.ca (${join(box.dir, 'tls', 'ca.pem')})`);
  });

  it('wrong MQTT password: broker FAIL not authorized', async () => {
    const box = makeBox({ mqttPassword: 'not-the-password' });
    const { code, byCheck } = await doctorJson(box);
    const b = byCheck('broker');
    expect(code).toBe(1);
    expect(b.status).toBe('fail');
    expect([134, 135]).toContain(b.figures.cause);
    expect(b.fix).toContain('not authorized: check mqtt.username and the password (ROADSIDE_MQTT_PASSWORD');
    expect(byCheck('camera:cam1').status).toBe('pass');
  });

  it('model file missing: config FAIL (exit 78), the checks that need the config skipped', async () => {
    const missing = join(base, 'no-such-model.onnx');
    const box = makeBox({ model: missing });
    const io = capture();
    const code = await runDoctorCommand(['--config', box.config, '--seconds', SECONDS], io, deps);
    expect(code).toBe(78);
    const table = io.out();
    expect(table).toMatch(/^FAIL\s+config\s+1 problem\(s\) in /m);
    expect(table).toContain(`detector.model_path: model file not found: ${missing}`);
    for (const name of ['cameras', 'model', 'broker', 'disk', 'outbox', 'files:data']) expect(table).toMatch(new RegExp(`^SKIP\\s+${name}\\s+not run: needs a valid config`, 'm'));
    expect(table).toMatch(/^PASS\s+files:secrets\s/m);
    expect(table).toContain('the config is invalid: fix it first (exit 78)');

    const json = capture();
    expect(await runDoctorCommand(['--config', box.config, '--json'], json, deps)).toBe(78);
    const config = (JSON.parse(json.out()) as JsonResult[])[0]!;
    expect(config).toMatchObject({ check: 'config', status: 'fail' });
    expect(config.figures.problems).toEqual([expect.objectContaining({ path: 'detector.model_path', message: `model file not found: ${missing}` })]);
  });

  it('a model file that is not a model: model FAIL', async () => {
    const fake = join(base, 'fake-model.onnx');
    // Passes config check's ONNX header check (ir_version, a graph), yet ONNX Runtime cannot load it.
    writeFileSync(fake, Buffer.from([0x08, 0x08, 0x3a, 0x04, 0x0a, 0x02, 0x12, 0x00]));
    const box = makeBox({ model: fake });
    const { code, byCheck } = await doctorJson(box);
    const m = byCheck('model');
    expect(code).toBe(1);
    expect(m.status).toBe('fail');
    expect(m.figures.error).toBe('DETECTOR_MODEL_LOAD');
    expect(m.detail).toMatch(/^model does not load: /);
    expect(m.fix).toContain('detector.model_path is not an ONNX model');
  });

  it('world-readable secrets.env: files:secrets FAIL', async () => {
    const box = makeBox();
    chmodSync(box.secrets, 0o644);
    const { code, byCheck } = await doctorJson(box);
    const s = byCheck('files:secrets');
    expect(code).toBe(1);
    expect(s).toMatchObject({ status: 'fail', fix: `chmod 0600 ${box.secrets} (systemd reads it as root)` });
    expect(s.detail).toContain('world-readable (0644)');
  });

  it('damaged outbox: outbox FAIL, the file left where it is (never quarantined by doctor)', async () => {
    const box = makeBox();
    const db = join(box.data, 'outbox.db');
    writeFileSync(db, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.from('not a database '.repeat(500))]));
    const before = sha(db);
    const { code, byCheck } = await doctorJson(box);
    const o = byCheck('outbox');
    expect(code).toBe(1);
    expect(o.status).toBe('fail');
    expect(o.detail).toContain('is damaged');
    expect(o.fix).toContain('restart the agent: it moves the damaged file aside');
    expect(sha(db)).toBe(before);
    expect(readdirSync(box.data).filter((n) => n.includes('corrupt'))).toEqual([]);
    expect(statSync(db).size).toBeGreaterThan(0);
  });

  it('a file that is not an SQLite database at outbox.path: outbox FAIL, never to be moved by the agent', async () => {
    const box = makeBox();
    const db = join(box.data, 'outbox.db');
    writeFileSync(db, 'root:x:0:0:root:/root:/bin/bash\n');
    const before = sha(db);
    const { code, byCheck } = await doctorJson(box);
    const o = byCheck('outbox');
    expect(code).toBe(1);
    expect(o.status).toBe('fail');
    expect(o.detail).toContain('is not an SQLite database');
    expect(o.fix).toContain('move that file out of the way');
    expect(sha(db)).toBe(before);
  });
});

describe('doctor: usage', () => {
  it('wants a sane --seconds and known options, in the common error style', async () => {
    const io = capture();
    expect(await runDoctorCommand(['--bogus'], io)).toBe(64);
    expect(io.err()).toBe('roadside-agent doctor: unknown option "--bogus"\nRun "roadside-agent doctor --help" for usage.\n');
    const io2 = capture();
    expect(await runDoctorCommand(['--config', 'x.yaml', '--seconds', '0'], io2)).toBe(64);
    expect(io2.err()).toContain('--seconds 0: expected a number of seconds from 1 to 60');
    const io3 = capture();
    expect(await runDoctorCommand(['--help'], io3)).toBe(0);
    expect(io3.out()).toContain('--json');
    expect(io3.out()).toContain('--env-file FILE');
    const io4 = capture();
    expect(await runDoctorCommand(['--config', 'x.yaml', '--env-file', join(base, 'no-such.env')], io4)).toBe(64);
    expect(io4.err()).toContain(`--env-file ${join(base, 'no-such.env')}: cannot read it (ENOENT)`);
  });

  it('reads /etc/roadside-agent/agent.yaml without --config', async () => {
    const io = capture();
    const code = await runDoctorCommand(['--json', '--seconds', '1'], io, deps);
    const config = (JSON.parse(io.out()) as JsonResult[])[0]!;
    expect(config.figures.path).toBe('/etc/roadside-agent/agent.yaml');
    if (!existsSync('/etc/roadside-agent/agent.yaml')) {
      expect(code).toBe(78);
      expect(config).toMatchObject({ check: 'config', status: 'fail' });
    }
  });
});

describe.concurrent('doctor: secrets, loaded as run loads them', () => {
  it('--env-file names the secrets file; the process environment wins over it', async () => {
    // secrets.env beside the config has the wrong password; the right one comes from --env-file or the environment.
    const box = makeBox({ mqttPassword: 'not-the-password' });
    const env = join(box.dir, 'other.env');
    writeFileSync(env, `${envLine('ROADSIDE_MQTT_PASSWORD', MQTT_PASSWORD)}\n${envLine('ROADSIDE_CAMERA_CAM1_PASSWORD', CAM_PASSWORD)}\n`, { mode: 0o600 });
    const fromFile = await doctorJson(box, ['--env-file', env]);
    expect(fromFile.byCheck('broker').status).toBe('pass');
    expect(fromFile.byCheck('config').detail).toContain(`secrets from ${env}`);
    const fromEnv = await doctorJson(box, [], { ROADSIDE_MQTT_PASSWORD: MQTT_PASSWORD });
    expect(fromEnv.byCheck('broker').status).toBe('pass');
    expect(fromEnv.byCheck('camera:cam1').status).toBe('pass'); // its password still from secrets.env
  });
});

describe('doctor right after provision (client certificate not signed yet)', () => {
  it('WARNs "waiting for the center to sign the CSR" and runs every check that does not need the certificate', async () => {
    const root = join(base, 'provisioned');
    const out = join(root, 'etc', 'agent.yaml');
    const prov = capture({ ROADSIDE_MQTT_PASSWORD: MQTT_PASSWORD, ROADSIDE_CAMERA_CAM1_PASSWORD: CAM_PASSWORD });
    const args = ['provision', '--device-id', 'box-1', '--site', 'site-1', '--camera', `cam1=${camera.url}`, '--camera-user', `cam1=${CAM_USER}`];
    const code = await cli([...args, '--mqtt-url', broker.tlsUrl, '--mqtt-user', MQTT_USER, '--ca', certs.caFile, '--out', out, '--data-dir', join(root, 'data')], prov);
    expect(code, prov.err()).toBe(0);
    expect(prov.out()).toContain('camera cam1: 768x576 (probed)');
    expect(prov.out()).toContain('client certificate client.pem pending');
    const csr = join(root, 'etc', 'tls', 'client.csr');
    expect(existsSync(csr)).toBe(true);
    writeFileSync(out, readFileSync(out, 'utf8').replace('frame:', 'detection_fps: 2\n    frame:'));

    const { code: exit, results, byCheck } = await doctorJson({ config: out });
    console.log(`doctor, certificate pending:\n${results.map((r) => `  ${r.status.toUpperCase()} ${r.check}: ${r.detail}`).join('\n')}`);
    const config = byCheck('config');
    expect(config.status).toBe('warn');
    expect(config.detail).toContain(`waiting for the center to sign the CSR ${csr}`);
    expect(config.fix).toContain(`install the signed certificate as ${join(root, 'etc', 'tls', 'client.pem')}`);
    // Nothing skipped: the cameras, the model, the disk and the data are checked now.
    expect(results.filter((r) => r.status === 'skip')).toEqual([]);
    expect(results.map((r) => r.check)).toEqual(['config', 'camera:cam1', 'model', 'broker', 'clock', 'disk', 'outbox', 'files:config', 'files:secrets', 'files:tls', 'files:data']);
    expect(byCheck('camera:cam1').figures.source_size).toBe('768x576');
    for (const name of ['camera:cam1', 'model', 'disk', 'outbox', 'files:tls', 'files:data']) expect(byCheck(name).status, name).not.toBe('fail');
    // The broker: TCP and a TLS handshake verifying its certificate, no login.
    const b = byCheck('broker');
    expect(b.status).toBe('warn');
    expect(b.detail).toContain('waiting for the center to sign the CSR');
    expect(b.figures).toMatchObject({ tls: true, login: 'not tested: client certificate pending' });
    expect(b.figures.tcp_ms).toBeGreaterThanOrEqual(0);
    if (b.figures.tls_verified !== null) expect(b.figures).toMatchObject({ tls_verified: true, broker_cert_subject: 'localhost' });
    expect(exit).toBe(0);
  });

  it('the same box with a CA the broker certificate does not chain to: broker FAIL', async () => {
    const root = join(base, 'provisioned-other-ca');
    const out = join(root, 'etc', 'agent.yaml');
    const prov = capture({ ROADSIDE_MQTT_PASSWORD: MQTT_PASSWORD });
    const args = ['provision', '--device-id', 'box-1', '--site', 'site-1', '--camera', 'tests/fixtures/clips/vtest-20s.mp4', '--frame', '768x576'];
    expect(await cli([...args, '--mqtt-url', broker.tlsUrl, '--ca', certs.otherCaFile, '--out', out, '--data-dir', join(root, 'data')], prov), prov.err()).toBe(0);
    const { byCheck } = await doctorJson({ config: out });
    expect(byCheck('config').status).toBe('warn');
    const b = byCheck('broker');
    expect(b.status).toBe('fail');
    expect(b.detail).toMatch(/certificate of mqtts:\/\/127\.0\.0\.1:\d+ is not trusted/);
    expect(b.fix).toContain('the broker certificate is not signed by mqtt.tls.ca');
  });
});
