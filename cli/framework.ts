// What every roadside-agent command shares on top of commander (see main.ts for why commander): the
// `roadside-agent <cmd>: message` error style with a usage hint, exit 64 for every usage error, help written
// through the command's CliIo, help terms in the project's `--config FILE` style, and value parsers that say
// what they expected.
import { Command, CommanderError, InvalidArgumentError, type Option } from 'commander';
import { EXIT } from '../core/errors.js';
import type { CliIo } from '../core/cli-io.js';
import type { DoctorOptions } from '../agent/field/doctor/index.js';
import type { ProvisionDeps } from '../agent/field/provision.js';

/** Seams for tests: doctor's clock/disk sources and ffmpeg, provision's prompter and commands. */
export interface CliDeps {
  doctor?: Pick<DoctorOptions, 'sources' | 'ffmpegPath'>;
  provision?: ProvisionDeps;
}

/** What every command's action gets: where to write, the seams, and where to leave its exit code. */
export interface CliContext {
  io: CliIo;
  deps: CliDeps;
  /** The exit code of the action that ran (0 unless it sets one). */
  code: number;
}

/** Help is wrapped to this width when it does not go to a terminal (tests, pipes, the README). */
export const HELP_WIDTH = 100;

/** `roadside-agent config check`: the command's name with its parents'. */
export function commandLabel(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every command of the tree below `root` (not `root` itself), parents before their subcommands. */
export function allCommands(root: Command): Command[] {
  return root.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** `--config <FILE>` → `--config FILE`: the value placeholder without commander's brackets. */
export const plainTerm = (flags: string): string => flags.replace(/<([^>]+)>/g, '$1');

/**
 * Commander's own messages ("error: unknown option '--x'") in the style of ours: no "error:" prefix, double
 * quotes, placeholders without brackets; an invalid value reads "--seconds 0: <what was expected>".
 */
export function commanderMessage(text: string): string {
  const m = text.replace(/^error: /, '').trim();
  const invalid = /^option '([^']+)' argument '([^']*)' is invalid\. ?([\s\S]*)$/.exec(m);
  if (invalid) {
    const long = /--[\w-]+/.exec(invalid[1]!)?.[0] ?? invalid[1]!;
    return `${long} ${invalid[2]}: ${invalid[3]}`;
  }
  return plainTerm(m.replace(/'([^'\n]*)'/g, '"$1"').replace(/\s*\(Did you mean/g, ' (did you mean'));
}

/** One usage error on stderr: `roadside-agent doctor: message` and where the usage is. */
export function usageErrorText(cmd: Command, message: string): string {
  const label = commandLabel(cmd);
  return `${label}: ${message}\nRun "${label} --help" for usage.\n`;
}

/**
 * Applies the shared behaviour to `root` and every command below it (commander copies settings only to
 * commands made with .command(), and ours are built in their own modules and added).
 */
export function configureTree(root: Command, io: CliIo): void {
  const width = (): number => (io.interactive ? (process.stdout.columns ?? HELP_WIDTH) : HELP_WIDTH);
  for (const cmd of [root, ...allCommands(root)]) {
    cmd
      .exitOverride()
      .helpOption('-h, --help', 'show this help')
      .configureHelp({ optionTerm: (o: Option) => plainTerm(o.flags), showGlobalOptions: false })
      .configureOutput({
        writeOut: (t) => io.stdout(t),
        writeErr: (t) => io.stderr(t),
        getOutHelpWidth: width,
        getErrHelpWidth: width,
        getOutHasColors: () => false,
        getErrHasColors: () => false,
        // Commander's messages start with "error: "; ours (cmd.error("…")) are already worded.
        outputError: (t) => io.stderr(usageErrorText(cmd, t.startsWith('error: ') ? commanderMessage(t) : t.trim())),
      });
  }
}

/** The exit code of a CommanderError: 0 for help and version, 64 (usage) for everything else. */
export function exitCodeOf(err: CommanderError): number {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.OK;
  if (err.code === 'commander.help' && err.exitCode === 0) return EXIT.OK;
  return EXIT.USAGE;
}

export { CommanderError };

/** A usage error raised by an action: printed like commander's own, exit 64. */
export function usageError(cmd: Command, message: string): never {
  return cmd.error(message, { exitCode: EXIT.USAGE, code: 'roadside.usage' });
}

/** A value parser for a number in [min, max] (`integer`: whole numbers only); `what` says what it counts. */
export function numberIn(min: number, max: number, what: string, integer = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected ${what} from ${min} to ${max}`);
    }
    return n;
  };
}

/** A value parser for a repeatable option: every occurrence, in order. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** `WIDTHxHEIGHT`, e.g. 416x416. */
export function sizeValue(value: string): { width: number; height: number } {
  const m = /^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected WIDTHxHEIGHT, e.g. 416x416');
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * The options as `parseArgs` would give them, keyed by flag name (`no-probe: true`, `camera: [...]`): for code
 * that reads flags by the name the user typed.
 */
export function flagValues(cmd: Command): Record<string, string | boolean | string[] | undefined> {
  const out: Record<string, string | boolean | string[] | undefined> = {};
  for (const o of cmd.options) {
    if (!o.long) continue;
    const value = cmd.getOptionValue(o.attributeName()) as string | boolean | string[] | undefined;
    out[o.long.slice(2)] = o.negate ? (value === false ? true : undefined) : value;
  }
  return out;
}
