// CameraSource supervision against a real RTSP server: the server restarting (reconnect with backoff) and
// the feed freezing (stall watchdog, ffmpeg restarted, frames again after the feed resumes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { CameraSchema, type CameraConfig } from '../../../config/schema/index.js';
import { CameraSource, type CameraStatus } from '../../../ingest/index.js';
import { isAlive, waitFor } from '../../../testkit/processes.js';
import { RtspServer } from '../../../testkit/rtsp.js';

let restarting: RtspServer;
let freezing: RtspServer;
const sources: CameraSource[] = [];

function camera(url: string, over: Record<string, unknown> = {}): CameraConfig {
  return CameraSchema.parse({ id: 'cam1', url, frame: { width: 768, height: 576 }, detection_fps: 5, motion: { enabled: false }, ...over });
}

function source(cam: CameraConfig): CameraSource {
  const s = new CameraSource(cam, { width: 320, height: 240, resize: 'stretch' }, silentLogger(), { backoff: { initial_ms: 200, max_ms: 1_000 } });
  sources.push(s);
  return s;
}

/** Drains frames in the background (a consumer that keeps up), counting them. */
function drain(src: CameraSource): { count: () => number } {
  let n = 0;
  void (async () => {
    for await (const _f of src.frames()) n++;
  })();
  return { count: () => n };
}

function states(list: CameraStatus[]): string[] {
  return list.map((s) => (s.reason ? `${s.state}/${s.reason}` : s.state));
}

beforeAll(async () => {
  [restarting, freezing] = await Promise.all([RtspServer.start(), RtspServer.start()]);
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  await Promise.all([restarting?.stop(), freezing?.stop()]);
});

describe.concurrent('camera supervision over RTSP', () => {
  it('server killed and restarted: offline, then online again; the reconnects are counted', async () => {
    const src = source(camera(restarting.url));
    const seen: CameraStatus[] = [];
    src.on('status', (s) => seen.push(s));
    const frames = drain(src);
    await src.start();
    await waitFor(() => src.status().state === 'online', { timeout_ms: 10_000, message: 'online' });
    const firstPid = src.stats().ffmpeg_pid!;

    await restarting.kill();
    await waitFor(() => src.status().state === 'offline', { timeout_ms: 8_000, message: 'offline after the server died' });
    expect(isAlive(firstPid)).toBe(false);
    await waitFor(() => src.stats().reconnects_last_hour >= 2, { timeout_ms: 5_000, message: 'reconnect attempts while down' });
    expect(src.status().reason).toBe('connection_refused');

    await restarting.start();
    const t0 = performance.now();
    await waitFor(() => src.status().state === 'online', { timeout_ms: 10_000, message: 'online after the restart' });
    const before = frames.count();
    await waitFor(() => frames.count() >= before + 5, { timeout_ms: 5_000, message: 'frames after the restart' });
    console.log(`restart: online ${(performance.now() - t0).toFixed(0)} ms after the server was back; ${src.stats().reconnects_last_hour} reconnects`);
    const s = states(seen);
    expect(s.slice(0, 2)).toEqual(['starting', 'online']);
    expect(s).toContain('offline/connection_refused');
    expect(s.at(-1)).toBe('online');
    expect(src.stats().stalls_last_hour).toBe(0);
    await src.stop();
  });

  it('feed frozen: stalled within the fps-derived timeout, ffmpeg restarted; frames again after unfreeze', async () => {
    // 5 fps: the watchdog allows max(5 s, 5 frame intervals) = 5 s without a frame.
    const src = source(camera(freezing.url));
    const seen: CameraStatus[] = [];
    src.on('status', (s) => seen.push(s));
    const frames = drain(src);
    await src.start();
    await waitFor(() => frames.count() >= 5, { timeout_ms: 10_000, message: 'frames' });
    const firstPid = src.stats().ffmpeg_pid!;

    freezing.freeze();
    const frozenAt = performance.now();
    await waitFor(() => src.status().state === 'stalled', { timeout_ms: 8_000, interval_ms: 20, message: 'stalled' });
    const detectedAfter = performance.now() - frozenAt;
    console.log(`freeze: stalled after ${detectedAfter.toFixed(0)} ms (timeout 5000 ms after the last frame)`);
    expect(detectedAfter).toBeGreaterThan(4_500);
    expect(detectedAfter).toBeLessThan(6_500);
    expect(src.status().reason).toBe('stalled');
    expect(src.stats().stalls_last_hour).toBe(1);
    await waitFor(() => !isAlive(firstPid), { timeout_ms: 3_000, message: 'stalled ffmpeg killed' });
    await waitFor(() => src.stats().ffmpeg_pid !== null && src.stats().ffmpeg_pid !== firstPid, { timeout_ms: 3_000, message: 'ffmpeg restarted' });

    freezing.unfreeze();
    const before = frames.count();
    await waitFor(() => src.status().state === 'online', { timeout_ms: 10_000, message: 'online after unfreeze' });
    await waitFor(() => frames.count() >= before + 5, { timeout_ms: 5_000, message: 'frames after unfreeze' });
    expect(states(seen)).toEqual(['starting', 'online', 'stalled/stalled', 'online']);
    expect(src.stats().reconnects_last_hour).toBeGreaterThanOrEqual(1);
    await src.stop();
  });
});
