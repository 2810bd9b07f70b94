import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_PRETTY = ['auto', 'always', 'never'] as const;

const SECRET_KEY = /pass(word|phrase)?$|token|secret|authorization|cookie|private_?key|^key$|credentials?/i;
/**
 * A URL's user info: everything from "scheme://" to the last "@" before a blank or a quote. Greedy on purpose:
 * a password with an unencoded "@" or "/" is hidden whole; a path that happens to hold an "@" loses a little
 * more than needed, which is the safe side. Bounded, so a long text without blanks costs linear time.
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s"'`<>\\]{0,512}@/gi;
const REDACTED = '[redacted]';

/** Hides credentials inside URLs ("rtsp://admin:pw@cam" → "rtsp://[redacted]@cam"), wherever they are in the text. */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, (_m, scheme: string) => `${scheme}${REDACTED}@`);
}

/** Deep copy with secret-looking keys blanked and URL credentials hidden; safe for any log line. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) {
    return { type: value.name, message: redactUrl(value.message), stack: value.stack && redactUrl(value.stack), code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `<${value.byteLength} bytes>`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && typeof v !== 'boolean' ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

export interface LoggerOptions {
  level?: LogLevel;
  pretty?: (typeof LOG_PRETTY)[number];
  /** Where lines go; stdout by default (journald picks them up). */
  destination?: DestinationStream;
}

/** pino-pretty, required when a logger is pretty: a service logs JSON and needn't hold it in memory. */
const loadPretty = (): typeof PinoPretty => createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;

/**
 * JSON lines on stdout, human-readable on a terminal. Every object and message passes through `redact`,
 * so a module cannot leak a password by logging its config.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const wantPretty = opts.pretty === 'always' || (opts.pretty !== 'never' && !opts.destination && process.stdout.isTTY);
  const destination = opts.destination ?? (wantPretty ? loadPretty()({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l' }) : pino.destination({ sync: true }));
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (obj) => redact(obj) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          const clean = args.map((a) => (typeof a === 'string' ? redactUrl(a) : a)) as Parameters<typeof method>;
          method.apply(this, clean);
        },
      },
    },
    destination,
  );
}

/** Logger that discards everything (tests, library use). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
