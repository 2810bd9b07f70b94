// Shared setup of the outbox tests: a temp directory per test, outboxes started in it and stopped after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { createLogger, silentLogger, type Logger } from '../../../core/log.js';
import { Outbox, type OutboxMessage, type OutboxOptions } from '../../../buffer/outbox.js';
import { OutboxSchema, type OutboxConfig } from '../../../config/schema/outbox.js';

export type ConfigOverrides = Partial<Record<keyof OutboxConfig, unknown>>;

export interface OutboxHarness {
  /** The test's temp directory. */
  readonly dir: string;
  /** Outboxes stopped after the test (a test that stops one itself removes it). */
  readonly open: Outbox[];
  config: (over?: ConfigOverrides) => OutboxConfig;
  start: (over?: ConfigOverrides, opts?: OutboxOptions, log?: Logger) => Promise<Outbox>;
  restart: (ob: Outbox, over?: ConfigOverrides, opts?: OutboxOptions) => Promise<Outbox>;
}

/** Registers beforeEach/afterEach hooks; the returned harness is valid inside tests. */
export function useOutboxHarness(): OutboxHarness {
  let dir = '';
  const open: Outbox[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'roadside-outbox-test-'));
  });
  afterEach(async () => {
    for (const ob of open.splice(0)) await ob.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  const config = (over: ConfigOverrides = {}): OutboxConfig => OutboxSchema.parse({ path: join(dir, 'outbox.db'), ...over });
  const start = async (over: ConfigOverrides = {}, opts: OutboxOptions = {}, log: Logger = silentLogger()): Promise<Outbox> => {
    const ob = new Outbox(config(over), log, opts);
    await ob.start(new AbortController().signal);
    open.push(ob);
    return ob;
  };
  const restart = async (ob: Outbox, over: ConfigOverrides = {}, opts: OutboxOptions = {}): Promise<Outbox> => {
    await ob.stop();
    return start(over, opts);
  };
  return {
    get dir() {
      return dir;
    },
    open,
    config,
    start,
    restart,
  };
}

export function msg(i: number, over: Partial<OutboxMessage> = {}): OutboxMessage {
  return { id: `ev-${i}`, topic: 'events/cam1', priority: 'event', payload: { n: i }, ...over };
}

/** A logger whose lines (parsed JSON) are kept. */
export function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { log, lines };
}
