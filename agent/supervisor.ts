import { EXIT, errorMessage } from '../core/errors.js';
import type { Controller } from './lifecycle.js';
import type { Logger } from '../core/log.js';

/**
 * Runs a controller as the process's main job: starts it, stops it on SIGTERM/SIGINT, and turns an
 * unhandled rejection, an uncaught exception or a module's fatal report into a stop with exit code 1
 * (so systemd restarts the agent). Resolves with the exit code once everything has stopped.
 */
export interface SuperviseHooks {
  /** Registers the handler modules call for a condition only a restart can fix. */
  onFatal?: (handler: (reason: string) => void) => void;
  /** Told once why the process is stopping (kept for the next start's birth message). */
  recordExit?: (reason: string) => void;
}

export async function supervise(controller: Controller, log: Logger, hooks: SuperviseHooks = {}): Promise<number> {
  let exitCode: number = EXIT.OK;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping = false;
  const shutdown = (reason: string, code: number) => {
    exitCode = Math.max(exitCode, code);
    if (!stopping) {
      stopping = true;
      try {
        hooks.recordExit?.(reason);
      } catch (err) {
        log.warn({ err }, 'could not record the exit reason');
      }
    }
    void controller.stop(reason).then((report) => {
      if (report.timed_out || report.failed.length > 0) exitCode = Math.max(exitCode, EXIT.FATAL);
      resolveDone();
    });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, 'signal received');
    shutdown(sig, EXIT.OK);
  };
  const fatal = (kind: string) => (err: unknown) => {
    log.fatal({ err, kind }, 'fatal error, shutting down');
    shutdown(kind, EXIT.FATAL);
  };
  const onRejection = fatal('unhandled_rejection');
  const onException = fatal('uncaught_exception');
  process.on('SIGTERM', onSignal).on('SIGINT', onSignal).on('unhandledRejection', onRejection).on('uncaughtException', onException);
  hooks.onFatal?.((reason) => {
    log.fatal({ reason }, 'fatal condition, exiting so the service manager restarts the agent');
    shutdown(reason, EXIT.FATAL);
  });
  try {
    await controller.start();
    log.info('running');
  } catch (err) {
    // A signal that arrives while modules are still starting aborts the start: that is a normal stop.
    if (!stopping) {
      log.fatal({ err: errorMessage(err) }, 'start failed');
      shutdown('start_failed', EXIT.FATAL);
    }
  }
  await done;
  process.off('SIGTERM', onSignal).off('SIGINT', onSignal).off('unhandledRejection', onRejection).off('uncaughtException', onException);
  log.info({ exit_code: exitCode }, 'stopped');
  log.flush();
  return exitCode;
}
