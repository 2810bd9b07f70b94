// snapshot: a JPEG of the camera at its native resolution, from a short extra connection (the live path runs
// at the detector's input size only).
import { createHash } from 'node:crypto';
import type { CameraConfig } from '../../config/schema/index.js';
import { grabFrame } from '../../ingest/index.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import { loadSharp } from '../../core/sharp.js';
import type { AgentCommands } from './registry.js';

export function registerSnapshot(commands: AgentCommands, cameras: readonly CameraConfig[]): void {
  commands.register('snapshot', async ({ camera, quality }) => {
    const cam = cameras.find((c) => c.id === camera);
    if (!cam) throw new AgentError('UNKNOWN_CAMERA', `no camera "${camera}" (cameras: ${cameras.map((c) => c.id).join(', ')})`);
    const frame = await grabFrame(cam, { width: cam.frame.width, height: cam.frame.height, resize: 'stretch' }, { timeoutMs: 10_000 }).catch((err: unknown) => {
      throw new AgentError('SNAPSHOT_FAILED', `camera "${camera}": ${errorMessage(err)}`);
    });
    const sharp = await loadSharp();
    const jpeg = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality }).toBuffer();
    return {
      camera,
      width: frame.width,
      height: frame.height,
      captured_at: new Date(frame.captured_at_ms).toISOString(),
      sha256: createHash('sha256').update(jpeg).digest('hex'),
      jpeg_base64: jpeg.toString('base64'),
    };
  });
}
