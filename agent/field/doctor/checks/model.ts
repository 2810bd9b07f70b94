// Model: the ONNX file loads in the agent's detector (worker thread, same decoder), and how long one inference takes.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Config } from '../../../../config/schema/index.js';
import { Detector, DetectorError } from '../../../../inference/detector/index.js';
import { errorMessage } from '../../../../core/errors.js';
import { silentLogger } from '../../../../core/log.js';
import { fail, pass, warn, type CheckOutcome } from '../types.js';

/** Timed runs after one warm-up run (the first run of a session pays for allocations). */
const RUNS = 3;
/** Grey of the blank frame: the letterbox band colour, what the model sees in padding. */
const BLANK = 114;

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** `<model>.sha256` beside the model (shipped with the bundled one): its first word, if present. */
function expectedHash(model: string): string | undefined {
  try {
    return /^[0-9a-f]{64}\b/i.exec(readFileSync(`${model}.sha256`, 'utf8').trim())?.[0]?.toLowerCase();
  } catch {
    return undefined;
  }
}

/** The fix for a detector that would not start, from its error code and the hint in its message. */
export function modelFix(err: unknown): string {
  const code = err instanceof DetectorError ? err.code : undefined;
  const msg = errorMessage(err);
  const decoder = /try decoder: (\w+)/.exec(msg)?.[1];
  const size = /set detector\.input_size to (\d+x\d+)/.exec(msg)?.[1];
  switch (code) {
    case 'DETECTOR_MODEL_LOAD':
      return 'detector.model_path is not an ONNX model ONNX Runtime can load: point it at the .onnx file (default: the bundled models/nanodet-int8.onnx) or copy the model again';
    case 'DETECTOR_MODEL_MISMATCH':
      if (decoder) return `set detector.decoder: ${decoder} (the model's outputs do not fit the configured decoder)`;
      if (size) return `set detector.input_size to ${size} (the model's input size)`;
      if (/class names/.test(msg)) return 'set detector.class_names to the model\'s classes, in output order';
      return 'the model does not fit detector.decoder / input_size: check both against the model';
    case 'DETECTOR_CONFIG':
      return 'check detector.classes and detector.class_names';
    default:
      return 'the detector did not start: see the detail; check detector.model_path and detector.threads';
  }
}

export async function checkModel(config: Config, signal: AbortSignal): Promise<CheckOutcome> {
  const cfg = config.detector;
  const model = cfg.model_path ?? '';
  const figures: Record<string, unknown> = { model_path: model, decoder: cfg.decoder, input_size: `${cfg.input_size.width}x${cfg.input_size.height}`, threads: cfg.threads };
  if (!existsSync(model)) return fail(`model file not found: ${model}`, 'set detector.model_path to the .onnx file, or remove it to use the bundled model', figures);

  const expected = expectedHash(model);
  if (expected !== undefined) {
    const actual = await sha256(model);
    figures.sha256_ok = actual === expected;
    if (actual !== expected) {
      return fail(`${basename(model)} is damaged: its sha256 differs from ${basename(model)}.sha256`, 'copy the model again (or reinstall the release): the file on the box is not the one shipped', figures);
    }
  }

  const detector = new Detector(cfg, silentLogger());
  const t0 = performance.now();
  try {
    try {
      await detector.start(signal);
    } catch (err) {
      return fail(`model does not load: ${errorMessage(err)}`, modelFix(err), { ...figures, error: err instanceof DetectorError ? err.code : null });
    }
    figures.load_ms = Math.round(performance.now() - t0);
    const { width, height } = cfg.input_size;
    const runs: { model_ms: number; total_ms: number; detections: number }[] = [];
    for (let i = 0; i <= RUNS && !signal.aborted; i++) {
      const frame = { data: new Uint8Array(width * height * 3).fill(BLANK), width, height, source_width: width, source_height: height };
      const res = await detector.detect('doctor', frame);
      if (res.status === 'done' && i > 0) runs.push({ model_ms: res.timing.model_ms, total_ms: res.timing.total_ms, detections: res.detections.length });
    }
    if (runs.length === 0) return fail('no inference finished', 'run doctor again; if it persists, see the agent log', figures);
    const mean = (k: 'model_ms' | 'total_ms') => Math.round((runs.reduce((s, r) => s + r[k], 0) / runs.length) * 10) / 10;
    const inference_ms = mean('model_ms');
    const total_ms = mean('total_ms');
    // Every camera's frames go through this one worker: the sum of the detection rates must fit.
    const demand_fps = config.cameras.reduce((s, c) => s + c.detection_fps, 0);
    const capacity_fps = Math.round((1000 / Math.max(total_ms, 0.1)) * 10) / 10;
    Object.assign(figures, { inference_ms, total_ms, capacity_fps, demand_fps, runs: runs.length });
    const head = `${basename(model)} loads in ${((figures.load_ms as number) / 1000).toFixed(1)} s; inference ${inference_ms} ms (${total_ms} ms with pre/post)`;
    if (capacity_fps < demand_fps) {
      return warn(
        `${head}: ${capacity_fps} frames/s, the cameras ask for ${demand_fps} (motion gating may cover the gap)`,
        'lower cameras[].detection_fps, raise detector.threads, or use a smaller detector.input_size',
        figures,
      );
    }
    return pass(`${head}, room for ${capacity_fps} frames/s (cameras ask ${demand_fps})`, figures);
  } finally {
    await detector.stop();
  }
}
