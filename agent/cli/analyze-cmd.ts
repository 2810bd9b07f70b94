import { Command, InvalidArgumentError } from 'commander';
import { analyzeClip } from '../../inference/analyze.js';
import { createLogger } from '../../core/log.js';
import { usageError, type CliContext } from './framework.js';
import { loadConfigOrReport } from './io.js';

const fpsValue = (value: string): number => {
  const n = Number(value);
  if (!(n > 0 && n <= 60)) throw new InvalidArgumentError('expected a number of frames per second in (0, 60]');
  return n;
};

interface AnalyzeOptions {
  config?: string;
  camera?: string;
  fps?: number;
  allFrames?: boolean;
  evidence?: string;
}

/**
 * `analyze`: one camera's detector (with its roi), tracker and analytics on a recorded clip, through the same
 * frame loop as `run`; events as JSON lines on stdout (no broker, no outbox). For tuning the roi, lines,
 * zones and calibration on footage from the site.
 */
export function analyzeCommand(ctx: CliContext): Command {
  return new Command('analyze')
    .summary("one camera's pipeline on a recorded clip, events as JSON lines")
    .description(
      "Runs one camera's detector (with its roi), tracker and analytics on a recorded clip, through the same frame " +
        'loop as `run`, and prints the events as JSON lines on stdout (no broker, no outbox); the summary goes to ' +
        'stderr. For tuning the roi, lines, zones and calibration on footage from the site.',
    )
    .argument('<CLIP>', 'video file recorded at the site')
    // Checked in the action, not with requiredOption: a mistyped flag must be reported as such first.
    .option('-c, --config <FILE>', 'the agent config (required)')
    .option('--camera <ID>', 'the camera of the config whose settings apply (required)')
    .option('--fps <N>', 'frames per second analysed, in (0, 60] (default: the camera detection_fps)', fpsValue)
    .option('--all-frames', 'analyse every frame of the clip')
    .option('--evidence <DIR>', 'write evidence snapshots of violations here')
    .addHelpText('after', '\nExit codes: 0 analysed, 1 failure, 64 usage, 78 invalid configuration.')
    .action(async (clip: string, opts: AnalyzeOptions, cmd: Command) => {
      const { config, camera } = opts;
      if (config === undefined) usageError(cmd, '--config FILE is required');
      if (camera === undefined) usageError(cmd, '--camera ID is required');
      if (opts.fps !== undefined && opts.allFrames) usageError(cmd, '--fps and --all-frames exclude each other');
      const loaded = loadConfigOrReport(config, ctx.io);
      if (typeof loaded === 'number') {
        ctx.code = loaded;
        return;
      }
      const { io } = ctx;
      // Logs go to stderr: stdout carries only events.
      const log = createLogger({ level: 'warn', pretty: 'never', destination: { write: (s: string) => io.stderr(s) } });
      const summary = await analyzeClip(loaded.config, camera, clip, (e) => io.stdout(`${JSON.stringify(e)}\n`), log, {
        fps: opts.allFrames ? null : opts.fps,
        ...(opts.evidence ? { evidenceDir: opts.evidence } : {}),
      });
      io.stderr(`analyzed ${summary.frames} frames in ${summary.wall_ms} ms (${summary.fps} fps, inference ${summary.inference_ms_mean} ms): ${summary.detections} detections, ${summary.events} events\n`);
    });
}
