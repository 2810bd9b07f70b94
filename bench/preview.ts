/**
 * Live preview bandwidth: the bytes per second one status-page viewer receives, MPEG-1 (jsmpeg) against JPEG
 * frames, over the demo clip through a file camera as in config/examples/demo.yaml (same preview rate and width).
 * Both as the agent runs them: JPEG from the preview's own ffmpeg on the camera, MPEG-1 from the frames the
 * camera source hands the pipeline (detector input size, `detection_fps`). Goal (issue 13): MPEG-1 ≤ ¼ of JPEG.
 *
 *   npx tsx bench/preview.ts [seconds]
 */
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../config/loader.js';
import type { CameraConfig, Config } from '../config/schema/index.js';
import { StatusSchema } from '../config/schema/index.js';
import type { HealthPayload } from '../contract/health.js';
import { silentLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { CameraSource } from '../ingest/index.js';
import type { RgbFrame } from '../ingest/frame.js';
import { StatusServer } from '../agent/status/server.js';
import { StaticFigures } from '../testkit/static-figures.js';
import { freePort } from '../testkit/ports.js';

/**
 * A file (or RTSP) camera as the agent's camera module runs it, standing in for the pipeline: its newest frame
 * goes to `onFrame` (the status server's `figures.latestFrame`).
 */
export class CameraFrames {
  private readonly source: CameraSource;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  frames = 0;

  constructor(
    cam: CameraConfig,
    target: Config['detector']['input_size'] & { resize: Config['detector']['resize'] },
    private readonly onFrame: (f: RgbFrame) => void,
  ) {
    this.source = new CameraSource(cam, target, silentLogger());
  }

  async start(): Promise<void> {
    await this.source.start(this.abort.signal);
    this.loop = (async () => {
      for await (const f of this.source.frames(this.abort.signal)) {
        this.frames += 1;
        this.onFrame(f);
      }
    })();
  }

  /** The camera's ffmpeg (pid), for process checks. */
  pid(): number | null {
    return this.source.stats().ffmpeg_pid;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.source.stop();
    await this.loop;
  }
}

/** The demo configuration, with the clip path resolved. */
export function demoConfig(): Config {
  return loadConfig(join(packageRoot(), 'config/examples/demo.yaml'), {}).config;
}

/** A status server for `cam` whose pipeline frames come from `figures.frames`. Only the live previews are used. */
export async function previewServer(cam: CameraConfig, figures: StaticFigures, status: Record<string, unknown> = {}, lingerMs = 300): Promise<StatusServer> {
  const port = await freePort();
  const server = new StatusServer({
    config: StatusSchema.parse({ ...status, port }),
    cameras: [cam],
    health: {
      current: (): HealthPayload => {
        throw new Error('health is not part of the preview benchmark');
      },
    },
    figures,
    log: silentLogger(),
    previewLingerMs: lingerMs,
  });
  await server.start(new AbortController().signal);
  return server;
}

/** Counts the binary bytes one websocket viewer receives, from `fromMs` after it opened for `forMs`. */
function countBytes(url: string, fromMs: number, forMs: number): Promise<{ bytes: number; messages: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let counting = false;
    let bytes = 0;
    let messages = 0;
    ws.on('error', reject);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!counting || !isBinary) return;
      bytes += data.length;
      messages += 1;
    });
    ws.once('open', () => {
      setTimeout(() => (counting = true), fromMs);
      setTimeout(() => {
        ws.close();
        resolve({ bytes, messages });
      }, fromMs + forMs);
    });
  });
}

export interface PreviewBench {
  mpeg1_bytes_per_s: number;
  jpeg_bytes_per_s: number;
  /** mpeg1 / jpeg. */
  ratio: number;
  /** Frames handed to the MPEG-1 encoder per second (the pipeline's, at most preview_fps). */
  mpeg1_frames_per_s: number;
  jpeg_frames_per_s: number;
  /** MPEG-1 fed with frames at the preview's own size (640x480), not the detector's: the same pictures as JPEG. */
  mpeg1_preview_size_frames_bytes_per_s?: number;
  preview_fps: number;
  preview_width: number;
  seconds: number;
}

interface Measured {
  mpeg1: { bytes: number; frames: number };
  jpeg: { bytes: number; messages: number } | undefined;
}

/** One viewer of each preview (or only MPEG-1) of the demo camera at once, counted after a warm-up. */
async function measure(config: Config, target: { width: number; height: number }, seconds: number, warmupMs: number, withJpeg: boolean): Promise<Measured> {
  const cam = config.cameras[0]!;
  const figures = new StaticFigures();
  const frames = new CameraFrames(cam, { ...target, resize: config.detector.resize }, (f) => (figures.frames[cam.id] = f));
  await frames.start();
  const server = await previewServer(cam, figures, { preview_fps: config.status.preview_fps, preview_width: config.status.preview_width });
  try {
    const base = `ws://127.0.0.1:${server.address()!.port}/api/cameras/${cam.id}/live`;
    const encoded = () => server.mpeg1States()[0]?.frames ?? 0;
    let from = 0;
    setTimeout(() => (from = encoded()), warmupMs);
    const [mpeg1, jpeg] = await Promise.all([countBytes(`${base}?format=mpeg1`, warmupMs, seconds * 1000), withJpeg ? countBytes(base, warmupMs, seconds * 1000) : undefined]);
    return { mpeg1: { bytes: mpeg1.bytes, frames: encoded() - from }, jpeg };
  } finally {
    await server.stop();
    await frames.stop();
  }
}

/**
 * Bytes per second per viewer of both previews of the demo camera. With `sameSize`, MPEG-1 once more from
 * frames at the preview's size (the same pictures as the JPEGs, not upscaled from the detector's input).
 */
export async function benchPreview(opts: { seconds?: number; warmupMs?: number; sameSize?: boolean } = {}): Promise<PreviewBench> {
  const seconds = opts.seconds ?? 15;
  const warmupMs = opts.warmupMs ?? 3000;
  const config = demoConfig();
  const m = await measure(config, config.detector.input_size, seconds, warmupMs, true);
  const perS = (v: number, d = 0) => Math.round((v / seconds) * 10 ** d) / 10 ** d;
  const jpeg = m.jpeg!;
  const result: PreviewBench = {
    mpeg1_bytes_per_s: perS(m.mpeg1.bytes),
    jpeg_bytes_per_s: perS(jpeg.bytes),
    ratio: Math.round((m.mpeg1.bytes / Math.max(1, jpeg.bytes)) * 1000) / 1000,
    mpeg1_frames_per_s: perS(m.mpeg1.frames, 1),
    jpeg_frames_per_s: perS(jpeg.messages, 1),
    preview_fps: config.status.preview_fps,
    preview_width: config.status.preview_width,
    seconds,
  };
  if (opts.sameSize) {
    const cam = config.cameras[0]!.frame;
    const width = config.status.preview_width;
    const same = await measure(config, { width, height: Math.round((width * cam.height) / cam.width / 2) * 2 }, seconds, warmupMs, false);
    result.mpeg1_preview_size_frames_bytes_per_s = perS(same.mpeg1.bytes);
  }
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Number(process.argv[2] ?? 15);
  process.stdout.write(`${JSON.stringify(await benchPreview({ seconds, sameSize: true }), null, 2)}\n`);
}
