import { parseArgs } from 'node:util';
import { buildAgent } from '../app.js';
import { EXIT } from '../../core/errors.js';
import { Controller } from '../lifecycle.js';
import { createLogger } from '../../core/log.js';
import { supervise } from '../supervisor.js';
import { loadConfigFileOrReport, type CliIo } from './io.js';

/** `run --config FILE`: nothing starts on an invalid config; otherwise runs until SIGTERM/SIGINT. */
export async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'stop-deadline-ms': { type: 'string' } }, strict: true });
  if (!values.config) {
    io.stderr('usage: roadside-agent run --config FILE [--stop-deadline-ms MS]\n');
    return EXIT.USAGE;
  }
  const loaded = await loadConfigFileOrReport(values.config, io, 'not starting: the config has problems\n');
  if (typeof loaded === 'number') return loaded;
  const { config } = loaded;
  const log = createLogger({ level: config.logging.level, pretty: config.logging.pretty });
  log.info({ config: loaded.file, config_hash: loaded.hash, device: config.device.id, site: config.device.site }, 'starting roadside-agent');
  const agent = buildAgent(loaded, log);
  const controller = new Controller(agent.modules, log, Number(values['stop-deadline-ms'] ?? 10_000));
  return supervise(controller, log, { onFatal: agent.onFatal, recordExit: agent.recordExit });
}
