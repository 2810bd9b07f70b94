// CameraSource against a real RTSP server (GStreamer, testkit/rtsp.ts): TCP and UDP at the configured
// fps, digest auth with wrong and right credentials, credentials never on argv nor in the logs.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../../core/log.js';
import { CameraSchema, type CameraConfig } from '../../../config/schema/index.js';
import { CameraSource, type CameraStatus, type Frame } from '../../../ingest/index.js';
import { waitFor } from '../../../testkit/processes.js';
import { RtspServer } from '../../../testkit/rtsp.js';

const PASSWORD = "s3cr:t/p@ss'w";

let open: RtspServer;
let secured: RtspServer;
const sources: CameraSource[] = [];
const logLines: string[] = [];
const log: Logger = createLogger({ level: 'debug', destination: { write: (s: string) => void logLines.push(s) } });

function camera(url: string, over: Record<string, unknown> = {}): CameraConfig {
  return CameraSchema.parse({ id: 'cam1', url, frame: { width: 768, height: 576 }, detection_fps: 5, motion: { enabled: false }, ...over });
}

function source(cam: CameraConfig): CameraSource {
  const s = new CameraSource(cam, { width: 416, height: 416, resize: 'stretch' }, log, { backoff: { initial_ms: 200, max_ms: 1_000 } });
  sources.push(s);
  return s;
}

/** Frames for `ms` after the first one; the first arrival time (from start) and the rate. */
async function measure(src: CameraSource, ms: number): Promise<{ frames: Frame[]; first_ms: number; fps: number }> {
  const t0 = performance.now();
  await src.start();
  const first = await src.next();
  if (!first) throw new Error('source stopped');
  const frames = [first];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  for await (const f of src.frames(ac.signal)) frames.push(f);
  clearTimeout(timer);
  const span = (frames.at(-1)!.mono_ms - first.mono_ms) / 1000;
  return { frames, first_ms: first.mono_ms - t0, fps: (frames.length - 1) / span };
}

/** UDP sockets the process holds (its socket fds matched against /proc/net/udp). */
function udpSocketCount(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    if (m) inodes.add(m[1]!);
  }
  const rows = fs.readFileSync('/proc/net/udp', 'utf8').trim().split('\n').slice(1);
  return rows.filter((r) => inodes.has(r.trim().split(/\s+/)[9]!)).length;
}

beforeAll(async () => {
  [open, secured] = await Promise.all([RtspServer.start(), RtspServer.start({ auth: { username: 'admin', password: PASSWORD } })]);
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  await Promise.all([open?.stop(), secured?.stop()]);
});

describe.concurrent('camera source over RTSP', () => {
  it('TCP: frames at the configured fps', async () => {
    const src = source(camera(open.url, { transport: 'tcp' }));
    const { frames, first_ms, fps } = await measure(src, 3_000);
    console.log(`rtsp tcp: first frame after ${first_ms.toFixed(0)} ms, ${fps.toFixed(2)} fps`);
    expect(fps).toBeGreaterThan(4.3);
    expect(fps).toBeLessThan(5.7);
    expect(frames[0]!.data.byteLength).toBe(416 * 416 * 3);
    expect(frames[0]!.source_width).toBe(768);
    expect(src.status().state).toBe('online');
    const argv = fs.readFileSync(`/proc/${src.stats().ffmpeg_pid}/cmdline`, 'utf8').split('\0');
    expect(argv[argv.indexOf('-rtsp_transport') + 1]).toBe('tcp');
    await src.stop();
  });

  it('UDP with digest auth: frames at the configured fps, the password neither on argv nor in the logs', async () => {
    const src = source(camera(secured.url, { transport: 'udp', username: 'admin', password: PASSWORD }));
    const { first_ms, fps } = await measure(src, 3_000);
    console.log(`rtsp udp+auth: first frame after ${first_ms.toFixed(0)} ms, ${fps.toFixed(2)} fps`);
    expect(fps).toBeGreaterThan(4.3);
    expect(fps).toBeLessThan(5.7);
    const cmdline = fs.readFileSync(`/proc/${src.stats().ffmpeg_pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('pipe:3');
    expect(cmdline).not.toContain('rtsp://');
    expect(cmdline).not.toContain('s3cr');
    const environ = fs.readFileSync(`/proc/${src.stats().ffmpeg_pid}/environ`, 'utf8');
    expect(environ).not.toContain('s3cr');
    expect(udpSocketCount(src.stats().ffmpeg_pid!)).toBeGreaterThanOrEqual(2); // RTP + RTCP really go over UDP
    await src.stop();
  });

  it('wrong credentials: offline / unauthorized; right ones: online', async () => {
    const wrong = source(camera(secured.url, { id: 'wrong', username: 'admin', password: 'not-the-password' }));
    const statuses: CameraStatus[] = [];
    wrong.on('status', (s) => statuses.push(s));
    await wrong.start();
    await waitFor(() => wrong.status().state === 'offline', { timeout_ms: 10_000, message: 'offline' });
    expect(wrong.status()).toMatchObject({ state: 'offline', reason: 'unauthorized' });
    expect(wrong.status().detail).toMatch(/401/);
    await wrong.stop();
    expect(statuses.map((s) => `${s.state}/${s.reason}`)).toEqual(['starting/null', 'offline/unauthorized', 'offline/stopped']);

    const right = source(camera(secured.url, { id: 'right', username: 'admin', password: PASSWORD }));
    await right.start();
    await waitFor(() => right.status().state === 'online', { timeout_ms: 10_000, message: 'online' });
    await right.stop();
  });
});

describe('logs', () => {
  it('never carry the password, raw or percent-encoded', () => {
    const all = logLines.join('');
    expect(all).toContain('401'); // the wrong-credentials run was logged…
    expect(all).not.toContain('s3cr'); // …without any form of the secret
    expect(all).not.toContain('not-the-password');
    expect(all).not.toContain(encodeURIComponent('not-the-password'));
  });
});
