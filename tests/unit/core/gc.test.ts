import { execFileSync } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { budgetedYoungCollector, youngCollector } from '../../../core/gc.js';

const MB = 1024 * 1024;

describe('youngCollector', () => {
  it('frees dead young ArrayBuffers at once, as the detector worker needs after each run', async () => {
    const collect = youngCollector();
    collect();
    const before = process.memoryUsage().arrayBuffers;
    // 8 run outputs of 1 MB, like the binding's copies of ONNX Runtime's output tensors, then dropped.
    const runs = () => Array.from({ length: 8 }, () => new ArrayBuffer(MB)).length;
    expect(runs()).toBe(8);
    // Dead, but nothing has collected them: still counted.
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThanOrEqual(7 * MB);
    collect();
    // The sweeper may finish on another thread: give it a few ticks.
    let after = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 50 && after - before > MB; i++) {
      await new Promise((r) => setTimeout(r, 10));
      after = process.memoryUsage().arrayBuffers;
    }
    expect(after - before).toBeLessThan(MB);
  });

  it('budgeted: collects once the buffers reported since the last collection reach the budget, not before', async () => {
    youngCollector()();
    const collect = budgetedYoungCollector(4 * MB);
    const before = process.memoryUsage().arrayBuffers;
    const runOf = (bytes: number) => new ArrayBuffer(bytes).byteLength;
    for (let i = 0; i < 3; i++) collect(runOf(MB)); // 3 MB reported: under the budget
    const settle = async (done: () => boolean) => {
      for (let i = 0; i < 50 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThanOrEqual(3 * MB);
    collect(runOf(MB)); // the fourth reaches it
    await settle(() => process.memoryUsage().arrayBuffers - before < MB);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(MB);
  });

  it('leaves no gc behind for other code', () => {
    const exposed = runInNewContext('typeof gc');
    youngCollector();
    expect(runInNewContext('typeof gc')).toBe(exposed);
  });

  it('keeps gc exposed in a process started with --expose-gc', () => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '-e', `
      import { execFileSync } from 'node:child_process';
import { runInNewContext } from 'node:vm';
      const { youngCollector } = await import(${JSON.stringify(new URL('../../../core/gc.ts', import.meta.url).href)});
      youngCollector()();
      process.stdout.write(runInNewContext('typeof gc'));`], { encoding: 'utf8' });
    expect(out).toBe('function');
  });
});
