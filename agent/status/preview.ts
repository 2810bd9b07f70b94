// Live camera preview for the status page as JPEG frames: one ffmpeg per watched camera turning the stream into
// JPEGs (MJPEG, `-f image2pipe`), relayed to the page's websocket by the status server. It runs only while
// someone watches: started by the first viewer, stopped after the last one leaves.
//
// The page's first choice is the MPEG-1 preview (mpeg1.ts: a fraction of the bytes, no connection of its own
// to the camera). This one is its fallback (no pipeline frames, no MPEG-1 in the browser) and the source of
// /api/cameras/:id/frame.jpg while it runs: each JPEG is self-contained and decoded natively by the browser.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { CameraConfig } from '../../config/schema/index.js';
import { buildFfmpegPlan } from '../../ingest/ffmpeg-args.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import { redactUrl, type Logger } from '../../core/log.js';

export interface PreviewOptions {
  /** Output frame rate. */
  fps: number;
  /** Largest output width, pixels (never enlarged). */
  maxWidth: number;
  /** Default "ffmpeg". */
  ffmpegPath?: string;
  /** Keep ffmpeg running this long after the last viewer left (page reloads), ms. Default 2000. */
  lingerMs?: number;
  /** JPEG quality, ffmpeg -q:v 2 (best) … 31. Default 7. */
  quality?: number;
}

export interface PreviewCommand {
  args: string[];
  /** Written to the child's fd 3 when set (credentials stay off argv; see buildFfmpegPlan). */
  script?: string;
  /** The input as it may be logged. */
  display: string;
}

/**
 * The preview's ffmpeg command line: the camera module's input part (RTSP options, credentials through fd 3,
 * `-re -stream_loop -1` for files, hardware decode) with a JPEG output of our own.
 */
export function previewCommand(cam: CameraConfig, opts: Pick<PreviewOptions, 'fps' | 'maxWidth' | 'quality'>): PreviewCommand {
  const plan = buildFfmpegPlan(cam, { width: 16, height: 16, resize: 'stretch' }, { socketTimeoutMs: 10_000, logLevel: 'error' });
  const cut = plan.args.indexOf('-map');
  if (cut < 0) throw new AgentError('PREVIEW_ARGS', 'unexpected ffmpeg plan from the camera module (no -map)');
  const width = Math.max(16, Math.round(opts.maxWidth / 2) * 2);
  const args = [
    ...plan.args.slice(0, cut),
    '-map', '0:v:0', '-an', '-sn', '-dn',
    // h=-2: keep the aspect ratio with an even height; min(): never enlarge a small substream.
    '-vf', `fps=${opts.fps},scale=w=min(${width}\\,iw):h=-2`,
    '-c:v', 'mjpeg', '-q:v', String(opts.quality ?? 7),
    '-f', 'image2pipe', 'pipe:1',
  ];
  return plan.script === undefined ? { args, display: plan.display } : { args, script: plan.script, display: plan.display };
}

/** Splits a stream of concatenated JPEG files (ffmpeg image2pipe) into frames: SOI FFD8 … EOI FFD9. */
export class JpegSplitter {
  private buf: Buffer = Buffer.alloc(0);
  private scanFrom = 2;
  /** Largest frame accepted; anything longer is garbage and dropped. */
  constructor(private readonly maxBytes = 8 * 1024 * 1024) {}

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      if (this.buf[0] !== 0xff || this.buf[1] !== 0xd8) {
        // resynchronise on the next SOI
        const soi = this.buf.indexOf(Buffer.from([0xff, 0xd8]), 1);
        this.buf = soi < 0 ? Buffer.alloc(0) : this.buf.subarray(soi);
        this.scanFrom = 2;
        continue;
      }
      // Inside entropy-coded data 0xFF is stuffed (FF00), so FFD9 only ever is the end-of-image marker.
      const eoi = this.buf.indexOf(Buffer.from([0xff, 0xd9]), this.scanFrom);
      if (eoi < 0) {
        this.scanFrom = Math.max(2, this.buf.length - 1);
        if (this.buf.length > this.maxBytes) {
          this.buf = Buffer.alloc(0);
          this.scanFrom = 2;
        }
        break;
      }
      out.push(Buffer.from(this.buf.subarray(0, eoi + 2)));
      this.buf = this.buf.subarray(eoi + 2);
      this.scanFrom = 2;
    }
    return out;
  }
}

/** Someone watching: the status server's websocket client. */
export interface PreviewViewer {
  /** A JPEG frame; the viewer drops it when its connection is backed up. */
  frame(jpeg: Buffer): void;
  status(state: 'starting' | 'running' | 'retrying', message?: string): void;
}

