// The doctor's checks one by one, where a whole doctor run is not needed: decoder mismatch and damaged model,
// broker host name mismatch and MQTT 3.1.1, clock and disk thresholds, permission rules for another user, the
// runner's timeouts, secrets.env parsing against what provision writes.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envLine } from '../../../agent/field/provision.js';
import { checkBroker } from '../../../agent/field/doctor/checks/broker.js';
import { cameraFix } from '../../../agent/field/doctor/checks/camera.js';
import { accessProblem, checkConfigFile, checkDataDir, checkTlsFiles, type AgentUser } from '../../../agent/field/doctor/checks/files.js';
import { checkModel } from '../../../agent/field/doctor/checks/model.js';
import { checkClock, checkDisk } from '../../../agent/field/doctor/checks/system.js';
import { formatTable } from '../../../agent/field/doctor/report.js';
import { runChecks } from '../../../agent/field/doctor/runner.js';
import { parseEnvFile, readSecretsEnv, secretsProblem, withSecrets } from '../../../agent/field/secrets-env.js';
import type { CameraReason } from '../../../ingest/index.js';
import { CameraSchema, ConfigSchema, type Config } from '../../../config/schema/index.js';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { freePort } from '../../../testkit/ports.js';
import { CONTRACT_CLASSES, CONTRACT_INPUT, writeContractModels, type Layout } from '../../../testkit/onnx-models.js';

let dir: string;
let models: Record<Layout, string>;
let certs: TestCerts;
let broker: Mosquitto;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'doctor-checks-'));
  models = writeContractModels(join(dir, 'models'));
  certs = await makeCerts();
  broker = await Mosquitto.start({ tls: { certs } });
});

