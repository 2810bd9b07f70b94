import { isMainThread, type Worker, type WorkerOptions } from 'node:worker_threads';
import { ORT_OFFLINE_ENV } from '../core/runtime-env.js';
import { startWorkerScript } from '../core/worker-thread.js';

/**
 * The one way the agent loads ONNX Runtime and starts its threads, so its telemetry is off whatever environment
 * the agent was started with (core/runtime-env.ts ORT_OFFLINE_ENV: what it would write and send).
 *
 * ONNX Runtime reads the switch from the C environment. A worker thread's `process.env` is a private copy that
 * never reaches it, so the main thread sets it before it starts a thread that loads the runtime.
 */
function keepOrtOffline(): void {
  if (isMainThread) Object.assign(process.env, ORT_OFFLINE_ENV);
}

/** onnxruntime-node, telemetry off when loaded on the main thread (a worker relies on startOrtWorker). */
export async function loadOrt(): Promise<typeof import('onnxruntime-node')> {
  keepOrtOffline();
  return import('onnxruntime-node');
}

/** Starts a worker module that will load ONNX Runtime (core/worker-thread.ts), telemetry off. */
export function startOrtWorker(script: URL, opts: WorkerOptions): Worker {
  keepOrtOffline();
  return startWorkerScript(script, opts);
}
