// Camera source building blocks without processes: ffmpeg command line, stderr reasons and their log,
// frame assembly, the consumer's latest-frame slot, motion gate, counters.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CameraSchema, type CameraConfig } from '../../../config/schema/index.js';
import { DEFAULT_BACKOFF, EventWindow, backoffDelay } from '../../../core/time.js';
import { HWDECODE_ARGS, buildFfmpegPlan, filterChain, letterboxGeometry, urlWithCredentials } from '../../../ingest/ffmpeg-args.js';
import { CameraCounters } from '../../../ingest/counters.js';
import { StderrLog, StreamInfoParser, classifyLine, makeScrubber, parseStderrLine } from '../../../ingest/ffmpeg-stderr.js';
import { FrameAssembler, FramePool } from '../../../ingest/frames.js';
import { LatestFrame } from '../../../ingest/latest-frame.js';
import type { Frame } from '../../../ingest/types.js';
import { MotionGate } from '../../../ingest/motion.js';

function camera(over: Record<string, unknown> = {}): CameraConfig {
  return CameraSchema.parse({ id: 'cam1', url: 'rtsp://127.0.0.1:8554/cam1', frame: { width: 768, height: 576 }, ...over });
}

const target = { width: 416, height: 416, resize: 'stretch' as const };

describe('ffmpeg command line', () => {
  it('keeps credentials off argv: the URL travels in an ffconcat script on fd 3, percent-encoded', () => {
    const password = "p@ss:w/rd 'x'%";
    const plan = buildFfmpegPlan(camera({ username: 'ad min', password }), target, { socketTimeoutMs: 10_000 });
    const argv = plan.args.join(' ');
    expect(argv).not.toContain('p@ss');
    expect(argv).not.toContain('rtsp://');
    expect(plan.args).toEqual(expect.arrayContaining(['-f', 'concat', '-safe', '0', '-i', 'pipe:3']));
    expect(plan.display).toBe('rtsp://127.0.0.1:8554/cam1');
    expect(plan.script).toContain("file 'rtsp://ad%20min:p%40ss%3Aw%2Frd%20%27x%27%25@127.0.0.1:8554/cam1'");
    expect(plan.script).toContain("option rtsp_transport 'tcp'");
    expect(plan.script).toContain("option timeout '10000000'");
    expect(plan.script).not.toContain(password);
  });

  it('puts the RTSP options and URL on argv when there are no credentials', () => {
    const plan = buildFfmpegPlan(camera({ transport: 'udp' }), target, { socketTimeoutMs: 7_000 });
    expect(plan.script).toBeUndefined();
    const a = plan.args;
    expect(a.slice(a.indexOf('-rtsp_transport'), a.indexOf('-rtsp_transport') + 2)).toEqual(['-rtsp_transport', 'udp']);
    expect(a.slice(a.indexOf('-timeout'), a.indexOf('-timeout') + 2)).toEqual(['-timeout', '7000000']);
    expect(a.indexOf('-rtsp_transport')).toBeLessThan(a.indexOf('-i'));
    expect(a.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
    expect(a).toEqual(expect.arrayContaining(['-nostdin', '-hide_banner', '-fps_mode', 'passthrough']));
  });

  it('loops a local file in real time', () => {
    const a = buildFfmpegPlan(camera({ url: '/data/clip.mp4' }), target, { socketTimeoutMs: 1 }).args;
    expect(a.join(' ')).toContain('-re -stream_loop -1');
    expect(a[a.indexOf('-i') + 1]).toBe('/data/clip.mp4');
    const grab = buildFfmpegPlan(camera({ url: 'file:///data/clip.mp4' }), target, { socketTimeoutMs: 1, frames: 1 }).args;
    expect(grab).not.toContain('-re');
    expect(grab[grab.indexOf('-i') + 1]).toBe('/data/clip.mp4');
    expect(grab.join(' ')).toContain('-frames:v 1');
  });

  it('applies the hardware decode preset before the input', () => {
    for (const hw of ['rkmpp', 'v4l2m2m', 'vaapi'] as const) {
      const a = buildFfmpegPlan(camera({ hwdecode: hw }), target, { socketTimeoutMs: 1 }).args;
      const preset = HWDECODE_ARGS[hw];
      const at = a.indexOf(preset[0]!);
      expect(a.slice(at, at + preset.length)).toEqual(preset);
      expect(at).toBeLessThan(a.indexOf('-i'));
    }
  });

  it('builds the stretch and letterbox filter chains', () => {
    expect(filterChain(target, 5)).toBe('fps=5,scale=416:416:flags=bilinear,format=rgb24');
    expect(filterChain({ width: 320, height: 320, resize: 'letterbox' }, 0.5)).toBe(
      'fps=0.5,scale=320:320:force_original_aspect_ratio=decrease:flags=bilinear,format=rgb24,pad=320:320:(ow-iw)/2:(oh-ih)/2:color=0x727272',
    );
  });

  it('refuses credentials inside the URL and line breaks', () => {
    expect(() => buildFfmpegPlan(camera({ url: 'rtsp://a:b@127.0.0.1/x' }), target, { socketTimeoutMs: 1 })).toThrow(/credentials/);
    expect(() => buildFfmpegPlan(camera({ url: 'rtsp://127.0.0.1/x\nfile /etc/passwd' }), target, { socketTimeoutMs: 1 })).toThrow(/line break/);
    expect(urlWithCredentials('rtsp://h:554/p?q=1', 'u', "it's")).toBe('rtsp://u:it%27s@h:554/p?q=1');
  });

  it('computes the letterbox geometry ffmpeg uses', () => {
    expect(letterboxGeometry(768, 576, 416, 416)).toEqual({ scale: 416 / 768, pad_x: 0, pad_y: 52, scaled_width: 416, scaled_height: 312 });
    expect(letterboxGeometry(1920, 1080, 640, 640)).toMatchObject({ pad_x: 0, pad_y: 140, scaled_height: 360 });
    expect(letterboxGeometry(576, 768, 416, 416)).toMatchObject({ pad_x: 52, pad_y: 0 });
  });
});

describe('ffmpeg stderr', () => {
  it('turns error lines into reasons', () => {
    const cases: Array<[string, string | undefined]> = [
      ['[rtsp @ 0x5] [error] method DESCRIBE failed: 401 Unauthorized', 'unauthorized'],
      ['[error] pipe:3: Server returned 401 Unauthorized (authorization failed)', 'unauthorized'],
      ['[tcp @ 0x5] [error] Connection to tcp://127.0.0.1:1?timeout=0 failed: Connection refused', 'connection_refused'],
      ['[error] rtsp://127.0.0.1:1/x: Server returned 404 Not Found', 'not_found'],
      ['[error] /nope.mp4: No such file or directory', 'not_found'],
      ['[error] Unknown decoder \'h264_rkmpp\'', 'unsupported_codec'],
      ['[error] Decoder (codec hevc) not found for input stream #0:0', 'unsupported_codec'],
      ['[error] rtsp://10.0.0.9/x: Connection timed out', 'timeout'],
      ['[error] rtsp://10.0.0.9/x: No route to host', 'unreachable'],
      ['[h264 @ 0x5] [error] error while decoding MB 3 4, bytestream -5', undefined],
    ];
    for (const [raw, reason] of cases) expect(classifyLine(parseStderrLine(raw).text), raw).toBe(reason);
  });

  it('parses levels, removes credentials, finds the input size', () => {
    const line = parseStderrLine("[concat @ 0x5] [error] Impossible to open 'rtsp://admin:s3cr%40t@127.0.0.1:8554/cam1'", makeScrubber('s3cr@t'));
    expect(line).toEqual({ level: 'error', text: "[concat @ 0x5] Impossible to open 'rtsp://[redacted]@127.0.0.1:8554/cam1'" });
    expect(makeScrubber('hunter22')('password is hunter22')).toBe('password is [redacted]');
    const info = new StreamInfoParser();
    for (const raw of [
      "[info] Input #0, rtsp, from 'rtsp://127.0.0.1/x':",
      '[info]   Stream #0:0: Video: h264 (Main), yuv420p(progressive), 768x576 [SAR 1:1 DAR 4:3], 10 fps, 10 tbr, 90k tbn',
      "[info] Output #0, rawvideo, to 'pipe:1':",
      '[info]   Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24, 416x416, q=2-31, 5 fps',
    ]) {
      info.push(parseStderrLine(raw));
    }
    expect([info.codec, info.width, info.height]).toEqual(['h264', 768, 576]);
  });
});

describe('ffmpeg stderr in the log', () => {
  it('debug before the first frame; mid-stream at most 10 warnings a minute, the rest counted', () => {
    const lines: { level: number; msg: string; suppressed?: number }[] = [];
    const log = new StderrLog(pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) }));
    const line = parseStderrLine('[h264 @ 0x5] [error] error while decoding MB 3 4');
    log.write(line, false, 0);
    expect(lines).toMatchObject([{ level: 20, msg: 'ffmpeg: [h264 @ 0x5] error while decoding MB 3 4' }]);
    for (let i = 0; i < 15; i++) log.write(line, true, 70_000 + i);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(10);
    log.write(line, true, 140_000); // the next minute: the count of the suppressed ones first
    expect(lines.at(-2)).toMatchObject({ level: 40, msg: 'ffmpeg stderr lines suppressed', suppressed: 5 });
    expect(lines.at(-1)).toMatchObject({ level: 40, msg: 'ffmpeg: [h264 @ 0x5] error while decoding MB 3 4' });
  });
});

