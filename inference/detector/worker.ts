/**
 * Detector worker thread: owns the ONNX session (session.run blocks this thread, not the agent's main loop),
 * pre- and post-processing. One frame at a time; the main thread schedules.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from './errors.js';
import { Pipeline } from './pipeline.js';
import type { FromWorker, RunMessage, ToWorker, WorkerInit } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('detector worker must run in a worker thread');
const init = workerData as WorkerInit;
const debug = init.debug ?? {};

/** Blocks the thread like a long native call would (Atomics.wait on a private cell, woken by nobody). */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function send(msg: FromWorker, transfer: ArrayBufferLike[] = []): void {
  port!.postMessage(msg, transfer.filter((b): b is ArrayBuffer => b instanceof ArrayBuffer));
}

async function handle(pipeline: Pipeline, m: RunMessage): Promise<void> {
  try {
    if (debug.crash_camera !== undefined && m.camera_id === debug.crash_camera) {
      setImmediate(() => {
        throw new Error('debug crash (DetectorOptions.debug.crash_camera)');
      });
      return;
    }
    if (debug.hang_camera !== undefined && m.camera_id === debug.hang_camera) block(debug.hang_ms ?? 3_600_000);
    const t0 = performance.now();
    const res = await pipeline.run(
      {
        data: new Uint8Array(m.buffer, m.byte_offset, m.length),
        width: m.width,
        height: m.height,
        source_width: m.source_width,
        source_height: m.source_height,
        letterbox: m.letterbox,
      },
      m.roi,
    );
    if (debug.delay_ms) {
      const rest = debug.delay_ms - (performance.now() - t0);
      if (rest > 0) block(rest);
      res.timing.model_ms += Math.max(0, rest);
    }
    send({ type: 'result', id: m.id, detections: res.detections, timing: res.timing, buffer: m.buffer }, [m.buffer]);
  } catch (err) {
    send({ type: 'run_error', id: m.id, error: serializeError(err, 'DETECTOR_RUN_FAILED'), buffer: m.buffer }, [m.buffer]);
  }
}

async function main(): Promise<void> {
  let pipeline: Pipeline;
  try {
    pipeline = await Pipeline.create(init.pipeline);
  } catch (err) {
    send({ type: 'init_error', error: serializeError(err, 'DETECTOR_MODEL_LOAD') });
    return;
  }
  // Runs are serialised here as well as by the scheduler: a message never starts while another runs.
  let chain = Promise.resolve();
  port!.on('message', (m: ToWorker) => {
    chain = chain.then(() => handle(pipeline, m));
  });
  send({ type: 'ready', info: pipeline.info });
}

void main();
