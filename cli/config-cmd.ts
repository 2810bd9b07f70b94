import { Command } from 'commander';
import type { CliContext } from './framework.js';

/** `config check FILE` and `config schema`. */
export function configCommand(ctx: CliContext): Command {
  const check = new Command('check')
    .summary('validate a config: every problem at once, FILE:LINE path: message')
    .description(
      'Validates a config file as the agent does at start: every problem at once, each as FILE:LINE path: message ' +
        '(got value). Secrets and a few paths may come from ROADSIDE_* variables in the environment.',
    )
    .argument('<FILE>', 'the config file')
    .addHelpText('after', '\nExit codes: 0 valid, 64 usage, 78 invalid configuration.')
    .action(async (file: string) => {
      // The config loader (zod schema, yaml) loads with the command that uses it, not with every command.
      const { loadConfigFileOrReport } = await import('./io.js');
      const loaded = await loadConfigFileOrReport(file, ctx.io);
      if (typeof loaded === 'number') {
        ctx.code = loaded;
        return;
      }
      const { config, hash } = loaded;
      ctx.io.stdout(`${file}: valid (device ${config.device.site}/${config.device.id}, ${config.cameras.length} camera(s), config hash ${hash})\n`);
    });
  const schema = new Command('schema')
    .summary('print the config JSON Schema (for editors)')
    .description("Prints the config's JSON Schema (the committed config/config.schema.json): point an editor's YAML plugin at it.")
    .action(async () => {
      const { configJsonSchemaText } = await import('../config/json-schema.js');
      ctx.io.stdout(configJsonSchemaText());
    });
  return new Command('config').summary('validate a config / print its JSON Schema').description('Config file tools.').addCommand(check).addCommand(schema);
}
