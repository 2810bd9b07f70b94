import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The installed package's root (works from sources under vitest and from dist/ alike). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'roadside-agent') {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('roadside-agent package root not found');
    dir = up;
  }
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The bundled detector: NanoDet statically quantised to int8 (models/build/quantize.mjs). It passes the fp32 model's
 * accuracy gate (tests/integration/inference/model-int8.test.ts) at about twice its speed and a smaller session;
 * `models/nanodet.onnx` (fp32) stays beside it for `detector.model_path`.
 */
export const DEFAULT_MODEL = (): string => join(packageRoot(), 'models', 'nanodet-int8.onnx');

/** uint8 [1,H,W,3] bytes → float32 [1,3,H,W] RGB/255: run in front of a float-input detector (models/build/bytes-to-float.mjs). */
export const BYTES_TO_FLOAT_MODEL = (): string => join(packageRoot(), 'models', 'bytes-to-float.onnx');
