// Evidence delivery through a real mosquitto: the agent's real Uplink and command registry serve packages from
// an evidence directory (agent/commands/evidence.ts), `center evidence get` (center/evidence-get.ts) fetches
// them chunk by chunk while events keep flowing at their normal rate, `evidence verify` accepts the copy, an
// interrupted fetch resumes where it stopped, and path traversal is refused. Without a broker: bad, lost and
// BUSY chunks are asked again, and the byte bucket holds its rate.
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evidenceVerify } from '../../../cli/evidence-verify.js';
import { acknowledgeInStore, ByteBucket, registerEvidence } from '../../../agent/commands/evidence.js';
import { CommandRegistry } from '../../../agent/commands/registry.js';
import { PackageStore } from '../../../inference/evidence/store.js';
import { EvidenceFetch, evidenceGet, type EvidenceAsk } from '../../../center/evidence-get.js';
import { commandError, type CommandResponse } from '../../../contract/command.js';
import { COMMANDS } from '../../../contract/commands.js';
import { EVIDENCE_CHUNK_MAX_BYTES, EVIDENCE_RATE_BYTES_S, signerKeyFrom } from '../../../contract/evidence.js';
import { verifyEvidencePackage } from '../../../contract/evidence-verify.js';
import { centerReplyTopic } from '../../../contract/topics.js';
import { AgentError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import { makeCerts } from '../../../testkit/certs.js';
import { captureIo as capture } from '../../../testkit/cli-io.js';
import { EvidenceBox, latencySummary, watchEvidenceBox, type BoxWatch } from '../../../testkit/evidence-box.js';
import { certSigner, p256Signer, writeTestPackage, type TestPackage } from '../../../testkit/evidence-packages.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const SITE = 'ev-site';
const DEVICE = 'ev-box';
const BASE = `roadside/${SITE}/${DEVICE}`;
const REPLY = centerReplyTopic('roadside', 'evidence-test');
/** The events' steady rate during the fetches, per second. */
const EVENT_RATE = 20;

let broker: Mosquitto;
let root: string;
let evidenceRoot: string;
let pubFile: string;
let box: EvidenceBox;
let spy: MqttClient;
/** The box's live events and the evidence requests it was sent, as seen on the broker. */
let watch: BoxWatch;
const signer = p256Signer();
const acknowledged: string[] = [];
const answers = new Map<string, CommandResponse>();

async function ask(body: Record<string, unknown>): Promise<CommandResponse> {
  const id = randomUUID();
  await spy.publishAsync(`${BASE}/cmd/evidence`, JSON.stringify({ id, ...body }), { qos: 1, properties: { responseTopic: REPLY, correlationData: Buffer.from(id) } });
  return waitFor(() => answers.get(id), { timeout_ms: 15_000, message: `answer to ${JSON.stringify(body)}` });
}

const center = (pkg: TestPackage, out: string, more: Partial<Parameters<typeof evidenceGet>[0]> = {}): Parameters<typeof evidenceGet>[0] => ({
  url: broker.url,
  device: DEVICE,
  event: pkg.eventId,
  out,
  signer_cert: pubFile,
  timeout_s: 10,
  ...more,
});

beforeAll(async () => {
  root = makeTempDir('evidence-delivery');
  evidenceRoot = join(root, 'evidence');
  mkdirSync(evidenceRoot);
  pubFile = join(root, 'signer-pub.pem');
  writeFileSync(pubFile, signer.publicPem);
  broker = await Mosquitto.start();
  spy = await connectMqtt(broker.url, { protocolVersion: 5, clean: true });
  spy.on('message', (topic, payload, packet) => {
    if (topic === REPLY) answers.set(packet.properties?.correlationData?.toString() ?? '', JSON.parse(payload.toString()) as CommandResponse);
  });
  watch = await watchEvidenceBox(spy, BASE);
  await spy.subscribeAsync(REPLY, { qos: 1 });
  box = await EvidenceBox.start({ url: broker.url, site: SITE, device: DEVICE, dir: evidenceRoot, outboxPath: join(root, 'outbox.db'), onAcknowledged: (id) => void acknowledged.push(id) });
  box.startEvents(EVENT_RATE);
}, 30_000);

afterAll(async () => {
  await box?.stop();
  if (spy) await endMqtt(spy);
  await broker?.stop();
});

describe('evidence delivery over MQTT (real broker, uplink and registry)', () => {
  it('center evidence get fetches a package that evidence verify accepts, while events keep their rate and latency', async () => {
    const pkg = writeTestPackage(evidenceRoot, signer);
    const size = [...pkg.files.values()].reduce((n, b) => n + b.length, 0);
    const out = join(root, 'got-1');
    await new Promise((r) => setTimeout(r, 2000)); // a baseline of events without a fetch
    const t0 = Date.now();
    const io = capture();
    const code = await evidenceGet(center(pkg, out), io);
    const t1 = Date.now();
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(io.out()).toContain(`verified: signature valid, ${pkg.files.size} files intact`);
    expect(io.out()).toContain('acknowledged on the box');
    for (const [name, data] of pkg.files) expect(readFileSync(join(out, name)).equals(data), name).toBe(true);
    expect(await evidenceVerify({ dir: out, cert: pubFile }, capture())).toBe(0);
    expect(acknowledged).toEqual([pkg.eventId]);

    // The bucket held the fetch to its rate (a burst of one chunk allowed), and it was not much slower.
    const rate = Number(/\((\d+) bytes\/s\)/.exec(io.out())?.[1]);
    const bound = EVIDENCE_RATE_BYTES_S * (1 + EVIDENCE_CHUNK_MAX_BYTES / size) * 1.05;
    console.log(`evidence fetch: ${size} bytes in ${t1 - t0} ms, ${rate} bytes/s (bucket ${EVIDENCE_RATE_BYTES_S} bytes/s)`);
    expect(rate).toBeLessThanOrEqual(bound);
    expect(rate).toBeGreaterThan(EVIDENCE_RATE_BYTES_S * 0.7);

    // Events appended during the fetch all arrived, at their rate, without a queue behind the evidence.
    await new Promise((r) => setTimeout(r, 500));
    const during = watch.deliveredBetween(t0 + 200, t1 - 200);
    const sent = box.appendedBetween(t0 + 200, t1 - 200);
    const nominal = ((t1 - t0 - 400) / 1000) * EVENT_RATE;
    const lat = latencySummary(during);
    const base = latencySummary(watch.deliveredBetween(t0 - 1800, t0));
    console.log(
      `events during the fetch: ${during.length} delivered of ${sent} appended (nominal ${nominal.toFixed(0)}), latency p50 ${lat.p50_ms} ms p95 ${lat.p95_ms} max ${lat.max_ms} ms; before the fetch: p95 ${base.p95_ms} ms`,
    );
    expect(during.length).toBe(sent);
    expect(sent).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
    expect(lat.p95_ms).toBeLessThan(250);
    expect(lat.max_ms).toBeLessThan(1000);
  }, 60_000);

  it('an interrupted fetch resumes from the bytes already on disk, and the package then verifies', async () => {
    const pkg = writeTestPackage(evidenceRoot, signer, { files: { 'clip.mp4': 300_000, 'still-at.jpg': 20_000 } });
    const out = join(root, 'got-2');
    const stop = new AbortController();
    const first = watch.requests.length;
    // Stop once the box has been asked for the clip's sixth chunk: with 4 in flight, at least 2 were written.
    const watcher = setInterval(() => {
      if (watch.requests.slice(first).some((r) => r.file === 'clip.mp4' && (r.offset ?? 0) >= 5 * EVIDENCE_CHUNK_MAX_BYTES)) stop.abort();
    }, 5);
    const io1 = capture();
    const code1 = await evidenceGet(center(pkg, out, { signal: stop.signal }), io1);
    clearInterval(watcher);
    expect(code1).toBe(1);
    expect(io1.err()).toContain('the fetch was stopped; run it again to resume');
    const kept = statSync(join(out, 'clip.mp4.part')).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept % EVIDENCE_CHUNK_MAX_BYTES).toBe(0);
    expect(kept).toBeLessThan(300_000);
    expect(acknowledged).not.toContain(pkg.eventId);
    // What the interrupted copy is: evidence verify says it is unfinished.
    const partial = await verifyEvidencePackage(out, { key: undefined });
    expect(partial.files.find((f) => f.name === 'clip.mp4')).toMatchObject({ ok: false, problem: 'missing' });
    expect(partial.extra).toEqual(['clip.mp4.part']);

    const second = watch.requests.length;
    const io2 = capture();
    expect(await evidenceGet(center(pkg, out), io2)).toBe(0);
    expect(io2.out()).toContain(`clip.mp4: 300000 bytes (resumed at ${kept})`);
    expect(io2.out()).toContain(`${kept} already here`);
    const clipAsks = watch.requests.slice(second).filter((r) => r.file === 'clip.mp4');
    expect(clipAsks[0]?.offset).toBe(kept);
    expect(clipAsks.every((r) => (r.offset ?? 0) >= kept)).toBe(true);
    expect(readFileSync(join(out, 'clip.mp4')).equals(pkg.files.get('clip.mp4')!)).toBe(true);
    expect(acknowledged).toContain(pkg.eventId);

    // A third run finds everything in place: nothing is fetched again, only the end of each file is asked for.
    const third = watch.requests.length;
    const io3 = capture();
    expect(await evidenceGet(center(pkg, out), io3)).toBe(0);
    expect(io3.out()).toContain(' 0 bytes fetched');
    expect(watch.requests.slice(third).filter((r) => r.file !== undefined).map((r) => [r.file, r.offset])).toEqual([
      ['clip.mp4', 300_000],
      ['still-at.jpg', 20_000],
    ]);
  }, 60_000);

  it('refuses path traversal, files outside the manifest, symlinks and unknown events (no bytes, no paths in the answers)', async () => {
    const pkg = writeTestPackage(evidenceRoot, signer, { files: { 'clip.mp4': 1000 } });
    writeFileSync(join(pkg.dir, 'private.key'), 'not listed in the manifest');
    // A package whose listed file was replaced by a symlink to a secret outside the evidence directory.
    const secret = join(root, 'secret.txt');
    writeFileSync(secret, 'x'.repeat(1000));
    const linked = writeTestPackage(evidenceRoot, signer, { files: { 'clip.mp4': 1000 } });
    rmSync(join(linked.dir, 'clip.mp4'));
    symlinkSync(secret, join(linked.dir, 'clip.mp4'));
    // A package directory that is a symlink to one outside the evidence directory.
    const outside = writeTestPackage(join(root, 'elsewhere'), signer, { files: { 'clip.mp4': 10 } });
    symlinkSync(outside.dir, join(evidenceRoot, outside.eventId));

    const cases: [string, Record<string, unknown>, string][] = [
      ['event id with a path', { event_id: '../../../etc' }, 'INVALID_ARGS'],
      ['event id with a path, UUID-shaped', { event_id: `${pkg.eventId}/..` }, 'INVALID_ARGS'],
      ['file with a path', { event_id: pkg.eventId, file: '../../secret.txt' }, 'INVALID_ARGS'],
      ['absolute file', { event_id: pkg.eventId, file: '/etc/passwd' }, 'INVALID_ARGS'],
      ['encoded traversal', { event_id: pkg.eventId, file: '..%2f..%2fsecret.txt' }, 'INVALID_ARGS'],
      ['a file in the package the manifest does not list', { event_id: pkg.eventId, file: 'private.key' }, 'EVIDENCE_FILE_REFUSED'],
      ['the manifest itself as a file', { event_id: pkg.eventId, file: 'manifest.json' }, 'EVIDENCE_FILE_REFUSED'],
      ['a listed file that is a symlink', { event_id: linked.eventId, file: 'clip.mp4' }, 'EVIDENCE_FILE_REFUSED'],
      ['a package directory that is a symlink', { event_id: outside.eventId }, 'EVIDENCE_FILE_REFUSED'],
      ['a chunk from a symlinked package directory', { event_id: outside.eventId, file: 'clip.mp4' }, 'EVIDENCE_FILE_REFUSED'],
      ['an unknown event', { event_id: randomUUID() }, 'EVIDENCE_NOT_FOUND'],
      ['an offset past the end', { event_id: pkg.eventId, file: 'clip.mp4', offset: 1001 }, 'EVIDENCE_OFFSET'],
      ['a chunk over the bound', { event_id: pkg.eventId, file: 'clip.mp4', length: EVIDENCE_CHUNK_MAX_BYTES + 1 }, 'INVALID_ARGS'],
    ];
    for (const [what, body, code] of cases) {
      const r = await ask(body);
      expect(r, what).toMatchObject({ status: 'error', error: { code } });
      expect(JSON.stringify(r), what).not.toContain(root);
      expect(JSON.stringify(r), what).not.toContain('xxxxxxxx');
    }
    // The good package still answers.
    const ok = await ask({ event_id: pkg.eventId, file: 'clip.mp4', offset: 990 });
    expect(ok).toMatchObject({ status: 'ok', data: { length: 10, total: 1000, acknowledged: true } });
    expect(COMMANDS.evidence.result.safeParse((ok as { data: unknown }).data).success).toBe(true);
  }, 60_000);
});

