// signal: the state of a traffic signal for red-light enforcement, from the center or a local
// signal-controller bridge.
import type { Config } from '../../config/schema/index.js';
import type { CameraAnalytics } from '../../inference/analytics/index.js';
import { AgentError } from '../../core/errors.js';
import type { AgentCommands } from './registry.js';

type SignalConfig = Pick<Config, 'analytics' | 'cameras'>;

/** `config`: the config, or a function returning the one in force (it changes with config-apply). */
export function registerSignal(commands: AgentCommands, config: SignalConfig | (() => SignalConfig), analytics: readonly Pick<CameraAnalytics, 'setSignal'>[]): void {
  const current = typeof config === 'function' ? config : () => config;
  commands.register('signal', ({ signal, state, at }) => {
    const cfg = current();
    const known = cfg.analytics.signals.some((s) => s.id === signal) || cfg.cameras.some((c) => c.lines.some((l) => l.signal === signal));
    if (!known) throw new AgentError('UNKNOWN_SIGNAL', `no stop line uses signal "${signal}"`);
    const at_ms = at ? Date.parse(at) : Date.now();
    analytics.forEach((a) => a.setSignal(signal, state, at_ms));
    return { signal, state, at: new Date(at_ms).toISOString() };
  });
}
