// Camera tamper watch on synthetic pictures: the measures (exposure, detail, sharpness, frame difference), the
// registration (phase correlation and edge similarity), the hysteresis, the watcher's alarms and stored
// reference, its config and the rebase-reference command.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerRebaseReference } from '../../../agent/commands/rebase-reference.js';
import { CommandRegistry } from '../../../agent/commands/registry.js';
import { CameraSchema, TamperSchema } from '../../../config/schema/cameras.js';
import { COMMANDS } from '../../../contract/commands.js';
import { EventDraftSchema, TAMPER_KINDS, type EventDraft, type EventOf, type TamperKind } from '../../../contract/event.js';
import { HealthReason } from '../../../contract/health.js';
import { silentLogger } from '../../../core/log.js';
import type { Frame } from '../../../ingest/types.js';
import {
  edgeMap,
  edgeMatch,
  FrameSampler,
  Hysteresis,
  PhaseCorrelator,
  pictureRegion,
  referenceFile,
  tamperHealthReason,
  TamperWatcher,
  THUMB_H,
  THUMB_W,
} from '../../../inference/tamper/index.js';
import { SyntheticView, type ViewOptions } from '../../../testkit/tamper-clips.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const rgb = (w: number, h: number, f: (x: number, y: number) => number): Frame => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill(Math.max(0, Math.min(255, Math.round(f(x, y)))), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return { camera: 'c', data, width: w, height: h, source_width: w, source_height: h, captured_at_ms: 0, mono_ms: 0, seq: 1 };
};

describe('frame measures', () => {
  it('a flat grey frame: its level everywhere, no detail, unchanged next time', () => {
    const s = new FrameSampler(320, 240);
    const m = s.sample(rgb(320, 240, () => 77));
    expect(m).toMatchObject({ luma_p5: 77, luma_p95: 77, detail: 0, sharpness: 1 });
    expect(m.luma_mean).toBeCloseTo(77, 0);
    expect(m.frame_diff).toBeNaN();
    expect(s.sample(rgb(320, 240, () => 77)).frame_diff).toBe(0);
    expect(s.sample(rgb(320, 240, () => 80)).frame_diff).toBe(3);
  });

  it('percentiles split a half-black, half-white frame', () => {
    const m = new FrameSampler(320, 240).sample(rgb(320, 240, (x) => (x < 160 ? 0 : 255)));
    expect(m.luma_p5).toBe(0);
    expect(m.luma_p95).toBe(255);
    expect(m.luma_mean).toBeGreaterThan(120);
    expect(m.luma_mean).toBeLessThan(135);
  });

  it('sharpness falls with blur, stays with brightness and contrast; detail follows contrast', () => {
    const view = new SyntheticView();
    const s = new FrameSampler(416, 416);
    const sharp = s.sample(view.frame(0, { noise: 0 }));
    const dim = s.sample(view.frame(0, { noise: 0, gain: 0.5, offset: 20 }));
    const blurred = s.sample(view.frame(0, { noise: 0, blur: 3 }));
    expect(dim.sharpness / sharp.sharpness).toBeGreaterThan(0.9);
    expect(dim.sharpness / sharp.sharpness).toBeLessThan(1.1);
    expect(dim.detail / sharp.detail).toBeCloseTo(0.5, 1);
    expect(blurred.sharpness / sharp.sharpness).toBeLessThan(0.6);
  });

  it('sensor noise shows in the frame difference; identical bytes give 0', () => {
    const view = new SyntheticView();
    const s = new FrameSampler(416, 416);
    s.sample(view.frame(0, { noise: 1.5 }));
    expect(s.sample(view.frame(100, { noise: 1.5 })).frame_diff).toBeGreaterThan(1);
    const f = view.frame(200, { noise: 1.5 });
    s.sample(f);
    expect(s.sample(f).frame_diff).toBe(0);
  });

  it('samples only the picture inside letterbox bands', () => {
    const f: Frame = { ...rgb(416, 416, (_x, y) => (y < 52 || y >= 364 ? 114 : 0)), source_width: 768, source_height: 576, letterbox: { scale: 416 / 768, pad_x: 0, pad_y: 52 } };
    const region = pictureRegion(f);
    expect(region).toEqual({ x: 0, y: 52, width: 416, height: 312 });
    expect(new FrameSampler(416, 416, region).sample(f).luma_p95).toBe(0);
    expect(new FrameSampler(416, 416).sample(f).luma_p95).toBeGreaterThan(100);
  });

  it('refuses a frame of another size', () => {
    expect(() => new FrameSampler(416, 416).sample(rgb(320, 240, () => 0))).toThrow(/320x240/);
  });
});

