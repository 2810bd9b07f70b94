// Camera tamper watch on real video: the demo clip manipulated with ffmpeg filters (testkit/tamper-clips.ts),
// decoded by the agent's own clip reader (readClip: ffmpeg → 416x416 RGB at 5 fps, clip timestamps). Each
// tampering is detected within raise_s + 2.5 s of its start and cleared within clear_s + 2.5 s of its end; the
// clean clip, rain-like noise and a dusk brightness drift raise nothing. One clip also runs through the whole
// frame loop (CameraPipeline with the real detector and analytics) to show the events reach the event sink.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnalyticsSchema } from '../../../config/schema/analytics.js';
import { CameraSchema, type CameraConfig } from '../../../config/schema/cameras.js';
import { DetectorSchema } from '../../../config/schema/detector.js';
import { EventDraftSchema, type EventDraft, type EventOf, type TamperKind } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';
import { DEFAULT_MODEL } from '../../../core/paths.js';
import { CameraAnalytics } from '../../../inference/analytics/index.js';
import { readClip } from '../../../ingest/clip.js';
import { Detector } from '../../../inference/detector/index.js';
import { CameraPipeline } from '../../../inference/pipeline.js';
import { TamperWatcher, type TamperStats } from '../../../inference/tamper/index.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { SHIFT_CLIP_PX, SyntheticView, tamperClip, TAMPER_TIMELINE, type TamperClipKind } from '../../../testkit/tamper-clips.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const { from_s: FROM, to_s: TO, width: W, height: H } = TAMPER_TIMELINE;
const TAMPER = { reference_after_s: 8, raise_s: 5, clear_s: 5, check_interval_s: 1 };
/** Detection and clearing may take this long beyond raise_s / clear_s: the check interval and the shift median. */
const SLACK_S = 2.5;
const FPS = 5;
const T0 = Date.UTC(2026, 0, 1);
const target = { width: 416, height: 416, resize: 'stretch' as const };

const camera = (): CameraConfig => CameraSchema.parse({ id: 'cam1', url: 'clip.mp4', frame: { width: W, height: H }, detection_fps: FPS, motion: { enabled: false }, tamper: TAMPER });
const report: string[] = [];

interface Run {
  events: EventOf<'camera_tamper'>[];
  stats: TamperStats;
  /** CPU time of the whole watch (every offer), ms per check. */
  cpu_ms_per_check: number;
}

async function watch(kind: TamperClipKind): Promise<Run> {
  const { file } = await tamperClip(kind);
  const events: EventOf<'camera_tamper'>[] = [];
  const w = new TamperWatcher({
    camera: camera(),
    device: { id: 'box-1', site: 'site-1' },
    emit: (e: EventDraft) => {
      expect(EventDraftSchema.safeParse(e).success).toBe(true);
      if (e.type === 'camera_tamper') events.push(e);
    },
    dir: makeTempDir('tamper'),
    clockSynced: () => true,
    log: silentLogger(),
  });
  w.start();
  let cpu_us = 0;
  for await (const frame of readClip(file, target, { fps: FPS, source: { width: W, height: H }, start_ms: T0 })) {
    const c0 = process.cpuUsage();
    w.offer(frame);
    const c = process.cpuUsage(c0);
    cpu_us += c.user + c.system;
  }
  const stats = w.stats();
  return { events, stats, cpu_ms_per_check: cpu_us / 1000 / stats.checks };
}

const at = (e: EventOf<'camera_tamper'>) => e.mono_ms / 1000;

/** The clip raises exactly `kind`, in time, and clears it in time. */
function expectDetected(kind: TamperClipKind, run: Run, expected: TamperKind): void {
  const lines = run.events.map((e) => `${e.attributes.kind}${e.attributes.cleared ? ' cleared' : ''}@${at(e)}`);
  expect(run.events.map((e) => [e.attributes.kind, e.attributes.cleared]), lines.join(', ')).toEqual([
    [expected, false],
    [expected, true],
  ]);
  const [up, down] = run.events as [EventOf<'camera_tamper'>, EventOf<'camera_tamper'>];
  const latency = at(up) - FROM;
  const clearing = at(down) - TO;
  expect(latency).toBeGreaterThanOrEqual(TAMPER.raise_s);
  expect(latency).toBeLessThanOrEqual(TAMPER.raise_s + SLACK_S);
  // -1: the encoder's last keyframe inside the frozen span re-quantises the picture, which the watch sees as its end.
  expect(clearing).toBeGreaterThanOrEqual(TAMPER.clear_s - 1);
  expect(clearing).toBeLessThanOrEqual(TAMPER.clear_s + SLACK_S);
  expect(Date.parse(up.attributes.since) - T0).toBeGreaterThanOrEqual(FROM * 1000);
  expect(up.attributes.reference_at).not.toBeNull();
  expect(down.attributes.duration_s).toBeGreaterThan(TO - FROM - SLACK_S - 1);
  report.push(`${kind.padEnd(11)} → ${expected.padEnd(11)} raised ${latency.toFixed(1)} s after the start, cleared ${clearing.toFixed(1)} s after the end; ${cost(run)}`);
}

function cost(run: Run): string {
  const s = run.stats;
  const cpuPerFrame = (run.cpu_ms_per_check * s.checks) / s.frames;
  return `per check ${run.cpu_ms_per_check.toFixed(3)} ms CPU (${s.check_ms_mean} ms wall, max ${s.check_ms_max}); per frame ${cpuPerFrame.toFixed(3)} ms CPU (${s.ms_per_frame} wall)`;
}

