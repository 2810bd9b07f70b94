// How a frame reaches the detector's worker without a copy and without the worker waiting for the main thread.
//
// session.run of onnxruntime-node blocks the worker's JS thread for the whole inference (the binding calls the
// native run inside a setImmediate), so the worker cannot pre-process the next frame meanwhile. The main thread
// can: it fills a pooled input buffer from the frame (input.ts: a copy of its bytes for a uint8 NHWC model such
// as the bundled int8 one, HWC uint8 → CHW float32 for a float model) and posts it while the worker still runs
// the previous one, so the worker goes from one session.run to the next without a round trip. The frame's own
// buffer never leaves the main thread. The input buffer is transferred, not shared: ONNX Runtime refuses a
// tensor over a SharedArrayBuffer ("Invalid argument", onnxruntime-node 1.30).
//
// A run posted behind the running one stays cancellable until the worker claims it: a newer frame of its
// camera, or a camera that round-robin puts first, takes its place (RunClaims).

/** Cells of the claim ring: a run's cell holds its id while it waits, -id once claimed, 0 once cancelled. */
const CLAIM_CELLS = 64;
/** Run ids stay positive int32 values. */
const MAX_RUN_ID = 0x3fff_ffff;

/** The next run id after `id` (1 … MAX_RUN_ID, wrapping). */
export function nextRunId(id: number): number {
  return id >= MAX_RUN_ID ? 1 : id + 1;
}

/**
 * Who runs a posted run: the worker claims it (compare-and-swap id → -id) right before session.run; the host
 * can cancel it while it is unclaimed (id → 0). Exactly one of them wins. Runs share the ring by id modulo its
 * size: a posted run is claimed as soon as the worker has answered the one before it, far sooner than 63 later
 * runs could be posted (at most one waits behind the running one), so a cell is not reused while its run waits.
 */
export class RunClaims {
  private readonly cells: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4 * CLAIM_CELLS)) {
    this.cells = new Int32Array(buffer);
  }

  /** Host: the run is about to be posted. */
  offer(id: number): void {
    Atomics.store(this.cells, id % CLAIM_CELLS, id);
  }

  /** Host: takes the run back; false when the worker has already claimed it. */
  cancel(id: number): boolean {
    return Atomics.compareExchange(this.cells, id % CLAIM_CELLS, id, 0) === id;
  }

  /** Worker: claims the run; false when the host cancelled it. */
  claim(id: number): boolean {
    return Atomics.compareExchange(this.cells, id % CLAIM_CELLS, id, -id) === id;
  }
}

/**
 * Input buffers for the worker, reused: one is filled on the main thread while another is in the worker.
 * A buffer comes back with the run's reply; one lost with a dead worker is simply not returned.
 */
export class InputBuffers {
  private readonly free: ArrayBuffer[] = [];

  /** @param bytes one model input's size (input.ts inputByteLength) */
  constructor(
    readonly bytes: number,
    private readonly keep = 3,
  ) {}

  take(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(this.bytes);
  }

  give(buf: ArrayBuffer | undefined): void {
    if (buf && buf.byteLength === this.bytes && this.free.length < this.keep) this.free.push(buf);
  }
}