describe('registration', () => {
  const view = new SyntheticView();
  const thumbOf = (o: ViewOptions) => {
    const s = new FrameSampler(416, 416);
    s.sample(view.frame(0, { noise: 0, ...o }));
    return Float32Array.from(s.thumb);
  };
  const ref = thumbOf({});
  const pc = new PhaseCorrelator(THUMB_W, THUMB_H);
  pc.setReference(ref);
  // One thumbnail pixel is 416 / 64 = 6.5 frame pixels across, 416 / 48 = 8.67 down.
  const px = { x: 416 / THUMB_W, y: 416 / THUMB_H };

  it('finds no offset and a full peak for the same picture, whatever its brightness', () => {
    expect(pc.match(ref)).toMatchObject({ dx: expect.closeTo(0, 2), dy: expect.closeTo(0, 2), peak: expect.closeTo(1, 2) });
    const dim = pc.match(thumbOf({ gain: 0.4, offset: 30 }));
    expect(Math.abs(dim.dx) + Math.abs(dim.dy)).toBeLessThan(0.05);
    expect(dim.peak).toBeGreaterThan(0.8);
  });

  it('measures a moved view to a fraction of a thumbnail pixel, sign as the content moved', () => {
    // Window 26 px further right and 26 px further down: the content moves left and up.
    const r = pc.match(thumbOf({ x: 80 + 26, y: 80 + 26 }));
    expect(r.dx).toBeCloseTo(-26 / px.x, 0);
    expect(Math.abs(r.dx + 26 / px.x)).toBeLessThan(0.35);
    expect(Math.abs(r.dy + 26 / px.y)).toBeLessThan(0.35);
    const r2 = pc.match(thumbOf({ x: 80 - 13, y: 80 }));
    expect(Math.abs(r2.dx - 13 / px.x)).toBeLessThan(0.35);
    expect(Math.abs(r2.dy)).toBeLessThan(0.2);
  });

  it('edge similarity: high for the same view at the found offset, low for another view', () => {
    const refEdges = edgeMap(ref, THUMB_W, THUMB_H, new Float32Array(THUMB_W * THUMB_H));
    const moved = thumbOf({ x: 106, y: 106 });
    const r = pc.match(moved);
    const movedEdges = edgeMap(moved, THUMB_W, THUMB_H, new Float32Array(THUMB_W * THUMB_H));
    expect(edgeMatch(movedEdges, refEdges, THUMB_W, THUMB_H, Math.round(r.dx), Math.round(r.dy))).toBeGreaterThan(0.7);
    expect(edgeMatch(movedEdges, refEdges, THUMB_W, THUMB_H, 0, 0)).toBeLessThan(0.4);
    const other = new SyntheticView(416, 416, undefined, 99);
    const s = new FrameSampler(416, 416);
    s.sample(other.frame(0, { noise: 0 }));
    const o = pc.match(s.thumb);
    const otherEdges = edgeMap(s.thumb, THUMB_W, THUMB_H, new Float32Array(THUMB_W * THUMB_H));
    expect(edgeMatch(otherEdges, refEdges, THUMB_W, THUMB_H, Math.round(o.dx), Math.round(o.dy))).toBeLessThan(0.2);
  });

  it('refuses an image of the wrong size', () => {
    expect(() => pc.match(new Float32Array(10))).toThrow(RangeError);
  });
});

