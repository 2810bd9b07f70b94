// Proves the integration-test harness (testkit/) works for real — and that each piece can fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt, MqttConnectError, mqttTlsOptions } from '../../../testkit/mqtt.js';
import { canConnect, freePort } from '../../../testkit/ports.js';
import { ffmpegProcesses, isAlive, processesMatching, waitFor } from '../../../testkit/processes.js';
import { ffprobeRtsp, pullFrames, RtspServer, startPull } from '../../../testkit/rtsp.js';

async function connectError(url: string, opts: Parameters<typeof connectMqtt>[1]): Promise<MqttConnectError> {
  try {
    const client = await connectMqtt(url, opts);
    await endMqtt(client);
  } catch (err) {
    if (err instanceof MqttConnectError) return err;
    throw err;
  }
  throw new Error(`expected connecting to ${url} to fail`);
}

describe('ports', () => {
  it('freePort returns a bindable loopback port nobody listens on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(1023);
    expect(await canConnect(port)).toBe(false);
  });
});

describe('mosquitto harness', () => {
  let certs: TestCerts;
  const brokers: Mosquitto[] = [];
  const clients: MqttClient[] = [];
  const start = async (opts: Parameters<typeof Mosquitto.start>[0]): Promise<Mosquitto> => {
    const b = await Mosquitto.start(opts);
    brokers.push(b);
    return b;
  };
  const connect = async (url: string, opts: Parameters<typeof connectMqtt>[1] = {}): Promise<MqttClient> => {
    const c = await connectMqtt(url, opts);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    certs = await makeCerts();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => endMqtt(c)));
    await Promise.all(brokers.map((b) => b.stop()));
  });

  it('plain listener: MQTT 5 QoS 1 publish/subscribe round trip', async () => {
    const broker = await start({});
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    const sub = await connect(broker.url, { clientId: 'harness-sub' });
    const pub = await connect(broker.url, { clientId: 'harness-pub' });
    await sub.subscribeAsync('harness/#', { qos: 1 });
    const received = new Promise<{ topic: string; payload: string; qos: number }>((resolve) =>
      sub.once('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), qos: packet.qos })),
    );
    // publishAsync resolves (with the sent packet) once the PUBACK arrived.
    const sent = await pub.publishAsync('harness/echo', JSON.stringify({ n: 1 }), { qos: 1 });
    expect(sent).toMatchObject({ cmd: 'publish', qos: 1 });
    expect(await received).toEqual({ topic: 'harness/echo', payload: '{"n":1}', qos: 1 });
    expect(broker.logText()).toContain('Sending PUBACK to harness-pub');
  });

  it('password listener accepts the right credentials and refuses wrong or missing ones (135)', async () => {
    const broker = await start({ password: { username: 'device', password: 's3cret' } });
    const ok = await connect(broker.url, { username: 'device', password: 's3cret' });
    expect(ok.connected).toBe(true);

    const wrong = await connectError(broker.url, { username: 'device', password: 'nope' });
    expect(wrong.reasonCode).toBe(135);
    expect(wrong.message).toMatch(/Not authorized/i);

    const anonymous = await connectError(broker.url, {});
    expect(anonymous.reasonCode).toBe(135);
  });

  it('TLS listener: the test CA verifies the broker, an unrelated CA does not', async () => {
    const broker = await start({ tls: { certs } });
    expect(broker.tlsPort).toBeDefined();
    expect(broker.tlsUrl).toBe(`mqtts://127.0.0.1:${broker.tlsPort}`);
    const ok = await connect(broker.tlsUrl, mqttTlsOptions(certs, { ca: 'ca' }));
    await ok.publishAsync('harness/tls', 'x', { qos: 1 });

    const wrongCa = await connectError(broker.tlsUrl, mqttTlsOptions(certs, { ca: 'other' }));
    expect(wrongCa.errorCode).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    const noCa = await connectError(broker.tlsUrl, mqttTlsOptions(certs, { ca: 'none' }));
    expect(noCa.errorCode).toMatch(/CERT/);
    // The plain listener is still there next to the TLS one.
    await connect(broker.url);
  });

  it('mutual TLS: the broker requires the client certificate', async () => {
    const broker = await start({ tls: { certs, requireClientCert: true } });
    const ok = await connect(broker.tlsUrl, mqttTlsOptions(certs, { clientCert: true }));
    await ok.publishAsync('harness/mtls', 'x', { qos: 1 });
    const noCert = await connectError(broker.tlsUrl, mqttTlsOptions(certs, { clientCert: false }));
    expect(noCert.reasonCode).toBeUndefined(); // refused in the TLS handshake, not by CONNACK
  });

  it('restart keeps the ports, a client reconnects, persistence keeps retained messages; kill() is a crash', async () => {
    const broker = await start({ persistence: true, tls: { certs } });
    const { port, tlsPort } = broker;
    const client = await connect(broker.url, { clientId: 'harness-reconnect', reconnectPeriod: 100 });
    await client.publishAsync('harness/retained', 'kept', { qos: 1, retain: true });
    const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const oldPid = broker.pid;

    await broker.restart();
    expect(broker.port).toBe(port);
    expect(broker.tlsPort).toBe(tlsPort);
    expect(broker.pid).not.toBe(oldPid);
    await reconnected;
    await client.publishAsync('harness/after-restart', 'x', { qos: 1 });

    const fresh = await connect(broker.url);
    const retained = new Promise<string>((resolve) => fresh.once('message', (_t, payload) => resolve(payload.toString())));
    await fresh.subscribeAsync('harness/retained', { qos: 1 });
    expect(await retained).toBe('kept');

    const pid = broker.pid!;
    await broker.kill();
    expect(isAlive(pid)).toBe(false);
    expect(await canConnect(port)).toBe(false);
    await broker.start();
    expect(broker.port).toBe(port);
    await waitFor(() => client.connected, { timeout_ms: 5_000, message: 'client reconnect after kill + start' });
  });
});

