import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts the worker module `script` (a `.js` URL): the compiled file under dist/, else (vitest, tsx) its `.ts`
 * source. Node 20 does not apply a Worker's `execArgv: ['--import', 'tsx']` to the entry module, so the .ts
 * fallback registers tsx's loader in a tiny eval'd bootstrap first. tsx is a dev dependency: only sources need it.
 */
export function startWorkerScript(script: URL, opts: WorkerOptions): Worker {
  if (existsSync(fileURLToPath(script))) return new Worker(script, opts);
  const ts = script.href.replace(/\.js$/, '.ts');
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(boot, { ...opts, eval: true });
}

/**
 * Blocks the calling thread for `ms` like a long native call would (ONNX Runtime inside a run): the debug hooks
 * of the detector's and the recognizers' workers use it to stand for a stuck or slow run in tests.
 */
export function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