describe('latest frame', () => {
  const frame = (seq: number, pool: FramePool): Frame => ({
    camera: 'c',
    data: pool.take(),
    width: 2,
    height: 2,
    source_width: 4,
    source_height: 4,
    captured_at_ms: 0,
    mono_ms: seq,
    seq,
  });

  it('hands the newest frame out; a replaced one goes back to the pool and counts as skipped', async () => {
    const pool = new FramePool(12, 2);
    const counters = new CameraCounters();
    const slot = new LatestFrame('camera:c', pool, counters);
    const first = frame(1, pool);
    slot.offer(first);
    slot.offer(frame(2, pool));
    expect(pool.take()).toBe(first.data); // the replaced frame's buffer was recycled
    slot.offer(frame(3, pool));
    expect((await slot.next())?.seq).toBe(3);
    const waiting = slot.next();
    await expect(slot.next()).rejects.toMatchObject({ code: 'CAMERA_CONSUMER_BUSY' });
    slot.offer(frame(4, pool));
    expect((await waiting)?.seq).toBe(4);
    expect(counters.figures()).toMatchObject({ processed_total: 2, skipped_total: 2 });
  });

  it('the pool keeps a buffer once however often it is given back, and only buffers of its frame size', () => {
    const pool = new FramePool(12, 4);
    const a = pool.take();
    pool.give(a);
    pool.give(a);
    pool.give(new Uint8Array(8)); // another size
    pool.give(new Uint8Array(24).subarray(0, 12)); // a view into a larger buffer: not transferable whole
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(a);
  });

  it('closed: a waiting next() and every later one answer null; stale frames can be dropped', async () => {
    const pool = new FramePool(12, 2);
    const slot = new LatestFrame('camera:c', pool, new CameraCounters());
    const waiting = slot.next();
    slot.close();
    expect(await waiting).toBeNull();
    expect(await slot.next()).toBeNull();
    slot.open();
    slot.offer(frame(1, pool));
    slot.drop();
    const ac = new AbortController();
    const aborted = slot.next(ac.signal);
    ac.abort();
    expect(await aborted).toBeNull();
  });
});

