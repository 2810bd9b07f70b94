// The repository's onnxruntime-node (the agent's own copy, so the build measures the runtime the agent ships),
// with its telemetry off: ONNX Runtime 1.29+ would otherwise write a device id and an event cache under
// ~/.cache/Microsoft and upload run figures (core/runtime-env.ts ORT_OFFLINE_ENV). It reads the switch when it
// loads, so it is set first.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function requireOrt() {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  return createRequire(join(repoRoot, 'package.json'))('onnxruntime-node');
}