export interface PreviewState {
  camera: string;
  running: boolean;
  viewers: number;
  frames: number;
  pid: number | null;
  last_error: string | null;
}

/** The preview of one camera. */
export class CameraPreview {
  private readonly viewers = new Set<PreviewViewer>();
  private child: ChildProcess | undefined;
  private latest: { jpeg: Buffer; at: number } | undefined;
  private frames = 0;
  private lastError: string | null = null;
  private restartTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private backoffMs = 1000;
  private closed = false;
  /** Children we are stopping: their exit is expected (ffmpeg answers SIGTERM with exit code 255). */
  private readonly halting = new WeakSet<ChildProcess>();
  private readonly log: Logger;

  constructor(
    private readonly cam: CameraConfig,
    private readonly opts: PreviewOptions,
    log: Logger,
  ) {
    this.log = log.child({ camera: cam.id });
  }

  addViewer(v: PreviewViewer): void {
    if (this.closed) return;
    this.viewers.add(v);
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.child) {
      v.status('running');
      if (this.latest) v.frame(this.latest.jpeg);
    } else if (!this.restartTimer) {
      v.status('starting');
      this.spawn();
    } else {
      v.status('retrying', this.lastError ?? undefined);
    }
  }

  removeViewer(v: PreviewViewer): void {
    if (!this.viewers.delete(v) || this.viewers.size > 0) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      if (this.viewers.size === 0) void this.halt();
    }, this.opts.lingerMs ?? 2000);
    this.lingerTimer.unref();
  }

  /** The newest frame when it is at most `maxAgeMs` old. */
  latestJpeg(maxAgeMs: number): Buffer | undefined {
    return this.latest && Date.now() - this.latest.at <= maxAgeMs ? this.latest.jpeg : undefined;
  }

  state(): PreviewState {
    return {
      camera: this.cam.id,
      running: this.child !== undefined,
      viewers: this.viewers.size,
      frames: this.frames,
      pid: this.child?.pid ?? null,
      last_error: this.lastError,
    };
  }

  /** Stops ffmpeg for good (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    this.viewers.clear();
    await this.halt();
  }

  private spawn(): void {
    let cmd: PreviewCommand;
    try {
      cmd = previewCommand(this.cam, this.opts);
    } catch (err) {
      this.fail(`preview not possible: ${errorMessage(err)}`);
      return;
    }
    const splitter = new JpegSplitter();
    const child = spawn(this.opts.ffmpegPath ?? 'ffmpeg', cmd.args, { stdio: ['ignore', 'pipe', 'pipe', cmd.script === undefined ? 'ignore' : 'pipe'] });
    this.child = child;
    this.log.info({ input: cmd.display, pid: child.pid }, 'preview started');
    if (cmd.script !== undefined) {
      const fd3 = child.stdio[3] as Writable | null;
      fd3?.on('error', () => undefined);
      fd3?.end(cmd.script);
    }
    let stderrTail = '';
    const startedAt = Date.now();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderrTail = (stderrTail + d).slice(-2000);
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      for (const jpeg of splitter.push(chunk)) {
        this.frames += 1;
        this.latest = { jpeg, at: Date.now() };
        if (this.frames === 1 || Date.now() - startedAt > 10_000) this.backoffMs = 1000;
        for (const v of this.viewers) v.frame(jpeg);
      }
    });
    child.once('error', (err) => {
      this.lastError = redactUrl(errorMessage(err));
    });
    child.once('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.halting.has(child)) return;
      const tail = redactUrl(stderrTail.trim().split('\n').slice(-2).join(' | '));
      this.lastError = `ffmpeg exited (${signal ?? code})${tail ? `: ${tail}` : ''}`.slice(0, 500);
      this.log.warn({ code, signal, stderr: tail }, 'preview ffmpeg exited');
      if (!this.closed && this.viewers.size > 0) this.scheduleRestart();
    });
  }

  private scheduleRestart(): void {
    for (const v of this.viewers) v.status('retrying', this.lastError ?? undefined);
    const delay = this.backoffMs;
    this.backoffMs = Math.min(15_000, this.backoffMs * 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed && this.viewers.size > 0) this.spawn();
    }, delay);
    this.restartTimer.unref();
  }

  private fail(message: string): void {
    this.lastError = message;
    this.log.warn(message);
    for (const v of this.viewers) v.status('retrying', message);
  }

  /** Stops ffmpeg: SIGTERM, SIGKILL after 2 s. */
  private async halt(): Promise<void> {
    clearTimeout(this.restartTimer);
    clearTimeout(this.lingerTimer);
    this.restartTimer = this.lingerTimer = undefined;
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    this.halting.add(child);
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
      child.once('close', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
    this.log.info({ frames: this.frames }, 'preview stopped');
  }
}
