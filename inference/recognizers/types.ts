/**
 * The second stage's slot: a recognizer reads something off the crop of a selected track (a plate, later
 * perhaps a vehicle colour or a make) with its own model, off the main thread. It is a Module: `start()` loads
 * its models (in a worker), `stop()` releases them; `recognize()` reads one crop.
 */
import type { Module } from '../../core/module.js';
import type { RgbFrame } from '../../ingest/frame.js';

export interface Recognizer<Result> extends Module {
  /**
   * Reads one crop (packed RGB, full camera resolution). Rejects with a RecognizerError: RECOGNIZER_BAD_CROP,
   * RECOGNIZER_BUSY (queue full), RECOGNIZER_STUCK, RECOGNIZER_CRASHED, RECOGNIZER_FAILED, RECOGNIZER_NOT_RUNNING.
   */
  recognize(crop: RgbFrame): Promise<Result>;
}

/** The worker side of a recognizer: created in the worker thread, runs one crop at a time. */
export interface RecognizerEngine<Result> {
  run(crop: RgbFrame): Promise<Result>;
  release(): Promise<void>;
}
