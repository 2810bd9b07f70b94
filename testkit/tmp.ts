// Per-process temp dirs for test helpers: removed at exit; dirs left by crashed (SIGKILLed) test
// processes are swept by the next process that asks for one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive, onProcessExit } from './processes.js';

const PREFIX = 'roadside-test-';
let swept = false;

function sweepStale(): void {
  swept = true;
  const base = os.tmpdir();
  for (const name of fs.readdirSync(base)) {
    // roadside-test-<kind>-<pid>-XXXXXX
    const m = /^roadside-test-[a-z0-9]+-(\d+)-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    try {
      const full = path.join(base, name);
      if (Date.now() - fs.statSync(full).mtimeMs < 60_000) continue; // pid reuse / clock safety margin
      fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // raced with another sweeper
    }
  }
}

/** mkdtemp under os.tmpdir() named roadside-test-<kind>-<pid>-XXXXXX, removed when this process exits. */
export function makeTempDir(kind: string): string {
  if (!swept) sweepStale();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${kind}-${process.pid}-`));
  onProcessExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