describe('evidence fetch ceiling (a second box without the rate limit)', () => {
  it('a 4 MB package over the broker, unthrottled: the bytes/s of chunked MQTT request/response (no --cert: signer reported unproven)', async () => {
    const device = 'ev-fast';
    const fastRoot = join(root, 'fast-evidence');
    mkdirSync(fastRoot);
    const fast = await EvidenceBox.start({ url: broker.url, site: SITE, device, dir: fastRoot, outboxPath: join(root, 'fast-outbox.db'), rate_bytes_s: 1024 * 1024 * 1024 });
    try {
      const pkg = writeTestPackage(fastRoot, signer, { files: { 'clip.mp4': 4_000_000, 'still-at.jpg': 30_000 } });
      const io = capture();
      // No --cert: the copy is complete and intact under the package's own key, and the report says the signer is unproven.
      expect(await evidenceGet({ ...center(pkg, join(root, 'got-fast')), device, signer_cert: undefined }, io)).toBe(0);
      expect(io.out()).toContain('every file matches the signed manifest, but who signed it is NOT proven');
      const rate = Number(/\((\d+) bytes\/s\)/.exec(io.out())?.[1]);
      console.log(`unthrottled evidence fetch: ${/(\d+) bytes fetched in ([\d.]+) s/.exec(io.out())?.[0] ?? '?'}, ${rate} bytes/s`);
      expect(rate).toBeGreaterThan(4 * EVIDENCE_RATE_BYTES_S);
    } finally {
      await fast.stop();
    }
  }, 60_000);
});

