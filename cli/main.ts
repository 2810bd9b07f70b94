#!/usr/bin/env node
// The roadside-agent command line: one command tree for every subcommand.
//
// Why commander: every command used to parse its own arguments (node:util parseArgs in a dozen places, each
// with a hand-written usage), so `--help` worked in some and was "Unknown option" or a file name in others, and
// errors and exit codes differed. Commander is small, has no dependencies, is maintained and typed, and gives
// subcommands, generated help, value parsers, choices and "did you mean" from one declaration per command. The
// same tree feeds the bash completion script (completion.ts) and the README's command reference (docs.ts), so
// none of the three can drift. framework.ts adds what commander leaves to us: our error style and exit codes.
import '../core/wasm-free.js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { EXIT, errorMessage } from '../core/errors.js';
import { redactUrl } from '../core/log.js';
import { packageVersion } from '../core/paths.js';
import { centerCli } from '../center/cli.js';
import { analyzeCommand } from './analyze-cmd.js';
import { completionCommand } from './completion.js';
import { configCommand } from './config-cmd.js';
import { detectCommand } from './detect-cmd.js';
import { doctorCommand } from './doctor.js';
import { evidenceCommand } from './evidence-cmd.js';
import { CommanderError, commandLabel, configureTree, exitCodeOf, type CliContext, type CliDeps } from './framework.js';
import { processIo, type CliIo } from '../core/cli-io.js';
import { provisionCommand } from './provision-cmd.js';
import { runCommand } from './run-cmd.js';

/** The whole command tree. Built anew for each call: commander keeps the parsed values on the commands. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('roadside-agent')
    // A command's options stand before its subcommands (center's --url is not center config push's --url).
    .enablePositionalOptions()
    .description('Edge agent for roadside traffic cameras: RTSP ingest, on-box detection, analytics, SQLite outbox, MQTT uplink.')
    .version(packageVersion(), '-V, --version', 'print the agent version')
    .addHelpText('after', '\nExit codes: 0 ok, 1 fatal, 64 usage, 78 invalid configuration. Help on a command: roadside-agent COMMAND --help')
    .addCommand(runCommand(ctx))
    .addCommand(configCommand(ctx))
    .addCommand(provisionCommand(ctx))
    .addCommand(doctorCommand(ctx))
    .addCommand(analyzeCommand(ctx))
    .addCommand(detectCommand(ctx))
    .addCommand(evidenceCommand(ctx))
    .addCommand(centerCli(ctx.io, (code) => (ctx.code = code)))
    .addCommand(
      new Command('version')
        .summary('print the agent version')
        .description('Prints the agent version.')
        .action(() => ctx.io.stdout(`${packageVersion()}\n`)),
    )
    .addCommand(completionCommand(ctx));
  configureTree(program, ctx.io);
  return program;
}

/** `io` with URL credentials hidden from everything written, whatever the command or the error says. */
function redacting(io: CliIo): CliIo {
  return { ...io, stdout: (t) => io.stdout(redactUrl(t)), stderr: (t) => io.stderr(redactUrl(t)) };
}

/** The whole CLI as a function, so tests can run commands in-process; resolves the exit code. */
export async function cli(argv: string[], rawIo: CliIo, deps: CliDeps = {}): Promise<number> {
  const ctx: CliContext = { io: redacting(rawIo), deps, code: EXIT.OK };
  const program = buildProgram(ctx);
  let running: Command = program;
  program.hook('preAction', (_root, action) => {
    running = action;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.code;
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeOf(err);
    ctx.io.stderr(`${commandLabel(running)}: ${errorMessage(err)}\n`);
    return EXIT.FATAL;
  }
}

/**
 * Resolves once everything written to `stream` so far has left the process. A pipe takes 64 KiB at a time:
 * exiting earlier drops the rest (and with it the summary line). A reader that went away (EPIPE) also ends it.
 */
export function drained(stream: NodeJS.WritableStream & { destroyed?: boolean; writableLength?: number }): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  return new Promise((done) => {
    stream.once('error', () => done());
    stream.write('', () => done());
  });
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  const code = await cli(process.argv.slice(2), processIo());
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // Exit explicitly: a module that failed to stop within its deadline must not keep the process alive.
  process.exit(code);
}
