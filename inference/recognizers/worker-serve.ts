/**
 * The worker-thread side every recognizer shares: creates the engine from workerData (its models load at
 * once; messages wait for them), runs one crop at a time, and on `close` finishes what it is inside, releases
 * the engine and exits. Terminating a thread from outside while ONNX Runtime is inside a load or run aborts
 * the process, so the thread leaves by itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { youngCollector } from '../../core/gc.js';
import { blockThread } from '../../core/worker-thread.js';
import { serializeRecognizerError } from './errors.js';
import type { FromRecognizerWorker, RecognizerWorkerInit, ToRecognizerWorker } from './protocol.js';
import type { RecognizerEngine } from './types.js';

export function serveRecognizer<Init, Result>(create: (init: Init) => Promise<RecognizerEngine<Result>>): void {
  const port = parentPort;
  if (!port) throw new Error('a recognizer worker must run in a worker thread');
  const init = workerData as RecognizerWorkerInit<Init>;
  const debug = init.debug ?? {};
  const send = (msg: FromRecognizerWorker) => port.postMessage(msg);
  // Frees each run's output tensors once answered (core/gc.ts).
  const collectYoung = youngCollector();

  const created: Promise<RecognizerEngine<Result> | undefined> = create(init.engine).then(
    (engine) => engine,
    (err: unknown) => {
      send({ type: 'init_error', error: serializeRecognizerError(err, 'RECOGNIZER_MODEL_LOAD') });
      return undefined;
    },
  );
  let closing = false;
  let chain: Promise<unknown> = created;

  const close = async () => {
    const engine = await created;
    try {
      await engine?.release();
    } finally {
      process.exit(0); // ends this thread only; the host waits for its 'exit'
    }
  };

  port.on('message', (m: ToRecognizerWorker) => {
    if (m.type === 'close') {
      closing = true;
      chain = chain.then(close, close);
      return;
    }
    chain = chain.then(async () => {
      const engine = await created;
      if (!engine || closing) return;
      if (m.width === debug.crash_width) {
        setImmediate(() => {
          throw new Error('debug crash (RecognizerWorkerDebug.crash_width)');
        });
        return;
      }
      if (m.width === debug.hang_width) blockThread(debug.hang_ms ?? 3_600_000);
      const t0 = performance.now();
      try {
        const result = await engine.run({ data: new Uint8Array(m.buffer), width: m.width, height: m.height });
        send({ type: 'result', id: m.id, result, run_ms: performance.now() - t0 });
        collectYoung();
      } catch (err) {
        send({ type: 'run_error', id: m.id, error: serializeRecognizerError(err, 'RECOGNIZER_RUN_FAILED') });
      }
    });
  });

  void created.then((engine) => {
    if (engine && !closing) send({ type: 'ready' });
  });
}
