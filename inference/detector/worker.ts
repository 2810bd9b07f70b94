/**
 * Detector worker thread: owns the ONNX session (session.run blocks this thread, not the agent's main loop) and
 * the post-processing. The main thread schedules and pre-processes (handoff.ts); a run posted behind the running
 * one is taken from this thread's message queue as soon as the running one is answered, unless the host
 * cancelled it first (RunClaims).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { tryPinThisThread } from '../../core/affinity.js';
import { budgetedYoungCollector } from '../../core/gc.js';
import { blockThread } from '../../core/worker-thread.js';
import { serializeError } from './errors.js';
import { RunClaims } from './handoff.js';
import { Pipeline } from './pipeline.js';
import type { FromWorker, RunMessage, ToWorker, WorkerData } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('detector worker must run in a worker thread');
const init = workerData as WorkerData;
const debug = init.debug ?? {};
const claims = new RunClaims(init.claims);
// Frees the runs' output tensors once 4 MB of them are dead (core/gc.ts): the dense heads held 20-35 MB between
// V8's own collections.
const collectYoung = budgetedYoungCollector(4 << 20);

function send(msg: FromWorker, transfer: ArrayBuffer[]): void {
  port!.postMessage(msg, transfer);
}

async function handle(pipeline: Pipeline, m: RunMessage): Promise<void> {
  if (!claims.claim(m.id)) return send({ type: 'skipped', id: m.id, input: m.input }, [m.input]);
  try {
    if (debug.crash_camera !== undefined && m.camera_id === debug.crash_camera) {
      setImmediate(() => {
        throw new Error('debug crash (DetectorOptions.debug.crash_camera)');
      });
      return;
    }
    if (debug.hang_camera !== undefined && m.camera_id === debug.hang_camera) blockThread(debug.hang_ms ?? 3_600_000);
    const t0 = performance.now();
    const res = await pipeline.runInput(m.input, m, m.roi);
    if (debug.delay_ms) {
      const rest = debug.delay_ms - (performance.now() - t0);
      if (rest > 0) blockThread(rest);
      res.timing.model_ms += Math.max(0, rest);
    }
    send({ type: 'result', id: m.id, detections: res.detections, timing: res.timing, input: m.input }, [m.input]);
    collectYoung(res.output_bytes);
  } catch (err) {
    send({ type: 'run_error', id: m.id, error: serializeError(err, 'DETECTOR_RUN_FAILED'), input: m.input }, [m.input]);
  }
}

// The session loads at once; messages wait for it. `close` (stop, aborted start) is served after the load and
// the runs already queued: the thread leaves ONNX Runtime, releases the session and exits on its own.
// Terminating it from outside while ONNX Runtime is inside InferenceSession.create or run aborts the process
// ("terminate called after throwing an instance of 'Napi::Error'", SIGABRT).
if (debug.load_delay_ms) blockThread(debug.load_delay_ms);
// Before the session, so ONNX Runtime's pool threads (made at load) inherit the mask; unpinned costs speed only.
if (init.cpus) send({ type: 'pinned', ...tryPinThisThread(init.cpus) }, []);
const created: Promise<Pipeline | undefined> = Pipeline.create(init.pipeline).then(
  (pipeline) => pipeline,
  (err: unknown) => {
    send({ type: 'init_error', error: serializeError(err, 'DETECTOR_MODEL_LOAD') }, []);
    return undefined;
  },
);
let closing = false;
// Runs are serialised here as well as by the scheduler: a message never starts while another runs.
let chain: Promise<unknown> = created;

async function close(): Promise<void> {
  const pipeline = await created;
  try {
    await pipeline?.release();
  } finally {
    process.exit(0); // ends this thread only; the host waits for its 'exit'
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'close') {
    closing = true; // runs queued behind it are dropped: the host has already failed their frames
    chain = chain.then(close, close);
    return;
  }
  chain = chain.then(async () => {
    const pipeline = await created;
    if (pipeline && !closing) await handle(pipeline, m);
  });
});

void created.then((pipeline) => {
  if (pipeline && !closing) send({ type: 'ready', info: pipeline.info }, []);
});
