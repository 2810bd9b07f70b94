// The command catalogue: every command the agent accepts on `{base}/cmd/{name}`, with its arguments, its
// result and a summary. The agent's registry is typed by it (a handler must return its result type and the
// result is checked against the schema before it is sent), the birth lists the registered names, and the
// contract documents are generated from it. Adding a command starts here.
import { z } from 'zod';
import { LOG_LEVELS } from '../core/log.js';
import { CommandError, CommandOk, CorrelationId } from './command.js';
import { TamperKindSchema } from './event.js';
import { EVIDENCE_CHUNK_MAX_BYTES, EVIDENCE_RATE_BYTES_S, EvidenceArgs, EvidenceResult } from './evidence.js';

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
// Agent commands (agent/commands/snapshot.ts, signal.ts, reload-config.ts, rebase-reference.ts)

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

const RebaseReferenceArgs = z
  .strictObject({ camera: CameraIdArg })
  .describe('rebase-reference: forget the camera\'s reference view and take a new one (after a legitimate re-aim)');
const RebaseReferenceResult = z.strictObject({
  camera: z.string().describe('Camera id'),
  previous_reference_at: z.iso.datetime({ offset: true }).nullable().describe('When the reference now forgotten was taken; null: there was none'),
  cleared: z.array(TamperKindSchema).describe('Active alarms that compare with the reference (covered, blurred, shifted): cleared now (each gets a camera_tamper event with cleared: true)'),
  ready_in_s: z.number().min(0).describe('Seconds of stable picture after which the new reference is taken (tamper.reference_after_s)'),
});

// ---------------------------------------------------------------------------------------------------------
// Remote configuration (agent/commands/config.ts, agent/config-apply/)

/** Hash of a config file: sha256 of its bytes, first 16 hex digits (config/loader.ts). */
const ConfigHash = z.string().regex(/^[0-9a-f]{16}$/).describe('Config hash: sha256 of the file bytes, first 16 hex digits');
/** What config-get shows instead of a secret; a pushed config may carry it back to keep the box's value. */
export const REDACTED_SECRET = '<redacted>';
/** Largest YAML text of one config-apply (the request must also fit COMMAND_MAX_BYTES, 64 KiB). */
export const CONFIG_PUSH_MAX_CHARS = 60_000;

/** A config rollback: when, why, and the hash of the config that was given up. */
export const ConfigRollback = z.strictObject({
  at: z.iso.datetime({ offset: true }).describe('When the previous config was restored'),
  reason: z.string().describe('Why: the probation checks that failed, or the agent stopping during probation'),
  from_hash: ConfigHash.describe('Hash of the config that was rolled back'),
});

/** The config in force, as the birth and config-get report it. */
export const ConfigState = z.strictObject({
  hash: ConfigHash.describe('Hash of the config in force'),
  applied_at: z.iso.datetime({ offset: true }).describe('When it was applied (a push or rollback), else when the file was written'),
  probation_until: z.iso
    .datetime({ offset: true })
    .nullable()
    .optional()
    .describe('While a pushed config is on probation: when it is confirmed if cameras, detector and uplink are healthy (else it is rolled back); null otherwise'),
  last_rollback: ConfigRollback.nullable().describe('The last automatic rollback, null if none'),
});

const ConfigGetArgs = z.strictObject({}).describe('config-get: the running config (secrets redacted) and its hashes');
const ConfigGetResult = ConfigState.extend({
  yaml: z.string().describe(`The config file in force, secrets (passwords, tokens, URL credentials) replaced by "${REDACTED_SECRET}"`),
  previous_hash: ConfigHash.nullable().describe('Hash of the previous good config (kept as <config>.prev, the rollback target); null if none'),
});

/** One problem of a config, as `config check` reports it (without the file name). */
export const ConfigProblemWire = z.strictObject({
  line: z.number().int().optional().describe('1-based line in the YAML'),
  path: z.string().describe('Dotted path of the value, e.g. cameras.0.lines.1.b'),
  message: z.string(),
  got: z.string().optional().describe('The offending value, shortened; never a secret'),
});

