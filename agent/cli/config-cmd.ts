import { configJsonSchemaText } from '../../config/json-schema.js';
import { ConfigError, formatProblems, loadConfig } from '../../config/loader.js';
import { EXIT } from '../../core/errors.js';
import type { CliIo } from './io.js';

/** `config check FILE` and `config schema`. */
export async function configCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'check': {
      const file = rest[0];
      if (!file || rest.length > 1) {
        io.stderr('usage: roadside-agent config check FILE\n');
        return EXIT.USAGE;
      }
      try {
        const { config, hash } = loadConfig(file, io.env);
        io.stdout(`${file}: valid (device ${config.device.site}/${config.device.id}, ${config.cameras.length} camera(s), config hash ${hash})\n`);
        return EXIT.OK;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        io.stderr(`${formatProblems(err.problems)}\n${err.problems.length} problem(s) found in ${file}\n`);
        return EXIT.CONFIG;
      }
    }
    case 'schema':
      io.stdout(configJsonSchemaText());
      return Promise.resolve(EXIT.OK);
    default:
      io.stderr('usage: roadside-agent config check FILE | roadside-agent config schema\n');
      return EXIT.USAGE;
  }
}
