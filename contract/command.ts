import { z } from 'zod';
import { LOG_LEVELS } from '../core/log.js';

/** Largest accepted command payload, bytes. Larger requests get a PAYLOAD_TOO_LARGE error response. */
export const COMMAND_MAX_BYTES = 64 * 1024;

/** Stable error codes of command responses. Handlers may add their own (AgentError codes). */
export const COMMAND_ERROR_CODES = [
  'BAD_JSON',
  'BAD_REQUEST',
  'INVALID_ARGS',
  'UNKNOWN_COMMAND',
  'PAYLOAD_TOO_LARGE',
  'HANDLER_FAILED',
  'TIMEOUT',
] as const;

export const CorrelationId = z
  .union([z.string().max(128), z.number().int()])
  .describe('Caller-chosen request id, echoed in the response (zigbee2mqtt "transaction" style)');

/**
 * `{base}/cmd/{name}` request: a JSON object (an empty payload counts as `{}`) with an optional `id`;
 * the other keys are the command's arguments, validated by the command's own schema.
 * MQTT 5: the Response Topic and Correlation Data properties are honoured.
 */
export const CommandRequest = z
  .looseObject({ id: CorrelationId.optional() })
  .describe('Command request: optional id plus the command arguments');
export type CommandRequest = z.infer<typeof CommandRequest>;

export const CommandOk = z
  .strictObject({
    status: z.literal('ok'),
    data: z.unknown().describe('Command result'),
    id: CorrelationId.optional(),
  })
  .describe('Successful command response');

export const CommandError = z
  .strictObject({
    status: z.literal('error'),
    error: z.strictObject({
      code: z.string().describe(`Stable error code: ${COMMAND_ERROR_CODES.join(', ')}, or a handler's own`),
      message: z.string().describe('Human-readable explanation'),
    }),
    id: CorrelationId.optional(),
  })
  .describe('Failed command response: nothing was changed');

/** Response on the MQTT 5 Response Topic, else on `{base}/cmd/{name}/result`; not retained, QoS 1. */
export const CommandResponse = z.discriminatedUnion('status', [CommandOk, CommandError]).describe('Command response');
export type CommandResponse = z.infer<typeof CommandResponse>;

// Built-in commands (agent/uplink): arguments and results.

export const PingArgs = z.strictObject({}).describe('ping: no arguments');
export const PingResult = z.strictObject({
  uptime_s: z.number().describe('Seconds since the uplink started'),
  session: z.number().int().describe('Current connection session'),
  seq: z.number().int().describe('Last sequence number assigned by the outbox (0: none yet)'),
  ts: z.iso.datetime({ offset: true }),
});

export const RebirthArgs = z.strictObject({}).describe('rebirth: publish birth, online status and retained states again');
export const RebirthResult = z.strictObject({ session: z.number().int(), retained: z.number().int().describe('Retained states republished') });

export const RESEND_MAX_ROWS = 10_000;
export const ResendArgs = z
  .strictObject({
    from: z.number().int().min(1).describe('First seq to resend'),
    to: z.number().int().min(1).describe('Last seq to resend (inclusive)'),
  })
  .refine((a) => a.to >= a.from, { message: 'to must be >= from', path: ['to'] })
  .refine((a) => a.to - a.from < RESEND_MAX_ROWS, { message: `at most ${RESEND_MAX_ROWS} seqs per request`, path: ['to'] })
  .describe('resend: publish kept rows (acknowledged ones included) again, with replayed: true');
export const ResendResult = z.strictObject({
  queued: z.number().int().describe('Rows queued for sending'),
  missing: z.number().int().describe('Seqs in the range no longer (or never) kept'),
});

export const SetLogLevelArgs = z.strictObject({ level: z.enum(LOG_LEVELS) }).describe('set-log-level: change the log level until restart');
export const SetLogLevelResult = z.strictObject({ level: z.enum(LOG_LEVELS), previous: z.string() });

// Commands registered by the agent (agent/commands.ts) on top of the uplink's own.
const CameraIdArg = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/).describe('Camera id');

export const SnapshotArgs = z
  .strictObject({ camera: CameraIdArg, quality: z.number().int().min(30).max(95).default(80).describe('JPEG quality, 30-95. Default 80') })
  .describe('snapshot: a JPEG of the camera at its native resolution');
export const SnapshotResult = z.strictObject({
  camera: z.string().describe('Camera id'),
  width: z.number().int().describe('Image width, pixels'),
  height: z.number().int().describe('Image height, pixels'),
  captured_at: z.iso.datetime({ offset: true }).describe('ISO 8601 capture time'),
  sha256: z.string().describe('sha256 of the JPEG bytes, hex'),
  jpeg_base64: z.string().describe('The JPEG, base64'),
});

export const SignalArgs = z
  .strictObject({
    signal: z.string().min(1).max(63).describe('Signal id (analytics.signals / a stop line\'s signal)'),
    state: z.enum(['red', 'amber', 'green']).describe('Signal state'),
    at: z.iso.datetime({ offset: true }).optional().describe('When the state began (ISO 8601). Default: when received'),
  })
  .describe('signal: the state of a traffic signal, for red-light enforcement');
export const SignalResult = z.strictObject({
  signal: z.string().describe('Signal id'),
  state: z.enum(['red', 'amber', 'green']).describe('State recorded'),
  at: z.iso.datetime({ offset: true }).describe('When the state began'),
});

export const ReloadConfigArgs = z.strictObject({}).describe('reload-config: read the config file again; a valid changed config is applied by a restart, an invalid one is refused with every problem');
export const ReloadConfigResult = z.strictObject({
  changed: z.boolean().describe('The file differs from the running config'),
  config_hash: z.string().describe('Hash of the file read'),
  restarting: z.boolean().optional().describe('true: the agent restarts now to apply it'),
});
