import { parseArgs } from 'node:util';
import { analyzeClip } from '../../inference/analyze.js';
import { EXIT } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { loadConfigOrReport, type CliIo } from './io.js';

const USAGE = 'usage: roadside-agent analyze --config FILE --camera ID [--fps N | --all-frames] [--evidence DIR] CLIP\n';

/**
 * `analyze`: one camera's detector (with its roi), tracker and analytics on a recorded clip, through the same
 * frame loop as `run`; events as JSON lines on stdout (no broker, no outbox). For tuning the roi, lines,
 * zones and calibration on footage from the site.
 */
export async function analyzeCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      camera: { type: 'string' },
      fps: { type: 'string' },
      'all-frames': { type: 'boolean' },
      evidence: { type: 'string' },
    },
  });
  const clip = positionals[0];
  if (!values.config || !values.camera || !clip || positionals.length > 1) {
    io.stderr(USAGE);
    return EXIT.USAGE;
  }
  const fps = values.fps === undefined ? undefined : Number(values.fps);
  if (fps !== undefined && !(fps > 0 && fps <= 60)) {
    io.stderr(`--fps: expected a number of frames per second in (0, 60] (got "${values.fps}")\n${USAGE}`);
    return EXIT.USAGE;
  }
  const loaded = loadConfigOrReport(values.config, io);
  if (typeof loaded === 'number') return loaded;
  // Logs go to stderr: stdout carries only events.
  const log = createLogger({ level: 'warn', pretty: 'never', destination: { write: (s: string) => io.stderr(s) } });
  const summary = await analyzeClip(loaded.config, values.camera, clip, (e) => io.stdout(`${JSON.stringify(e)}\n`), log, {
    fps: values['all-frames'] ? null : fps,
    ...(values.evidence ? { evidenceDir: values.evidence } : {}),
  });
  io.stderr(`analyzed ${summary.frames} frames in ${summary.wall_ms} ms (${summary.fps} fps, inference ${summary.inference_ms_mean} ms): ${summary.detections} detections, ${summary.events} events\n`);
  return EXIT.OK;
}
