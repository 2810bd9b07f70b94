import type { LoadedConfig } from '../config/loader.js';
import type { Logger } from './log.js';
import type { Module } from './module.js';

export interface Agent {
  /** In start order; stopped in reverse. */
  modules: Module[];
  /** Called with a reason when a module hits a condition only a restart can fix. */
  onFatal: (handler: (reason: string) => void) => void;
}

/** Composes the agent's modules from a validated config. Constructors only assign: nothing runs yet. */
export function buildAgent(loaded: LoadedConfig, log: Logger): Agent {
  const fatalHandlers: ((reason: string) => void)[] = [];
  void log;
  void loaded;
  const modules: Module[] = [];
  return {
    modules,
    onFatal: (h) => fatalHandlers.push(h),
  };
}
