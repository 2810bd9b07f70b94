import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../../agent/lifecycle.js';
import { silentLogger } from '../../../core/log.js';
import type { Module } from '../../../core/module.js';

function recorder() {
  const calls: string[] = [];
  const mod = (name: string, opts: { failStart?: boolean; hangStop?: boolean; failStop?: boolean } = {}): Module => ({
    name,
    start: () => {
      calls.push(`start ${name}`);
      return opts.failStart ? Promise.reject(new Error('no')) : Promise.resolve();
    },
    stop: () => {
      calls.push(`stop ${name}`);
      if (opts.hangStop) return new Promise(() => undefined);
      return opts.failStop ? Promise.reject(new Error('stuck')) : Promise.resolve();
    },
  });
  return { calls, mod };
}

describe('Controller', () => {
  it('starts in order and stops in reverse', async () => {
    const { calls, mod } = recorder();
    const c = new Controller([mod('a'), mod('b'), mod('c')], silentLogger());
    await c.start();
    const report = await c.stop('test');
    expect(calls).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
    expect(report).toEqual({ failed: [], timed_out: false, pending: [] });
  });

  it('a failed start stops nothing it did not start; a failing stop does not block the others', async () => {
    const { calls, mod } = recorder();
    const c = new Controller([mod('a', { failStop: true }), mod('b', { failStart: true }), mod('c')], silentLogger());
    await expect(c.start()).rejects.toMatchObject({ code: 'START_FAILED' });
    const report = await c.stop('failed');
    expect(calls).toEqual(['start a', 'start b', 'stop a']);
    expect(report.failed).toEqual(['a']);
  });

  it('gives up at the deadline and names the module still stopping', async () => {
    const { calls, mod } = recorder();
    const c = new Controller([mod('a'), mod('b', { hangStop: true }), mod('c')], silentLogger(), 200);
    await c.start();
    const t0 = Date.now();
    const report = await c.stop('test');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(report).toEqual({ failed: [], timed_out: true, pending: ['b'] });
    expect(calls).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b']);
  });

  it('a start aborted by stop(): the stop waits for that module to clean up, then stops the started ones', async () => {
    const { calls, mod } = recorder();
    // Like the detector: on abort it first lets its worker finish, then rejects; its stop() is never called.
    const slow: Module = {
      name: 'slow',
      start: (signal) =>
        new Promise((_, reject) => {
          calls.push('start slow');
          signal?.addEventListener('abort', () => setTimeout(() => (calls.push('slow cleaned up'), reject(new Error('aborted'))), 300), { once: true });
        }),
      stop: () => (calls.push('stop slow'), Promise.resolve()),
    };
    const c = new Controller([mod('a'), slow, mod('c')], silentLogger());
    const started = c.start().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    const report = await c.stop('signal');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(await started).toMatchObject({ code: 'START_FAILED' });
    expect(calls).toEqual(['start a', 'start slow', 'slow cleaned up', 'stop a']);
    expect(report).toEqual({ failed: [], timed_out: false, pending: [] });
  });

  it('stop is idempotent', async () => {
    const { calls, mod } = recorder();
    const c = new Controller([mod('a')], silentLogger());
    await c.start();
    await Promise.all([c.stop('x'), c.stop('y')]);
    expect(calls.filter((x) => x === 'stop a')).toHaveLength(1);
  });
});

/** Runs the lifecycle fixture as a real process; resolves with its exit code and JSON log lines. */
function spawnApp(args: string[], signalAfterMs?: number, signalOn = '"msg":"running"'): Promise<{ code: number | null; logs: { msg: string; component?: string }[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'tests/fixtures/lifecycle-app.ts', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (signalAfterMs !== undefined && out.includes(signalOn)) {
        setTimeout(() => child.kill('SIGTERM'), signalAfterMs);
        signalAfterMs = undefined;
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, logs: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; component?: string }) }));
  });
}

describe('supervised process', () => {
  it('SIGTERM: reverse stop, exit 0', async () => {
    const { code, logs } = await spawnApp([], 50);
    expect(code).toBe(0);
    const order = logs.filter((l) => l.msg === 'module started' || l.msg === 'module stopped').map((l) => `${l.msg.split(' ')[1]} ${l.component}`);
    expect(order).toEqual(['started a', 'started b', 'started c', 'stopped c', 'stopped b', 'stopped a']);
  });

  it('SIGTERM while a module is still starting: the started ones stop, exit 0', async () => {
    const { code, logs } = await spawnApp(['--slow-start', 'b'], 0, '"component":"a"');
    expect(code).toBe(0);
    expect(logs.some((l) => l.msg === 'start failed')).toBe(false);
    expect(logs.filter((l) => l.msg === 'module stopped').map((l) => l.component)).toEqual(['b', 'a']);
  });

  it('a module that does not stop within the deadline: exit 1 after the deadline', async () => {
    const t0 = Date.now();
    const { code, logs } = await spawnApp(['--hang-stop', 'b', '--deadline', '300'], 50);
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(logs.some((l) => l.msg === 'shutdown deadline passed')).toBe(true);
  });

  it('an unhandled rejection is logged and fatal: exit 1 after an orderly stop', async () => {
    const { code, logs } = await spawnApp(['--reject-after-start']);
    expect(code).toBe(1);
    expect(logs.find((l) => l.msg === 'fatal error, shutting down')).toMatchObject({ kind: 'unhandled_rejection' });
    expect(logs.filter((l) => l.msg === 'module stopped').map((l) => l.component)).toEqual(['c', 'b', 'a']);
  });

  it('a module that fails to start: exit 1, the started ones stopped', async () => {
    const { code, logs } = await spawnApp(['--fail-start', 'c']);
    expect(code).toBe(1);
    expect(logs.filter((l) => l.msg === 'module stopped').map((l) => l.component)).toEqual(['b', 'a']);
  });
});
