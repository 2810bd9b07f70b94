// Offline analysis of the demo clip through the compiled CLI: the real detector, tracker and analytics.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { cli } from '../../../cli/main.js';
import { LINE_COLORS } from '../../../cli/overlay.js';
import { EventDraftSchema, type EventDraft, type EventOf } from '../../../contract/event.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const run = promisify(execFile);
const CLIP = 'tests/fixtures/clips/vtest-20s.mp4';

interface Analysis {
  events: EventDraft[];
  stderr: string;
  /** Detections over the whole clip, from the summary line. */
  detections: number;
}

/** One analysis per config (the demo run is shared by the tests that need it). */
const analyses = new Map<string, Promise<Analysis>>();
function analyze(config: string): Promise<Analysis> {
  let a = analyses.get(config);
  if (!a) {
    a = run('node', ['dist/cli/main.js', 'analyze', '--config', config, '--camera', 'cam1', '--fps', '5', CLIP], { maxBuffer: 64 * 1024 * 1024 }).then(({ stdout, stderr }) => ({
      events: stdout.trim() === '' ? [] : stdout.trim().split('\n').map((l) => JSON.parse(l) as EventDraft),
      stderr,
      detections: Number(/: (\d+) detections/.exec(stderr)?.[1] ?? NaN),
    }));
    analyses.set(config, a);
  }
  return a;
}

/** The demo config with a region of interest on cam1 (paths made absolute: the copy lives elsewhere). */
function demoWithRoi(roi: Array<[number, number]>): string {
  const demo = parse(readFileSync('config/examples/demo.yaml', 'utf8')) as { device: Record<string, unknown>; cameras: Array<Record<string, unknown>> };
  const dir = makeTempDir('analyze');
  demo.device.data_dir = join(dir, 'data');
  demo.cameras[0]!.url = resolve(CLIP);
  demo.cameras[0]!.roi = roi;
  const file = join(dir, 'demo-roi.yaml');
  writeFileSync(file, stringify(demo));
  return file;
}

const centreX = (e: EventOf<'object_new'>) => (e.object.box[0] + e.object.box[2]) / 2;

const CLI = ['dist/cli/main.js', 'analyze', '--config', 'config/examples/demo.yaml', '--camera', 'cam1', '--fps', '5'];
const START = '2024-05-01T08:00:00Z';
const parseEvents = (text: string): EventDraft[] => (text.trim() === '' ? [] : text.trim().split('\n').map((l) => JSON.parse(l) as EventDraft));
const withoutId = (events: EventDraft[]) => events.map(({ id: _id, ...rest }) => rest);
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function ffprobe(file: string): Promise<{ format: { duration?: string; tags?: Record<string, string> }; streams: Array<{ width: number; height: number }> }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'format=duration:format_tags:stream=width,height', '-of', 'json', file]);
  return JSON.parse(stdout) as Awaited<ReturnType<typeof ffprobe>>;
}

/**
 * The demo clip twice with --start: once through pipes with a PNG overlay, once at a terminal (script(1) gives
 * the CLI a pty for stderr; stdout goes to a file) with an mp4 overlay.
 */
const started = (() => {
  let runs: Promise<{ dir: string; piped: { events: EventDraft[]; stderr: string }; tty: { events: EventDraft[]; terminal: string } }> | undefined;
  return () =>
    (runs ??= (async () => {
      const dir = makeTempDir('analyze-start');
      const piped = await run('node', [...CLI, '--start', START, '--overlay', join(dir, 'out.png'), CLIP], { maxBuffer: 64 * 1024 * 1024 });
      const cmd = ['node', ...CLI, '--start', START, '--overlay', join(dir, 'out.mp4'), CLIP].map(quote).join(' ');
      const tty = await run('script', ['-qec', `${cmd} > ${quote(join(dir, 'events.jsonl'))}`, '/dev/null'], { maxBuffer: 64 * 1024 * 1024 });
      return {
        dir,
        piped: { events: parseEvents(piped.stdout), stderr: piped.stderr },
        tty: { events: parseEvents(readFileSync(join(dir, 'events.jsonl'), 'utf8')), terminal: tty.stdout },
      };
    })());
})();

/** "#ffea00" → [255, 234, 0]. */
const rgbOf = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

