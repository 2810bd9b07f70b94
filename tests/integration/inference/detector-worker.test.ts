// The detector's worker supervision and scheduling: restarts of a stuck or crashed worker, the fatal limit,
// fair round-robin sharing between cameras with single-slot queues, buffer hand-over; stopping (also an
// aborted start) lets the worker leave ONNX Runtime and exit by itself, terminating only a hung one.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { threadCpus } from '../../../core/affinity.js';
import { silentLogger, type Logger } from '../../../core/log.js';
import { DetectorSchema } from '../../../config/schema/detector.js';
import { Detector, type DetectorOptions, type DetectResult, type RestartEvent } from '../../../inference/detector/index.js';
import { CONTRACT_CLASSES, CONTRACT_INPUT, writeContractModels } from '../../../testkit/onnx-models.js';

const { width: W, height: H } = CONTRACT_INPUT;
let dir: string;
let model: string;
const detectors: Detector[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'detector-worker-'));
  model = writeContractModels(dir).decoded;
});
afterEach(async () => {
  await Promise.all(detectors.splice(0).map((d) => d.stop()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frame() {
  return { data: new Uint8Array(W * H * 3), width: W, height: H, source_width: 640, source_height: 480 };
}

function create(cfg: Record<string, unknown> = {}, opts: DetectorOptions = {}, log: Logger = silentLogger()): Detector {
  const d = new Detector(
    DetectorSchema.parse({ model_path: model, decoder: 'decoded', input_size: CONTRACT_INPUT, class_names: CONTRACT_CLASSES, classes: ['person', 'car'], threads: 1, ...cfg }),
    log,
    opts,
  );
  detectors.push(d);
  return d;
}

async function start(cfg: Record<string, unknown> = {}, opts: DetectorOptions = {}): Promise<Detector> {
  const d = create(cfg, opts);
  await d.start();
  return d;
}

/** A debug-level logger whose lines' messages land in `msgs`. */
function recordingLogger(): { log: Logger; msgs: string[] } {
  const msgs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void msgs.push((JSON.parse(line) as { msg: string }).msg) });
  return { log, msgs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('detector worker supervision', () => {
  it('restarts a stuck worker, rejects the frame in flight with DETECTOR_STUCK, reports it, and keeps detecting', async () => {
    const restarts: RestartEvent[] = [];
    const d = await start({ stuck_timeout_s: 1 }, { debug: { hang_camera: 'stuck' }, onRestart: (e) => restarts.push(e) });
    const emitted: RestartEvent[] = [];
    d.on('restart', (e) => emitted.push(e));

    const t0 = Date.now();
    const stuck = d.detect('stuck', frame());
    const waiting = d.detect('cam', frame()); // queued behind the stuck run: must survive the restart
    await expect(stuck).rejects.toMatchObject({ code: 'DETECTOR_STUCK' });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(restarts).toHaveLength(1);
    expect(restarts[0]).toMatchObject({ reason: 'stuck', restarts: 1, error: { code: 'DETECTOR_STUCK' } });
    expect(emitted).toEqual(restarts);

    const after = await waiting;
    expect(after.status).toBe('done');
    expect((await d.detect('cam', frame())).status).toBe('done');
    const s = d.stats();
    expect(s).toMatchObject({ state: 'running', restarts: 1, restarts_last_hour: 1, last_restart_reason: 'stuck', errors: 1 });
    expect(s.cameras.stuck).toMatchObject({ submitted: 1, errors: 1, done: 0 });
    expect(s.cameras.cam).toMatchObject({ submitted: 2, done: 2 });
  });

  it('restarts a crashed worker and rejects the frame with DETECTOR_CRASHED', async () => {
    const restarts: RestartEvent[] = [];
    const d = await start({}, { debug: { crash_camera: 'boom' }, onRestart: (e) => restarts.push(e) });
    await expect(d.detect('boom', frame())).rejects.toMatchObject({ code: 'DETECTOR_CRASHED', message: expect.stringContaining('debug crash') as unknown });
    expect(restarts).toMatchObject([{ reason: 'crash', restarts: 1 }]);
    // Wait for the replacement worker, then detect again.
    expect((await d.detect('cam', frame())).status).toBe('done');
    expect(d.stats()).toMatchObject({ restarts: 1, last_restart_reason: 'crash', state: 'running' });
  });

  it('reports repeated failures as fatal and then refuses frames', async () => {
    const fatal: Error[] = [];
    const restarts: RestartEvent[] = [];
    const d = await start({ max_restarts: 3, restart_window_s: 600 }, { debug: { crash_camera: 'boom' }, onFatal: (e) => fatal.push(e), onRestart: (e) => restarts.push(e) });
    const fatalEvent = new Promise<Error>((r) => d.once('fatal', r));
    for (let i = 0; i < 3; i++) await expect(d.detect('boom', frame())).rejects.toMatchObject({ code: 'DETECTOR_CRASHED' });
    await fatalEvent;
    expect(restarts).toHaveLength(2); // the third failure is the fatal one, not a restart
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'DETECTOR_FAILED', message: expect.stringMatching(/failed 3 times within 600 s/) as unknown });
    expect(d.stats().state).toBe('failed');
    await expect(d.detect('cam', frame())).rejects.toMatchObject({ code: 'DETECTOR_FAILED' });
  });

  it('rejects waiting frames when stopped, and frames before start', async () => {
    const d = await start({}, { debug: { delay_ms: 200 } });
    const first = d.detect('a', frame()).catch((e: unknown) => e); // in flight
    const second = d.detect('b', frame()).catch((e: unknown) => e); // waiting
    await sleep(20);
    await d.stop();
    expect(await first).toMatchObject({ code: 'DETECTOR_NOT_RUNNING' });
    expect(await second).toMatchObject({ code: 'DETECTOR_NOT_RUNNING' });
    await expect(d.detect('a', frame())).rejects.toMatchObject({ code: 'DETECTOR_NOT_RUNNING' });
  });
});

describe('detector stop while the worker is inside ONNX Runtime', () => {
  it('an aborted start waits for the model load to finish, then the worker exits by itself', async () => {
    const { log, msgs } = recordingLogger();
    const d = create({}, { debug: { load_delay_ms: 1_000 } }, log);
    const ac = new AbortController();
    const t0 = Date.now();
    const started = d.start(ac.signal);
    setTimeout(() => ac.abort(), 100);
    await expect(started).rejects.toMatchObject({ code: 'DETECTOR_NOT_RUNNING', message: 'detector start aborted' });
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(950); // not terminated in the middle of the load
    expect(waited).toBeLessThan(5_000);
    expect(msgs).toContain('detector worker closed');
    expect(msgs.some((m) => m.includes('terminating'))).toBe(false);
    expect(d.stats().state).toBe('stopped');
    await expect(d.detect('cam', frame())).rejects.toMatchObject({ code: 'DETECTOR_NOT_RUNNING' });
  });

  it('stop() during the load resolves once the worker has exited; the start rejects', async () => {
    const { log, msgs } = recordingLogger();
    const d = create({}, { debug: { load_delay_ms: 800 } }, log);
    const started = d.start().catch((e: unknown) => e);
    await sleep(100);
    const t0 = Date.now();
    await d.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(await started).toMatchObject({ code: 'DETECTOR_NOT_RUNNING' });
    expect(msgs).toContain('detector worker closed');
    expect(msgs.some((m) => m.includes('terminating'))).toBe(false);
  });

  it('a worker hung in a run is terminated after the close grace, and stop() still returns', async () => {
    const { log, msgs } = recordingLogger();
    const d = create({ stuck_timeout_s: 60 }, { debug: { hang_camera: 'stuck' } }, log);
    await d.start();
    const hung = d.detect('stuck', frame()).catch((e: unknown) => e);
    await sleep(100);
    const t0 = Date.now();
    await d.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4_900); // CLOSE_GRACE_MS
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(await hung).toMatchObject({ code: 'DETECTOR_NOT_RUNNING' });
    expect(msgs).toContain('detector worker did not exit in time; terminating it');
  });
});

describe('detector scheduling', () => {
  it('shares the worker fairly between cameras submitting faster than inference; replaced frames are counted', async () => {
    const d = await start({}, { debug: { delay_ms: 40 } });
    const results: Record<string, DetectResult[]> = { a: [], b: [] };
    const pending: Promise<void>[] = [];
    // Camera a submits every 5 ms, camera b every 13 ms, both far faster than the 40 ms runs.
    const submit = (cam: 'a' | 'b') =>
      pending.push(
        d.detect(cam, frame()).then((r) => {
          results[cam]!.push(r);
        }),
      );
    const end = Date.now() + 600;
    let tick = 0;
    while (Date.now() < end) {
      if (tick % 5 === 0) submit('a');
      if (tick % 13 === 0) submit('b');
      tick++;
      await sleep(1);
    }
    await Promise.all(pending);

    const doneA = results.a!.filter((r) => r.status === 'done').length;
    const doneB = results.b!.filter((r) => r.status === 'done').length;
    const replacedA = results.a!.length - doneA;
    const replacedB = results.b!.length - doneB;
    expect(doneA).toBeGreaterThanOrEqual(3);
    expect(doneB).toBeGreaterThanOrEqual(3);
    // Round-robin: equal shares although a submits 2.6x as often (±2 for the first and last frames).
    expect(Math.abs(doneA - doneB)).toBeLessThanOrEqual(2);
    expect(replacedA).toBeGreaterThan(replacedB);

    const s = d.stats();
    expect(s.cameras.a).toEqual({ submitted: results.a!.length, done: doneA, skipped: replacedA, errors: 0 });
    expect(s.cameras.b).toEqual({ submitted: results.b!.length, done: doneB, skipped: replacedB, errors: 0 });
    expect(s.skipped).toBe(replacedA + replacedB);
    expect(s.runs).toBe(doneA + doneB);
    expect(s.inference_ms_mean + s.pre_ms_mean + s.post_ms_mean).toBeGreaterThanOrEqual(39); // delay_ms 40 per run
    expect(s.wait_ms_mean).toBeGreaterThan(0);
  });

  it('serves waiting cameras in round-robin order; a newer frame replaces the waiting one', async () => {
    const d = await start({}, { debug: { delay_ms: 150 } });
    const served: string[] = [];
    const tagged = (cam: string, tag: string) => d.detect(cam, frame()).then((r) => (r.status === 'done' && served.push(tag), r.status));
    const a1 = tagged('a', 'a1'); // dispatched at once
    const a2 = tagged('a', 'a2');
    const b1 = tagged('b', 'b1');
    const a3 = tagged('a', 'a3'); // replaces a2
    const c1 = tagged('c', 'c1');
    const b2 = tagged('b', 'b2'); // replaces b1
    expect(await Promise.all([a1, a2, b1, a3, c1, b2])).toEqual(['done', 'replaced', 'replaced', 'done', 'done', 'done']);
    expect(served).toEqual(['a1', 'b2', 'c1', 'a3']); // after a: b, c, then a again
    // a2 was queued in the worker behind a1, then taken back for b1 (b comes first); b1 was taken back for b2.
    expect(d.stats().requeued).toBe(2);
    expect(d.stats().cameras).toEqual({
      a: { submitted: 3, done: 2, skipped: 1, errors: 0 },
      b: { submitted: 2, done: 1, skipped: 1, errors: 0 },
      c: { submitted: 1, done: 1, skipped: 0, errors: 0 },
    });
  });

  it('reads the frame in place: never detached, never copied, handed back as it was', async () => {
    const d = await start();
    const f = frame();
    f.data.fill(7);
    const buf = f.data.buffer;
    const p = d.detect('cam', f);
    expect(buf.byteLength).toBe(W * H * 3); // not transferred: the main thread pre-processes it
    const r = await p;
    expect(r.buffer).toBe(buf);
    expect(f.data.every((v) => v === 7)).toBe(true);
    expect(d.stats().frame_copies).toBe(0);

    // A view into a larger buffer is read in place too (nothing to transfer, so no copy of its neighbours).
    const big = new Uint8Array(W * H * 3 + 16);
    const r2 = await d.detect('cam', { ...frame(), data: big.subarray(8, 8 + W * H * 3) });
    expect(r2.status).toBe('done');
    expect(big.buffer.byteLength).toBe(W * H * 3 + 16);
    expect(d.stats().frame_copies).toBe(0);
  });

  it('a frame queued behind the running one starts without the main thread: no round trip between runs', async () => {
    const d = await start({}, { debug: { delay_ms: 100 } });
    const t0 = performance.now();
    const a = d.detect('a', frame()); // runs at once
    const b = d.detect('b', frame()).then((r) => ({ r, at: performance.now() - t0 })); // pre-processed and queued in the worker
    // The main thread is busy for 250 ms (analytics, decoding): the worker finishes a at ~100 ms and goes on with
    // b by itself, done at ~200 ms. Had it to wait for the main thread to hand b over, b would end at ~350 ms.
    const end = performance.now() + 250;
    while (performance.now() < end);
    expect((await a).status).toBe('done');
    const { r, at } = await b;
    expect(r.status).toBe('done');
    expect(at).toBeLessThan(320);
  });

  it('measures the share of the waiting time spent inside session.run', async () => {
    const d = await start({}, { debug: { delay_ms: 60 } });
    // Two cameras, each submitting its next frame as soon as the last is answered: a frame always waits.
    const until = Date.now() + 1_500;
    await Promise.all(
      ['a', 'b'].map(async (cam) => {
        while (Date.now() < until) expect((await d.detect(cam, frame())).status).toBe('done');
      }),
    );
    const s = d.stats();
    expect(s.runs).toBeGreaterThanOrEqual(10);
    // Only post-processing and the reply are outside session.run (the debug delay counts as model time); a
    // loaded machine stretches those, hence the margin.
    expect(s.busy_share_pct).toBeGreaterThan(75);
    expect(s.busy_share_pct).toBeLessThanOrEqual(100);
    expect(s.model_s_total).toBeGreaterThanOrEqual(s.runs * 0.059);
    expect(s.frames_waiting_s_total).toBeGreaterThanOrEqual(s.model_s_total);
    expect(s.wait_ms_mean).toBeGreaterThan(30); // each frame waited behind the other camera's run, in the worker
    expect(s.requeued).toBe(0);
    await d.stop();
    const idle = create({}, { debug: { delay_ms: 60 } });
    await idle.start();
    expect(idle.stats().busy_share_pct).toBe(0); // nothing waited yet
  });

  it('reports timing per frame and means in stats', async () => {
    const d = await start();
    const r = await d.detect('cam', frame());
    if (r.status !== 'done') throw new Error('expected done');
    for (const k of ['pre_ms', 'model_ms', 'post_ms', 'total_ms', 'wait_ms'] as const) expect(r.timing[k]).toBeGreaterThanOrEqual(0);
    expect(r.timing.total_ms).toBeGreaterThanOrEqual(r.timing.model_ms);
    const s = d.stats();
    expect(s.runs).toBe(1);
    expect(s.inference_ms_p95).toBeGreaterThan(0);
    expect(s).toHaveProperty('pre_ms_mean');
    expect(s).toHaveProperty('post_ms_mean');
  });
});

describe('detector.cpus', () => {
  const tasks = () => readdirSync('/proc/self/task').map((t) => ({ tid: Number(t), cpus: threadCpus(Number(t)) }));
  function recording(): { log: Logger; lines: { msg: string; cpus?: string; err?: string }[] } {
    const lines: { msg: string; cpus?: string; err?: string }[] = [];
    return { log: pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) }), lines };
  }

  it('pins the worker thread and the ONNX Runtime threads it creates; the rest of the process keeps every CPU', async () => {
    const all = threadCpus('self');
    const last = availableParallelism() - 1;
    const before = new Set(tasks().map((t) => t.tid));
    const { log, lines } = recording();
    const d = create({ cpus: [last], threads: 2 }, {}, log);
    await d.start();
    const pinned = tasks().filter((t) => !before.has(t.tid) && t.cpus === String(last));
    // The worker thread and ONNX Runtime's second intra-op thread (threads: 2).
    expect(pinned.length).toBeGreaterThanOrEqual(2);
    expect(lines.find((l) => l.msg === 'detector thread pinned')?.cpus).toBe(String(last));
    expect(threadCpus('self')).toBe(all);
    expect((await d.detect('cam', frame())).status).toBe('done');
  });

  it('a CPU the box does not have: a warning naming it, and the detector runs unpinned', async () => {
    const { log, lines } = recording();
    const d = create({ cpus: [1023] }, {}, log);
    await d.start();
    const warn = lines.find((l) => l.msg.startsWith('detector thread not pinned'));
    expect(warn?.err).toMatch(/AFFINITY|cannot pin thread \d+ to CPUs 1023/);
    expect(warn?.cpus).toBe(threadCpus('self'));
    expect((await d.detect('cam', frame())).status).toBe('done');
  });

  it('the config refuses a repeated or negative CPU', () => {
    expect(DetectorSchema.safeParse({ cpus: [1, 1] }).success).toBe(false);
    expect(DetectorSchema.safeParse({ cpus: [-1] }).success).toBe(false);
    expect(DetectorSchema.safeParse({ cpus: [] }).success).toBe(false);
    expect(DetectorSchema.parse({ cpus: [0, 2] }).cpus).toEqual([0, 2]);
  });
});
