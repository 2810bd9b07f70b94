import { extname, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { CameraConfig } from '../config/schema/index.js';
import { isoTime, type EventDraft } from '../contract/event.js';
import { analyzeClip, analyzedCamera, type AnalyzeSummary } from '../inference/analyze.js';
import { probeClip, type AnalysedFrame, type ClipInfo, type ReadProgress } from '../inference/analyze-clip.js';
import { createLogger } from '../core/log.js';
import { AnalyzeTally, ProgressBar } from './analyze-report.js';
import { usageError, type CliContext } from './framework.js';
import { loadConfigOrReport } from './io.js';
import { writeOverlayMp4, writeOverlayPng, type OverlayFrame } from './overlay.js';

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

interface AnalyzeOptions {
  config?: string;
  camera?: string;
  fps?: number;
  allFrames?: boolean;
  evidence?: string;
  start?: number;
  overlay?: string;
  overlayAt?: number;
}

const START_FROM = {
  option: '--start',
  creation_time: "the clip's creation time",
  epoch: 'the clip has no creation time; give the real one with --start',
} as const;

/** The closing lines on stderr: the run, the clip time analysed, then the table of counts. */
function summaryText(s: AnalyzeSummary, info: ClipInfo, table: string): string {
  const lines = [
    `analyzed ${s.frames} frames in ${s.wall_ms} ms (${s.fps} fps, inference ${s.inference_ms_mean} ms): ${s.detections} detections, ${s.events} events`,
    `clip time 0-${(s.last_mono_ms / 1000).toFixed(1)} s of ${info.duration_s === undefined ? '?' : info.duration_s.toFixed(1)} s; first frame at ${isoTime(s.start_ms)} (${START_FROM[s.start_from]})`,
  ];
  return `${lines.join('\n')}\n${table ? `\n${table}` : ''}`;
}

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
      const { config, camera } = opts;
      if (config === undefined) usageError(cmd, '--config FILE is required');
      if (camera === undefined) usageError(cmd, '--camera ID is required');
      if (opts.fps !== undefined && opts.allFrames) usageError(cmd, '--fps and --all-frames exclude each other');
      const overlayKind = opts.overlay === undefined ? undefined : extname(opts.overlay).toLowerCase();
      if (overlayKind !== undefined && overlayKind !== '.mp4' && overlayKind !== '.png') usageError(cmd, `--overlay ${opts.overlay}: expected a file name ending in .mp4 or .png`);
      if (opts.overlayAt !== undefined && overlayKind !== '.png') usageError(cmd, '--overlay-at needs --overlay FILE.png');
      const loaded = loadConfigOrReport(config, ctx.io);
      if (typeof loaded === 'number') {
        ctx.code = loaded;
        return;
      }
      const { io } = ctx;
      const cam = analyzedCamera(loaded.config, camera);
      const info = await probeClip(clip);
      if (opts.overlayAt !== undefined && info.duration_s !== undefined && opts.overlayAt > info.duration_s) {
        usageError(cmd, `--overlay-at ${opts.overlayAt}: the clip lasts ${info.duration_s.toFixed(1)} s`);
      }
      // Logs go to stderr: stdout carries only events.
      const log = createLogger({ level: 'warn', pretty: 'never', destination: { write: (s: string) => io.stderr(s) } });
      if (info.width !== cam.frame.width || info.height !== cam.frame.height) {
        log.warn({ clip: `${info.width}x${info.height}`, frame: `${cam.frame.width}x${cam.frame.height}` }, 'the clip is not the camera frame size: it is scaled to it, lines and zones stay in camera frame pixels');
      }
      // A terminal on stderr (stdout may well go to a file) gets a progress bar; pipes and tests get none.
      const terminal = io.stderrTerminal ?? io.interactive;
      const total_ms = info.duration_s === undefined ? undefined : info.duration_s * 1000;
      const bar = terminal ? new ProgressBar(io.stderr, 'analyze', total_ms) : undefined;
      const tally = new AnalyzeTally(cam);
      const frames: OverlayFrame[] = [];
      const onEvent = (e: EventDraft): void => {
        tally.add(e);
        io.stdout(`${JSON.stringify(e)}\n`);
      };
      let summary: AnalyzeSummary;
      try {
        summary = await analyzeClip(loaded.config, camera, clip, onEvent, log, {
          clipInfo: info,
          ...(opts.start !== undefined ? { start_ms: opts.start } : {}),
          ...(bar ? { onProgress: (p: ReadProgress) => bar.update(p.frames_read, p.mono_ms) } : {}),
          ...(overlayKind ? { onFrame: (f: AnalysedFrame) => frames.push({ ...f, counts: tally.running() }) } : {}),
          fps: opts.allFrames ? null : opts.fps,
          ...(opts.evidence ? { evidenceDir: resolve(opts.evidence), configFile: loaded.file, configHash: loaded.hash } : {}),
        });
      } finally {
        bar?.done(); // an error message starts on a clean line
      }
      io.stderr(summaryText(summary, info, tally.table(loaded.config.detector.classes)));
      if (summary.evidence) io.stderr(`evidence: ${summary.evidence.built} packages written to ${resolve(opts.evidence!)} (${summary.evidence.failed} failed)\n`);
      if (opts.overlay !== undefined) {
        await overlayStep({ out: opts.overlay, kind: overlayKind === '.png' ? 'png' : 'mp4', clip, camera: cam, frames, summary, allFrames: opts.allFrames === true, ...(opts.overlayAt !== undefined ? { at_s: opts.overlayAt } : {}) }, io.stderr, terminal ? new ProgressBar(io.stderr, 'overlay', total_ms) : undefined);
      }
    });
}

interface OverlayStep {
  out: string;
  kind: 'png' | 'mp4';
  clip: string;
  camera: CameraConfig;
  frames: OverlayFrame[];
  summary: AnalyzeSummary;
  allFrames: boolean;
  at_s?: number;
}

/** Writes the --overlay file (the video's frames counted on `bar`, if any) and says so. */
async function overlayStep(o: OverlayStep, stderr: (text: string) => void, bar: ProgressBar | undefined): Promise<void> {
  const common = { clip: o.clip, camera: o.camera, frames: o.frames, start_ms: o.summary.start_ms, out: o.out };
  const { width, height } = o.camera.frame;
  if (o.kind === 'png') {
    const at_ms = await writeOverlayPng({ ...common, at_s: o.at_s ?? o.summary.last_mono_ms / 2000 });
    stderr(`overlay: ${o.out} (${width}x${height}, the frame at ${(at_ms / 1000).toFixed(1)} s)\n`);
    return;
  }
  const frame_rate = o.summary.frame_rate ?? o.camera.detection_fps;
  let n: number;
  try {
    n = await writeOverlayMp4({ ...common, fps: o.allFrames ? undefined : frame_rate, frame_rate, ...(bar ? { onFrame: (k: number, mono: number) => bar.update(k, mono) } : {}) });
  } finally {
    bar?.done();
  }
  stderr(`overlay: ${o.out} (${n} frames, ${width}x${height} at ${Math.round(frame_rate * 100) / 100} fps)\n`);
}
