// The frame loop gives every frame's bytes back to its source once they are analysed (FrameProducer.release), so a
// steady run reuses a handful of buffers instead of making ~0.5 MB of garbage per frame (which cost the main thread
// a full collection every ~0.2 s at 60 fps). Real parts: the demo clip through ffmpeg, the bundled model in its
// worker, the demo camera's analytics.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/loader.js';
import { silentLogger } from '../../../core/log.js';
import { DEFAULT_MODEL, packageRoot } from '../../../core/paths.js';
import { CameraAnalytics } from '../../../inference/analytics/index.js';
import { Detector } from '../../../inference/detector/index.js';
import { CameraPipeline, type FrameProducer } from '../../../inference/pipeline.js';
import { CLIP_POOL_FRAMES, clipSource } from '../../../ingest/clip.js';
import type { Frame } from '../../../ingest/types.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';

const FPS = 5;

describe.skipIf(!existsSync(DEMO_CLIP) || !existsSync(DEFAULT_MODEL()))('CameraPipeline and its frames', () => {
  it('releases each analysed frame once it is no longer the latest, and the pool reuses them', { timeout: 120_000 }, async () => {
    const { config } = loadConfig(join(packageRoot(), 'config/examples/demo.yaml'), {});
    const camera = config.cameras[0]!;
    const log = silentLogger();
    const detector = new Detector({ ...config.detector, threads: 1 }, log);
    const analytics = new CameraAnalytics(camera, config.analytics, config.device, () => undefined, log, { evidence: false });
    const reader = clipSource(DEMO_CLIP, { ...detector.inputSize, resize: detector.resize }, { fps: FPS, source: camera.frame });
    const handed: Frame[] = [];
    const released: Frame[] = [];
    const source: FrameProducer = {
      async *frames() {
        for await (const f of reader.frames()) {
          handed.push(f);
          yield f;
        }
      },
      release: (f) => {
        released.push(f);
        reader.release(f);
      },
    };
    const pipeline = new CameraPipeline({ camera, source, detector, analytics, clockSynced: () => true, log, frames_in_flight: 2, on_detect_error: 'fail' });
    await detector.start();
    let latestBytes: Uint8Array;
    try {
      await pipeline.run();
      await analytics.flush();
      const view = pipeline.latest()!;
      expect(pipeline.latestDetections()).toEqual(view.detections);
      latestBytes = view.frame.data;
      // The view is a copy: scribbling on it leaves the pipeline's frame as it was.
      const before = Buffer.from(pipeline.latest()!.frame.data);
      latestBytes.fill(7);
      expect(Buffer.compare(Buffer.from(pipeline.latest()!.frame.data), before)).toBe(0);
    } finally {
      await detector.stop();
    }
    const frames = pipeline.stats().frames;
    expect(frames).toBe(handed.length);
    expect(frames).toBeGreaterThanOrEqual(FPS * 15);
    // Every frame but the last analysed one went back, each exactly once, in order.
    expect(released).toEqual(handed.slice(0, -1));
    expect(new Set(released).size).toBe(released.length);
    // A handful of buffers carried the whole clip; the latest view's copy is none of them.
    const buffers = new Set(handed.map((f) => f.data.buffer));
    expect(buffers.size).toBeLessThanOrEqual(CLIP_POOL_FRAMES + 2);
    expect(buffers.has(latestBytes.buffer as ArrayBuffer)).toBe(false);
  });
});