describe('roadside-agent analyze', () => {
  it('prints valid, unique events of the clip as JSON lines', async () => {
    const { events, stderr } = await analyze('config/examples/demo.yaml');
    for (const e of events) expect(EventDraftSchema.safeParse(e).error).toBeUndefined();
    const count = (t: string) => events.filter((e) => e.type === t).length;
    // The clip shows people walking across the plaza: tracks start, cross the line, end.
    expect(count('object_new')).toBeGreaterThanOrEqual(5);
    expect(events.filter((e) => e.type === 'object_new').every((e) => e.object?.class === 'person' || e.object?.class === 'truck' || e.object?.class === 'car')).toBe(true);
    expect(count('line_crossing')).toBeGreaterThanOrEqual(2);
    expect(count('object_end')).toBe(count('object_new'));
    expect(count('flow')).toBeGreaterThanOrEqual(1);
    // 20 s at 5 fps.
    expect(stderr).toMatch(/analyzed 100 frames/);
    const ids = new Set(events.map((e) => e.id));
    expect(ids.size).toBe(events.length);
  });

  it("drops detections outside the camera's roi before they become tracks", async () => {
    // The right half of the 768x576 view. The detector drops boxes whose centre lies left of x = 384; a
    // track's filtered box may sit a few pixels off its detections, hence the margin.
    const half = 384;
    const margin = 16;
    const [all, right] = await Promise.all([analyze('config/examples/demo.yaml'), analyze(demoWithRoi([[half, 0], [768, 0], [768, 576], [half, 576]]))]);
    const born = (a: Analysis) => a.events.filter((e): e is EventOf<'object_new'> => e.type === 'object_new');
    // Without the roi people are tracked on the left too; with it, none is born there, the others still are.
    expect(born(all).some((e) => centreX(e) < half - margin)).toBe(true);
    expect(born(right).length).toBeGreaterThanOrEqual(3);
    for (const e of born(right)) expect(centreX(e)).toBeGreaterThanOrEqual(half - margin);
    expect(right.detections).toBeGreaterThan(0);
    expect(right.detections).toBeLessThan(all.detections);
    expect(right.stderr).toMatch(/analyzed 100 frames/);
  });

  it('gives the same events and event ids on every run, timed from --start', async () => {
    const { piped, tty } = await started();
    expect(piped.events.length).toBeGreaterThanOrEqual(10);
    // Identical once ids are removed, and the ids themselves too: they derive from the clip's times.
    expect(withoutId(tty.events)).toEqual(withoutId(piped.events));
    expect(tty.events.map((e) => e.id)).toEqual(piped.events.map((e) => e.id));
    expect(new Set(piped.events.map((e) => e.id)).size).toBe(piped.events.length);
    for (const e of piped.events) expect(EventDraftSchema.safeParse(e).error).toBeUndefined();
    // The first frame is at --start: every event's wall time is --start plus its clip time; flow bins follow.
    for (const e of piped.events) expect(Date.parse(e.captured_at) - e.mono_ms).toBe(Date.parse(START));
    const flow = piped.events.find((e): e is EventOf<'flow'> => e.type === 'flow');
    expect(flow?.attributes.bin_start).toBe('2024-05-01T08:00:00.000Z');
    expect(piped.stderr).toContain('first frame at 2024-05-01T08:00:00.000Z (--start)');
  });

  it('starts the clip at 1970-01-01T00:00:00Z when the container has no creation time, never at the current time', async () => {
    expect((await ffprobe(CLIP)).format.tags?.creation_time).toBeUndefined();
    const { events, stderr } = await analyze('config/examples/demo.yaml');
    for (const e of events) expect(Date.parse(e.captured_at)).toBe(e.mono_ms);
    expect(events.find((e) => e.type === 'object_new')?.captured_at).toMatch(/^1970-01-01T00:00:0/);
    expect(stderr).toContain('first frame at 1970-01-01T00:00:00.000Z (the clip has no creation time; give the real one with --start)');
  });

  it("starts the clip at the container's creation time when it has one", async () => {
    const dir = makeTempDir('analyze-created');
    const clip = join(dir, 'created.mp4');
    await run('ffmpeg', ['-v', 'error', '-i', CLIP, '-c', 'copy', '-metadata', 'creation_time=2023-03-04T05:06:07.000000Z', clip]);
    expect((await ffprobe(clip)).format.tags?.creation_time).toMatch(/^2023-03-04T05:06:07/);
    const { stdout, stderr } = await run('node', [...CLI.slice(0, -1), '2', clip], { maxBuffer: 64 * 1024 * 1024 });
    const events = parseEvents(stdout);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(Date.parse(e.captured_at) - e.mono_ms).toBe(Date.parse('2023-03-04T05:06:07Z'));
    expect(stderr).toContain("first frame at 2023-03-04T05:06:07.000Z (the clip's creation time)");
  });

  it("ends with a table of the demo line's crossings per direction and class, and of the zone's entries", async () => {
    const { events, stderr } = await analyze('config/examples/demo.yaml');
    const lines = stderr.split('\n');
    const head = lines.find((l) => /^LINE\s+DIR\b/.test(l))?.split(/\s+/);
    expect(head).toBeDefined();
    const person = head!.indexOf('person');
    expect(person).toBeGreaterThan(1);
    const crossings = events.filter((e): e is EventOf<'line_crossing'> => e.type === 'line_crossing' && e.rule.id === 'mid');
    for (const dir of ['in', 'out'] as const) {
      const row = lines.find((l) => new RegExp(`^mid\\s+${dir}\\s`).test(l))?.split(/\s+/);
      expect(row, `row mid ${dir}`).toBeDefined();
      const want = crossings.filter((e) => e.attributes.direction === dir && e.object.class === 'person').length;
      expect(Number(row![person])).toBe(want);
      expect(Number(row!.at(-1))).toBe(crossings.filter((e) => e.attributes.direction === dir).length);
    }
    expect(crossings.length).toBeGreaterThanOrEqual(2);
    const zone = lines.find((l) => /^plaza\s/.test(l))?.split(/\s+/);
    expect(Number(zone?.[1])).toBe(events.filter((e) => e.type === 'zone_enter' && e.rule.id === 'plaza').length);
  });

  it('--overlay FILE.png draws the line in its colour over a frame of the camera frame size', async () => {
    const { dir, piped } = await started();
    const { data, info } = await sharp(join(dir, 'out.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([768, 576]);
    const px = (x: number, y: number) => [0, 1, 2].map((c) => data[(y * info.width + x) * 3 + c]!);
    const near = (p: number[], want: number[]) => p.every((v, i) => Math.abs(v - want[i]!) <= 12);
    const yellow = rgbOf(LINE_COLORS[0]);
    // The line `mid` runs from (0, 330) to (768, 330); a few px above and below it is the picture.
    const xs = [30, 120, 200, 280, 480, 560, 650, 740];
    for (const x of xs) expect(px(x, 330), `pixel (${x}, 330)`).toSatisfy((p: number[]) => near(p, yellow));
    expect(xs.filter((x) => near(px(x, 345), yellow)).length).toBe(0);
    expect(piped.stderr).toMatch(/overlay: .*out\.png \(768x576, the frame at 9\.\d s\)/);
  });

  it('--overlay FILE.mp4 writes the analysed frames, as long as the analysed part of the clip', async () => {
    const { dir, piped } = await started();
    const probe = await ffprobe(join(dir, 'out.mp4'));
    expect([probe.streams[0]?.width, probe.streams[0]?.height]).toEqual([768, 576]);
    const frames = Number(/analyzed (\d+) frames/.exec(piped.stderr)?.[1]);
    expect(frames).toBe(100);
    expect(Math.abs(Number(probe.format.duration) - frames / 5)).toBeLessThan(0.3);
  });

  it('draws a progress bar on stderr at a terminal only', async () => {
    const { tty } = await started();
    // At a terminal: the bar, redrawn in place, for the analysis and then for the overlay; then the summary.
    expect(tty.terminal).toMatch(/\ranalyze \[[#.]{24}\] +\d+% +\d+ frames +[\d.]+ fps/);
    expect(tty.terminal).toMatch(/\roverlay \[[#.]{24}\]/);
    expect(tty.terminal).toMatch(/analyzed 100 frames/);
    // Through pipes: stdout only JSON lines (parsed above), stderr without a bar or any terminal control.
    const { stderr } = await analyze('config/examples/demo.yaml');
    expect(stderr).not.toContain('\r');
    expect(stderr).not.toContain('\u001b');
    expect(stderr).not.toContain('analyze [');
    expect(stderr).toMatch(/^analyzed 100 frames/m);
  });

  it('says what --start, --overlay and --overlay-at expect (exit 64, before any analysis)', async () => {
    const base = ['analyze', '--config', 'config/examples/demo.yaml', '--camera', 'cam1', CLIP];
    const cases: [string[], string][] = [
      [['--start', '2024-05-01 08:00'], '--start 2024-05-01 08:00: expected an ISO 8601 time from 1970 with a zone, e.g. 2024-05-01T08:00:00Z'],
      [['--start', '2024-05-01T08:00:00'], '--start 2024-05-01T08:00:00: expected an ISO 8601 time from 1970 with a zone, e.g. 2024-05-01T08:00:00Z'],
      [['--overlay', 'out.gif'], '--overlay out.gif: expected a file name ending in .mp4 or .png'],
      [['--overlay', 'out.mp4', '--overlay-at', '3'], '--overlay-at needs --overlay FILE.png'],
      [['--overlay', 'out.png', '--overlay-at', '25'], '--overlay-at 25: the clip lasts 20.0 s'],
    ];
    for (const [extra, message] of cases) {
      let err = '';
      const io = { env: {}, interactive: false, stdout: () => undefined, stderr: (t: string) => void (err += t) };
      expect(await cli([...base, ...extra], io), extra.join(' ')).toBe(64);
      expect(err).toBe(`roadside-agent analyze: ${message}\nRun "roadside-agent analyze --help" for usage.\n`);
    }
  });

  it('names the camera it does not know', async () => {
    const err = await run('node', ['dist/cli/main.js', 'analyze', '--config', 'config/examples/demo.yaml', '--camera', 'nope', CLIP]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('no camera "nope" in the config (cameras: cam1)');
  });
});
