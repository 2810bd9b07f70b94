// Bounded external calls: a command or a library promise that hangs must never hold a health sample.
import { execFile } from 'node:child_process';

export type CommandResult = { ok: true; stdout: string } | { ok: false; error: 'not_found' | 'timeout' | 'failed'; stdout: string; detail: string };

/**
 * Runs `cmd args` without a shell, in the C locale, killed with SIGKILL after `timeoutMs`. Never rejects.
 */
export function runCommand(cmd: string, args: readonly string[], timeoutMs = 3000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', LANG: 'C' } },
      (err, stdout) => {
        if (!err) {
          resolve({ ok: true, stdout });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
        const error = e.code === 'ENOENT' ? 'not_found' : e.killed || e.signal === 'SIGKILL' ? 'timeout' : 'failed';
        resolve({ ok: false, error, stdout, detail: e.message.split('\n')[0] ?? e.message });
      },
    );
  });
}