describe('frame assembly', () => {
  it('cuts arbitrary chunks into exact frames, each byte copied once into its own buffer', () => {
    const frameBytes = 4 * 3 * 3;
    const frames: Uint8Array[] = [];
    const asm = new FrameAssembler(frameBytes, () => new Uint8Array(frameBytes), (f) => frames.push(f));
    const stream = new Uint8Array(frameBytes * 5 + 7).map((_, i) => i & 0xff);
    let off = 0;
    for (const size of [1, 35, 36, 2, 70, 3, 40]) {
      asm.push(stream.subarray(off, off + size));
      off += size;
    }
    asm.push(stream.subarray(off));
    expect(frames).toHaveLength(5);
    frames.forEach((f, i) => expect(Array.from(f)).toEqual(Array.from(stream.subarray(i * frameBytes, (i + 1) * frameBytes))));
    expect(asm.partialBytes).toBe(7);
    expect(new Set(frames.map((f) => f.buffer)).size).toBe(5);
  });

  it('recycles only whole, never-handed-out buffers, up to its limit', () => {
    const pool = new FramePool(12, 1);
    const a = pool.take();
    pool.give(a);
    pool.give(new Uint8Array(12));
    expect(pool.take()).toBe(a);
    pool.give(new Uint8Array(24).subarray(0, 12));
    expect(pool.take().buffer.byteLength).toBe(12);
  });
});

