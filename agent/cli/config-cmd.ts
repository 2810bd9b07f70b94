import { configJsonSchemaText } from '../../config/json-schema.js';
import { EXIT } from '../../core/errors.js';
import { loadConfigFileOrReport, type CliIo } from './io.js';

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
      const loaded = await loadConfigFileOrReport(file, io);
      if (typeof loaded === 'number') return loaded;
      const { config, hash } = loaded;
      io.stdout(`${file}: valid (device ${config.device.site}/${config.device.id}, ${config.cameras.length} camera(s), config hash ${hash})\n`);
      return EXIT.OK;
    }
    case 'schema':
      io.stdout(configJsonSchemaText());
      return EXIT.OK;
    default:
      io.stderr('usage: roadside-agent config check FILE | roadside-agent config schema\n');
      return EXIT.USAGE;
  }
}
