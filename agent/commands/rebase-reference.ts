// rebase-reference: after a camera was re-aimed on purpose, its tamper reference view is forgotten and a new one
// learned (inference/tamper): the shifted alarm against the old view clears.
import type { CameraConfig } from '../../config/schema/index.js';
import { AgentError } from '../../core/errors.js';
import type { TamperWatcher } from '../../inference/tamper/index.js';
import type { AgentCommands } from './registry.js';

/** The tamper watch of a camera in force; undefined when it has none (disabled, or not wired). */
export type TamperLookup = (camera: string) => Pick<TamperWatcher, 'rebase'> | undefined;

export function registerRebaseReference(commands: AgentCommands, cameras: readonly CameraConfig[], tamper: TamperLookup | undefined): void {
  commands.register('rebase-reference', ({ camera }) => {
    const cam = cameras.find((c) => c.id === camera);
    if (!cam) throw new AgentError('UNKNOWN_CAMERA', `no camera "${camera}" (cameras: ${cameras.map((c) => c.id).join(', ')})`);
    const watch = cam.tamper.enabled ? tamper?.(camera) : undefined;
    if (!watch) throw new AgentError('TAMPER_DISABLED', `camera "${camera}" has no tamper watch running (cameras[].tamper.enabled is ${cam.tamper.enabled})`);
    return { camera, ...watch.rebase() };
  });
}