describe('motion gate', () => {
  const W = 416;
  const H = 416;
  const still = (v: number) => new Uint8Array(W * H * 3).fill(v);

  it('passes the first frame, skips a still scene, forces a frame every interval, passes motion', () => {
    const gate = new MotionGate({ threshold: 0.004, pixel_delta: 15, force_interval_ms: 1_000 }, W, H);
    const bg = still(90);
    expect(gate.check(bg, 0)).toBe(true);
    const noisy = bg.slice();
    for (let i = 0; i < noisy.length; i += 7) noisy[i] = 90 + ((i * 13) % 9) - 4; // ±4 grey: sensor noise
    expect(gate.check(noisy, 200)).toBe(false);
    expect(gate.check(bg, 400)).toBe(false);
    expect(gate.check(bg, 1_000)).toBe(true);
    expect(gate.lastForced).toBe(true);
    const moved = bg.slice();
    for (let y = 100; y < 160; y++) moved.fill(250, (y * W + 100) * 3, (y * W + 160) * 3); // a 60×60 bright box
    expect(gate.check(moved, 1_200)).toBe(true);
    expect(gate.lastForced).toBe(false);
    expect(gate.lastChanged).toBeGreaterThan(0.01);
    expect(gate.check(moved, 1_400)).toBe(false); // the reference is now the moved frame
  });

  it('accumulates slow movement against the last frame let through', () => {
    const gate = new MotionGate({ threshold: 0.004, pixel_delta: 15, force_interval_ms: 60_000 }, W, H);
    const frameWithBox = (x0: number) => {
      const f = still(40);
      for (let y = 200; y < 260; y++) f.fill(220, (y * W + x0) * 3, (y * W + x0 + 30) * 3);
      return f;
    };
    expect(gate.check(frameWithBox(100), 0)).toBe(true);
    let passedAt = -1;
    for (let step = 1; step <= 20 && passedAt < 0; step++) if (gate.check(frameWithBox(100 + step), step * 100)) passedAt = step;
    expect(passedAt).toBeGreaterThan(1); // one pixel is below a thumbnail cell...
    expect(passedAt).toBeLessThan(20); // ...but the drift adds up
  });

  it('only looks at the picture inside letterbox bands', () => {
    const gate = new MotionGate({ threshold: 0.004, pixel_delta: 15, force_interval_ms: 60_000 }, W, H, { x: 0, y: 52, width: 416, height: 312 });
    const f = still(114);
    gate.check(f, 0);
    const bandsChanged = f.slice();
    bandsChanged.fill(0, 0, 52 * W * 3);
    expect(gate.check(bandsChanged, 100)).toBe(false);
  });

  it('costs well under 0.3 ms per frame', () => {
    const gate = new MotionGate({ threshold: 0.004, pixel_delta: 15, force_interval_ms: 1_000 }, 640, 640);
    const frames = [new Uint8Array(640 * 640 * 3).map((_, i) => (i * 7) & 0xff), new Uint8Array(640 * 640 * 3).map((_, i) => (i * 11) & 0xff)];
    for (let i = 0; i < 200; i++) gate.check(frames[i % 2]!, i); // warm up the JIT
    const n = 2_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) gate.check(frames[i % 2]!, i);
    const perFrame = (performance.now() - t0) / n;
    expect(perFrame).toBeLessThan(0.3);
  });
});

describe('counters', () => {
  it("numbers a source's frames and counts what became of them", () => {
    const c = new CameraCounters();
    expect([c.frame(1_000), c.frame(1_100), c.frame(1_200)]).toEqual([1, 2, 3]);
    c.processed(1_000);
    c.skipped(1_100);
    c.motionSkipped(1_200);
    c.reconnect(1_200);
    c.stall(1_200);
    expect(c.figures(1_300)).toMatchObject({
      frames_total: 3,
      processed_total: 1,
      skipped_total: 1,
      motion_skipped_total: 1,
      reconnects_last_hour: 1,
      stalls_last_hour: 1,
      last_frame_age_ms: 100,
    });
  });

  it('counts events inside a sliding window', () => {
    const w = new EventWindow(1_000, 4, 0);
    for (const t of [100, 200, 300, 900, 1_150]) w.add(t);
    expect(w.count(1_150)).toBe(4); // capacity 4: the oldest was overwritten
    expect(w.count(1_250)).toBe(3); // 300, 900, 1150
    expect(w.rate(2_000)).toBe(1);
    expect(new EventWindow(5_000, 16, 0).rate(1_000)).toBe(0);
  });

  it('backs off exponentially, capped, jittered downwards', () => {
    const opts = { ...DEFAULT_BACKOFF, initial_ms: 100, max_ms: 1_000, jitter: 0.5 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, opts, () => 0))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(backoffDelay(3, opts, () => 1)).toBe(400);
    expect(backoffDelay(1_000, opts, () => 0.5)).toBe(750);
  });
});