describe('rtsp harness', () => {
  let server: RtspServer;
  const auth = { method: 'digest' as const, username: 'admin', password: 'p@ss word' };

  beforeAll(async () => {
    server = await RtspServer.start({ auth });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves H.264 at /cam1 on a loopback port (ffprobe over TCP)', async () => {
    expect(server.url).toBe(`rtsp://127.0.0.1:${server.port}/cam1`);
    const probe = await ffprobeRtsp(server.clientUrl, { transport: 'tcp' });
    expect(probe.stderr).toBe('');
    expect(probe.stdout.trim()).toBe('h264');
  });

  it('ffmpeg pulls ~2 s of frames over TCP and over UDP, both at once (shared media)', async () => {
    const marker = `pull-${server.tag}`;
    const [tcp, udp] = await Promise.all([
      pullFrames(server.clientUrl, { transport: 'tcp', seconds: 2, marker }),
      pullFrames(server.clientUrl, { transport: 'udp', seconds: 2, marker }),
    ]);
    for (const r of [tcp, udp]) {
      expect(r.code, r.stderr).toBe(0);
      // 10 fps clip, keyframe every second: a client joining the shared stream mid-GOP cannot decode until
      // the next keyframe, and -t counts from its first packet, so 10-20 frames.
      expect(r.frames).toBeGreaterThanOrEqual(9);
      expect(r.frames).toBeLessThanOrEqual(25);
    }
    expect(ffmpegProcesses(marker)).toEqual([]);
  });

  it('wrong or missing credentials get 401 Unauthorized', async () => {
    const wrong = await ffprobeRtsp(server.urlWithCredentials('admin', 'wrong'));
    expect(wrong.ok).toBe(false);
    expect(wrong.stderr).toContain('401 Unauthorized');
    const none = await pullFrames(server.url, { seconds: 1 });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('401');
  });

  it('freeze() stalls the stream without closing the connection; unfreeze() resumes it', async () => {
    const pull = startPull(server.clientUrl, { transport: 'tcp', socketTimeout_ms: 10_000 });
    try {
      await waitFor(() => pull.frames >= 5, { timeout_ms: 8_000, message: 'first frames' });
      server.freeze();
      await new Promise((r) => setTimeout(r, 400)); // frames already in flight
      const atFreeze = pull.frames;
      await new Promise((r) => setTimeout(r, 1_200));
      expect(pull.frames - atFreeze).toBeLessThanOrEqual(1);
      expect(isAlive(pull.child.pid!)).toBe(true);
      expect(isAlive(server.pid!)).toBe(true);
      server.unfreeze();
      await waitFor(() => pull.frames >= atFreeze + 5, { timeout_ms: 5_000, message: 'frames after unfreeze' });
      // The stream goes on after the catch-up burst (no BYE ending the session).
      await new Promise((r) => setTimeout(r, 500));
      const afterBurst = pull.frames;
      await waitFor(() => pull.frames >= afterBurst + 5, { timeout_ms: 3_000, message: 'real-time frames after the burst' });
      expect(isAlive(pull.child.pid!)).toBe(true);
    } finally {
      server.unfreeze();
      await pull.stop();
    }
  });

  it('restart() comes back on the same port with a new feeder', async () => {
    const { port } = server;
    const oldFeeder = server.feederPid!;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.feederPid).not.toBe(oldFeeder);
    expect(isAlive(oldFeeder)).toBe(false);
    expect((await server.probe()).ok).toBe(true);
  });

  it('stop() leaves no python server and no feeder behind', async () => {
    const pid = server.pid!;
    const feeder = server.feederPid!;
    expect(processesMatching(server.tag).map((p) => p.pid).sort()).toEqual([pid, feeder].sort());
    await server.stop();
    expect(isAlive(pid)).toBe(false);
    expect(isAlive(feeder)).toBe(false);
    expect(processesMatching(server.tag)).toEqual([]);
    expect(ffmpegProcesses(server.tag)).toEqual([]);
    expect(await canConnect(server.port)).toBe(false);
  });

  it('basic auth on another mount; kill() (SIGKILL) still takes the feeder down via PDEATHSIG', async () => {
    const basic = await RtspServer.start({ mount: '/live/main', auth: { method: 'basic', username: 'viewer', password: 'pw' }, waitForStream: false });
    try {
      expect(basic.url).toMatch(/\/live\/main$/);
      expect((await basic.probe()).ok).toBe(true);
      const wrong = await basic.probe({ url: basic.urlWithCredentials('viewer', 'bad') });
      expect(wrong.stderr).toContain('401 Unauthorized');
      const feeder = basic.feederPid!;
      await basic.kill();
      expect(isAlive(feeder)).toBe(false);
      expect(processesMatching(basic.tag)).toEqual([]);
    } finally {
      await basic.stop();
    }
  });
});