describe('evidence fetch without a broker (the real registry, faults injected)', () => {
  it('asks again for a lost answer, a BUSY refusal and a chunk whose bytes do not match its sha256', async () => {
    const dir = makeTempDir('evidence-faults');
    const registry = new CommandRegistry(COMMANDS, silentLogger());
    registerEvidence(registry, { dir: () => dir, rate_bytes_s: 64 * 1024 * 1024 });
    const pkg = writeTestPackage(dir, signer, { files: { 'clip.mp4': 5 * EVIDENCE_CHUNK_MAX_BYTES + 17, 'plate.jpg': 900 } });
    let n = 0;
    const faults: string[] = [];
    const ask: EvidenceAsk = async (args) => {
      const k = ++n;
      if (k === 3) {
        faults.push('lost');
        throw new AgentError('NO_ANSWER', 'no answer');
      }
      if (k === 5) {
        faults.push('busy');
        return commandError('BUSY', 'queue full');
      }
      const r = await registry.execute('evidence', Buffer.from(JSON.stringify(args)));
      if (k === 7 && r.status === 'ok') {
        faults.push('corrupt');
        const data = r.data as { data_base64: string };
        const bytes = Buffer.from(data.data_base64, 'base64');
        bytes[100] = bytes[100]! ^ 0xff;
        return { ...r, data: { ...data, data_base64: bytes.toString('base64') } };
      }
      return r;
    };
    const out = join(dir, 'out');
    const fetch = new EvidenceFetch(ask, pkg.eventId, out, { window: 3 });
    const stats = await fetch.run();
    expect(faults).toEqual(['lost', 'busy', 'corrupt']);
    expect(stats.retries).toBe(3);
    expect(stats.fetched_bytes).toBe(5 * EVIDENCE_CHUNK_MAX_BYTES + 17 + 900);
    expect(stats.acknowledged).toBe(true);
    const report = await verifyEvidencePackage(out, { key: signerKeyFrom(signer.publicPem) });
    expect(report.ok).toBe(true);
  });

  it('gives up on a chunk after its attempts, refuses a directory holding another package and a manifest other than the event announced', async () => {
    const dir = makeTempDir('evidence-giveup');
    const registry = new CommandRegistry(COMMANDS, silentLogger());
    registerEvidence(registry, { dir: () => dir, rate_bytes_s: 64 * 1024 * 1024 });
    const a = writeTestPackage(dir, signer, { files: { 'a.jpg': 100 } });
    const b = writeTestPackage(dir, signer, { files: { 'a.jpg': 100 } });
    const real: EvidenceAsk = (args) => registry.execute('evidence', Buffer.from(JSON.stringify(args)));
    const busy: EvidenceAsk = (args) => (args.file ? Promise.resolve(commandError('BUSY', 'queue full')) : real(args));
    const out = join(dir, 'out');
    await expect(new EvidenceFetch(busy, a.eventId, out, { attempts: 2 }).run()).rejects.toMatchObject({ code: 'FETCH_FAILED', message: 'a.jpg at 0: BUSY: queue full (2 attempts)' });
    await expect(new EvidenceFetch(real, b.eventId, out).run()).rejects.toMatchObject({ code: 'OUT_CONFLICT' });
    const manifestSha = createHash('sha256').update(readFileSync(join(a.dir, 'manifest.json'))).digest('hex');
    await expect(new EvidenceFetch(real, a.eventId, join(dir, 'other'), { manifest_sha256: 'f'.repeat(64) }).run()).rejects.toMatchObject({ code: 'EVIDENCE_MISMATCH' });
    await expect(new EvidenceFetch(real, a.eventId, out, { manifest_sha256: manifestSha }).run()).resolves.toMatchObject({ fetched_bytes: 100 });
  });

  it('a package that carries its certificate arrives with cert.pem, which the fleet CA then vouches for', async () => {
    const dir = makeTempDir('evidence-cert');
    const certs = await makeCerts();
    const registry = new CommandRegistry(COMMANDS, silentLogger());
    registerEvidence(registry, { dir: () => dir, rate_bytes_s: 64 * 1024 * 1024 });
    const pkg = writeTestPackage(dir, certSigner(certs.clientCert, certs.clientKey), { withCert: true, files: { 'clip.mp4': 70_000, 'plate.jpg': 500 } });
    const out = join(dir, 'out');
    await new EvidenceFetch((args) => registry.execute('evidence', Buffer.from(JSON.stringify(args))), pkg.eventId, out).run();
    expect(readFileSync(join(out, 'cert.pem'), 'utf8')).toBe(readFileSync(certs.clientCert, 'utf8'));
    const io = capture();
    expect(await evidenceVerify({ dir: out, ca: certs.caFile }, io)).toBe(0);
    expect(io.out()).toContain('issued by the CA given');
  });

  it("fetching every file to its end acknowledges the package in the writer's store (persisted in its index)", async () => {
    const dir = makeTempDir('evidence-ack');
    const pkg = writeTestPackage(dir, signer, { files: { 'clip.mp4': 60_000, 'still-at.jpg': 900 } });
    const other = writeTestPackage(dir, signer, { files: { 'clip.mp4': 10 } });
    const store = PackageStore.forDir(dir, { max_mb: 100, max_days: 30 });
    await store.open();
    const registry = new CommandRegistry(COMMANDS, silentLogger());
    const evidence = { dir, max_mb: 100, max_days: 30 };
    registerEvidence(registry, { dir: () => dir, rate_bytes_s: 64 * 1024 * 1024, onAcknowledged: acknowledgeInStore(() => evidence, silentLogger()) });
    const ask: EvidenceAsk = (args) => registry.execute('evidence', Buffer.from(JSON.stringify(args)));
    // Only part of the clip: not acknowledged.
    await ask({ event_id: pkg.eventId, file: 'clip.mp4', offset: 0 });
    await ask({ event_id: pkg.eventId, file: 'still-at.jpg', offset: 0 });
    expect(store.list().find((p) => p.id === pkg.eventId)?.acknowledged).toBe(false);
    await new EvidenceFetch(ask, pkg.eventId, join(dir, 'out')).run();
    await waitFor(() => store.list().find((p) => p.id === pkg.eventId)?.acknowledged, { message: 'acknowledged in the store' });
    expect(store.list().find((p) => p.id === other.eventId)?.acknowledged).toBe(false);
    const index = JSON.parse(readFileSync(join(dir, 'packages.json'), 'utf8')) as { packages: { id: string; acked: boolean }[] };
    expect(index.packages.find((p) => p.id === pkg.eventId)?.acked).toBe(true);
  });

  it('refuses chunk requests with BUSY when the bucket would make them wait too long', async () => {
    const dir = makeTempDir('evidence-busy');
    const registry = new CommandRegistry(COMMANDS, silentLogger());
    registerEvidence(registry, { dir: () => dir, rate_bytes_s: 48 * 1024, max_wait_ms: 1500 });
    const pkg = writeTestPackage(dir, signer, { files: { 'clip.mp4': 6 * EVIDENCE_CHUNK_MAX_BYTES } });
    const t0 = performance.now();
    const all = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => registry.execute('evidence', Buffer.from(JSON.stringify({ event_id: pkg.eventId, file: 'clip.mp4', offset: i * EVIDENCE_CHUNK_MAX_BYTES })))),
    );
    const ms = performance.now() - t0;
    // One chunk of burst, then 48 KiB/s: the second waits 1 s, a third would wait 2 s (over 1.5 s): refused.
    const codes = all.map((r) => (r.status === 'ok' ? 'ok' : r.error.code));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(2);
    expect(codes.filter((c) => c === 'BUSY')).toHaveLength(4);
    expect(ms).toBeGreaterThan(900);
  });

  it('the byte bucket allows one burst, then its rate', () => {
    let now = 0;
    const b = new ByteBucket(1000, 500, () => now);
    expect(b.reserve(500, 0)).toBe(0);
    expect(b.reserve(250, 1000)).toBe(250);
    expect(b.reserve(1000, 1000)).toBeUndefined(); // would wait 1.25 s: nothing reserved
    now = 1250;
    expect(b.reserve(500, 0)).toBe(0);
  });
});
