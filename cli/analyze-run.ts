// `analyze`'s implementation (the command is declared in analyze-cmd.ts): the clip through one camera's pipeline.
import { extname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CameraConfig } from '../config/schema/index.js';
import { isoTime, type EventDraft } from '../contract/event.js';
import { analyzeClip, analyzedCamera, type AnalyzeSummary } from '../agent/analyze/analyze.js';
import { probeClip, type AnalysedFrame, type ClipInfo, type ReadProgress } from '../agent/analyze/clip.js';
import { createLogger } from '../core/log.js';
import { AnalyzeTally, ProgressBar } from './analyze-report.js';
import { usageError, type CliContext } from './framework.js';
import { loadConfigOrReport } from './io.js';
import { writeOverlayMp4, writeOverlayPng, type OverlayFrame } from './overlay.js';

export interface AnalyzeOptions {
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

/** `analyze CLIP`: events as JSON lines on stdout, the summary on stderr; leaves the exit code in `ctx.code`. */
export async function analyze(clip: string, opts: AnalyzeOptions, cmd: Command, ctx: CliContext): Promise<void> {
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