const ConfigApplyArgs = z
  .strictObject({
    yaml: z.string().min(1).max(CONFIG_PUSH_MAX_CHARS).optional().describe('The whole new config file (YAML)'),
    patch: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('A JSON merge patch (RFC 7396) on the running config: objects merge, null deletes, arrays (e.g. cameras) are replaced whole'),
    base_hash: ConfigHash.describe('Hash of the config this change was made from (config-get, birth config_hash); a stale one is refused with CONFIG_CONFLICT'),
    dry_run: z.boolean().default(false).describe('Only check: every problem is answered, nothing is changed'),
  })
  .refine((a) => (a.yaml === undefined) !== (a.patch === undefined), { message: 'give exactly one of yaml and patch', path: ['yaml'] })
  .describe(
    `config-apply: check, write and apply a new config; secrets never travel (reference ROADSIDE_* secrets provisioned on the box, or send "${REDACTED_SECRET}" to keep the box's value)`,
  );
const ConfigApplyResult = z.strictObject({
  outcome: z
    .enum(['valid', 'invalid', 'unchanged', 'applied'])
    .describe('valid / invalid: a dry run; unchanged: the candidate is the running config; applied: written and applied (in place, or by the restart announced in restart)'),
  hash: ConfigHash.optional().describe('Hash of the candidate config (absent when it has problems)'),
  base_hash: ConfigHash.describe('The running config the change was checked against'),
  problems: z.array(ConfigProblemWire).describe('Every problem, as config check reports them (invalid only; [] otherwise)'),
  problems_total: z.number().int().optional().describe('Problems found when more than those listed'),
  changes: z.array(z.string()).describe('What changes, e.g. "cameras.cam1: lines, zones (analytics restarted)"'),
  restart: z.string().nullable().describe('Why the agent restarts to apply it (e.g. "mqtt.url"); null when applied in place'),
  probation_until: z.iso.datetime({ offset: true }).nullable().describe('applied: when the new config is confirmed or rolled back (the birth config tells which)'),
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
  'rebase-reference': {
    args: RebaseReferenceArgs,
    result: RebaseReferenceResult,
    summary:
      'After a camera was re-aimed on purpose: forget its tamper reference view; a new one is taken after tamper.reference_after_s of stable picture and stored in device.data_dir. Alarms against the old reference clear. TAMPER_DISABLED when the camera does not watch for tampering',
  },
  'reload-config': {
    args: ReloadConfigArgs,
    result: ReloadConfigResult,
    summary: 'Read the config file again: refused with every problem if invalid (running config kept); applied by a restart if changed',
  },
  'config-get': {
    args: ConfigGetArgs,
    result: ConfigGetResult,
    summary: 'The running config as YAML with every secret redacted, its hash, the previous good config\'s hash, and the probation / last rollback',
  },
  'config-apply': {
    args: ConfigApplyArgs,
    result: ConfigApplyResult,
    summary:
      'Apply a new config (whole YAML, or a JSON merge patch) made from base_hash (stale: CONFIG_CONFLICT). dry_run answers every problem and changes nothing; otherwise invalid: CONFIG_INVALID, secret values: SECRET_IN_CONFIG. ' +
      'It is written atomically (the previous kept as <config>.prev) and applied in place where possible (lines, zones, ROI, rules, cameras, log level: only the affected cameras restart), else by an agent restart (mqtt, detector, outbox, device id/site/data_dir, health, status). ' +
      'For device.config_probation_s seconds (the running config\'s value) the agent then checks that every camera delivers frames, the detector runs and the uplink is connected, and otherwise restores the previous good config by itself, also at the next start after a crash, power loss or stop during the probation; the outcome is in the birth config. A change during a probation replaces the one on probation (the rollback target stays the last good config). ' +
      'Secrets are never pushed: they are provisioned on the box (env/secrets.env, ROADSIDE_*); pushing one encrypted needs key management that operations has not decided',
  },
  evidence: {
    args: EvidenceArgs,
    result: EvidenceResult,
    summary:
      `An evidence package (docs/evidence.md): without file, its manifest.json and manifest.sig (base64) and the file list; with file, one chunk of ${EVIDENCE_CHUNK_MAX_BYTES} bytes at most from offset, with its sha256, resumable from any offset. ` +
      'Only files the manifest lists, in the package of event_id inside the evidence directory, are served (else EVIDENCE_FILE_REFUSED / EVIDENCE_NOT_FOUND). ' +
      `The bytes served are rate-limited (a token bucket, ${EVIDENCE_RATE_BYTES_S / 1024} KiB/s by default) so events keep flowing; a request that would wait too long is refused with BUSY. Fetching every file to its end acknowledges the package`,
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
