#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, errorMessage } from '../../core/errors.js';
import { redactUrl } from '../../core/log.js';
import { packageVersion } from '../../core/paths.js';
import { analyzeCommand } from './analyze-cmd.js';
import { configCommand } from './config-cmd.js';
import { processIo, type CliIo, type Command } from './io.js';
import { runCommand } from './run-cmd.js';

const COMMANDS: Record<string, { run: Command; help: string }> = {
  run: { run: runCommand, help: 'run --config FILE             run the agent' },
  analyze: { run: analyzeCommand, help: 'analyze --config FILE --camera ID CLIP   events of a recorded clip as JSON lines' },
  config: { run: configCommand, help: 'config check FILE | schema    validate a config file / print its JSON Schema' },
  doctor: { run: (args, io) => import('./doctor.js').then((m) => m.doctorCommand(args, io)), help: 'doctor --config FILE [--json] [--seconds N]   check cameras, model, broker, clock, disk, outbox, permissions' },
  provision: { run: async (args, io) => (await import('../field/provision.js')).provisionCommand(args, io), help: 'provision [--help]            write config, secrets, data dirs, TLS key + CSR for this box' },
  center: { run: (args, io) => import('../../center/cli.js').then((m) => m.centerCommand(args, io)), help: 'center --url URL [--help]     receive a fleet: live table, events to --out/--db, gap repair' },
};

function usage(): string {
  return [
    'usage: roadside-agent <command> [options]',
    '',
    ...Object.values(COMMANDS).map((c) => `  ${c.help}`),
    '  version                       print the agent version',
    '',
    'Exit codes: 0 ok, 1 fatal, 64 usage, 78 invalid configuration.',
    '',
  ].join('\n');
}

/** `io` with URL credentials hidden from everything written, whatever the command or the error says. */
function redacting(io: CliIo): CliIo {
  return { ...io, stdout: (t) => io.stdout(redactUrl(t)), stderr: (t) => io.stderr(redactUrl(t)) };
}

/** The whole CLI as a function, so tests can run commands in-process. */
export async function cli(argv: string[], rawIo: CliIo): Promise<number> {
  const io = redacting(rawIo);
  const [name, ...args] = argv;
  if (name === 'version' || name === '--version') {
    io.stdout(`${packageVersion()}\n`);
    return EXIT.OK;
  }
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.stdout(usage());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.stderr(`unknown command "${name}"\n${usage()}`);
    return EXIT.USAGE;
  }
  try {
    return await cmd.run(args, io);
  } catch (err) {
    const code = (err as { code?: string }).code;
    io.stderr(`roadside-agent ${name}: ${errorMessage(err)}\n`);
    return code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ? EXIT.USAGE : EXIT.FATAL;
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