afterAll(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function config(over: Record<string, unknown> = {}): Config {
  return ConfigSchema.parse({
    device: { id: 'box-1', site: 'site-1', data_dir: join(dir, 'data') },
    cameras: [{ id: 'cam1', url: 'rtsp://127.0.0.1:8554/cam1', frame: { width: 640, height: 360 } }],
    mqtt: { url: broker.url },
    ...over,
  });
}

const never = new AbortController().signal;

describe('model check', () => {
  const detector = (layout: Layout, decoder: Layout, input: { width: number; height: number } = CONTRACT_INPUT) => ({
    detector: { model_path: models[layout], decoder, input_size: input, class_names: CONTRACT_CLASSES, classes: ['person', 'car'], threads: 1 },
  });

  it('a model that fits: PASS with its inference time', async () => {
    const r = await checkModel(config(detector('decoded', 'decoded')), never);
    expect(r.status).toBe('pass');
    expect(r.figures).toMatchObject({ decoder: 'decoded', input_size: '64x64', runs: 3 });
    expect(r.figures!.inference_ms).toBeGreaterThanOrEqual(0);
  });

  it("a model that does not fit the decoder: FAIL with the decoder to set", async () => {
    const r = await checkModel(config(detector('yolov8', 'nanodet')), never);
    expect(r.status).toBe('fail');
    expect(r.figures!.error).toBe('DETECTOR_MODEL_MISMATCH');
    expect(r.detail).toMatch(/does not fit decoder nanodet/);
    expect(r.fix).toBe("set detector.decoder: yolov8 (the model's outputs do not fit the configured decoder)");
  });

  it('a model of another input size: FAIL with the size to set', async () => {
    const r = await checkModel(config(detector('decoded', 'decoded', { width: 96, height: 96 })), never);
    expect(r.status).toBe('fail');
    expect(r.fix).toBe("set detector.input_size to 64x64 (the model's input size)");
  });

  it('a model that differs from its .sha256: FAIL damaged, before loading it', async () => {
    const copy = join(dir, 'models', 'copied.onnx');
    copyFileSync(models.decoded, copy);
    writeFileSync(`${copy}.sha256`, `${'0'.repeat(64)}  copied.onnx\n`);
    const r = await checkModel(config({ detector: { ...detector('decoded', 'decoded').detector, model_path: copy } }), never);
    expect(r.status).toBe('fail');
    expect(r.detail).toContain('is damaged: its sha256 differs');
    expect(r.figures!.sha256_ok).toBe(false);
  });
});

describe('broker check', () => {
  const tlsConfig = (tls: Record<string, unknown>, protocol: 4 | 5 = 5) => config({ mqtt: { url: broker.tlsUrl, protocol, tls: { ca: certs.caFile, ...tls } } });

  it('MQTT 3.1.1 over verified TLS: PASS with the round trip', async () => {
    const r = await checkBroker(tlsConfig({}, 4), { connectMs: 5_000, roundTripMs: 5_000 }, never);
    expect(r.status).toBe('pass');
    expect(r.detail).toMatch(/MQTT 3\.1\.1, TLS verified/);
    expect(r.figures).toMatchObject({ protocol: 4, tls_verified: true, broker_cert_subject: 'localhost' });
  });

  it('a certificate that does not name the host: FAIL hostname mismatch', async () => {
    const r = await checkBroker(tlsConfig({ servername: 'broker.example' }), { connectMs: 5_000, roundTripMs: 5_000 }, never);
    expect(r.status).toBe('fail');
    expect(r.figures).toMatchObject({ error: 'TLS_HOSTNAME_MISMATCH', cause: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(r.fix).toBe('the broker certificate does not name "broker.example": use the name in the certificate in mqtt.url, or set mqtt.tls.servername');
  });

  it('nothing listening: FAIL ECONNREFUSED', async () => {
    const r = await checkBroker(config({ mqtt: { url: `mqtt://127.0.0.1:${await freePort()}` } }), { connectMs: 5_000, roundTripMs: 5_000 }, never);
    expect(r).toMatchObject({ status: 'fail', fix: 'nothing accepts connections there: check mqtt.url host and port, and that the broker is up' });
    expect(r.figures!.cause).toBe('ECONNREFUSED');
  });

  it('plain mqtt:// on the TLS port: FAIL with the mqtt:// vs mqtts:// hint', async () => {
    const r = await checkBroker(config({ mqtt: { url: `mqtt://127.0.0.1:${broker.tlsPort}` } }), { connectMs: 2_000, roundTripMs: 2_000 }, never);
    expect(r.status).toBe('fail');
    expect(r.figures!.cause).toBe('ECONNRESET');
    expect(r.fix).toContain('mqtt:// on a TLS port (use mqtts://)?');
  });
});

describe('camera fixes', () => {
  it('every reason has its fix', () => {
    const cam = CameraSchema.parse({ id: 'north-1', url: 'rtsp://10.0.0.5:8554/stream1', transport: 'udp', frame: { width: 1920, height: 1080 } });
    const fixes: Record<CameraReason, string> = {
      unauthorized: 'check camera username/password (ROADSIDE_CAMERA_NORTH_1_PASSWORD in secrets.env, cameras[2].username)',
      connection_refused: 'camera unreachable: check cabling/IP/port 8554 (10.0.0.5 refuses RTSP connections)',
      unreachable: "camera unreachable: check cabling/IP/port 8554 (no route to 10.0.0.5: cable, PoE, VLAN, the box's address)",
      not_found: "check the stream path (/stream1 in cameras[2].url; see the camera's RTSP settings)",
      timeout: 'the camera sends no picture: check its stream is enabled (H.264), or set cameras[2].transport: tcp (UDP may be blocked)',
      unsupported_codec: "set the camera's stream to H.264: this codec cannot be decoded here",
      stalled: "the stream stops: check the link to the camera (packet loss, PoE budget) and the camera's bitrate",
      exited: "check cameras[2].url and the camera's stream settings (see the detail)",
      stopped: "check cameras[2].url and the camera's stream settings (see the detail)",
    };
    for (const [reason, fix] of Object.entries(fixes)) expect(cameraFix(cam, 2, reason as CameraReason)).toBe(fix);
  });
});

describe('clock and disk', () => {
  const clock = (synced: boolean | null, offset_ms: number | null = null) => ({
    clock: () => Promise.resolve({ synced, offset_ms, source: synced === null ? ('unknown' as const) : ('chronyc' as const) }),
  });
  const health = { clock_offset_warn_ms: 1000, disk_min_free_mb: 500 };

  it('clock: synced passes; unsynced, unknown or off warns; an impossible date fails', async () => {
    expect((await checkClock(clock(true, 3), health)).status).toBe('pass');
    expect(await checkClock(clock(false), health)).toMatchObject({ status: 'warn', fix: 'check NTP: chronyc sources (servers reachable? UDP 123 open?)' });
    expect((await checkClock(clock(null), health)).detail).toContain('unknown');
    expect((await checkClock(clock(true, -2500), health)).detail).toContain('off by -2500 ms');
    expect((await checkClock(clock(true, 1), health, Date.parse('1970-01-01T00:02:00Z'))).status).toBe('fail');
  });

  it('disk: fail below health.disk_min_free_mb, warn below twice that', async () => {
    const disk = (free_mb: number) => ({ disk: (path: string) => Promise.resolve({ path, total_mb: 30_000, free_mb }) });
    expect((await checkDisk(disk(400), '/data', health)).status).toBe('fail');
    expect((await checkDisk(disk(800), '/data', health)).status).toBe('warn');
    expect((await checkDisk(disk(5_000), '/data', health)).status).toBe('pass');
  });
});

describe('permissions for the agent user', () => {
  // A user that is not the one running the tests (root): its access is computed from the mode bits.
  const agent: AgentUser = { name: 'roadside', uid: 4242, gids: [4242] };

  it('a 0600 root file is unreadable for the agent, a 0700 directory cannot be entered', () => {
    chmodSync(dir, 0o755); // mkdtemp makes it 0700
    const d = join(dir, 'perm');
    mkdirSync(join(d, 'closed'), { recursive: true, mode: 0o755 });
    chmodSync(join(d, 'closed'), 0o700);
    writeFileSync(join(d, 'key.pem'), 'k', { mode: 0o600 });
    writeFileSync(join(d, 'closed', 'ca.pem'), 'c', { mode: 0o644 });
    chmodSync(d, 0o755);
    expect(accessProblem(join(d, 'key.pem'), agent, 'r')).toBe(`roadside cannot read ${join(d, 'key.pem')}`);
    expect(accessProblem(join(d, 'closed', 'ca.pem'), agent, 'r')).toBe(`roadside cannot enter ${join(d, 'closed')}`);
    expect(accessProblem(join(d, 'key.pem'), { ...agent, uid: 0 }, 'r')).toBeNull();
  });

  it('TLS key: open to others fails, group-readable warns, unreadable by the agent fails', () => {
    const d = join(dir, 'tls');
    mkdirSync(d, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755); // mkdtemp makes it 0700
    const key = join(d, 'client.key');
    writeFileSync(key, 'k');
    copyFileSync(certs.caFile, join(d, 'ca.pem'));
    copyFileSync(certs.clientCert, join(d, 'client.pem'));
    const cfg = config({ mqtt: { url: 'mqtts://127.0.0.1:8883', tls: { ca: join(d, 'ca.pem'), cert: join(d, 'client.pem'), key } } });
    const me: AgentUser = { name: 'root', uid: 0, gids: [0] };
    chmodSync(key, 0o644);
    expect(checkTlsFiles(cfg, me)).toMatchObject({ status: 'fail', fix: `chmod 0600 ${key}, and ask for a new certificate if others may have copied it` });
    chmodSync(key, 0o640);
    expect(checkTlsFiles(cfg, me)?.status).toBe('warn');
    chmodSync(key, 0o600);
    expect(checkTlsFiles(cfg, me)?.status).toBe('pass');
    expect(checkTlsFiles(cfg, agent)).toMatchObject({ status: 'fail', fix: `chown roadside ${key} && chmod 0600 ${key}` });
  });

  it('config: world-readable with a password in it fails; data dir not writable by the agent fails', () => {
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, 'mqtt:\n  url: mqtt://127.0.0.1:1883\n  password: hunter2\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const r = checkConfigFile(file, { name: 'root', uid: 0, gids: [0] });
    expect(r).toMatchObject({ status: 'fail' });
    expect(r.detail).toContain('world-readable (0644) and holds mqtt.password');
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true, mode: 0o755 });
    chmodSync(data, 0o755);
    expect(checkDataDir(config(), agent)).toMatchObject({ status: 'fail', fix: `chown -R roadside: ${data}` });
    expect(checkDataDir(config({ device: { id: 'b', site: 's', data_dir: join(dir, 'missing') } }), agent).detail).toContain('does not exist');
  });
});

describe('runner and output', () => {
  it('a check that hangs is reported at its timeout and its signal aborts', async () => {
    let aborted = false;
    const t0 = performance.now();
    const [hung, slow] = await runChecks([
      {
        name: 'hung',
        title: 'hanging check',
        timeoutMs: 200,
        run: (signal) =>
          new Promise((resolve) =>
            signal.addEventListener('abort', () => {
              aborted = true;
              resolve({ status: 'pass', detail: 'late', fix: null });
            }),
          ),
      },
      { name: 'slow', title: 'slow clock', timeoutMs: 100, onTimeout: 'warn', run: () => new Promise(() => undefined) },
    ]);
    expect(performance.now() - t0).toBeLessThan(3_500);
    expect(aborted).toBe(true);
    expect(hung).toMatchObject({ check: 'hung', status: 'fail', detail: 'hanging check: no answer within 0.2 s' });
    expect(slow!.status).toBe('warn');
  });

  it('a check that throws is a FAIL, not a crash', async () => {
    const [r] = await runChecks([{ name: 'boom', title: 'boom', timeoutMs: 1_000, run: () => Promise.reject(new Error('kaput')) }]);
    expect(r).toMatchObject({ status: 'fail', detail: 'boom failed: kaput' });
  });

  it('table: a fix line under problems only, extra lines under their row', () => {
    const text = formatTable([
      { check: 'config', status: 'fail', detail: '2 problem(s)', fix: 'fix each line', figures: {}, lines: ['a.yaml:3 x: bad', 'a.yaml:9 y: bad'] },
      { check: 'clock', status: 'pass', detail: 'synchronised', fix: null, figures: {} },
    ]);
    expect(text.split('\n')).toEqual([
      'STATUS  CHECK   DETAIL',
      'FAIL    config  2 problem(s)',
      '                  a.yaml:3 x: bad',
      '                  a.yaml:9 y: bad',
      '                fix: fix each line',
      'PASS    clock   synchronised',
      '',
    ]);
  });
});

describe('secrets.env', () => {
  it('reads back what provision writes, quoting and all', () => {
    const values = { ROADSIDE_MQTT_PASSWORD: `p'a$s "w\`d\\ #x`, ROADSIDE_CAMERA_CAM1_PASSWORD: 'plain', ROADSIDE_CAMERA_CAM_2_PASSWORD: "it's" };
    const text = ['# written by provision', ...Object.entries(values).map(([k, v]) => envLine(k, v)), '', 'BARE = some value # comment'].join('\n');
    expect(parseEnvFile(text)).toEqual({ ...values, BARE: 'some value' });
  });

  it('run and doctor read them alike: --env-file, else secrets.env beside the config; the environment wins', () => {
    const box = mkdtempSync(join(dir, 'secrets-'));
    const config = join(box, 'agent.yaml');
    writeFileSync(join(box, 'secrets.env'), `${envLine('ROADSIDE_MQTT_PASSWORD', 'from-file')}\n${envLine('ROADSIDE_STATUS_TOKEN', 't'.repeat(20))}\n`);
    const beside = readSecretsEnv(config);
    expect(beside).toMatchObject({ file: join(box, 'secrets.env'), explicit: false, error: null });
    expect(withSecrets({ ROADSIDE_MQTT_PASSWORD: 'from-env' }, beside)).toEqual({ ROADSIDE_MQTT_PASSWORD: 'from-env', ROADSIDE_STATUS_TOKEN: 't'.repeat(20) });
    // No file beside the config is fine; a named file that cannot be read is a usage problem.
    expect(secretsProblem(readSecretsEnv(join(dir, 'nowhere', 'agent.yaml')))).toBeUndefined();
    expect(secretsProblem(readSecretsEnv(config, join(box, 'missing.env')))).toBe(`--env-file ${join(box, 'missing.env')}: cannot read it (ENOENT)`);
  });
});
