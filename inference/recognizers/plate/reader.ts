/**
 * The plate reader: a Recognizer whose PP-OCRv4 models run in a worker thread (ONNX Runtime's run() blocks
 * the thread it is on). `recognize(crop)` takes a full-resolution vehicle crop and answers the best plate read
 * on it, in canonical form with its format check, or `plate: null` when no text was found.
 */
import type { PlatesConfig } from '../../../config/schema/recognizers.js';
import type { Logger } from '../../../core/log.js';
import type { RgbFrame } from '../../../ingest/frame.js';
import { RecognizerError } from '../errors.js';
import type { RecognizerWorkerDebug } from '../protocol.js';
import { RecognizerWorker, type RecognizerWorkerStats } from '../recognizer-worker.js';
import type { Recognizer } from '../types.js';
import { DEFAULT_DET_SIDE_PX, type PlateEngineOptions, type PlateResult } from './engine.js';
import { defaultPlateModels, type PlateModelPaths } from './models.js';

export interface PlateReaderOptions {
  /** Model files instead of the packaged PP-OCRv4 ones. */
  models?: Partial<PlateModelPaths>;
  /** Longer side of the detector input, pixels. Default DEFAULT_DET_SIDE_PX (320). */
  det_side_px?: number;
  /** A read longer than this replaces the worker, ms. Default 10 000. */
  stuck_timeout_ms?: number;
  /** Crops waiting for the worker before RECOGNIZER_BUSY. Default 8. */
  max_queue?: number;
  /** Test hooks (crash, hang); never from the config file. */
  debug?: RecognizerWorkerDebug;
}

export class PlateReader implements Recognizer<PlateResult> {
  readonly name = 'plate-reader';
  private worker: RecognizerWorker<PlateEngineOptions, PlateResult> | undefined;
  private running = false;

  constructor(
    private readonly cfg: Pick<PlatesConfig, 'threads'>,
    private readonly log: Logger,
    private readonly opts: PlateReaderOptions = {},
  ) {}

  /** Starts the worker and waits for both models (about a second); RECOGNIZER_MODEL_LOAD when they cannot load. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.running) return;
    const init: PlateEngineOptions = { ...defaultPlateModels(), ...this.opts.models, threads: this.cfg.threads, det_side_px: this.opts.det_side_px ?? DEFAULT_DET_SIDE_PX };
    const worker = new RecognizerWorker<PlateEngineOptions, PlateResult>(
      {
        name: this.name,
        script: new URL('./worker.js', import.meta.url),
        init,
        stuck_timeout_ms: this.opts.stuck_timeout_ms,
        max_queue: this.opts.max_queue,
        debug: this.opts.debug,
      },
      this.log,
    );
    this.worker = worker;
    await worker.start(signal);
    this.running = true;
    this.log.info({ recognizer: this.name, threads: init.threads, det_side_px: init.det_side_px }, 'plate reader started');
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.worker?.stop();
  }

  recognize(crop: RgbFrame): Promise<PlateResult> {
    if (!this.running || !this.worker) return Promise.reject(new RecognizerError('RECOGNIZER_NOT_RUNNING', 'plate reader is not running'));
    return this.worker.run(crop);
  }

  /** Figures of the current (or, after stop, the last) worker: reads, restarts, queue, thread state; null before start. */
  stats(): RecognizerWorkerStats | null {
    return this.worker?.stats() ?? null;
  }
}