describe('hysteresis', () => {
  const at = (s: number) => ({ mono: s * 1000, wall: 1e12 + s * 1000 });

  it('raises once the condition held raise_ms, tolerating one odd check, and clears after clear_ms absent', () => {
    const h = new Hysteresis(3000, 2000, 1500);
    expect(h.update(true, at(0))).toBeUndefined();
    expect(h.update(false, at(1))).toBeUndefined(); // one odd check
    expect(h.update(true, at(2))).toBeUndefined();
    const up = h.update(true, at(3));
    expect(up).toMatchObject({ to: 'raise', since: at(0) });
    expect(h.active).toBe(true);
    expect(h.update(false, at(4))).toBeUndefined();
    expect(h.update(true, at(5))).toBeUndefined(); // back: the clear timer starts again
    expect(h.update(false, at(6))).toBeUndefined();
    expect(h.update(undefined, at(7))).toBeUndefined(); // undecided: nothing changes
    expect(h.update(false, at(8))).toMatchObject({ to: 'clear', since: at(0), lastSeen: at(5) });
    expect(h.active).toBe(false);
  });

  it('an interruption longer than the gap starts the episode anew', () => {
    const h = new Hysteresis(3000, 0, 1500);
    h.update(true, at(0));
    h.update(false, at(1));
    h.update(false, at(2));
    expect(h.update(true, at(3))).toBeUndefined();
    expect(h.since).toEqual(at(3));
    expect(h.update(true, at(6))).toMatchObject({ to: 'raise', since: at(3) });
    expect(h.update(false, at(7))).toMatchObject({ to: 'clear' }); // clear_ms 0: at the first absent check
  });

  it('reset clears an active alarm and reports it', () => {
    const h = new Hysteresis(0, 5000, 1500);
    expect(h.update(true, at(0))).toMatchObject({ to: 'raise' });
    expect(h.reset()).toMatchObject({ to: 'clear', since: at(0) });
    expect(h.reset()).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// The watcher on a synthetic camera: a check per offered frame (one a second).

const FAST = { reference_after_s: 4, raise_s: 3, clear_s: 3, check_interval_s: 1 };

function watcher(over: Record<string, unknown> = {}, dir?: string) {
  const events: EventOf<'camera_tamper'>[] = [];
  const changes: TamperKind[][] = [];
  const camera = CameraSchema.parse({ id: 'cam1', url: 'rtsp://127.0.0.1/x', frame: { width: 832, height: 832 }, tamper: { ...FAST, ...over } });
  const w = new TamperWatcher({
    camera,
    device: { id: 'box-1', site: 'site-1' },
    emit: (e: EventDraft) => {
      expect(EventDraftSchema.parse(e)).toEqual(e);
      if (e.type === 'camera_tamper') events.push(e);
    },
    ...(dir ? { dir } : {}),
    clockSynced: () => true,
    log: silentLogger(),
    onChange: (_cam, kinds) => changes.push(kinds),
  });
  w.start();
  return { w, events, changes };
}

/** Offers one frame a second from `from_s` to `to_s` (exclusive). */
function play(w: TamperWatcher, view: SyntheticView, from_s: number, to_s: number, o: ViewOptions | ((t: number) => ViewOptions) = {}): void {
  for (let t = from_s; t < to_s; t++) w.offer(view.frame(t * 1000, typeof o === 'function' ? o(t) : o));
}

const summary = (evs: EventOf<'camera_tamper'>[]) => evs.map((e) => `${e.attributes.kind}${e.attributes.cleared ? ' cleared' : ''}@${e.mono_ms / 1000}`);

describe('tamper watcher', () => {
  it('learns a reference from stable picture, stores it, and a restarted watch reuses it', () => {
    const dir = makeTempDir('tamper');
    const view = new SyntheticView();
    const { w } = watcher({}, dir);
    play(w, view, 0, 3);
    expect(w.stats()).toMatchObject({ reference: 'learning', reference_at: null });
    expect(w.stats().learning_s).toBe(2);
    play(w, view, 3, 5);
    const st = w.stats();
    expect(st.reference).toBe('ready');
    const stored = JSON.parse(readFileSync(referenceFile(dir, 'cam1'), 'utf8')) as { schema: string; taken_at: string; thumb: { luma_base64: string } };
    expect(stored).toMatchObject({ schema: 'roadside.tamper-reference/1', camera: 'cam1', taken_at: st.reference_at, frame: { width: 416, height: 416 } });
    expect(Buffer.from(stored.thumb.luma_base64, 'base64')).toHaveLength(THUMB_W * THUMB_H);
    const again = watcher({}, dir);
    expect(again.w.stats()).toMatchObject({ reference: 'ready', reference_at: st.reference_at });
  });

  it('a moving view (being aimed) is not taken as the reference', () => {
    const view = new SyntheticView();
    const { w } = watcher();
    play(w, view, 0, 10, (t) => ({ x: 40 + 8 * t }));
    expect(w.stats().reference).toBe('learning');
    play(w, view, 10, 15, { x: 120 });
    expect(w.stats().reference).toBe('ready');
  });

  it('a moved camera: shifted after raise_s with its offset in camera pixels; rebase-reference clears it', () => {
    const dir = makeTempDir('tamper');
    const view = new SyntheticView();
    const { w, events, changes } = watcher({}, dir);
    play(w, view, 0, 6);
    const firstRef = w.stats().reference_at;
    // The window moves 30 px right, 20 px down: the content moves left and up by 60, 40 camera pixels.
    play(w, view, 6, 12, { x: 110, y: 100 });
    expect(summary(events)).toEqual(['shifted@9']);
    const up = events[0]!.attributes;
    expect(up).toMatchObject({ kind: 'shifted', cleared: false, since: new Date(Date.UTC(2026, 0, 1) + 6000).toISOString(), reference_at: firstRef });
    expect(up.measures.shift_dx_px).toBeCloseTo(-60, -1);
    expect(up.measures.shift_dy_px).toBeCloseTo(-40, -1);
    expect(up.measures.match).toBeGreaterThan(0.5);
    expect(changes).toEqual([['shifted']]);
    expect(HealthReason.parse(tamperHealthReason('cam1', w.active()))).toMatchObject({ code: 'camera_tamper', severity: 'error', camera: 'cam1' });

    const r = w.rebase();
    expect(r).toEqual({ previous_reference_at: firstRef, cleared: ['shifted'], ready_in_s: 4 });
    expect(existsSync(join(dir, 'cam1.prev.json'))).toBe(true);
    expect(existsSync(referenceFile(dir, 'cam1'))).toBe(false);
    play(w, view, 12, 20, { x: 110, y: 100 });
    expect(summary(events)).toEqual(['shifted@9', 'shifted cleared@12']);
    expect(events[1]!.attributes).toMatchObject({ cleared: true, duration_s: 5, reference_at: firstRef });
    expect(changes).toEqual([['shifted'], []]);
    expect(w.stats().reference).toBe('ready');
    expect(w.stats().reference_at).not.toBe(firstRef);
    expect(existsSync(referenceFile(dir, 'cam1'))).toBe(true);
  });

  it('a static night scene with sensor noise raises nothing; the same bytes over and over are frozen', () => {
    const view = new SyntheticView();
    const { w, events } = watcher();
    play(w, view, 0, 6);
    play(w, view, 6, 30, { gain: 0.3, offset: 8, noise: 1 }); // dusk, then a still night
    expect(summary(events)).toEqual([]);
    const still = view.frame(30_000, { gain: 0.3, offset: 8, noise: 1 });
    for (let t = 30; t < 36; t++) w.offer({ ...still, data: still.data.slice(), mono_ms: t * 1000, captured_at_ms: still.captured_at_ms + (t - 30) * 1000 });
    expect(summary(events)).toEqual(['frozen@34']);
    expect(events[0]!.attributes.measures).toMatchObject({ frame_diff: 0, unchanged_s: 4 });
    play(w, view, 36, 40, { gain: 0.3, offset: 8, noise: 1 });
    expect(summary(events)).toEqual(['frozen@34', 'frozen cleared@39']);
  });

  it('covered, blurred, too dark and overexposed: each alone, each clearing after the picture is back', () => {
    const cases: Array<[TamperKind, ViewOptions]> = [
      ['covered', { cover: 90, noise: 2 }],
      ['blurred', { blur: 3 }],
      ['too_dark', { cover: 0, noise: 0 }],
      ['overexposed', { gain: 0.2, offset: 240, noise: 1 }],
    ];
    for (const [kind, opts] of cases) {
      const view = new SyntheticView();
      const { w, events } = watcher();
      play(w, view, 0, 6);
      play(w, view, 6, 12, opts);
      play(w, view, 12, 18);
      expect(summary(events), kind).toEqual([`${kind}@9`, `${kind} cleared@15`]);
      expect(events[1]!.attributes.duration_s).toBe(5);
    }
  });

  it('too dark and overexposed need no reference; the reference kinds wait for one', () => {
    const view = new SyntheticView();
    const { w, events } = watcher();
    play(w, view, 0, 5, { cover: 0, noise: 0 });
    play(w, view, 5, 9, { blur: 3 });
    expect(summary(events)).toEqual(['too_dark@3', 'too_dark cleared@8']);
    expect(w.stats().reference).toBe('learning');
  });

  it('watches only the configured kinds, and nothing when disabled', () => {
    const view = new SyntheticView();
    const only = watcher({ kinds: ['shifted'] });
    play(only.w, view, 0, 12, (t) => (t < 6 ? {} : { cover: 0, noise: 0 }));
    expect(only.events).toEqual([]);
    const off = watcher({ enabled: false });
    play(off.w, view, 0, 12, (t) => (t < 6 ? {} : { cover: 0, noise: 0 }));
    expect(off.events).toEqual([]);
    expect(off.w.stats()).toMatchObject({ enabled: false, checks: 0 });
  });

  it('an unreadable reference file or another frame size: a new reference is learned', () => {
    const dir = makeTempDir('tamper');
    writeFileSync(referenceFile(dir, 'cam1'), '{"schema":"something else"}');
    const view = new SyntheticView();
    const { w } = watcher({}, dir);
    expect(w.stats().reference).toBe('learning');
    play(w, view, 0, 6);
    expect(w.stats().reference).toBe('ready');
    const small = new SyntheticView(320, 240);
    const again = watcher({}, dir);
    expect(again.w.stats().reference).toBe('ready');
    play(again.w, small, 0, 1);
    expect(again.w.stats().reference).toBe('learning');
  });

  it('checks every check_interval_s and reports its cost', () => {
    const view = new SyntheticView();
    const { w } = watcher({ check_interval_s: 1 });
    for (let i = 0; i < 25; i++) w.offer(view.frame(i * 200));
    const st = w.stats();
    expect(st).toMatchObject({ frames: 25, checks: 5 });
    expect(st.check_ms_mean).toBeGreaterThan(0);
    expect(st.ms_per_frame).toBeCloseTo(st.check_ms_mean / 5, 2);
  });
});

describe('tamper config and command', () => {
  it('defaults: every kind, thresholds, enabled', () => {
    const t = TamperSchema.parse({});
    expect(t).toMatchObject({ enabled: true, kinds: [...TAMPER_KINDS], check_interval_s: 1, reference_after_s: 30, raise_s: 10, clear_s: 10, shift_px: 20 });
    expect(TamperSchema.safeParse({ kinds: ['smudged'] }).success).toBe(false);
    expect(TamperSchema.safeParse({ blur_ratio: 2 }).success).toBe(false);
    expect(CameraSchema.parse({ id: 'c', url: 'x.mp4', frame: { width: 64, height: 48 } }).tamper.enabled).toBe(true);
  });

  it('rebase-reference: the camera\'s watch answers; unknown camera and no watch are refused', async () => {
    const reg = new CommandRegistry(COMMANDS, silentLogger());
    const cams = [
      CameraSchema.parse({ id: 'cam1', url: 'x.mp4', frame: { width: 832, height: 832 }, tamper: FAST }),
      CameraSchema.parse({ id: 'cam2', url: 'x.mp4', frame: { width: 832, height: 832 }, tamper: { enabled: false } }),
    ];
    const { w } = watcher();
    registerRebaseReference(reg, cams, (id) => (id === 'cam1' ? w : undefined));
    const ask = (args: object) => reg.execute('rebase-reference', Buffer.from(JSON.stringify({ id: 'r1', ...args })));
    expect(await ask({ camera: 'cam1' })).toEqual({ status: 'ok', id: 'r1', data: { camera: 'cam1', previous_reference_at: null, cleared: [], ready_in_s: 4 } });
    expect(await ask({ camera: 'cam9' })).toMatchObject({ status: 'error', error: { code: 'UNKNOWN_CAMERA' } });
    expect(await ask({ camera: 'cam2' })).toMatchObject({ status: 'error', error: { code: 'TAMPER_DISABLED' } });
    expect(await ask({})).toMatchObject({ status: 'error', error: { code: 'INVALID_ARGS' } });
  });
});
