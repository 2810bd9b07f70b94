// Offline analysis of the demo clip through the compiled CLI: the real detector, tracker and analytics.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EventDraftSchema, type EventDraft } from '../../../contract/event.js';

const run = promisify(execFile);

describe('roadside-agent analyze', () => {
  it('prints valid, unique events of the clip as JSON lines', async () => {
    const { stdout, stderr } = await run('node', ['dist/agent/cli/main.js', 'analyze', '--config', 'config/examples/demo.yaml', '--camera', 'cam1', '--fps', '5', 'tests/fixtures/clips/vtest-20s.mp4'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as EventDraft);
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

  it('names the camera it does not know', async () => {
    const err = await run('node', ['dist/agent/cli/main.js', 'analyze', '--config', 'config/examples/demo.yaml', '--camera', 'nope', 'tests/fixtures/clips/vtest-20s.mp4']).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('no camera "nope" in the config (cameras: cam1)');
  });
});