/** Well under 1 ms per frame: judged on CPU time (wall time on this shared machine includes other processes). */
function expectCheap(run: Run): void {
  expect(run.stats.checks).toBeGreaterThanOrEqual(TAMPER_TIMELINE.duration_s - 2);
  expect(run.stats.frames).toBe(TAMPER_TIMELINE.duration_s * FPS);
  expect((run.cpu_ms_per_check * run.stats.checks) / run.stats.frames).toBeLessThan(0.5);
}

describe.skipIf(!existsSync(DEMO_CLIP))('camera tamper watch on manipulated clips (real decode)', () => {
  // The cost figures are of a warm watch (the JIT compiles it during the first checks of a run, once).
  beforeAll(() => {
    const view = new SyntheticView();
    const w = new TamperWatcher({ camera: camera(), device: { id: 'b', site: 's' }, emit: () => undefined, clockSynced: () => true, log: silentLogger() });
    for (let t = 0; t < 30; t++) w.offer(view.frame(t * 1000, t % 10 < 5 ? {} : { x: 100 }));
  });

  afterAll(() => {
    if (report.length) console.info(`camera tamper latencies and cost (raise_s ${TAMPER.raise_s}, clear_s ${TAMPER.clear_s}, check every ${TAMPER.check_interval_s} s, ${FPS} fps):\n  ${report.join('\n  ')}`);
  });

  const cases: Array<[TamperClipKind, TamperKind]> = [
    ['shift', 'shifted'],
    ['blur', 'blurred'],
    ['covered', 'covered'],
    ['sprayed', 'covered'],
    ['black', 'too_dark'],
    ['overexposed', 'overexposed'],
    ['frozen', 'frozen'],
  ];
  for (const [kind, expected] of cases) {
    it(`${kind}: ${expected} raised, then cleared after recovery`, { timeout: 180_000 }, async () => {
      const run = await watch(kind);
      // The reference was taken from the clean start, and stayed.
      expect(Date.parse(run.stats.reference_at!) - T0).toBeLessThan(FROM * 1000);
      for (const e of run.events) expect(e.attributes.reference_at).toBe(run.stats.reference_at);
      expectDetected(kind, run, expected);
      expectCheap(run);
      if (kind === 'shift') {
        const m = run.events[0]!.attributes.measures;
        expect(m.shift_dx_px).toBeGreaterThan(SHIFT_CLIP_PX.dx - 8);
        expect(m.shift_dx_px).toBeLessThan(SHIFT_CLIP_PX.dx + 8);
        expect(m.shift_dy_px).toBeGreaterThan(SHIFT_CLIP_PX.dy - 8);
        expect(m.shift_dy_px).toBeLessThan(SHIFT_CLIP_PX.dy + 8);
      }
      if (kind === 'frozen') expect(run.events[0]!.attributes.measures.unchanged_s).toBeGreaterThanOrEqual(TAMPER.raise_s);
    });
  }

  for (const kind of ['clean', 'rain', 'drift'] as const) {
    it(`${kind}: no alarm`, { timeout: 180_000 }, async () => {
      const run = await watch(kind);
      expect(run.stats.reference).toBe('ready');
      expect(run.events.map((e) => `${e.attributes.kind}@${at(e)}`)).toEqual([]);
      expect(run.stats.active).toEqual([]);
      expectCheap(run);
      report.push(`${kind.padEnd(11)} → no alarm; ${cost(run)}`);
    });
  }
});

describe.skipIf(!existsSync(DEMO_CLIP) || !existsSync(DEFAULT_MODEL()))('camera tamper watch in the frame loop', () => {
  it('CameraPipeline offers the watch every frame; its events join the analytics events', { timeout: 240_000 }, async () => {
    const { file } = await tamperClip('black');
    const cam = camera();
    const log = silentLogger();
    const events: EventDraft[] = [];
    const sink = (e: EventDraft) => {
      expect(EventDraftSchema.safeParse(e).success).toBe(true);
      events.push(e);
    };
    const detector = new Detector(DetectorSchema.parse({ model_path: DEFAULT_MODEL(), threads: 1 }), log);
    const analytics = new CameraAnalytics(cam, AnalyticsSchema.parse({}), { id: 'box-1', site: 'site-1' }, sink, log, { evidence: false });
    const tamper = new TamperWatcher({ camera: cam, device: { id: 'box-1', site: 'site-1' }, emit: sink, dir: makeTempDir('tamper'), clockSynced: () => true, log });
    const source = { frames: () => readClip(file, { ...detector.inputSize, resize: detector.resize }, { fps: 2, source: cam.frame, start_ms: T0 }) };
    const pipeline = new CameraPipeline({ camera: cam, source, detector, analytics, clockSynced: () => true, log, frames_in_flight: 2, on_detect_error: 'fail', tamper });
    await detector.start();
    try {
      await pipeline.run();
      await analytics.flush();
    } finally {
      await detector.stop();
    }
    expect(pipeline.stats().frames).toBe(2 * TAMPER_TIMELINE.duration_s);
    expect(events.some((e) => e.type === 'object_new')).toBe(true); // the detector saw the frames the watch had seen
    const tampers = events.filter((e): e is EventOf<'camera_tamper'> => e.type === 'camera_tamper');
    expect(tampers.map((e) => [e.attributes.kind, e.attributes.cleared])).toEqual([
      ['too_dark', false],
      ['too_dark', true],
    ]);
    expect(tamper.stats()).toMatchObject({ frames: 2 * TAMPER_TIMELINE.duration_s, reference: 'ready', active: [] });
  });
});
