// Offline analysis of the demo clip through the compiled CLI: the real detector, tracker and analytics.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
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
    a = run('node', ['dist/agent/cli/main.js', 'analyze', '--config', config, '--camera', 'cam1', '--fps', '5', CLIP], { maxBuffer: 64 * 1024 * 1024 }).then(({ stdout, stderr }) => ({
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

  it('names the camera it does not know', async () => {
    const err = await run('node', ['dist/agent/cli/main.js', 'analyze', '--config', 'config/examples/demo.yaml', '--camera', 'nope', CLIP]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('no camera "nope" in the config (cameras: cam1)');
  });
});
