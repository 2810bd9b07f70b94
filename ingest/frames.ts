// Raw rgb24 bytes from ffmpeg's stdout cut into whole frames.

/**
 * Reuses at most `max` free frame buffers: frames never handed out (replaced or motion-skipped) and frames the
 * consumer gave back once analysed (FrameProducer.release), so neither a busy consumer nor a steady one turns
 * every frame into garbage. A buffer handed out is the consumer's until it gives it back.
 */
export class FramePool {
  private readonly free: Uint8Array[] = [];

  constructor(
    readonly frameBytes: number,
    private readonly max: number,
  ) {}

  /** A buffer of frameBytes with its own ArrayBuffer (transferable to a worker). Contents undefined. */
  take(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(this.frameBytes);
  }

  give(buf: Uint8Array): void {
    if (this.free.length >= this.max || buf.byteLength !== this.frameBytes || buf.byteOffset !== 0 || buf.buffer.byteLength !== this.frameBytes) return;
    // A buffer given twice would later carry two frames at once.
    if (!this.free.some((f) => f.buffer === buf.buffer)) this.free.push(buf);
  }
}

/**
 * Copies stdout chunks straight into frame-sized buffers (each byte copied once) and calls `onFrame` with
 * every complete one. A partial frame at the end of a run is dropped with the assembler.
 */
export class FrameAssembler {
  private buf: Uint8Array | null = null;
  private filled = 0;

  constructor(
    readonly frameBytes: number,
    private readonly alloc: () => Uint8Array,
    private readonly onFrame: (data: Uint8Array) => void,
  ) {}

  push(chunk: Uint8Array): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.buf === null) {
        this.buf = this.alloc();
        this.filled = 0;
      }
      const n = Math.min(this.frameBytes - this.filled, len - off);
      this.buf.set(n === len && off === 0 ? chunk : chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === this.frameBytes) {
        const frame = this.buf;
        this.buf = null;
        this.onFrame(frame);
      }
    }
  }

  /** Bytes of the frame being filled. */
  get partialBytes(): number {
    return this.buf === null ? 0 : this.filled;
  }
}
