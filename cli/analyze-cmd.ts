import { Command, InvalidArgumentError } from 'commander';
import type { AnalyzeOptions } from './analyze-run.js';
import type { CliContext } from './framework.js';

const fpsValue = (value: string): number => {
  const n = Number(value);
  if (!(n > 0 && n <= 60)) throw new InvalidArgumentError('expected a number of frames per second in (0, 60]');
  return n;
};

/** An ISO 8601 time with its zone (a time without one would depend on the box's time zone). */
const isoValue = (value: string): number => {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(value.trim()) || !Number.isFinite(ms) || ms < 0) {
    throw new InvalidArgumentError('expected an ISO 8601 time from 1970 with a zone, e.g. 2024-05-01T08:00:00Z');
  }
  return ms;
};

const secondsValue = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a clip time in seconds, 0 or more');
  return n;
};

/**
 * `analyze`: one camera's detector (with its roi), tracker and analytics on a recorded clip, through the same
 * frame loop as `run`; events as JSON lines on stdout (no broker, no outbox), everything else on stderr
 * (progress at a terminal, the summary table). With --overlay, what it saw drawn over the clip. For placing
 * the roi, lines, zones and calibration on footage from the site.
 */
export function analyzeCommand(ctx: CliContext): Command {
  return new Command('analyze')
    .summary("one camera's pipeline on a recorded clip, events as JSON lines")
    .description(
      "Runs one camera's detector (with its roi), tracker and analytics on a recorded clip, through the same frame " +
        'loop as `run`, and prints the events as JSON lines on stdout (no broker, no outbox). Everything else goes to ' +
        'stderr: a progress bar when stderr is a terminal, then a summary table (per line and direction the crossings ' +
        'by class, per lane where lanes are set; per zone the entries, peak occupancy and longest dwell). Times follow ' +
        'the clip: the first frame is at --start, else the clip\'s creation time, else 1970-01-01T00:00:00Z (never now), ' +
        'and event ids derive from them, so a clip gives the same events on every run. --overlay draws the lines ' +
        '(arrow: the "in" side), zones, tracks and running counts over the clip at the camera frame size ' +
        '(cameras[].frame). For placing the roi, lines, zones and calibration on footage from the site.',
    )
    .argument('<CLIP>', 'video file recorded at the site')
    // Checked in the action, not with requiredOption: a mistyped flag must be reported as such first.
    .option('-c, --config <FILE>', 'the agent config (required)')
    .option('--camera <ID>', 'the camera of the config whose settings apply (required)')
    .option('--fps <N>', 'frames per second analysed, in (0, 60] (default: the camera detection_fps)', fpsValue)
    .option('--all-frames', 'analyse every frame of the clip')
    .option('--start <ISO>', 'wall time of the first frame, with a zone, e.g. 2024-05-01T08:00:00Z (default: the clip\'s creation time, else 1970-01-01T00:00:00Z)', isoValue)
    .option('--overlay <FILE>', 'also write the clip with lines, zones, tracks and counts drawn on it: FILE.mp4 (the analysed frames, at the analysed rate) or FILE.png (one frame)')
    .option('--overlay-at <SECONDS>', 'clip time of the --overlay FILE.png frame (default: the middle of the analysed part)', secondsValue)
    .option('--evidence <DIR>', 'write an evidence package per violation here (cut from the clip: clip, full-resolution stills, vehicle and plate crops, signed manifest)')
    .addHelpText('after', '\nExit codes: 0 analysed, 1 failure, 64 usage, 78 invalid configuration.')
    .action(async (clip: string, opts: AnalyzeOptions, cmd: Command) => {
      // The pipeline, the detector and the overlay writer (sharp) load only when a clip is analysed.
      const { analyze } = await import('./analyze-run.js');
      await analyze(clip, opts, cmd, ctx);
    });
}
