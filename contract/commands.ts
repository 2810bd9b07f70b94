// The command catalogue: every command the agent accepts on `{base}/cmd/{name}`, with its arguments, its
// result and a summary. The agent's registry is typed by it (a handler must return its result type and the
// result is checked against the schema before it is sent), the birth lists the registered names, and the
// contract documents are generated from it. Adding a command starts here.
import { z } from 'zod';
import { LOG_LEVELS } from '../core/log.js';
import { CommandError, CommandOk, CorrelationId } from './command.js';

/** One command: `args` validates the request without its `id` (a strict object), `result` is the `data` of an ok response. */
export interface CommandSpec<A extends z.ZodObject = z.ZodObject, R extends z.ZodType = z.ZodType> {
  args: A;
  result: R;
  summary: string;
}
export type CommandCatalogue = Record<string, CommandSpec>;

// ---------------------------------------------------------------------------------------------------------
// Uplink commands (agent/commands/uplink-commands.ts)

const PingArgs = z.strictObject({}).describe('ping: no arguments');
const PingResult = z.strictObject({
  uptime_s: z.number().describe('Seconds since the uplink started'),
  session: z.number().int().describe('Current connection session'),
  seq: z.number().int().describe('Last sequence number assigned by the outbox (0: none yet)'),
  ts: z.iso.datetime({ offset: true }),
});

const RebirthArgs = z.strictObject({}).describe('rebirth: publish birth, online status and retained states again');
const RebirthResult = z.strictObject({ session: z.number().int(), retained: z.number().int().describe('Retained states republished') });

/** Largest seq range of one resend request; also the cap on rows queued for resending. */
export const RESEND_MAX_ROWS = 10_000;
const ResendArgs = z
  .strictObject({
    from: z.number().int().min(1).describe('First seq to resend'),
    to: z.number().int().min(1).describe('Last seq to resend (inclusive)'),
  })
  .refine((a) => a.to >= a.from, { message: 'to must be >= from', path: ['to'] })
  .refine((a) => a.to - a.from < RESEND_MAX_ROWS, { message: `at most ${RESEND_MAX_ROWS} seqs per request`, path: ['to'] })
  .describe('resend: publish kept rows (acknowledged ones included) again, with replayed: true');
/** The `data` of a resend response (the center's gap repair reads it). */
export const ResendResult = z.strictObject({
  queued: z.number().int().describe('Rows queued for sending'),
  missing: z.number().int().describe('Seqs in the range no longer (or never) kept'),
});

const SetLogLevelArgs = z.strictObject({ level: z.enum(LOG_LEVELS) }).describe('set-log-level: change the log level until restart');
const SetLogLevelResult = z.strictObject({ level: z.enum(LOG_LEVELS), previous: z.string() });

// ---------------------------------------------------------------------------------------------------------
// Agent commands (agent/commands/snapshot.ts, signal.ts, reload-config.ts)

const CameraIdArg = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/).describe('Camera id');

const SnapshotArgs = z
  .strictObject({ camera: CameraIdArg, quality: z.number().int().min(30).max(95).default(80).describe('JPEG quality, 30-95. Default 80') })
  .describe('snapshot: a JPEG of the camera at its native resolution');
const SnapshotResult = z.strictObject({
  camera: z.string().describe('Camera id'),
  width: z.number().int().describe('Image width, pixels'),
  height: z.number().int().describe('Image height, pixels'),
  captured_at: z.iso.datetime({ offset: true }).describe('ISO 8601 capture time'),
  sha256: z.string().describe('sha256 of the JPEG bytes, hex'),
  jpeg_base64: z.string().describe('The JPEG, base64'),
});

/** States of a traffic signal: the `signal` command's, and what analytics keeps for red-light enforcement. */
export const SIGNAL_STATES = ['red', 'amber', 'green'] as const;
export type SignalState = (typeof SIGNAL_STATES)[number];
const SignalArgs = z
  .strictObject({
    signal: z.string().min(1).max(63).describe("Signal id (analytics.signals / a stop line's signal)"),
    state: z.enum(SIGNAL_STATES).describe('Signal state'),
    at: z.iso.datetime({ offset: true }).optional().describe('When the state began (ISO 8601). Default: when received'),
  })
  .describe('signal: the state of a traffic signal, for red-light enforcement');
const SignalResult = z.strictObject({
  signal: z.string().describe('Signal id'),
  state: z.enum(SIGNAL_STATES).describe('State recorded'),
  at: z.iso.datetime({ offset: true }).describe('When the state began'),
});

const ReloadConfigArgs = z
  .strictObject({})
  .describe('reload-config: read the config file again; a valid changed config is applied by a restart, an invalid one is refused with every problem');
const ReloadConfigResult = z.strictObject({
  changed: z.boolean().describe('The file differs from the running config'),
  config_hash: z.string().describe('Hash of the file read'),
  restarting: z.boolean().optional().describe('true: the agent restarts now to apply it'),
});

// ---------------------------------------------------------------------------------------------------------
// The catalogue

export const COMMANDS = {
  ping: { args: PingArgs, result: PingResult, summary: 'Liveness check: uptime, session and the last seq assigned by the outbox' },
  rebirth: { args: RebirthArgs, result: RebirthResult, summary: 'Publish birth, online status and the retained camera states again' },
  resend: {
    args: ResendArgs,
    result: ResendResult,
    summary: `Publish the kept outbox rows with from <= seq <= to again (replayed: true), at most ${RESEND_MAX_ROWS} seqs per request. The center repairs seq gaps with it`,
  },
  'set-log-level': { args: SetLogLevelArgs, result: SetLogLevelResult, summary: 'Change the log level until the agent restarts' },
  snapshot: { args: SnapshotArgs, result: SnapshotResult, summary: 'A JPEG of a camera at its native resolution (a short extra connection to the camera)' },
  signal: { args: SignalArgs, result: SignalResult, summary: 'Signal state for red-light enforcement, from the center or a local signal-controller bridge' },
  'reload-config': {
    args: ReloadConfigArgs,
    result: ReloadConfigResult,
    summary: 'Read the config file again: refused with every problem if invalid (running config kept); applied by a restart if changed',
  },
} as const satisfies CommandCatalogue;

export type Commands = typeof COMMANDS;
export type CommandName = keyof Commands;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

/** What a handler of command N receives (defaults applied). */
export type CommandArgs<N extends CommandName> = z.output<Commands[N]['args']>;
/** What a handler of command N must return. */
export type CommandResult<N extends CommandName> = z.input<Commands[N]['result']>;

/** `{id?, ...args}`: the request of one command as documented (the args' refinements are checked by the agent). */
export function commandRequestSchema(name: CommandName): z.ZodType {
  const args = COMMANDS[name].args;
  return z.strictObject({ id: CorrelationId.optional(), ...args.shape }).describe(`${name} request: ${args.description ?? ''}`.trim());
}

/** The response of one command, with its typed `data`. */
export function commandResponseSchema(name: CommandName): z.ZodType {
  return z.discriminatedUnion('status', [CommandOk.extend({ data: COMMANDS[name].result }), CommandError]).describe(`${name} response`);
}
