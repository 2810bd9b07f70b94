// The README's command reference, written from the command tree itself: each command's `--help`, so the README
// cannot say something the program does not. `npx tsx cli/docs.ts --write` updates README.md between
// the markers; `--check` fails (exit 1) when it is stale, as does tests/integration/agent/cli.test.ts.
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { packageRoot } from '../core/paths.js';
import { allCommands, commandLabel } from './framework.js';
import { buildProgram } from './main.js';

export const START = '<!-- commands:start -->';
export const END = '<!-- commands:end -->';

/** GitHub's anchor for a heading: lower case, spaces to dashes, punctuation other than - and _ dropped. */
const anchor = (text: string): string => text.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');

/** The Markdown between the markers (without them): a table of commands, then each command's help. */
export function renderCommandsMarkdown(): string {
  let captured = '';
  const io = { stdout: (t: string) => (captured += t), stderr: () => undefined, env: {}, interactive: false };
  const program = buildProgram({ io, deps: {}, code: 0 });
  const help = (cmd: Command): string => {
    captured = '';
    cmd.outputHelp();
    return captured.trimEnd();
  };
  const commands = allCommands(program);
  const rows = commands.map((c) => `| [\`${commandLabel(c)}\`](#${anchor(commandLabel(c))}) | ${c.summary() || c.description()} |`);
  const sections = commands.map((c) => `#### \`${commandLabel(c)}\`\n\n\`\`\`text\n${help(c)}\n\`\`\``);
  return [
    '<!-- Generated from the command tree by `npx tsx cli/docs.ts --write`: edit cli/, not this section. -->',
    '',
    '| command | what it does |',
    '|---|---|',
    ...rows,
    '',
    `Every command takes \`--help\`. Bash completion: \`source <(roadside-agent completion bash)\`.`,
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
}

/** `text` with the section between the markers replaced by `section`. */
export function withCommandsSection(text: string, section: string): string {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${START} … ${END} section`);
  return `${text.slice(0, start + START.length)}\n${section}${text.slice(end)}`;
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  const mode = process.argv[2];
  const file = join(packageRoot(), 'README.md');
  const text = readFileSync(file, 'utf8');
  const next = withCommandsSection(text, renderCommandsMarkdown());
  if (mode === '--write') {
    if (next !== text) writeFileSync(file, next);
    process.stdout.write(next === text ? 'README.md commands section up to date\n' : 'README.md commands section written\n');
  } else if (mode === '--check') {
    if (next !== text) {
      process.stderr.write('README.md commands section is stale: run npx tsx cli/docs.ts --write\n');
      process.exitCode = 1;
    }
  } else {
    process.stderr.write('usage: npx tsx cli/docs.ts --write | --check\n');
    process.exitCode = 64;
  }
}
