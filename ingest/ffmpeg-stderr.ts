// ffmpeg's stderr (run with `-loglevel level+…`) turned into reasons a camera is down, and the decoded
// stream's size.
import { redactUrl, type Logger } from '../core/log.js';
import { encodeUserinfo } from './ffmpeg-args.js';
import type { CameraReason } from './types.js';

export type FfmpegLevel = 'panic' | 'fatal' | 'error' | 'warning' | 'info' | 'verbose' | 'debug' | 'trace' | 'unknown';

export interface StderrLine {
  level: FfmpegLevel;
  /** The message without the `[level]` tag; credentials removed. */
  text: string;
}

const LEVEL_TAG = /\[(panic|fatal|error|warning|info|verbose|debug|trace)\] /;

/** Parses one stderr line: `[h264 @ 0x…] [error] msg` or `[error] msg`. */
export function parseStderrLine(raw: string, scrub: (s: string) => string = redactUrl): StderrLine {
  const m = LEVEL_TAG.exec(raw);
  if (!m) return { level: 'unknown', text: scrub(raw.trim()) };
  const text = (raw.slice(0, m.index) + raw.slice(m.index + m[0].length)).trim();
  return { level: m[1] as FfmpegLevel, text: scrub(text) };
}

// Order matters: the first match wins (a 401 line also says "failed").
// Order matters: the first match wins ("Decoder … not found" is a codec problem, not a 404; a refused
// connection line also carries "?timeout=" in its URL).
const REASONS: ReadonlyArray<[RegExp, CameraReason]> = [
  [
    /decoder .*not found|unknown decoder|codec not currently supported|unsupported codec|no decoder|error while opening decoder|failed to (?:initiali[sz]e|open|create) .*(?:decoder|device|vaapi|hw)|device creation failed|hardware device/i,
    'unsupported_codec',
  ],
  [/\b401\b|unauthori[sz]ed|authori[sz]ation failed/i, 'unauthorized'],
  [/\b404\b|not found|no such file or directory/i, 'not_found'],
  [/connection refused/i, 'connection_refused'],
  [/no route to host|network is unreachable|host is unreachable|name or service not known|temporary failure in name resolution|failed to resolve/i, 'unreachable'],
  [/timed out|\bETIMEDOUT\b|udp timeout/i, 'timeout'],
];

/** The reason an error line points at, if it is one of the known ones. */
export function classifyLine(text: string): CameraReason | undefined {
  for (const [re, reason] of REASONS) if (re.test(text)) return reason;
  return undefined;
}

/** Tracks the Input/Output sections of ffmpeg's stream dump to find the decoded input's frame size. */
export class StreamInfoParser {
  private section: 'none' | 'input' | 'output' = 'none';
  width: number | undefined;
  height: number | undefined;
  codec: string | undefined;

  push(line: StderrLine): void {
    if (line.level !== 'info') return;
    if (/^Input #\d+/.test(line.text)) this.section = 'input';
    else if (/^Output #\d+/.test(line.text) || /^Stream mapping:/.test(line.text)) this.section = 'output';
    else if (this.section === 'input' && this.width === undefined) {
      const m = /Stream #\d+:\d+.*?: Video: (\w+).*?\b(\d{2,5})x(\d{2,5})\b/.exec(line.text);
      if (m) {
        this.codec = m[1];
        this.width = Number(m[2]);
        this.height = Number(m[3]);
      }
    }
  }
}

/** redactUrl plus literal removal of the password (raw and percent-encoded), for ffmpeg's stderr. */
export function makeScrubber(password: string | undefined): (s: string) => string {
  // Short passwords are left to redactUrl: scrubbing "ab" from every line would mangle the logs.
  const secrets = password && password.length >= 4 ? [...new Set([password, encodeURIComponent(password), encodeUserinfo(password)])] : [];
  if (secrets.length === 0) return redactUrl;
  return (s: string) => {
    let out = redactUrl(s);
    for (const secret of secrets) out = out.split(secret).join('[redacted]');
    return out;
  };
}

/**
 * ffmpeg's complaints in the agent's log. Before a run's first frame they are debug: failures to connect
 * are summed up by the camera's status. Mid-stream problems are warnings, at most `budget` a minute and
 * camera; the rest are counted and reported when the next minute starts.
 */
export class StderrLog {
  private left: number;
  private suppressed = 0;
  private windowStart = 0;

  constructor(
    private readonly log: Logger,
    private readonly budget = 10,
  ) {
    this.left = budget;
  }

  write(line: StderrLine, online: boolean, now = performance.now()): void {
    if (!online) {
      this.log.debug({ ffmpeg_level: line.level }, `ffmpeg: ${line.text}`);
      return;
    }
    if (now - this.windowStart > 60_000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'ffmpeg stderr lines suppressed');
      this.windowStart = now;
      this.left = this.budget;
      this.suppressed = 0;
    }
    if (this.left <= 0) {
      this.suppressed++;
      return;
    }
    this.left--;
    this.log.warn({ ffmpeg_level: line.level }, `ffmpeg: ${line.text}`);
  }
}
